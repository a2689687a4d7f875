//! `exit`: the journey ends with a named outcome.

use super::Flow;

pub(super) fn run(outcome: &str) -> Flow {
    Flow::End(if outcome.is_empty() {
        "exit".into()
    } else {
        format!("exit:{outcome}")
    })
}
