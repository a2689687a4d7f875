//! The admin endpoints, over real HTTP.

use prometheus::{IntCounter, Opts};
use switchboard_telemetry::*;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn metrics_health_and_readiness_are_served_until_shutdown() {
    let registry = new_registry("1.2.3", "abc123").unwrap();
    let events =
        IntCounter::with_opts(Opts::new("switchboard_test_events_total", "events")).unwrap();
    registry.register(Box::new(events.clone())).unwrap();
    events.inc_by(7);
    let health = Health::new();
    let shutdown = CancellationToken::new();
    let server = serve("127.0.0.1:0", registry, health.clone(), shutdown.clone())
        .await
        .unwrap();
    let base = format!("http://{}", server.addr);
    let get = |path: &str| {
        let url = format!("{base}{path}");
        async move {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };

    let (status, body) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains(r#"switchboard_build_info{commit="abc123",version="1.2.3"} 1"#),
        "{body}"
    );
    assert!(body.contains("switchboard_test_events_total 7"), "{body}");

    assert_eq!(get("/healthz").await.0, 200);
    let (status, body) = get("/readyz").await;
    assert_eq!((status, body.contains("starting")), (503, true));

    health.set_ready("kafka");
    health.set_not_ready("redis", "connection refused");
    let (status, body) = get("/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("redis: connection refused"), "{body}");

    health.set_ready("redis");
    assert_eq!(get("/readyz").await, (200, "ready\n".to_owned()));

    shutdown.cancel();
    server.task.await.unwrap();
    assert!(
        reqwest::get(format!("{base}/healthz")).await.is_err(),
        "the server stopped"
    );
}

#[test]
fn a_bad_log_filter_is_a_clear_error() {
    let config = switchboard_config::LogConfig {
        level: "info,=[".into(),
        ..Default::default()
    };
    // RUST_LOG takes precedence over the configured level, so the check needs it unset.
    if std::env::var_os("RUST_LOG").is_none() {
        let e = init_logs(&config).unwrap_err();
        assert!(e.to_string().contains("info,=["), "{e}");
    }
}
