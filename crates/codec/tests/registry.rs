//! The Schema Registry client against an HTTP server speaking the registry's REST API.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use switchboard_codec::*;

#[derive(Clone, Default)]
struct Registry {
    gets: Arc<AtomicUsize>,
}

async fn schema_by_id(State(r): State<Registry>, Path(id): Path<u32>) -> (StatusCode, String) {
    r.gets.fetch_add(1, Ordering::SeqCst);
    let local = LocalSchemas::embedded().unwrap();
    if id == 101 {
        let schema = local
            .newest(ChannelEvent::NAME)
            .unwrap()
            .schema
            .canonical_form();
        (
            StatusCode::OK,
            serde_json::json!({ "schema": schema }).to_string(),
        )
    } else {
        (
            StatusCode::NOT_FOUND,
            r#"{"error_code":40403,"message":"Schema not found"}"#.into(),
        )
    }
}

async fn register(Path(subject): Path<String>) -> String {
    let id = match subject.as_str() {
        "io.switchboard.ChannelEvent" => 101,
        "io.switchboard.CustomerEvent" => 102,
        "io.switchboard.SendCommand" => 103,
        _ => 104,
    };
    serde_json::json!({ "id": id }).to_string()
}

#[tokio::test]
async fn registry_ids_are_fetched_once_and_unknown_ids_are_typed() {
    let state = Registry::default();
    let app = Router::new()
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/subjects/{subject}/versions", post(register))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let registry = RegistrySchemas::new(&url, None, LocalSchemas::embedded().unwrap()).unwrap();
    let codec = Codec::new(registry).await.unwrap();

    let event = ChannelEvent {
        event_id: "e".into(),
        event_type: "app.installed".into(),
        channel: "app".into(),
        occurred_at: 1,
        identifiers: vec![Identifier::new("device_id", "d-1")],
        attributes: Default::default(),
        locale: None,
        timezone: None,
    };
    let bytes = codec.encode(&event, Framing::Confluent).unwrap();
    assert_eq!(
        &bytes[..5],
        &[0, 0, 0, 0, 101],
        "written with the id the registry gave"
    );

    // A consumer that has registered nothing fetches id 101 once, then serves it from cache.
    let consumer = RegistrySchemas::new(&url, None, LocalSchemas::embedded().unwrap()).unwrap();
    for _ in 0..5 {
        let writer = consumer.resolve(SchemaRef::Id(101)).await.unwrap();
        assert_eq!(writer.name, ChannelEvent::NAME);
    }
    assert_eq!(state.gets.load(Ordering::SeqCst), 1);
    let back: ChannelEvent = codec.decode(&bytes).await.unwrap();
    assert_eq!(back, event);

    let fresh = Codec::new(consumer).await.unwrap();
    let err = fresh
        .decode::<ChannelEvent>(&[0, 0, 0, 0, 77, 0])
        .await
        .unwrap_err();
    assert!(matches!(err, CodecError::UnknownSchemaId(77)), "{err}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn an_unreachable_registry_is_a_retryable_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let registry = RegistrySchemas::new(&url, None, LocalSchemas::embedded().unwrap()).unwrap();
    let err = registry.resolve(SchemaRef::Id(1)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.reason(), "registry_unavailable");
}
