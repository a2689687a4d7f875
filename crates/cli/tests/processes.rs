//! `switchboard stitcher` and `switchboard engine` as separate processes, configured by a
//! file, against tansu and redis-server; a JSON channel next to the Avro ones.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::Running;

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
    let t = &r.config.topics;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("switchboard.toml");
    std::fs::write(
        &file,
        format!(
            "[kafka]\nbootstrap_servers = \"{}\"\ngroup_prefix = \"{}\"\n\n[redis]\nurl = \"{}\"\nkey_prefix = \"{}\"\n\n[topics]\nchannels = {:?}\nevents_prefix = \"{}\"\ncommands_prefix = \"{}\"\ncustomer_events = \"{}\"\ntransitions = \"{}\"\ndead_letters = \"{}\"\njson_channels = [\"pos\"]\npartitions = 3\nreplication_factor = 1\n",
            r.config.kafka.bootstrap_servers, r.config.kafka.group_prefix, r.config.redis.url, r.config.redis.key_prefix,
            t.channels, t.events_prefix, t.commands_prefix, t.customer_events, t.transitions, t.dead_letters,
        ),
    )
    .unwrap();
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
