//! A real Prometheus scrapes a real `switchboard run --generate`: every query of the Grafana
//! dashboard and every alert expression (without its threshold) returns data, so none of them
//! names a metric or a label that does not exist.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard_test_support::{find_binary, free_port};

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Kills the child when the test ends, passing or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every Prometheus query of the dashboard, with Grafana's interval variables filled in.
fn dashboard_queries() -> Vec<(String, String)> {
    let path = repo().join("deploy/grafana/dashboards/switchboard.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let expr = expr
                .replace("$__rate_interval", "30s")
                .replace("$__range", "2m");
            queries.push((panel["title"].as_str().unwrap().to_owned(), expr));
        }
    }
    queries
}

/// Every alert expression, split at `and`/`or`/`unless` and stripped of its final comparison
/// with a number: what the alert looks at, whether or not it fires.
fn alert_queries() -> Vec<(String, String)> {
    let path = repo().join("deploy/prometheus/alerts.yml");
    let rules: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let comparison = |s: &str| -> String {
        let s = s.trim();
        for op in [">=", "<=", "==", "!=", ">", "<"] {
            if let Some((left, right)) = s.rsplit_once(op)
                && right.trim().parse::<f64>().is_ok()
            {
                return left.trim().to_owned();
            }
        }
        s.to_owned()
    };
    let mut queries = Vec::new();
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let name = rule["alert"].as_str().unwrap();
            let expr = rule["expr"].as_str().unwrap().replace('\n', " ");
            let mut rest = expr.as_str();
            loop {
                let split = [" and ", " or ", " unless "]
                    .iter()
                    .filter_map(|op| rest.find(op).map(|i| (i, op.len())))
                    .min();
                match split {
                    Some((i, len)) => {
                        queries.push((name.to_owned(), comparison(&rest[..i])));
                        rest = &rest[i + len..];
                    }
                    None => {
                        queries.push((name.to_owned(), comparison(rest)));
                        break;
                    }
                }
            }
        }
    }
    queries
}

async fn query(client: &reqwest::Client, prometheus: &str, expr: &str) -> Vec<Value> {
    let body: Value = client
        .get(format!("{prometheus}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "success", "{expr}: {body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn write_config(dir: &Path, admin: u16) -> PathBuf {
    let rules = repo().join("deploy/prometheus/alerts.yml");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files: [{rules:?}]\n\
         scrape_configs:\n  - job_name: switchboard\n    static_configs:\n      \
         - targets: ['127.0.0.1:{admin}']\n"
    );
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, config).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_query_and_alert_expression_returns_data() {
    let dashboard = dashboard_queries();
    let alerts = alert_queries();
    assert!(dashboard.len() >= 20, "{dashboard:?}");
    assert!(alerts.len() >= 8, "{alerts:?}");

    let admin = free_port();
    let _switchboard = Killed(
        Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args([
                "--admin-listen",
                &format!("127.0.0.1:{admin}"),
                "run",
                "--generate",
                "400",
                "--malformed-every",
                "200",
                "--duration",
                "120",
            ])
            .current_dir(repo())
            .env_remove("SWITCHBOARD_CONFIG")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start switchboard run"),
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _prometheus = Killed(
        Command::new(find_binary("prometheus"))
            .arg(format!(
                "--config.file={}",
                write_config(dir.path(), admin).display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let prometheus = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    // Wait until the run has been scraped for a while: rates need several samples, and the
    // generated traffic must have reached the engine and its journeys.
    let start = Instant::now();
    loop {
        let ready = client
            .get(format!("{prometheus}/api/v1/query"))
            .query(&[("query", "count_over_time(switchboard_build_info[1m])")])
            .send()
            .await;
        if let Ok(r) = ready
            && let Ok(v) = r.json::<Value>().await
            && v["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .is_some_and(|n| n >= 25.0)
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "Prometheus did not scrape switchboard 25 times within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let mut empty = Vec::new();
    for (title, expr) in dashboard.iter().chain(&alerts) {
        let result = query(&client, &prometheus, expr).await;
        if result.is_empty() {
            empty.push(format!("{title}: {expr}"));
        }
    }
    assert!(
        empty.is_empty(),
        "queries that return nothing during a generated run:\n{}",
        empty.join("\n")
    );

    // The rules themselves loaded into Prometheus and evaluate without error.
    let rules: Value = client
        .get(format!("{prometheus}/api/v1/rules"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let loaded: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect();
    assert_eq!(loaded.len(), alerts_count(), "{rules}");
    for rule in loaded {
        assert_eq!(rule["health"], "ok", "{rule}");
    }
}

fn alerts_count() -> usize {
    std::fs::read_to_string(repo().join("deploy/prometheus/alerts.yml"))
        .unwrap()
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count()
}
