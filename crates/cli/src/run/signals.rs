//! When a process stops: SIGINT, SIGTERM, or the end of `--duration`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::info;

/// Cancels `shutdown` on SIGINT, SIGTERM or `duration` seconds after `started` is
/// cancelled (the services run: an embedded broker slow to start does not eat into the
/// run); ends with `shutdown` whoever cancels it.
pub async fn stop_on_signal(
    shutdown: CancellationToken,
    started: CancellationToken,
    duration: Option<u64>,
) {
    let term = async {
        #[cfg(unix)]
        {
            if let Ok(mut s) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                s.recv().await;
                return;
            }
        }
        std::future::pending::<()>().await
    };
    let timer = async {
        match duration {
            Some(secs) => {
                started.cancelled().await;
                tokio::time::sleep(Duration::from_secs(secs)).await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = tokio::signal::ctrl_c() => info!("SIGINT: draining"),
        _ = term => info!("SIGTERM: draining"),
        _ = timer => info!("duration reached: draining"),
    }
    shutdown.cancel();
}
