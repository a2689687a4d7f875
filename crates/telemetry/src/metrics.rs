//! The process-wide Prometheus registry.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use crate::TelemetryError;

/// `switchboard_build_info{version, commit}`: always 1, for joins and version dashboards.
pub const BUILD_INFO: &str = "switchboard_build_info";

/// A registry holding the build info; each component registers its own metrics in it.
pub fn new_registry(version: &str, commit: &str) -> Result<Registry, TelemetryError> {
    let registry = Registry::new();
    let info = IntGaugeVec::new(
        Opts::new(BUILD_INFO, "Build of the running Switchboard: always 1."),
        &["version", "commit"],
    )?;
    info.with_label_values(&[version, commit]).set(1);
    registry.register(Box::new(info))?;
    Ok(registry)
}

/// Creates metrics and registers each in a registry, for a component's `register`.
#[derive(Debug, Clone, Copy)]
pub struct Registering<'a>(pub &'a Registry);

impl Registering<'_> {
    fn add<C: prometheus::core::Collector + Clone + 'static>(
        self,
        c: C,
    ) -> Result<C, prometheus::Error> {
        self.0.register(Box::new(c.clone()))?;
        Ok(c)
    }

    pub fn counter(self, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
        self.add(IntCounter::new(name, help)?)
    }

    pub fn counters(
        self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntCounterVec, prometheus::Error> {
        self.add(IntCounterVec::new(Opts::new(name, help), labels)?)
    }

    pub fn gauge(self, name: &str, help: &str) -> Result<IntGauge, prometheus::Error> {
        self.add(IntGauge::new(name, help)?)
    }

    pub fn gauges(
        self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntGaugeVec, prometheus::Error> {
        self.add(IntGaugeVec::new(Opts::new(name, help), labels)?)
    }

    pub fn histogram(
        self,
        name: &str,
        help: &str,
        buckets: &[f64],
    ) -> Result<Histogram, prometheus::Error> {
        self.add(Histogram::with_opts(
            HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        )?)
    }

    pub fn histograms(
        self,
        name: &str,
        help: &str,
        buckets: &[f64],
        labels: &[&str],
    ) -> Result<HistogramVec, prometheus::Error> {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        self.add(HistogramVec::new(opts, labels)?)
    }
}
