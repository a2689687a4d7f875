//! The artefacts in deploy/ are tested, not decorative: the alert rules load, their unit
//! tests pass under promtool, and every metric they name is one Switchboard exports.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn deploy() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy"))
}

fn promtool(args: &[&str]) -> std::process::Output {
    Command::new("promtool")
        .args(args)
        .current_dir(deploy().join("prometheus"))
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool ({e}): run scripts/setup.sh to install the prometheus package")
        })
}

#[test]
fn alert_rules_load_and_pass_their_unit_tests() {
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ] {
        let out = promtool(&args);
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_metric_an_alert_names_is_exported() {
    let rules = std::fs::read_to_string(deploy().join("prometheus/alerts.yml")).unwrap();
    // What a Switchboard process registers, every crate's metrics together.
    let registry = prometheus::Registry::new();
    let metrics = switchboard_services::Metrics::register(&registry).unwrap();
    // Vectors show in a gather once they have a series.
    metrics
        .kafka
        .consumer_lag
        .with_label_values(&["engine", "t", "0"]);
    metrics
        .kafka
        .partitions_owned
        .with_label_values(&["engine"]);
    metrics.kafka.batch_seconds.with_label_values(&["engine"]);
    metrics.kafka.batch_records.with_label_values(&["engine"]);
    metrics.kafka.dead_letters.with_label_values(&["empty"]);
    metrics.transitions.with_label_values(&["j", "entered"]);
    metrics.suppressions.with_label_values(&["cap"]);
    metrics.commands.with_label_values(&["email"]);
    metrics.timers_pending.with_label_values(&["0"]);
    metrics.latency.with_label_values(&["email"]);
    metrics.events_consumed.with_label_values(&["t"]);
    metrics.identities_resolved.with_label_values(&["email"]);
    metrics
        .identifiers_refused
        .with_label_values(&["email", "r"]);
    metrics.conflicts.with_label_values(&["email", "r"]);
    let exported: BTreeSet<String> = registry
        .gather()
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    let names: BTreeSet<String> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("switchboard_"))
        .map(|w| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .fold(w, |w, s| w.trim_end_matches(s))
                .to_owned()
        })
        .collect();
    assert!(names.len() >= 6, "{names:?}");
    for name in &names {
        assert!(
            exported.contains(name),
            "{name} is not a metric Switchboard exports: {exported:?}"
        );
    }
}

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn yaml_documents(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Loads a config file the way `switchboard -c` does, so a key the services would refuse
/// fails here.
fn config_loads(path: &std::path::Path) -> switchboard_config::Config {
    switchboard_config::load(Some(path), &switchboard_config::Overrides::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn compose_stack_has_every_service_and_its_files_exist() {
    let compose = &yaml_documents(&repo().join("docker-compose.yml"))[0];
    let services = compose["services"].as_object().unwrap();
    for name in [
        "kafka",
        "redis",
        "topics",
        "stitcher",
        "engine",
        "prometheus",
        "grafana",
    ] {
        assert!(services.contains_key(name), "service {name} is missing");
    }
    assert!(
        compose["services"]["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
            .as_str()
            .unwrap()
            .contains("controller"),
        "Kafka runs in KRaft mode"
    );
    // The stack runs the major version of Kafka the tests and benchmarks run on.
    let image = compose["services"]["kafka"]["image"].as_str().unwrap();
    let major = |v: &str| v.split('.').next().unwrap_or_default().to_owned();
    assert_eq!(
        image.strip_prefix("apache/kafka:").map(major),
        Some(major(switchboard_test_support::kafka_version())),
        "docker-compose's {image} against the test broker's Kafka {}",
        switchboard_test_support::kafka_version()
    );
    let redis = compose["services"]["redis"]["command"].to_string();
    assert!(
        redis.contains("--appendonly") && redis.contains("yes"),
        "{redis}"
    );
    // Every bind mount names a file or folder of this repository.
    for (name, service) in services {
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let volume = volume.as_str().unwrap();
            if let Some(host) = volume.strip_prefix("./") {
                let host = host.split(':').next().unwrap();
                assert!(
                    repo().join(host).exists(),
                    "{name} mounts ./{host}, which does not exist"
                );
            }
        }
    }
    assert!(repo().join("Dockerfile").is_file());
    let config = config_loads(&repo().join("deploy/compose/switchboard.toml"));
    assert_eq!(config.kafka.bootstrap_servers, "kafka:29092");
    config_loads(&repo().join("deploy/compose/host.toml"));

    // Where Docker Compose is installed, it validates the file too.
    let compose_installed = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if compose_installed {
        let out = Command::new("docker")
            .args(["compose", "config", "--quiet"])
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker compose config: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("docker compose is not installed: structural checks only");
    }
}

#[test]
fn grafana_provisioning_points_at_the_dashboard() {
    let provider =
        &yaml_documents(&repo().join("deploy/grafana/provisioning/dashboards/switchboard.yml"))[0];
    assert_eq!(
        provider["providers"][0]["options"]["path"],
        "/var/lib/grafana/dashboards"
    );
    let compose = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    assert!(compose.contains("./deploy/grafana/dashboards:/var/lib/grafana/dashboards"));
    let datasource =
        &yaml_documents(&repo().join("deploy/grafana/provisioning/datasources/prometheus.yml"))[0];
    assert_eq!(datasource["datasources"][0]["type"], "prometheus");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/grafana/dashboards/switchboard.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(dashboard["uid"], "switchboard");
    let titles: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["title"].as_str())
        .collect();
    for wanted in ["latency", "lag", "Dead letters", "Suppressions", "funnel"] {
        assert!(
            titles.iter().any(|t| t.contains(wanted)),
            "no panel about {wanted}: {titles:?}"
        );
    }
}

#[test]
fn kubernetes_deployments_probe_drain_and_mount_what_kustomize_generates() {
    let k8s = repo().join("deploy/k8s");
    let kustomization = &yaml_documents(&k8s.join("kustomization.yaml"))[0];
    let mut objects = Vec::new();
    for resource in kustomization["resources"].as_array().unwrap() {
        objects.extend(yaml_documents(&k8s.join(resource.as_str().unwrap())));
    }
    let mut generated = BTreeSet::new();
    for generator in kustomization["configMapGenerator"].as_array().unwrap() {
        generated.insert(generator["name"].as_str().unwrap().to_owned());
        for file in generator["files"].as_array().unwrap() {
            let file = k8s.join(file.as_str().unwrap());
            assert!(file.is_file(), "{} does not exist", file.display());
        }
    }
    config_loads(&k8s.join("switchboard.toml"));
    let drain = switchboard_services::services::DRAIN.as_secs();

    let deployments: Vec<&serde_json::Value> = objects
        .iter()
        .filter(|o| o["kind"] == "Deployment")
        .collect();
    assert_eq!(deployments.len(), 2);
    for deployment in deployments {
        let name = deployment["metadata"]["name"].as_str().unwrap();
        let pod = &deployment["spec"]["template"]["spec"];
        let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
        assert!(grace > drain, "{name}: grace {grace} s <= drain {drain} s");
        let container = &pod["containers"][0];
        assert_eq!(
            container["livenessProbe"]["httpGet"]["path"], "/healthz",
            "{name}"
        );
        assert_eq!(
            container["readinessProbe"]["httpGet"]["path"], "/readyz",
            "{name}"
        );
        assert!(
            container["resources"]["requests"]["cpu"].is_string(),
            "{name}"
        );
        assert!(
            container["resources"]["limits"]["memory"].is_string(),
            "{name}"
        );
        let args: Vec<&str> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        assert!(
            args.contains(&"stitcher") || args.contains(&"engine"),
            "{name}: {args:?}"
        );
        for volume in pod["volumes"].as_array().unwrap() {
            let map = volume["configMap"]["name"].as_str().unwrap();
            assert!(
                generated.contains(map),
                "{name} mounts {map}, which is not generated"
            );
        }
        // The service selects these pods, and the ServiceMonitor the service.
        let labels = &deployment["spec"]["template"]["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/name"], "switchboard");
    }
    let monitor = objects
        .iter()
        .find(|o| o["kind"] == "ServiceMonitor")
        .unwrap();
    let service = objects.iter().find(|o| o["kind"] == "Service").unwrap();
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"],
        service["metadata"]["labels"]["app.kubernetes.io/name"]
    );
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );
}
