//! Retrying what must eventually succeed (a store or broker being away), until the
//! partition is stopped.

use std::future::Future;
use std::time::Duration;

use prometheus::IntCounter;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::stopped::Stopped;

/// Runs `f` until it succeeds, backing off from 50 ms to 5 s, counting each failure in
/// `errors`; gives up only when `stop` is cancelled.
pub async fn until_ok<T, E: std::fmt::Display, F, Fut>(
    what: &str,
    stop: &CancellationToken,
    errors: IntCounter,
    mut f: F,
) -> Result<T, Stopped>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut delay = Duration::from_millis(50);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                errors.inc();
                warn!(operation = what, error = %e, retry_in_ms = delay.as_millis() as u64, "retrying");
                tokio::select! {
                    _ = stop.cancelled() => return Err(Stopped::Shutdown),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
