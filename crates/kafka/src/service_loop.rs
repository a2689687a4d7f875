//! One loop per service over every partition it owns.
//!
//! Each assigned partition keeps its own queue (split off in the rebalance callback), worker,
//! epoch and offsets, but one task serves them all. Whenever it wakes, every idle partition
//! with records waiting takes them as its batch, and the batches are made durable side by
//! side, each as soon as it can: their Redis round trips and produce requests leave in the
//! same turn of the loop and their replies wake it once, so a fetch that brings records of
//! several partitions costs one wake-up and one round of requests, not one per partition. A
//! partition takes its next batch only once its last is durable, so its order holds; a
//! partition whose batch is done does not wait for the others'.
//!
//! A partition's tick (its timers) runs before its next batch once `tick` has passed. A
//! partition whose stop is cancelled (revoked, or the service stopping) is finished once its
//! batch in flight is done: its worker's `finish`, then its offset committed for the next
//! owner, then the rebalance callback waiting on it is told.

use std::sync::{Arc, mpsc};
use std::time::Instant;

use futures::future::{BoxFuture, join_all, select_all};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span, debug, info_span, warn};

use crate::consumer::{ConsumerSettings, NewPartition, OutputMode, PartitionContext, Queue};
use crate::metrics::KafkaMetrics;
use crate::output::{Publisher, Transactional, TxnMetrics};
use crate::retry::until_ok;
use crate::stopped::Stopped;
use crate::{Worker, Workers};

type Consumer_ = StreamConsumer<PartitionContext>;

/// A partition this service owns, with its running worker.
struct Owned<W> {
    topic: String,
    partition: i32,
    queue: Queue,
    stop: CancellationToken,
    done: mpsc::Sender<()>,
    worker: W,
    /// The last offset made durable.
    last: Option<i64>,
    /// Fenced by a newer owner: its offset is not committed.
    fenced: bool,
    /// A record taken while waiting for any partition's, the first of its next batch.
    first: Option<OwnedMessage>,
    /// When its tick is next due.
    next_tick: Instant,
    span: Span,
}

/// Serves every partition assigned to this member until `end` is cancelled and each of them
/// has finished. New partitions arrive on `assigned`; the rebalance callback and shutdown
/// stop them through their tokens.
pub(crate) async fn serve<W: Workers>(
    consumer: Arc<Consumer_>,
    mut assigned: tokio::sync::mpsc::UnboundedReceiver<NewPartition>,
    workers: Arc<W>,
    settings: ConsumerSettings,
    metrics: KafkaMetrics,
    end: CancellationToken,
) {
    let service = settings.service;
    let owned_gauge = metrics.partitions_owned.with_label_values(&[service]);
    let batches = BatchMetrics {
        records: metrics.batch_records.with_label_values(&[service]),
        seconds: metrics.batch_seconds.with_label_values(&[service]),
    };
    let txn = TxnMetrics::new(&metrics);
    let produce_errors = metrics.errors.with_label_values(&["produce"]);
    // Partitions between batches, and those with a batch (or tick) in flight.
    let mut idle: Vec<Owned<W::Worker>> = Vec::new();
    let mut busy: FuturesUnordered<BoxFuture<'static, Owned<W::Worker>>> = FuturesUnordered::new();
    let mut starting: JoinSet<Option<Owned<W::Worker>>> = JoinSet::new();
    loop {
        if idle.iter().any(|o| o.stop.is_cancelled()) {
            let (stopped, running) = idle.into_iter().partition(|o| o.stop.is_cancelled());
            idle = running;
            owned_gauge.sub(i64::try_from(stopped.len()).unwrap_or(i64::MAX));
            finish(&consumer, stopped).await;
        }
        if end.is_cancelled() && idle.is_empty() && busy.is_empty() && starting.is_empty() {
            break;
        }
        // Every idle partition with records waiting, or its tick due, starts its batch.
        let now = Instant::now();
        let mut i = 0;
        while let Some(o) = idle.get_mut(i) {
            let ticks = now >= o.next_tick;
            let batch = o.waiting(settings.max_batch);
            if batch.is_empty() && !ticks {
                i += 1;
                continue;
            }
            let mut o = idle.swap_remove(i);
            if ticks {
                o.next_tick = now + settings.tick;
            }
            busy.push(run(o, batch, ticks, consumer.clone(), batches.clone()).boxed());
        }
        let woken = {
            let queues: Vec<(usize, &Queue)> = (idle.iter().enumerate())
                .filter(|(_, o)| !o.stop.is_cancelled())
                .map(|(i, o)| (i, &o.queue))
                .collect();
            let stops: Vec<&CancellationToken> = idle.iter().map(|o| &o.stop).collect();
            let next_tick = idle.iter().map(|o| o.next_tick).min();
            tokio::select! {
                biased;
                Some(p) = assigned.recv() => Woken::Assigned(p),
                Some(started) = starting.join_next(), if !starting.is_empty() => {
                    Woken::Started(started.ok().flatten())
                }
                Some(o) = busy.next(), if !busy.is_empty() => Woken::Done(o),
                () = any_cancelled(stops) => Woken::Other,
                () = end.cancelled(), if !end.is_cancelled() => Woken::Other,
                () = until(next_tick) => Woken::Other,
                (at, first) = first_record(queues) => Woken::Record(at, first),
            }
        };
        match woken {
            Woken::Assigned(p) => {
                let start = start(
                    consumer.clone(),
                    p,
                    workers.clone(),
                    settings.clone(),
                    txn.clone(),
                    produce_errors.clone(),
                );
                starting.spawn(start);
            }
            Woken::Started(started) => {
                if let Some(o) = started {
                    owned_gauge.inc();
                    idle.push(o);
                }
            }
            Woken::Done(o) => idle.push(o),
            Woken::Record(at, Ok(m)) => {
                if let Some(o) = idle.get_mut(at) {
                    o.first = Some(m);
                }
            }
            Woken::Record(at, Err(e)) => {
                if let Some(o) = idle.get(at) {
                    warn!(topic = o.topic, partition = o.partition, error = %e, "partition consume error");
                }
            }
            Woken::Other => {}
        }
    }
}

/// What a partition's batches count.
#[derive(Clone)]
struct BatchMetrics {
    records: prometheus::Histogram,
    seconds: prometheus::Histogram,
}

/// A partition's turn: its tick when due, then its batch made durable and its offset stored.
/// A partition that gives up (stopped, or fenced) has its stop cancelled, and is finished
/// once back in the loop.
async fn run<W: Worker>(
    mut o: Owned<W>,
    batch: Vec<OwnedMessage>,
    ticks: bool,
    consumer: Arc<Consumer_>,
    metrics: BatchMetrics,
) -> Owned<W> {
    let span = o.span.clone();
    async move {
        if ticks && let Err(stopped) = o.worker.tick().await {
            o.give_up(stopped);
            return o;
        }
        let Some(offset) = batch.last().map(Message::offset) else {
            return o;
        };
        metrics.records.observe(batch.len() as f64);
        let taken = Instant::now();
        if let Err(stopped) = o.worker.process(batch).await {
            o.give_up(stopped);
            return o;
        }
        metrics.seconds.observe(taken.elapsed().as_secs_f64());
        debug!(offset, "batch durable");
        if let Err(e) = consumer.store_offset(&o.topic, o.partition, offset) {
            debug!(error = %e, "store_offset (partition revoked?)");
        }
        o.last = Some(offset);
        o
    }
    .instrument(span)
    .await
}

impl<W> Owned<W> {
    /// The records waiting in the partition's queue, up to `max`.
    fn waiting(&mut self, max: usize) -> Vec<OwnedMessage> {
        if self.stop.is_cancelled() {
            return Vec::new();
        }
        let mut batch: Vec<OwnedMessage> = self.first.take().into_iter().collect();
        while batch.len() < max {
            match self.queue.recv().now_or_never() {
                Some(Ok(m)) => batch.push(m.detach()),
                _ => break,
            }
        }
        batch
    }

    fn give_up(&mut self, stopped: Stopped) {
        self.fenced = stopped == Stopped::Fenced;
        self.stop.cancel();
    }
}

/// Creates a new partition's publisher and worker; `None` when it stops first (the callback
/// waiting on it is then told).
async fn start<W: Workers>(
    consumer: Arc<Consumer_>,
    p: NewPartition,
    workers: Arc<W>,
    settings: ConsumerSettings,
    txn: TxnMetrics,
    produce_errors: prometheus::IntCounter,
) -> Option<Owned<W::Worker>> {
    let NewPartition {
        tp: (topic, partition),
        queue,
        stop,
        done,
    } = p;
    let span = info_span!(
        "partition",
        service = settings.service,
        topic = topic.as_str(),
        partition
    );
    let worker = async {
        let publisher = match &settings.output {
            OutputMode::Shared(p) => Publisher::Plain(p.clone()),
            OutputMode::Transactional(config) => {
                let mut config = config.clone();
                config.set(
                    "transactional.id",
                    format!("{}-{topic}-{partition}", settings.group),
                );
                let Some(group) = consumer.group_metadata() else {
                    warn!("no consumer group metadata for transactions");
                    return None;
                };
                let group = Arc::new(group);
                // The coordinator may be away for a while: retry until it answers or we stop.
                let started = until_ok(
                    "start the transactional producer",
                    &stop,
                    produce_errors,
                    || async {
                        tokio::select! {
                            _ = stop.cancelled() => Err(rdkafka::error::KafkaError::Canceled),
                            t = Transactional::start(config.clone(), group.clone(), &topic, partition, txn.clone()) => t,
                        }
                    },
                )
                .await;
                Publisher::Transactional(started.ok()?)
            }
        };
        workers
            .start(&topic, partition, publisher, stop.clone())
            .await
            .ok()
    }
    .instrument(span.clone())
    .await;
    // Without a worker, `done` is dropped here: the callback sees the partition drained.
    Some(Owned {
        worker: worker?,
        topic,
        partition,
        queue,
        stop,
        done,
        last: None,
        fenced: false,
        first: None,
        next_tick: Instant::now(),
        span,
    })
}

/// Finishes stopped partitions: each worker's `finish`, then the offset it made durable is
/// committed (not a fenced member's: its successor is ahead), then its callback is told.
async fn finish<W: Worker>(consumer: &Consumer_, stopped: Vec<Owned<W>>) {
    join_all(stopped.into_iter().map(|mut o| {
        let span = o.span.clone();
        async move {
            o.worker.finish().await;
            if let Some(last) = o.last.filter(|_| !o.fenced) {
                let mut tpl = TopicPartitionList::new();
                if tpl
                    .add_partition_offset(&o.topic, o.partition, Offset::Offset(last + 1))
                    .is_ok()
                    && let Err(e) = consumer.commit(&tpl, CommitMode::Async)
                {
                    debug!(error = %e, "commit on stop");
                }
            }
            let _ = o.done.send(());
        }
        .instrument(span)
    }))
    .await;
}

/// What woke the loop.
enum Woken<W> {
    Assigned(NewPartition),
    /// A partition started, or could not (stopped first).
    Started(Option<Owned<W>>),
    /// A partition's batch is done.
    Done(Owned<W>),
    /// The first record (or an error) of the idle partition at this place.
    Record(usize, rdkafka::error::KafkaResult<OwnedMessage>),
    /// A partition stopped, the service is ending, or a tick.
    Other,
}

/// Resolves at `instant`; never without one.
async fn until(instant: Option<Instant>) {
    match instant {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// Resolves once any of `stops` is cancelled; never without any.
async fn any_cancelled(stops: Vec<&CancellationToken>) {
    if stops.is_empty() {
        return std::future::pending().await;
    }
    select_all(stops.into_iter().map(|s| Box::pin(s.cancelled()))).await;
}

/// The first record (or error) of any of `queues`, with the place it came with; never
/// without queues.
async fn first_record(
    queues: Vec<(usize, &Queue)>,
) -> (usize, rdkafka::error::KafkaResult<OwnedMessage>) {
    if queues.is_empty() {
        return std::future::pending().await;
    }
    let waiting = queues
        .into_iter()
        .map(|(i, q)| Box::pin(async move { (i, q.recv().await.map(|m| m.detach())) }));
    select_all(waiting).await.0
}
