//! The admin HTTP server.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{Health, TelemetryError};

#[derive(Clone)]
struct AdminState {
    registry: Registry,
    health: Health,
}

/// A running admin server.
#[derive(Debug)]
pub struct AdminServer {
    pub addr: SocketAddr,
    pub task: JoinHandle<()>,
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until `shutdown` is cancelled.
pub async fn serve(
    addr: &str,
    registry: Registry,
    health: Health,
    shutdown: CancellationToken,
) -> Result<AdminServer, TelemetryError> {
    let listen_err = |e: std::io::Error| TelemetryError::Listen {
        addr: addr.to_owned(),
        reason: e.to_string(),
    };
    let listener = TcpListener::bind(addr).await.map_err(listen_err)?;
    let bound = listener.local_addr().map_err(listen_err)?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(AdminState { registry, health });
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "admin server stopped");
        }
    });
    tracing::info!(addr = %bound, "admin server listening (/metrics, /healthz, /readyz)");
    Ok(AdminServer { addr: bound, task })
}

async fn metrics(State(s): State<AdminState>) -> impl IntoResponse {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&s.registry.gather(), &mut body) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain".to_owned())],
            e.to_string().into_bytes(),
        ),
    }
}

async fn readyz(State(s): State<AdminState>) -> (StatusCode, String) {
    match s.health.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}
