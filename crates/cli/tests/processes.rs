//! `switchboard stitcher` and `switchboard engine` as separate processes, configured by a
//! file, against tansu and redis-server; a JSON channel next to the Avro ones; a Redis
//! restart under a running process.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use std::collections::BTreeSet;

use support::Running;
use switchboard_codec::{ChannelEvent, Identifier};
use switchboard_test_support::RedisServer;

fn journeys() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/journeys"))
}

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn service(role: &str, config: &std::path::Path, port: u16) -> Service {
    let bin = env!("CARGO_BIN_EXE_switchboard");
    Service(
        Command::new(bin)
            .args([
                "-c",
                &config.display().to_string(),
                "--admin-listen",
                &format!("127.0.0.1:{port}"),
                role,
            ])
            .args([
                "--journeys",
                &journeys().display().to_string(),
                "--policies",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/policies.yaml"),
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start switchboard"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stitcher_and_engine_processes_turn_json_and_avro_events_into_commands() {
    let r = Running::parts(&journeys()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = r.config_file(dir.path(), &["pos"]);
    let _stitcher = service("stitcher", &file, switchboard_test_support::free_port());
    let _engine = service("engine", &file, switchboard_test_support::free_port());
    let json = format!(
        r#"{{"event_id":"j1","type":"order.completed","channel":"pos","occurred_at":{},"identifiers":[{{"kind":"customer_id","value":"J1"}},{{"kind":"email","value":"j1@example.com"}}],"attributes":{{"total":12.5}}}}"#,
        switchboard_pipeline::now_ms()
    );
    r.produce_raw("pos", json.as_bytes()).await;
    let commands = r
        .commands_until(Duration::from_secs(60), |c| !c.is_empty())
        .await;
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert_eq!(
        (commands[0].template.as_str(), commands[0].address.as_str()),
        ("store-app-offer", "j1@example.com")
    );
}

async fn readiness(port: u16) -> (u16, String) {
    match reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

async fn wait_readiness(port: u16, ready: bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = readiness(port).await;
        if (status == 200) == ready && status != 0 {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/readyz stayed {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn installs(batch: &str, customers: std::ops::Range<u32>) -> Vec<ChannelEvent> {
    customers
        .map(|n| ChannelEvent {
            event_id: format!("{batch}-{n}"),
            event_type: "app.installed".into(),
            channel: "app".into(),
            occurred_at: switchboard_pipeline::now_ms(),
            identifiers: vec![
                Identifier::new("device_id", format!("dev-r{n}")),
                Identifier::new("push_token", format!("tok-r{n}")),
            ],
            attributes: Default::default(),
            locale: None,
            timezone: None,
        })
        .collect()
}

/// Redis (AOF) is killed mid-stream and restarted: `/readyz` turns not ready while it is
/// away, the process retries and resumes, events produced meanwhile are served, and nothing
/// written before the crash is lost: customers welcomed before are not welcomed again
/// (the welcome journey never re-enters).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_restart_loses_no_state_and_readiness_follows_redis() {
    let mut r = Running::parts_on(&journeys(), RedisServer::start_with_aof()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = r.config_file(dir.path(), &[]);
    let port = switchboard_test_support::free_port();
    let _run = service("run", &file, port);
    wait_readiness(port, true).await;

    r.produce(&installs("before", 0..20)).await;
    let first = r
        .commands_until(Duration::from_secs(60), |c| c.len() >= 20)
        .await;
    assert_eq!(first.len(), 20);

    r.redis.kill();
    let why = wait_readiness(port, false).await;
    assert!(why.contains("redis"), "{why}");
    r.produce(&installs("during", 20..40)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    r.redis.restart();
    wait_readiness(port, true).await;

    r.produce(&installs("again", 0..20)).await;
    let all = r
        .commands_until(Duration::from_secs(60), |c| c.len() >= 40)
        .await;
    // Anything more would show up within a few seconds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all_after = r
        .commands_until(Duration::from_secs(5), |c| c.len() > 40)
        .await;
    let logical: BTreeSet<(&str, &str)> = all_after
        .iter()
        .map(|c| (c.address.as_str(), c.template.as_str()))
        .collect();
    let ids: BTreeSet<&str> = all_after.iter().map(|c| c.command_id.as_str()).collect();
    assert_eq!(all.len(), 40, "every customer welcomed: {all:?}");
    assert_eq!(logical.len(), 40, "one welcome per customer");
    assert_eq!(
        ids.len(),
        logical.len(),
        "no welcome under two ids (re-entry after lost state): {all_after:?}"
    );
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let errors: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("switchboard_store_errors_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(errors > 0.0, "the outage was retried and counted");
}
