//! A warning that can repeat many times a second (an identifier left unlinked on a shared
//! device, say), logged once and then as a count per interval, so it cannot drown the logs.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts occurrences of one warning by a low-cardinality key (never a customer identifier).
#[derive(Debug)]
pub struct Repeated {
    every: Duration,
    state: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    /// When the current window began: its first occurrence was logged then.
    since: Option<Instant>,
    counts: BTreeMap<String, u64>,
}

/// What to log for an occurrence.
#[derive(Debug, PartialEq, Eq)]
pub enum Log {
    /// The first in a window: log it whole.
    First,
    /// The first after a window: log how many came in it after its first, by key.
    Summary {
        secs: u64,
        counts: Vec<(String, u64)>,
    },
    /// Counted, not logged.
    Counted,
}

impl Repeated {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            state: Mutex::new(Window::default()),
        }
    }

    /// Notes an occurrence of `key` at `now` and says what to log.
    pub fn note(&self, key: &str, now: Instant) -> Log {
        let Ok(mut w) = self.state.lock() else {
            return Log::First;
        };
        match w.since {
            Some(since) if now.duration_since(since) < self.every => {
                *w.counts.entry(key.to_owned()).or_default() += 1;
                Log::Counted
            }
            Some(since) if !w.counts.is_empty() => {
                let counts = std::mem::take(&mut w.counts).into_iter().collect();
                w.since = Some(now);
                Log::Summary {
                    secs: now.duration_since(since).as_secs(),
                    counts,
                }
            }
            _ => {
                w.since = Some(now);
                Log::First
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_logged_once_then_summarised_once_per_interval() {
        let r = Repeated::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(r.note("customer_id/conflict", t0), Log::First);
        for n in 1..100 {
            let at = t0 + Duration::from_millis(n * 50);
            assert_eq!(r.note("customer_id/conflict", at), Log::Counted);
        }
        assert_eq!(
            r.note("device_id/cap", t0 + Duration::from_secs(9)),
            Log::Counted
        );
        assert_eq!(
            r.note("customer_id/conflict", t0 + Duration::from_secs(12)),
            Log::Summary {
                secs: 12,
                counts: vec![
                    ("customer_id/conflict".into(), 99),
                    ("device_id/cap".into(), 1)
                ]
            }
        );
        assert_eq!(
            r.note("customer_id/conflict", t0 + Duration::from_secs(13)),
            Log::Counted,
            "a new window began with the summary"
        );
        // A quiet window: the next occurrence is logged whole again.
        let quiet = Repeated::new(Duration::from_secs(10));
        assert_eq!(quiet.note("k", t0), Log::First);
        assert_eq!(quiet.note("k", t0 + Duration::from_secs(60)), Log::First);
    }
}
