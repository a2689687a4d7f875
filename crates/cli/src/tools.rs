//! The operator tools: configuration, schemas, topics, produce and tail.

use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use switchboard_codec::{
    AvroRecord, ChannelEvent, Codec, CodecError, CustomerEvent, Framing, JourneyTransition,
    LocalSchemas, RegisteredSchema, SendCommand,
};
use switchboard_config::Config;
use switchboard_kafka::{TopicOutcome, client_config, create_topics, topic_plan};

const SECRET_KEYS: [&str; 3] = ["sasl.password", "ssl.key.password", "ssl.keystore.password"];

pub fn config_check(config: &Config) -> anyhow::Result<()> {
    let mut shown = config.clone();
    for key in SECRET_KEYS {
        if let Some(v) = shown.kafka.properties.get_mut(key) {
            *v = "<hidden>".into();
        }
    }
    if shown.schemas.registry_password.is_some() {
        shown.schemas.registry_password = Some("<hidden>".into());
    }
    print!("{}", toml::to_string_pretty(&shown)?);
    eprintln!("configuration is valid");
    Ok(())
}

pub fn schemas(dir: Option<&Path>) -> anyhow::Result<()> {
    let local = match dir {
        Some(d) => LocalSchemas::load(d)?,
        None => LocalSchemas::embedded()?,
    };
    println!("{:<4} {:<36} {:<18}", "id", "record", "fingerprint");
    for name in [
        ChannelEvent::NAME,
        CustomerEvent::NAME,
        SendCommand::NAME,
        JourneyTransition::NAME,
    ] {
        if let Some(s) = local.newest(name) {
            println!("{:<4} {:<36} {:016x}", s.id, s.name, s.fingerprint);
        }
    }
    Ok(())
}

pub async fn topics_create(config: &Config) -> anyhow::Result<()> {
    let plan = topic_plan(&config.topics);
    for (topic, outcome) in create_topics(&config.kafka, &plan).await? {
        let what = match outcome {
            TopicOutcome::Created => "created",
            TopicOutcome::AlreadyExists => "exists",
        };
        println!("{what:<8} {topic}");
    }
    Ok(())
}

pub async fn produce(
    config: &Config,
    topic: &str,
    file: &Path,
    key_by: Option<&str>,
    framing: Framing,
) -> anyhow::Result<()> {
    let codec = Codec::new(LocalSchemas::embedded()?).await?;
    let producer: FutureProducer = client_config(&config.kafka)
        .set("enable.idempotence", "true")
        .create()?;
    let reader: Box<dyn BufRead> = if file == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file).with_context(|| format!("open {}", file.display()))?,
        ))
    };
    let mut sent = 0usize;
    for (n, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let event: ChannelEvent = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not a ChannelEvent", file.display(), n + 1))?;
        let key = key_by
            .and_then(|k| event.identifiers.iter().find(|i| i.kind == k))
            .map(|i| i.value.clone());
        let payload = codec.encode(&event, framing)?;
        let mut record = FutureRecord::<String, Vec<u8>>::to(topic).payload(&payload);
        if let Some(k) = &key {
            record = record.key(k);
        }
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .with_context(|| format!("produce line {}", n + 1))?;
        sent += 1;
    }
    eprintln!("produced {sent} events to {topic}");
    Ok(())
}

pub async fn tail(
    config: &Config,
    topic: &str,
    from_beginning: bool,
    limit: Option<usize>,
    headers: bool,
) -> anyhow::Result<()> {
    let codec = Codec::new(LocalSchemas::embedded()?).await?;
    let consumer: StreamConsumer = client_config(&config.kafka)
        .set(
            "group.id",
            format!("switchboard-tail-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set(
            "auto.offset.reset",
            if from_beginning { "earliest" } else { "latest" },
        )
        .create()?;
    consumer.subscribe(&[topic])?;
    let mut stream = consumer.stream();
    let mut seen = 0usize;
    while limit.is_none_or(|l| seen < l) {
        let Some(message) = stream.next().await else {
            break;
        };
        let message = message?;
        let payload = message.payload().unwrap_or_default();
        let json = decode_any(&codec, payload).await;
        let mut line = serde_json::json!({
            "partition": message.partition(),
            "offset": message.offset(),
            "key": message.key().map(String::from_utf8_lossy),
            "value": json,
        });
        if headers {
            use rdkafka::message::Headers;
            let all: serde_json::Map<String, serde_json::Value> = message
                .headers()
                .into_iter()
                .flat_map(|h| h.iter())
                .map(|h| {
                    let value = h.value.map(String::from_utf8_lossy);
                    (h.key.to_owned(), serde_json::json!(value))
                })
                .collect();
            if let Some(fields) = line.as_object_mut() {
                fields.insert("headers".into(), serde_json::Value::Object(all));
            }
        }
        println!("{line}");
        seen += 1;
    }
    if seen == 0 && limit.is_some() {
        bail!("no record read from {topic}");
    }
    Ok(())
}

/// Decodes whichever Switchboard record the writer schema names; undecodable bytes are
/// shown with the reason.
async fn decode_any(codec: &Codec<LocalSchemas>, payload: &[u8]) -> serde_json::Value {
    fn json<T: AvroRecord + serde::Serialize>(
        codec: &Codec<LocalSchemas>,
        writer: &RegisteredSchema,
        payload: &[u8],
    ) -> Result<serde_json::Value, CodecError> {
        let record: T = codec.decode_with(writer, payload)?;
        serde_json::to_value(record).map_err(|e| CodecError::Encode {
            record: T::NAME,
            reason: e.to_string(),
        })
    }
    let decoded = match codec.writer_of(payload).await {
        Err(e) => Err(e),
        Ok(writer) => match writer.name.as_str() {
            ChannelEvent::NAME => json::<ChannelEvent>(codec, &writer, payload),
            CustomerEvent::NAME => json::<CustomerEvent>(codec, &writer, payload),
            SendCommand::NAME => json::<SendCommand>(codec, &writer, payload),
            JourneyTransition::NAME => json::<JourneyTransition>(codec, &writer, payload),
            other => Err(CodecError::WrongType {
                expected: "a Switchboard record",
                found: other.to_owned(),
            }),
        },
    };
    decoded.unwrap_or_else(
        |e| serde_json::json!({ "undecodable": e.to_string(), "bytes": payload.len() }),
    )
}
