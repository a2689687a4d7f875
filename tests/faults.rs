//! Broker faults on librdkafka's mock cluster (3 brokers), with the state in a real
//! redis-server: injected produce, fetch, offset-commit and heartbeat errors, a broker down
//! then up, and the group coordinator moving, while four waves of customers arrive. Every
//! customer gets their welcome: none lost, no send under two ids; with transactions, no
//! command read twice except the records of transactions that aborted, which Kafka's
//! read_committed hides and the mock cluster cannot (it writes no abort markers).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::mocking::MockCoordinator;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use support::{Broker, Running};
use switchboard_codec::{ChannelEvent, Identifier, SendCommand};

use RDKafkaRespErr::*;

const WAVE: u32 = 40;

fn wave(customers: std::ops::Range<u32>) -> Vec<ChannelEvent> {
    customers
        .map(|n| ChannelEvent {
            event_id: format!("f{n}"),
            event_type: "app.installed".into(),
            channel: "app".into(),
            occurred_at: switchboard_services::now_ms(),
            identifiers: vec![
                Identifier::new("customer_id", format!("F{n}")),
                Identifier::new("push_token", format!("tok-{n}")),
            ],
            attributes: Default::default(),
            locale: None,
            timezone: Some("UTC".into()),
        })
        .collect()
}

/// What a run under faults delivered.
#[derive(Debug)]
#[allow(dead_code)] // read through Debug
struct Outcome {
    expected: usize,
    lost: usize,
    /// Records carrying a command id seen before (allowed without transactions).
    same_id_duplicates: usize,
    /// One logical send (address, template) under more than one command id.
    logical_duplicates: usize,
    /// Records of transactions that did not commit: Kafka's read_committed hides them, the
    /// mock cluster does not (it writes no abort markers), so each can be read once more.
    aborted_records: u64,
}

async fn run_under_faults(transactions: bool) -> Outcome {
    let mut r =
        Running::parts_on_mock(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/journeys"))).await;
    Arc::make_mut(&mut r.config).kafka.transactions = transactions;
    r.start_stitcher().await;
    r.start_engine().await;
    let Broker::Mock(kafka) = &r.broker else {
        unreachable!("parts_on_mock runs on the mock cluster")
    };
    let c = &kafka.cluster;

    r.produce(&wave(0..WAVE)).await;
    eprintln!("wave 1 produced");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Produce, fetch and offset commits fail for a while.
    c.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RD_KAFKA_RESP_ERR__TRANSPORT,
        ],
    );
    c.request_errors(
        RDKafkaApiKey::Fetch,
        &[
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
            RD_KAFKA_RESP_ERR__TRANSPORT,
        ],
    );
    c.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[
            RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ],
    );
    r.produce(&wave(WAVE..2 * WAVE)).await;
    eprintln!("wave 2 produced under request errors");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // A broker goes down with the partitions it leads, and comes back.
    c.broker_down(2).unwrap();
    let during = wave(2 * WAVE..3 * WAVE);
    let up = async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        c.broker_up(2).unwrap();
    };
    tokio::join!(r.produce(&during), up);
    eprintln!("wave 3 produced around a broker down and up");

    // The group coordinators move, and the old one says so.
    for service in ["stitcher", "engine"] {
        let group = format!("{}-{service}", r.config.kafka.group_prefix);
        c.coordinator(MockCoordinator::Group(group), 3).unwrap();
    }
    c.request_errors(
        RDKafkaApiKey::Heartbeat,
        &[
            RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
            RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        ],
    );
    r.produce(&wave(3 * WAVE..4 * WAVE)).await;
    eprintln!("wave 4 produced after the coordinators moved");

    let expected = 4 * WAVE as usize;
    let logical = |cs: &[SendCommand]| {
        cs.iter()
            .map(|c| (c.address.clone(), c.template.clone()))
            .collect::<BTreeSet<_>>()
            .len()
    };
    // A transaction caught by the broker going down times out (transaction.timeout.ms,
    // 60 s by default) before it is aborted and retried.
    let wait = Duration::from_secs(if transactions { 200 } else { 90 });
    let read = r
        .commands_until(wait, |c| logical(c) >= expected)
        .await
        .len();
    eprintln!("{read} commands read");
    // Whatever else would arrive (duplicates), within a few quiet seconds.
    let commands = r
        .commands_until(Duration::from_secs(5), |c| c.len() > read)
        .await;

    let mut ids_per_send: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for c in &commands {
        ids_per_send
            .entry((c.address.clone(), c.template.clone()))
            .or_default()
            .insert(c.command_id.clone());
    }
    let distinct_ids: usize = ids_per_send.values().map(BTreeSet::len).sum();
    let outcome = Outcome {
        expected,
        lost: expected.saturating_sub(ids_per_send.len()),
        same_id_duplicates: commands.len() - distinct_ids,
        logical_duplicates: distinct_ids - ids_per_send.len(),
        aborted_records: r.metrics.kafka.aborted_records.get(),
    };
    eprintln!("faults (transactions {transactions}): {outcome:?}");
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_faults_lose_nothing_and_send_nothing_under_two_ids() {
    let o = run_under_faults(false).await;
    assert_eq!(o.lost, 0, "{o:?}");
    assert_eq!(o.logical_duplicates, 0, "{o:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_faults_with_transactions_deliver_every_command_exactly_once() {
    let o = run_under_faults(true).await;
    assert_eq!(o.lost, 0, "{o:?}");
    assert_eq!(o.logical_duplicates, 0, "{o:?}");
    // Every command read twice is accounted for by a transaction that aborted under the
    // faults; on Kafka, read_committed readers never see those records.
    assert!(o.same_id_duplicates as u64 <= o.aborted_records, "{o:?}");
}
