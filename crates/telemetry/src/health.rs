//! Liveness and readiness, as reported by the components of a process.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Shared readiness: each component (`kafka`, `redis`, `journeys`, ...) reports whether it
/// can do its work; the process is ready when every reported component is, and at least
/// one has reported.
#[derive(Debug, Clone, Default)]
pub struct Health {
    components: Arc<Mutex<BTreeMap<String, Result<(), String>>>>,
}

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_ready(&self, component: &str) {
        self.set(component, Ok(()));
    }

    /// Marks `component` not ready, with the reason `/readyz` shows.
    pub fn set_not_ready(&self, component: &str, reason: impl Into<String>) {
        self.set(component, Err(reason.into()));
    }

    fn set(&self, component: &str, state: Result<(), String>) {
        if let Ok(mut c) = self.components.lock() {
            c.insert(component.to_owned(), state);
        }
    }

    /// `Ok` when ready; otherwise one line per component that is not.
    pub fn readiness(&self) -> Result<(), String> {
        let Ok(c) = self.components.lock() else {
            return Err("health state poisoned".into());
        };
        if c.is_empty() {
            return Err("starting: no component has reported yet".into());
        }
        let waiting: Vec<String> = c
            .iter()
            .filter_map(|(name, s)| s.as_ref().err().map(|r| format!("{name}: {r}")))
            .collect();
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(waiting.join("\n"))
        }
    }
}
