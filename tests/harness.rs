//! The test infrastructure talks to real parts: an Avro event goes through a real Apache
//! Kafka broker, a key through a real redis-server, a transaction through Kafka's transaction
//! coordinator.

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use switchboard_codec::{AttrValue, ChannelEvent, Codec, Framing, Identifier, LocalSchemas};
use switchboard_test_support::{KafkaBroker, RedisServer, unique};

fn event(id: &str) -> ChannelEvent {
    ChannelEvent {
        event_id: id.into(),
        event_type: "cart.updated".into(),
        channel: "web".into(),
        occurred_at: 1_790_000_000_000,
        identifiers: vec![
            Identifier::new("anonymous_id", "cookie-1"),
            Identifier::new("email", "ann@example.com"),
        ],
        attributes: [("cart_value".to_owned(), AttrValue::Double(42.5))].into(),
        locale: Some("en-GB".into()),
        timezone: Some("Europe/London".into()),
    }
}

#[tokio::test]
async fn an_avro_channel_event_goes_through_kafka_and_comes_back_decoded() {
    let broker = KafkaBroker::shared();
    let topic = unique("events.web");
    broker.create_topic(&topic, 3).await;
    let codec = Codec::new(LocalSchemas::embedded().unwrap()).await.unwrap();

    let producer: FutureProducer = broker
        .client_config()
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let sent = [event("e-1"), event("e-2")];
    for (e, framing) in sent.iter().zip([Framing::Confluent, Framing::SingleObject]) {
        let payload = codec.encode(e, framing).unwrap();
        producer
            .send(
                FutureRecord::to(&topic).key("cookie-1").payload(&payload),
                Duration::from_secs(5),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }

    let consumer: StreamConsumer = broker
        .client_config()
        .set("group.id", unique("group"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut received = Vec::new();
    while received.len() < sent.len() {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("message within 30 s")
            .unwrap();
        assert_eq!(m.key(), Some(&b"cookie-1"[..]));
        received.push(
            codec
                .decode::<ChannelEvent>(m.payload().unwrap())
                .await
                .unwrap(),
        );
    }
    assert_eq!(received, sent, "same key, same partition, same order");
}

#[tokio::test]
async fn the_spawned_redis_server_stores_and_returns_a_key() {
    let redis = RedisServer::start();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = unique("profile");
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("email")
        .arg("ann@example.com")
        .query_async(&mut conn)
        .await
        .unwrap();
    let email: String = redis::cmd("HGET")
        .arg(&key)
        .arg("email")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(email, "ann@example.com");
    let missing: Option<String> = redis::cmd("GET")
        .arg(unique("nothing"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(missing, None);
}

#[test]
fn two_redis_servers_run_side_by_side_on_their_own_ports() {
    let a = RedisServer::start();
    let b = RedisServer::start();
    assert_ne!(a.port(), b.port());
    let mut ca = a.client().get_connection().unwrap();
    let mut cb = b.client().get_connection().unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("a").query(&mut ca).unwrap();
    let seen: Option<String> = redis::cmd("GET").arg("k").query(&mut cb).unwrap();
    assert_eq!(seen, None, "servers do not share data");
}

/// The exactly-once building block the engine uses: output records and the consumer
/// group's input offsets sent in one transaction. A `read_committed` reader sees the committed
/// record and not the aborted one, and the group's offset is the one the transaction carried.
#[tokio::test]
async fn a_kafka_transaction_carries_output_and_input_offsets_and_hides_an_aborted_one() {
    let kafka = KafkaBroker::shared();
    let (input, output, group) = (
        unique("customer.events"),
        unique("commands.email"),
        unique("engine"),
    );
    kafka.create_topic(&input, 1).await;
    kafka.create_topic(&output, 1).await;

    let plain: FutureProducer = kafka.client_config().create().unwrap();
    plain
        .send(
            FutureRecord::to(&input).key("p").payload("event"),
            Duration::from_secs(5),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();

    let consumer: StreamConsumer = kafka
        .client_config()
        .set("group.id", &group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[&input]).unwrap();
    let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("input")
        .unwrap();
    assert_eq!(m.payload(), Some(&b"event"[..]));

    let producer: FutureProducer = kafka
        .client_config()
        .set("transactional.id", unique("tx"))
        .create()
        .unwrap();
    producer.init_transactions(Duration::from_secs(30)).unwrap();
    let send = |payload: &'static str| {
        producer.send(
            FutureRecord::to(&output).key("p").payload(payload),
            Duration::from_secs(5),
        )
    };
    producer.begin_transaction().unwrap();
    send("aborted").await.map_err(|(e, _)| e).unwrap();
    producer.abort_transaction(Duration::from_secs(30)).unwrap();

    producer.begin_transaction().unwrap();
    send("command").await.map_err(|(e, _)| e).unwrap();
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(&input, 0, Offset::Offset(m.offset() + 1))
        .unwrap();
    producer
        .send_offsets_to_transaction(
            &offsets,
            &consumer.group_metadata().unwrap(),
            Duration::from_secs(30),
        )
        .unwrap();
    producer
        .commit_transaction(Duration::from_secs(30))
        .unwrap();

    let committed = consumer
        .committed_offsets(offsets.clone(), Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        committed.find_partition(&input, 0).unwrap().offset(),
        Offset::Offset(m.offset() + 1),
        "the group's offset came with the transaction"
    );

    let reader: StreamConsumer = kafka
        .client_config()
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    reader.subscribe(&[&output]).unwrap();
    let mut read = Vec::new();
    while let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(5), reader.recv()).await {
        read.push(m.payload().unwrap_or_default().to_vec());
    }
    assert_eq!(
        read,
        vec![b"command".to_vec()],
        "the aborted record is hidden"
    );
}
