//! The journeys and policies the engine runs, reloaded when their files change.
//!
//! A reload that fails validation keeps the running catalog, logs every error (file, line,
//! state) and counts a reload failure.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use switchboard_journey::{JourneySet, Policies, load_dir};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::Metrics;
use crate::metrics::CatalogCounters;

/// What the engine applies.
#[derive(Debug)]
pub struct Catalog {
    pub journeys: JourneySet,
    pub policies: Policies,
    /// The metric handles of its journeys and channels, resolved at its first batch.
    counters: OnceLock<CatalogCounters>,
}

impl Catalog {
    pub fn new(journeys: JourneySet, policies: Policies) -> Self {
        Self {
            journeys,
            policies,
            counters: OnceLock::new(),
        }
    }

    /// The metric handles its journeys and channels count with.
    pub fn counters(&self, metrics: &Metrics) -> &CatalogCounters {
        self.counters.get_or_init(|| {
            CatalogCounters::new(metrics, &self.journeys.newest(), &self.policies.channels)
        })
    }
}

/// Where the catalog comes from.
#[derive(Debug, Clone)]
pub struct CatalogSource {
    pub journeys_dir: PathBuf,
    /// A policies file; `None` uses `default_policies`.
    pub policies_file: Option<PathBuf>,
    pub default_policies: String,
}

impl CatalogSource {
    /// Loads and validates everything, or says what is wrong.
    pub fn load(&self) -> Result<Catalog, String> {
        let policies = match &self.policies_file {
            Some(p) => Policies::from_path(p)?,
            None => Policies::parse("built-in policies", &self.default_policies)?,
        };
        let journeys = load_dir(&self.journeys_dir, &policies.channels).map_err(|errors| {
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        })?;
        Ok(Catalog::new(JourneySet::new(journeys), policies))
    }

    /// Modification times and sizes of every file the catalog reads.
    fn fingerprint(&self) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.journeys_dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.extend(self.policies_file.iter().cloned());
        files.sort();
        files
            .into_iter()
            .map(|p| {
                let meta = std::fs::metadata(&p).ok();
                let stamp = meta.as_ref().and_then(|m| m.modified().ok());
                let len = meta.map_or(0, |m| m.len());
                (p, stamp, len)
            })
            .collect()
    }
}

/// The catalog as it is now and as it will be: a receiver of each valid new catalog, and the
/// task that watches the files every `every` until `shutdown` and publishes them. The caller
/// runs the task where it tracks its others.
pub fn watch_catalog(
    source: CatalogSource,
    initial: Catalog,
    every: Duration,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> (
    watch::Receiver<Arc<Catalog>>,
    impl Future<Output = ()> + Send + 'static,
) {
    metrics
        .journeys_loaded
        .set(i64::try_from(initial.journeys.len()).unwrap_or(0));
    let (tx, rx) = watch::channel(Arc::new(initial));
    // Taken now, not when the task first runs: a change made right after start is seen.
    let mut seen = source.fingerprint();
    let watching = async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let now = source.fingerprint();
            if now == seen {
                continue;
            }
            seen = now;
            match source.load() {
                Ok(catalog) => {
                    info!(journeys = catalog.journeys.len(), dir = %source.journeys_dir.display(), "journeys reloaded");
                    metrics
                        .journeys_loaded
                        .set(i64::try_from(catalog.journeys.len()).unwrap_or(0));
                    let _ = tx.send(Arc::new(catalog));
                }
                Err(e) => {
                    metrics.reload_failures.inc();
                    error!(error = %e, "journey reload failed; the running journeys stay");
                }
            }
        }
    };
    (rx, watching)
}
