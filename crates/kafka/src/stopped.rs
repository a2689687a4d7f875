//! Why a partition's worker gave up.

/// Why a partition's worker gave up a batch. Everything else is handled where it happens: a
/// store, broker or registry away is retried with backoff ([`crate::until_ok`]), bad input is
/// dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The partition is revoked or the service is stopping: the batch is replayed by the
    /// next owner.
    Shutdown,
    /// A newer owner of the partition wrote its state: this member is a zombie, and commits
    /// nothing more.
    Fenced,
}
