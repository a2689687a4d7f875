//! End-to-end suites live in the `[[test]]` targets of this package; see `harness.rs`.
