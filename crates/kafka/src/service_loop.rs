//! One loop per service over every partition it owns.
//!
//! Each assigned partition keeps its own queue (split off in the rebalance callback), worker,
//! epoch and offsets, but one task serves them all: whenever any partition has records, every
//! partition's waiting records are taken, each partition's as its own batch, and the batches
//! are made durable side by side. Their Redis round trips and produce requests leave together
//! and their acknowledgements come back together, so at low load a fetch that brings records
//! of several partitions costs one wake-up and one round of requests, not one per partition.
//! A partition hands in its next batch only once its last is durable, so its order holds.
//!
//! Ticks fire every partition's timers together in the same way. A partition whose stop is
//! cancelled (revoked, or the service stopping) is finished between batches: its worker's
//! `finish`, then its offset committed for the next owner, then the rebalance callback
//! waiting on it is told.

use std::sync::{Arc, mpsc};

use futures::FutureExt;
use futures::future::{join_all, select_all};
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
    let batch_records = metrics.batch_records.with_label_values(&[service]);
    let batch_seconds = metrics.batch_seconds.with_label_values(&[service]);
    let txn = TxnMetrics::new(&metrics);
    let produce_errors = metrics.errors.with_label_values(&["produce"]);
    let mut owned: Vec<Owned<W::Worker>> = Vec::new();
    let mut starting: JoinSet<Option<Owned<W::Worker>>> = JoinSet::new();
    let mut tick = tokio::time::interval(settings.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if owned.iter().any(|o| o.stop.is_cancelled()) {
            let (stopped, running) = owned.into_iter().partition(|o| o.stop.is_cancelled());
            owned = running;
            owned_gauge.sub(i64::try_from(stopped.len()).unwrap_or(i64::MAX));
            finish(&consumer, stopped).await;
        }
        if end.is_cancelled() && owned.is_empty() && starting.is_empty() {
            break;
        }
        let woken = {
            let queues: Vec<(usize, &Queue)> = (owned.iter().enumerate())
                .filter(|(_, o)| !o.stop.is_cancelled())
                .map(|(i, o)| (i, &o.queue))
                .collect();
            let stops: Vec<&CancellationToken> = owned.iter().map(|o| &o.stop).collect();
            tokio::select! {
                biased;
                Some(p) = assigned.recv() => Woken::Assigned(p),
                Some(started) = starting.join_next(), if !starting.is_empty() => {
                    Woken::Started(started.ok().flatten())
                }
                () = any_cancelled(stops) => Woken::Stopped,
                () = end.cancelled(), if !end.is_cancelled() => Woken::Stopped,
                _ = tick.tick() => Woken::Tick,
                (at, first) = first_record(queues) => Woken::Record(at, first),
            }
        };
        let (at, first) = match woken {
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
                continue;
            }
            Woken::Started(started) => {
                if let Some(o) = started {
                    owned_gauge.inc();
                    owned.push(o);
                }
                continue;
            }
            Woken::Stopped => continue,
            Woken::Tick => {
                tick_all(&mut owned).await;
                continue;
            }
            Woken::Record(at, first) => (at, first),
        };
        let mut first = match first {
            Ok(m) => Some((at, m)),
            Err(e) => {
                if let Some(o) = owned.get(at) {
                    warn!(topic = o.topic, partition = o.partition, error = %e, "partition consume error");
                }
                None
            }
        };
        // Every partition's waiting records, each partition's as its own batch.
        let mut batches = Vec::new();
        for (i, o) in owned.iter_mut().enumerate() {
            if o.stop.is_cancelled() {
                continue;
            }
            let mut batch = Vec::new();
            if let Some((_, m)) = first.take_if(|(a, _)| *a == i) {
                batch.push(m);
            }
            while batch.len() < settings.max_batch {
                match o.queue.recv().now_or_never() {
                    Some(Ok(m)) => batch.push(m.detach()),
                    _ => break,
                }
            }
            if !batch.is_empty() {
                batches.push((o, batch));
            }
        }
        let taken = std::time::Instant::now();
        join_all(batches.into_iter().map(|(o, batch)| {
            let (batch_records, batch_seconds) = (&batch_records, &batch_seconds);
            let consumer = &*consumer;
            let span = o.span.clone();
            async move {
                batch_records.observe(batch.len() as f64);
                let offset = batch.last().map(Message::offset);
                if let Err(stopped) = o.worker.process(batch).await {
                    o.fenced = stopped == Stopped::Fenced;
                    o.stop.cancel();
                    return;
                }
                batch_seconds.observe(taken.elapsed().as_secs_f64());
                let Some(offset) = offset else { return };
                debug!(offset, "batch durable");
                if let Err(e) = consumer.store_offset(&o.topic, o.partition, offset) {
                    debug!(error = %e, "store_offset (partition revoked?)");
                }
                o.last = Some(offset);
            }
            .instrument(span)
        }))
        .await;
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

/// Every running partition's tick, side by side; a partition whose tick gives up stops.
async fn tick_all<W: Worker>(owned: &mut [Owned<W>]) {
    join_all(
        owned
            .iter_mut()
            .filter(|o| !o.stop.is_cancelled())
            .map(|o| {
                let span = o.span.clone();
                async move {
                    if let Err(stopped) = o.worker.tick().await {
                        o.fenced = stopped == Stopped::Fenced;
                        o.stop.cancel();
                    }
                }
                .instrument(span)
            }),
    )
    .await;
}

/// What woke the loop.
enum Woken<W> {
    Assigned(NewPartition),
    /// A partition started, or could not (stopped first).
    Started(Option<Owned<W>>),
    /// A partition stopped, or the service is ending.
    Stopped,
    Tick,
    /// A record (or an error) of the partition at this place in the loop's list.
    Record(usize, rdkafka::error::KafkaResult<OwnedMessage>),
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
