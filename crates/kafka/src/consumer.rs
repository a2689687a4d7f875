//! A consumer-group member that runs one task per assigned partition.
//!
//! On assignment (inside librdkafka's rebalance callback, before anything is fetched) each
//! partition's queue is split off and handed to its own task, which reads batches, lets the
//! [`Worker`] make them durable, then stores the offset. On revocation the callback asks the
//! partition's task to finish its batch and commit, and waits for it (up to the drain
//! deadline), so the next owner starts where this one stopped. Shutdown does the same for
//! every partition.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak, mpsc};
use std::time::Duration;

use futures::FutureExt;
use prometheus::IntGaugeVec;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{BorrowedMessage, Message, OwnedMessage};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use rdkafka::producer::FutureProducer;

use crate::metrics::KafkaMetrics;
use crate::output::{Publisher, Transactional, TxnMetrics};
use crate::retry::until_ok;
use crate::stopped::Stopped;

/// What a service does with its partitions.
pub trait Worker: Send + 'static {
    /// Makes a batch durable (retrying as needed). `Err` only when stopping before it could:
    /// the batch's offsets are then not stored, and the next owner replays it.
    fn process(
        &mut self,
        batch: Vec<OwnedMessage>,
    ) -> impl Future<Output = Result<(), Stopped>> + Send;

    /// Called between batches at least every `tick` (timers are fired here).
    fn tick(&mut self) -> impl Future<Output = Result<(), Stopped>> + Send;

    /// Called once when the partition stops (revoked, or shutting down), before its offset
    /// is committed for the next owner.
    fn finish(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Starts a worker for a newly assigned partition.
pub trait Workers: Send + Sync + 'static {
    type Worker: Worker;
    fn start(
        &self,
        topic: &str,
        partition: i32,
        publisher: Publisher,
        stop: CancellationToken,
    ) -> impl Future<Output = Result<Self::Worker, Stopped>> + Send;
}

/// Batch and timing settings of a partitioned consumer.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub group: String,
    pub topics: Vec<String>,
    pub max_batch: usize,
    pub tick: Duration,
    /// How long a revoked or stopping partition may take to finish its batch and commit.
    pub drain: Duration,
    /// The service name for metrics and logs.
    pub service: &'static str,
    pub output: OutputMode,
}

/// How partitions publish.
#[derive(Clone)]
pub enum OutputMode {
    /// One idempotent producer shared by every partition.
    Shared(FutureProducer),
    /// A transactional producer per partition (`transactional.id` = group, topic, partition),
    /// created from this configuration.
    Transactional(ClientConfig),
}

impl std::fmt::Debug for OutputMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Shared(_) => "Shared",
            Self::Transactional(_) => "Transactional",
        })
    }
}

type Tp = (String, i32);

/// How often librdkafka reports statistics (and so consumer lag), unless configured.
const STATS_INTERVAL_MS: &str = "5000";

struct NewPartition {
    tp: Tp,
    queue: Queue,
    stop: CancellationToken,
    done: mpsc::Sender<()>,
}

struct Assigned {
    stop: CancellationToken,
    done: mpsc::Receiver<()>,
}

/// The consumer context: splits partition queues on assignment, drains on revocation.
pub struct PartitionContext {
    consumer: Mutex<Weak<StreamConsumer<PartitionContext>>>,
    assigned: Mutex<HashMap<Tp, Assigned>>,
    new_queues: tokio::sync::mpsc::UnboundedSender<NewPartition>,
    drain: Duration,
    /// `switchboard_consumer_lag{service, topic, partition}`, from librdkafka's statistics.
    lag: IntGaugeVec,
    service: &'static str,
}

impl ClientContext for PartitionContext {
    /// Publishes the lag of each owned partition (high watermark minus committed offset).
    fn stats(&self, stats: Statistics) {
        let Ok(assigned) = self.assigned.lock() else {
            return;
        };
        for (topic, t) in &stats.topics {
            for (partition, p) in &t.partitions {
                if p.consumer_lag >= 0 && assigned.contains_key(&(topic.clone(), *partition)) {
                    self.lag
                        .with_label_values(&[self.service, topic, &partition.to_string()])
                        .set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for PartitionContext {
    fn pre_rebalance(&self, _base: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let mut waiting = Vec::new();
            if let Ok(mut assigned) = self.assigned.lock() {
                for e in tpl.elements() {
                    if let Some(a) = assigned.remove(&(e.topic().to_owned(), e.partition())) {
                        a.stop.cancel();
                        let _ = self.lag.remove_label_values(&[
                            self.service,
                            e.topic(),
                            &e.partition().to_string(),
                        ]);
                        waiting.push((e.topic().to_owned(), e.partition(), a.done));
                    }
                }
            }
            for (topic, partition, done) in waiting {
                // Disconnected means the task already ended: it drained.
                if let Err(mpsc::RecvTimeoutError::Timeout) = done.recv_timeout(self.drain) {
                    warn!(
                        topic,
                        partition, "partition did not drain before the deadline"
                    );
                }
            }
            info!(partitions = tpl.count(), "partitions revoked");
        }
    }

    fn post_rebalance(&self, _base: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            info!(partitions = tpl.count(), "partitions assigned");
            let Some(consumer) = self.consumer.lock().ok().and_then(|w| w.upgrade()) else {
                return;
            };
            for e in tpl.elements() {
                let tp = (e.topic().to_owned(), e.partition());
                // Split here, before anything of the partition is fetched into the main queue.
                let Some(queue) = consumer.split_partition_queue(&tp.0, tp.1) else {
                    warn!(
                        topic = tp.0,
                        partition = tp.1,
                        "cannot split the partition queue"
                    );
                    continue;
                };
                let stop = CancellationToken::new();
                let (done_tx, done_rx) = mpsc::channel();
                if let Ok(mut assigned) = self.assigned.lock() {
                    assigned.insert(
                        tp.clone(),
                        Assigned {
                            stop: stop.clone(),
                            done: done_rx,
                        },
                    );
                }
                let _ = self.new_queues.send(NewPartition {
                    tp,
                    queue,
                    stop,
                    done: done_tx,
                });
            }
        }
    }
}

/// Runs a consumer-group member until `shutdown`, with one task per assigned partition.
pub async fn run_partitioned<W: Workers>(
    mut client: ClientConfig,
    settings: ConsumerSettings,
    workers: Arc<W>,
    metrics: KafkaMetrics,
    shutdown: CancellationToken,
) -> Result<(), rdkafka::error::KafkaError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let context = PartitionContext {
        consumer: Mutex::new(Weak::new()),
        assigned: Mutex::new(HashMap::new()),
        new_queues: tx,
        drain: settings.drain,
        lag: metrics.consumer_lag.clone(),
        service: settings.service,
    };
    if client.get("statistics.interval.ms").is_none() {
        client.set("statistics.interval.ms", STATS_INTERVAL_MS);
    }
    client
        .set("group.id", &settings.group)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    let consumer: Arc<StreamConsumer<PartitionContext>> =
        Arc::new(client.create_with_context(context)?);
    if let Ok(mut weak) = consumer.context().consumer.lock() {
        *weak = Arc::downgrade(&consumer);
    }
    let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    let owned = metrics
        .partitions_owned
        .with_label_values(&[settings.service]);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(NewPartition { tp: (topic, partition), queue, stop, done }) = rx.recv() => {
                let (workers, consumer, settings, owned) = (workers.clone(), consumer.clone(), settings.clone(), owned.clone());
                let partition_metrics = PartitionMetrics::new(&metrics, settings.service);
                let span = info_span!("partition", service = settings.service, topic = topic.as_str(), partition);
                tasks.spawn(async move {
                    owned.inc();
                    run_partition(&consumer, queue, &topic, partition, &*workers, &settings, partition_metrics, stop).await;
                    owned.dec();
                    let _ = done.send(());
                }.instrument(span));
            }
            message = consumer.recv() => {
                // Every assigned partition is split off in the rebalance callback, so only
                // errors and events arrive here.
                match message {
                    Err(e) => {
                        warn!(error = %e, "consumer error");
                        metrics.errors.with_label_values(&["consume"]).inc();
                    }
                    Ok(m) => warn!(topic = m.topic(), partition = m.partition(), offset = m.offset(), "record on the main queue"),
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    let stops: Vec<CancellationToken> = consumer
        .context()
        .assigned
        .lock()
        .map(|a| a.values().map(|x| x.stop.clone()).collect())
        .unwrap_or_default();
    for s in stops {
        s.cancel();
    }
    let drained = tokio::time::timeout(settings.drain, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            service = settings.service,
            "partitions did not drain before the deadline"
        );
    }
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        debug!(error = %e, "final commit");
    }
    consumer.unsubscribe();
    Ok(())
}

type Queue = rdkafka::consumer::stream_consumer::StreamPartitionQueue<PartitionContext>;

/// The metrics one partition's task writes.
struct PartitionMetrics {
    produce_errors: prometheus::IntCounter,
    txn: TxnMetrics,
    batch_seconds: prometheus::Histogram,
    batch_records: prometheus::Histogram,
}

impl PartitionMetrics {
    fn new(metrics: &KafkaMetrics, service: &str) -> Self {
        Self {
            produce_errors: metrics.errors.with_label_values(&["produce"]),
            txn: TxnMetrics::new(metrics),
            batch_seconds: metrics.batch_seconds.with_label_values(&[service]),
            batch_records: metrics.batch_records.with_label_values(&[service]),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_partition<W: Workers>(
    consumer: &StreamConsumer<PartitionContext>,
    queue: Queue,
    topic: &str,
    partition: i32,
    workers: &W,
    settings: &ConsumerSettings,
    metrics: PartitionMetrics,
    stop: CancellationToken,
) {
    let publisher = match &settings.output {
        OutputMode::Shared(p) => Publisher::Plain(p.clone()),
        OutputMode::Transactional(config) => {
            let mut config = config.clone();
            config.set(
                "transactional.id",
                format!("{}-{topic}-{partition}", settings.group),
            );
            let Some(group) = consumer.group_metadata() else {
                warn!(
                    topic,
                    partition, "no consumer group metadata for transactions"
                );
                return;
            };
            let group = Arc::new(group);
            // The coordinator may be away for a while: retry until it answers or we stop.
            let started = until_ok(
                "start the transactional producer",
                &stop,
                metrics.produce_errors.clone(),
                || async {
                    tokio::select! {
                        _ = stop.cancelled() => Err(rdkafka::error::KafkaError::Canceled),
                        t = Transactional::start(config.clone(), group.clone(), topic, partition, metrics.txn.clone()) => t,
                    }
                },
            )
            .await;
            match started {
                Ok(t) => Publisher::Transactional(t),
                Err(_) => return,
            }
        }
    };
    let Ok(mut worker) = workers
        .start(topic, partition, publisher, stop.clone())
        .await
    else {
        return;
    };
    let mut tick = tokio::time::interval(settings.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<i64> = None;
    let mut fenced = false;
    loop {
        let first: BorrowedMessage<'_> = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                if let Err(stopped) = worker.tick().await {
                    fenced = stopped == Stopped::Fenced;
                    break;
                }
                continue;
            }
            m = queue.recv() => match m {
                Ok(m) => m,
                Err(e) => {
                    warn!(topic, partition, error = %e, "partition consume error");
                    continue;
                }
            },
        };
        let mut batch = vec![first.detach()];
        drop(first);
        while batch.len() < settings.max_batch {
            match queue.recv().now_or_never() {
                Some(Ok(m)) => batch.push(m.detach()),
                _ => break,
            }
        }
        let offset = batch.last().map(|m| m.offset());
        metrics.batch_records.observe(batch.len() as f64);
        let taken = std::time::Instant::now();
        if let Err(stopped) = worker.process(batch).await {
            fenced = stopped == Stopped::Fenced;
            break;
        }
        metrics.batch_seconds.observe(taken.elapsed().as_secs_f64());
        if let Some(o) = offset {
            debug!(topic, partition, offset = o, "batch durable");
            if let Err(e) = consumer.store_offset(topic, partition, o) {
                debug!(topic, partition, error = %e, "store_offset (partition revoked?)");
            }
            last = Some(o);
        }
    }
    worker.finish().await;
    // Commit what this partition made durable, so the next owner starts after it; a fenced
    // member's offset is behind its successor's, and is not committed.
    if let Some(o) = last.filter(|_| !fenced) {
        let mut tpl = TopicPartitionList::new();
        if tpl
            .add_partition_offset(topic, partition, Offset::Offset(o + 1))
            .is_ok()
            && let Err(e) = consumer.commit(&tpl, CommitMode::Async)
        {
            debug!(topic, partition, error = %e, "commit on stop");
        }
    }
}
