//! `switchboard report`: reads `journeys.transitions` and the `commands.<channel>` topics
//! (from Kafka, every partition from the first record in the time range to the end it had
//! when the report started; or from JSON-lines files), and prints the report.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use switchboard_codec::{JourneyTransition, SendCommand};
use switchboard_config::Config;
use switchboard_kafka::client_config;
use switchboard_report::{Seen, html, report as build, table};

use crate::args::ReportArgs;
use crate::journeys::{load, policies};

pub async fn report(config: &Config, args: ReportArgs) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now().as_millisecond();
    let since = args.since.as_deref().map(|t| instant(t, now)).transpose()?;
    let until = args.until.as_deref().map(|t| instant(t, now)).transpose()?;
    let records = if args.file.is_empty() {
        from_kafka(config, since).await?
    } else {
        let mut all = Vec::new();
        for f in &args.file {
            all.extend(from_file(f)?);
        }
        all
    };
    let at = |r: &Seen| match r {
        Seen::Transition(t) => t.at,
        Seen::Command(c) => c.created_at,
    };
    let within = |r: &Seen| since.is_none_or(|s| at(r) >= s) && until.is_none_or(|u| at(r) < u);
    let report = build(records.into_iter().filter(within));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", table::render(&report));
    }
    if let Some(path) = &args.html {
        // The graphs are drawn when the journey files are at hand.
        let journeys = policies(None)
            .ok()
            .and_then(|p| load(&args.journeys, &p).ok());
        std::fs::write(path, html::render(&report, journeys.as_ref()))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report: {}", path.display());
    }
    Ok(())
}

/// An RFC 3339 instant, or a time ago (`7d`), in Unix milliseconds.
fn instant(text: &str, now: i64) -> anyhow::Result<i64> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t.as_millisecond());
    }
    match humantime::parse_duration(text) {
        Ok(ago) => Ok(now - i64::try_from(ago.as_millis()).unwrap_or(i64::MAX)),
        Err(_) => bail!("`{text}` is neither an RFC 3339 instant nor a time ago like 7d"),
    }
}

/// Transitions and commands of a JSON-lines file, bare or as `tail` prints them.
fn from_file(path: &Path) -> anyhow::Result<Vec<Seen>> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let mut value: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), n + 1))?;
        if let Some(inner) = value.get_mut("value") {
            value = inner.take();
        }
        let seen = if value.get("transition_id").is_some() {
            Seen::Transition(serde_json::from_value(value).with_context(|| {
                format!("{}:{}: not a JourneyTransition", path.display(), n + 1)
            })?)
        } else if value.get("command_id").is_some() {
            Seen::Command(
                serde_json::from_value(value)
                    .with_context(|| format!("{}:{}: not a SendCommand", path.display(), n + 1))?,
            )
        } else {
            continue; // another record (a dead letter, an event): not for the report
        };
        out.push(seen);
    }
    Ok(out)
}

/// Every transition and command from `since` (or the beginning) to the end each partition
/// had when this started.
async fn from_kafka(config: &Config, since: Option<i64>) -> anyhow::Result<Vec<Seen>> {
    let codec = crate::run::codec(config).await?;
    let t = &config.topics;
    let mut out = Vec::new();
    for payload in read_topic(config, &t.transitions, since).await? {
        if let Ok(x) = codec.decode::<JourneyTransition>(&payload).await {
            out.push(Seen::Transition(x));
        }
    }
    for channel in &t.channels {
        let topic = format!("{}{channel}", t.commands_prefix);
        for payload in read_topic(config, &topic, since).await? {
            if let Ok(c) = codec.decode::<SendCommand>(&payload).await {
                out.push(Seen::Command(c));
            }
        }
    }
    Ok(out)
}

/// A consumer's context that logs client errors as librdkafka's default does, except the
/// end of a partition, which is how the report knows it has read everything.
struct EndIsNoError;

impl rdkafka::ClientContext for EndIsNoError {
    fn error(&self, error: KafkaError, reason: &str) {
        // librdkafka reports it both as a partition's and as a global error.
        let end = matches!(
            error,
            KafkaError::PartitionEOF(_)
                | KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        );
        if !end {
            tracing::error!(error = %error, reason, "kafka client error");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for EndIsNoError {}

/// The values of `topic` (committed records only) from `since` to each partition's end as
/// it was when this started.
async fn read_topic(
    config: &Config,
    topic: &str,
    since: Option<i64>,
) -> anyhow::Result<Vec<Vec<u8>>> {
    let consumer: StreamConsumer<EndIsNoError> = client_config(&config.kafka)
        .set(
            "group.id",
            format!("switchboard-report-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create_with_context(EndIsNoError)?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .with_context(|| format!("metadata of {topic}"))?;
    let mut assignment = TopicPartitionList::new();
    let mut ends: HashMap<i32, i64> = HashMap::new();
    for p in metadata.topics().iter().flat_map(|m| m.partitions()) {
        let (low, high) = consumer.fetch_watermarks(topic, p.id(), timeout)?;
        if high > low {
            ends.insert(p.id(), high);
            let start = since.map_or(Offset::Beginning, Offset::Offset);
            assignment.add_partition_offset(topic, p.id(), start)?;
        }
    }
    if since.is_some() && !ends.is_empty() {
        // The offsets hold timestamps here; the broker turns them into offsets (the end,
        // where nothing is that recent).
        assignment = consumer.offsets_for_times(assignment, timeout)?;
        for e in assignment.elements() {
            if matches!(e.offset(), Offset::End) {
                ends.remove(&e.partition());
            }
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return Ok(out);
    }
    consumer.assign(&assignment)?;
    let mut done: HashSet<i32> = HashSet::new();
    while done.len() < ends.len() {
        let message = match tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await {
            Err(_) => bail!("{topic}: no record for 30 s before the end of every partition"),
            // The end of a partition (past any transaction markers).
            Ok(Err(KafkaError::PartitionEOF(p))) => {
                done.insert(p);
                continue;
            }
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(m)) => m,
        };
        if ends
            .get(&message.partition())
            .is_some_and(|end| message.offset() + 1 >= *end)
        {
            done.insert(message.partition());
        }
        if let Some(bytes) = message.payload() {
            out.push(bytes.to_vec());
        }
    }
    Ok(out)
}
