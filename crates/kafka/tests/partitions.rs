//! The partitioned consumer on a real broker: partitions' batches made durable side by side,
//! each partition in order and one batch at a time, none held back by a slower one, and
//! every partition's offset committed for the next owner when the service stops.

// The helpers below are the test's own: a failed call in them is the test failing.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use switchboard_kafka::*;
use switchboard_test_support::{KafkaBroker, unique};
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 3;
const PER_PARTITION: i64 = 10;

/// One batch as a worker saw it.
#[derive(Debug, Clone)]
struct Batch {
    partition: i32,
    offsets: Vec<i64>,
    started: Instant,
    ended: Instant,
}

#[derive(Default)]
struct Seen {
    batches: Vec<Batch>,
    ticks: BTreeMap<i32, usize>,
}

/// Workers that take `slow` for partition 0's first batch and `fast` for every other.
struct Recording {
    seen: Arc<Mutex<Seen>>,
    slow: Duration,
    fast: Duration,
}

struct Partition {
    partition: i32,
    seen: Arc<Mutex<Seen>>,
    first: Duration,
    then: Duration,
    batches: usize,
}

impl Workers for Recording {
    type Worker = Partition;

    async fn start(
        &self,
        _topic: &str,
        partition: i32,
        _publisher: Publisher,
        _stop: CancellationToken,
    ) -> Result<Partition, Stopped> {
        Ok(Partition {
            partition,
            seen: self.seen.clone(),
            first: if partition == 0 { self.slow } else { self.fast },
            then: self.fast,
            batches: 0,
        })
    }
}

impl Worker for Partition {
    async fn process(&mut self, batch: Vec<OwnedMessage>) -> Result<(), Stopped> {
        let started = Instant::now();
        self.batches += 1;
        let takes = if self.batches == 1 {
            self.first
        } else {
            self.then
        };
        tokio::time::sleep(takes).await;
        let offsets = batch.iter().map(Message::offset).collect();
        self.seen.lock().unwrap().batches.push(Batch {
            partition: self.partition,
            offsets,
            started,
            ended: Instant::now(),
        });
        Ok(())
    }

    async fn tick(&mut self) -> Result<(), Stopped> {
        *(self.seen.lock().unwrap().ticks)
            .entry(self.partition)
            .or_default() += 1;
        Ok(())
    }
}

/// Runs the consumer over a topic of three partitions holding ten records each, until every
/// record is processed; then stops it. What the workers saw, and the group's committed offsets.
async fn serve(max_batch: usize, slow: Duration, fast: Duration) -> (Seen, Vec<i64>) {
    let broker = KafkaBroker::shared();
    let topic = unique("partitions");
    let group = unique("partitions-group");
    broker.create_topic(&topic, PARTITIONS).await;
    let producer: FutureProducer = broker.client_config().create().unwrap();
    for partition in 0..PARTITIONS {
        for i in 0..PER_PARTITION {
            let payload = format!("{partition}:{i}");
            producer
                .send(
                    FutureRecord::<(), _>::to(&topic)
                        .partition(partition)
                        .payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .unwrap();
        }
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let workers = Arc::new(Recording {
        seen: seen.clone(),
        slow,
        fast,
    });
    let settings = ConsumerSettings {
        group: group.clone(),
        topics: vec![topic.clone()],
        max_batch,
        tick: Duration::from_millis(50),
        drain: Duration::from_secs(10),
        service: "test",
        output: OutputMode::Shared(producer),
    };
    let metrics = KafkaMetrics::register(&prometheus::Registry::new()).unwrap();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(run_partitioned(
        broker.client_config(),
        settings,
        workers,
        metrics,
        shutdown.clone(),
    ));
    let processed = || {
        let seen = seen.lock().unwrap();
        seen.batches.iter().map(|b| b.offsets.len()).sum::<usize>()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while processed() < (PARTITIONS as usize) * (PER_PARTITION as usize) {
        assert!(Instant::now() < deadline, "only {} processed", processed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    running.await.unwrap().unwrap();

    let reader: BaseConsumer = broker
        .client_config()
        .set("group.id", &group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(&topic, p);
    }
    let committed = reader
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    let committed = (committed.elements().iter())
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            other => panic!("partition {} committed {other:?}", e.partition()),
        })
        .collect();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (seen, committed)
}

/// Each partition's batches, in the order they ended.
fn by_partition(seen: &Seen) -> BTreeMap<i32, Vec<Batch>> {
    let mut by: BTreeMap<i32, Vec<Batch>> = BTreeMap::new();
    let mut batches = seen.batches.clone();
    batches.sort_by_key(|b| b.ended);
    for b in batches {
        by.entry(b.partition).or_default().push(b);
    }
    by
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_batches_are_made_durable_side_by_side_each_in_order() {
    let (seen, committed) =
        serve(100, Duration::from_millis(200), Duration::from_millis(200)).await;
    let by = by_partition(&seen);
    for p in 0..PARTITIONS {
        let batches = &by[&p];
        // Every record once, in its partition's order.
        let offsets: Vec<i64> = batches.iter().flat_map(|b| b.offsets.clone()).collect();
        assert_eq!(
            offsets,
            (0..PER_PARTITION).collect::<Vec<_>>(),
            "partition {p}"
        );
        // One batch of a partition at a time.
        for pair in batches.windows(2) {
            assert!(pair[1].started >= pair[0].ended, "partition {p}: {pair:?}");
        }
        assert!(
            seen.ticks.get(&p).copied().unwrap_or(0) > 0,
            "partition {p} never ticked"
        );
    }
    // Records waiting in every partition: their batches were in flight together.
    let first: Vec<&Batch> = (0..PARTITIONS).map(|p| &by[&p][0]).collect();
    let latest_start = first.iter().map(|b| b.started).max().unwrap();
    let earliest_end = first.iter().map(|b| b.ended).min().unwrap();
    assert!(
        latest_start < earliest_end,
        "the partitions' first batches did not overlap: {first:?}"
    );
    assert_eq!(committed, vec![PER_PARTITION; PARTITIONS as usize]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_partition_holds_back_no_other() {
    // Two records a batch: five batches a partition, partition 0's first taking 3 s.
    let (seen, committed) = serve(2, Duration::from_secs(3), Duration::from_millis(20)).await;
    let by = by_partition(&seen);
    let slow_first_end = by[&0][0].ended;
    for p in 1..PARTITIONS {
        assert_eq!(by[&p].len(), 5, "partition {p}: {:?}", by[&p]);
        let last = by[&p].last().unwrap();
        assert!(
            last.ended < slow_first_end,
            "partition {p} waited for partition 0: its last batch ended after partition 0's first"
        );
    }
    assert_eq!(committed, vec![PER_PARTITION; PARTITIONS as usize]);
}
