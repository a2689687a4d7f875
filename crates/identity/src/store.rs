//! The identity graph's storage port: the few single-profile (single hash slot) operations
//! the union-find in [`crate::stitch`] is built from. The Redis adapter runs each as one
//! command or one script over one hash slot; [`crate::MemoryIdentityStore`] runs them under a
//! lock. Both pass the same conformance suite.

use std::collections::BTreeSet;
use std::future::Future;

use switchboard_codec::Identifier;

use crate::ProfileId;

/// A profile node of the graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    /// Set once the profile was merged into another: it is then an alias.
    pub parent: Option<ProfileId>,
    /// Bumped by every change; a merge commits only if the loser did not change meanwhile.
    pub version: u64,
    /// Merges this profile (with everything merged into it) took part in.
    pub merges: u32,
    /// The identifiers of the group while this is a root.
    pub identifiers: BTreeSet<Identifier>,
    /// Profiles merged into this one, oldest merge first.
    pub merged: Vec<ProfileId>,
}

/// How many identifiers a root may hold, from the rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Kind → most values per profile.
    pub per_kind: Vec<(String, u32)>,
    pub total: u32,
    pub merges: u32,
}

/// Adding identifiers (and, for a merge, the loser's merges) to a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub identifiers: Vec<Identifier>,
    /// `loser.merges + 1` for a merge; 0 for attaching identifiers.
    pub merges: u32,
}

/// Why a root refused a reservation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the profile already holds its limit of kind `{0}`")]
    KindLimit(String),
    #[error("the profile already holds its limit of identifiers")]
    TooManyIdentifiers,
    #[error("the profile already took part in its limit of merges")]
    TooManyMerges,
}

impl Refusal {
    /// A short label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::KindLimit(_) => "kind_limit",
            Self::TooManyIdentifiers => "identifier_cap",
            Self::TooManyMerges => "merge_cap",
        }
    }
}

/// The answer of [`IdentityStore::reserve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// Accepted; these identifiers were new to the root (to release on a rollback).
    Added(Vec<Identifier>),
    /// The profile is no longer a root: it was merged into this one.
    Moved(ProfileId),
    Refused(Refusal),
}

/// The answer of [`IdentityStore::commit_merge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    Done,
    /// Another stitcher merged the same loser into the same survivor first: also done.
    AlreadyDone,
    /// The loser changed or moved since it was read: retry from the start.
    Changed,
}

/// A store failure (Redis down, a reply of the wrong shape): retry later, never dead-letter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("identity store: {0}")]
pub struct StoreError(pub String);

/// The graph's storage. Every method touches one profile or one identifier, but for
/// [`IdentityStore::lookup`] and [`IdentityStore::parents`], which read many at once.
pub trait IdentityStore: Send + Sync {
    /// The profile each identifier points to, if any.
    fn lookup(
        &self,
        ids: &[Identifier],
    ) -> impl Future<Output = Result<Vec<Option<ProfileId>>, StoreError>> + Send;

    /// A profile's node, if it has one.
    fn node(&self, id: &ProfileId)
    -> impl Future<Output = Result<Option<Node>, StoreError>> + Send;

    /// A profile's parent (`None` for a root or an unknown profile): what finding a root
    /// needs, without the rest of the node.
    fn parent(
        &self,
        id: &ProfileId,
    ) -> impl Future<Output = Result<Option<ProfileId>, StoreError>> + Send {
        async move { Ok(self.node(id).await?.and_then(|n| n.parent)) }
    }

    /// The parents of `ids`, in order: [`IdentityStore::parent`] for many profiles at once.
    fn parents(
        &self,
        ids: &[ProfileId],
    ) -> impl Future<Output = Result<Vec<Option<ProfileId>>, StoreError>> + Send {
        async move {
            let mut parents = Vec::with_capacity(ids.len());
            for id in ids {
                parents.push(self.parent(id).await?);
            }
            Ok(parents)
        }
    }

    /// Points `identifier` at `profile` unless it points somewhere already: `None` when
    /// claimed, else the current owner.
    fn claim(
        &self,
        identifier: &Identifier,
        profile: &ProfileId,
    ) -> impl Future<Output = Result<Option<ProfileId>, StoreError>> + Send;

    /// [`IdentityStore::claim`] of each identifier for `profile`, in order (in one round
    /// trip where the store can).
    fn claim_all(
        &self,
        identifiers: &[Identifier],
        profile: &ProfileId,
    ) -> impl Future<Output = Result<Vec<Option<ProfileId>>, StoreError>> + Send {
        async move {
            let mut owners = Vec::with_capacity(identifiers.len());
            for identifier in identifiers {
                owners.push(self.claim(identifier, profile).await?);
            }
            Ok(owners)
        }
    }

    /// Path compression: repoints `identifier` from `from` to `to`, if it still points at
    /// `from`.
    fn repoint(
        &self,
        identifier: &Identifier,
        from: &ProfileId,
        to: &ProfileId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Path compression: sets `profile`'s parent from `from` to `to`, if it is still `from`.
    fn reparent(
        &self,
        profile: &ProfileId,
        from: &ProfileId,
        to: &ProfileId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Atomically, on `root`: if it is still a root and the reservation fits the limits, adds
    /// the identifiers and merges to it.
    fn reserve(
        &self,
        root: &ProfileId,
        reservation: &Reservation,
        limits: &Limits,
    ) -> impl Future<Output = Result<Reserved, StoreError>> + Send;

    /// Gives back identifiers reserved on `root` by a merge that did not commit.
    fn release(
        &self,
        root: &ProfileId,
        identifiers: &[Identifier],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Atomically, on `loser`: if its version is still `version` and it is a root, makes it
    /// an alias of `survivor`.
    fn commit_merge(
        &self,
        loser: &ProfileId,
        survivor: &ProfileId,
        version: u64,
    ) -> impl Future<Output = Result<Committed, StoreError>> + Send;

    /// Appends `loser` to the merge history of `survivor`.
    fn record_merge(
        &self,
        survivor: &ProfileId,
        loser: &ProfileId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// How many erasures ([`IdentityStore::erase`]) the graph has seen: a stitcher that
    /// remembers resolved identifiers forgets them all when this changes.
    fn erasures(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Data protection: deletes `profile`'s node, identifier set and merge history, and the
    /// pointers of `identifiers`, whatever they point at, and counts an erasure.
    fn erase(
        &self,
        profile: &ProfileId,
        identifiers: &[Identifier],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
