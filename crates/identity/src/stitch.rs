//! Stitching: resolving an event's identifiers into one profile on the union-find graph.
//!
//! Identifiers are taken strongest first. The first one that already points somewhere
//! decides the event's profile (after following parents to the root, compressing the path);
//! each further identifier either already belongs to that profile, belongs to another root
//! (the two are merged, the older profile surviving), or is new (it is attached). A merge or
//! attachment the limits refuse leaves that identifier unlinked: it is weaker than every
//! identifier already linked, so the lowest-priority identifier is the one dropped.
//!
//! Identifiers nobody holds yet are first reserved on the event's profile together and
//! claimed in one round trip (a new customer's identifiers cost one reservation, not one
//! each); when the limits refuse that, the walk above takes them one by one.
//!
//! Every step is a single-profile operation of [`IdentityStore`]; merges reserve on the
//! survivor first and commit on the loser only if the loser did not change, so concurrent
//! stitchers never exceed a limit and all end with the same grouping.

use switchboard_codec::Identifier;

use crate::store::{Committed, IdentityStore, Limits, Refusal, Reservation, Reserved, StoreError};
use crate::{IdentityRules, ProfileId};

/// Retries of one identifier after a concurrent change, before giving up.
const MAX_RETRIES: usize = 32;
/// Longest parent chain followed (compression keeps real chains at one or two).
const MAX_DEPTH: usize = 64;

/// What stitching an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stitched {
    /// The profile the event belongs to.
    pub profile: ProfileId,
    /// True when this event created the profile.
    pub created: bool,
    /// Merges carried out, in order; the survivor of the last is `profile`.
    pub merges: Vec<Merge>,
    /// Identifiers left unlinked (by kind, never value) and why.
    pub conflicts: Vec<(String, Refusal)>,
}

/// One merge: `loser` is now an alias of `survivor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    pub survivor: ProfileId,
    pub loser: ProfileId,
}

/// Why an event could not be stitched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StitchError {
    /// No identifier survived the rules: dead-letter the event.
    #[error("the event has no usable identifier")]
    NoIdentifiers,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Too many concurrent changes to one profile, or a parent chain too long: retry.
    #[error("identity graph busy: {0}")]
    Contended(String),
}

impl StitchError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::NoIdentifiers)
    }
}

impl IdentityRules {
    /// The limits a root enforces.
    pub fn limits(&self) -> Limits {
        Limits {
            per_kind: self
                .kinds
                .iter()
                .filter_map(|k| k.max_per_profile.map(|m| (k.kind.clone(), m)))
                .collect(),
            total: self.max_identifiers_per_profile,
            merges: self.max_merges_per_profile,
        }
    }
}

/// Stitches `identifiers` (already prepared by the rules: normalised, strongest first) of an
/// event that occurred at `at` (Unix milliseconds). A profile it creates is born at `at`, its
/// id derived from `at` and the first identifier that pointed nowhere
/// ([`ProfileId::derive`]): the same events give the same profiles on every run.
pub async fn stitch<S: IdentityStore>(
    store: &S,
    limits: &Limits,
    identifiers: &[Identifier],
    at: i64,
) -> Result<Stitched, StitchError> {
    if identifiers.is_empty() {
        return Err(StitchError::NoIdentifiers);
    }
    let pointers = store.lookup(identifiers).await?;
    let found = Found {
        pointers,
        roots: Vec::new(),
    };
    stitch_found(store, limits, identifiers, found, at).await
}

/// What a lookup ahead of [`stitch_found`] read (one lookup for many events that share no
/// identifier): the identifiers' pointers, and which of the profiles they point at were
/// roots then.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// In the order of the identifiers.
    pub pointers: Vec<Option<ProfileId>>,
    pub roots: Vec<ProfileId>,
}

/// Looks up `identifiers` and the parents of the profiles they point at: two round trips
/// for any number of events.
pub async fn look_up<S: IdentityStore>(
    store: &S,
    identifiers: &[Identifier],
) -> Result<Found, StoreError> {
    let pointers = store.lookup(identifiers).await?;
    let mut targets: Vec<ProfileId> = pointers.iter().flatten().cloned().collect();
    targets.sort();
    targets.dedup();
    let parents = store.parents(&targets).await?;
    let roots = targets
        .into_iter()
        .zip(parents)
        .filter_map(|(p, parent)| parent.is_none().then_some(p))
        .collect();
    Ok(Found { pointers, roots })
}

/// [`stitch`] from what a lookup ahead of it found. Pointers that do not match the
/// identifiers are looked up again; pointers and roots that changed since are found out as
/// they would be between a stitch's own lookup and its writes.
pub async fn stitch_found<S: IdentityStore>(
    store: &S,
    limits: &Limits,
    identifiers: &[Identifier],
    found: Found,
    at: i64,
) -> Result<Stitched, StitchError> {
    if identifiers.is_empty() {
        return Err(StitchError::NoIdentifiers);
    }
    let Found {
        mut pointers,
        roots: known,
    } = found;
    if pointers.len() != identifiers.len() {
        pointers = store.lookup(identifiers).await?;
    }
    let mut roots = Roots(known.into_iter().map(|r| (r.clone(), r)).collect());
    let mut anchor = match pointers.iter().flatten().next() {
        Some(p) => Some(roots.of(store, p).await?),
        None => None,
    };
    // The profile this event creates, if it creates one (made when first needed: most
    // events are of known customers), named after the first identifier that points nowhere.
    let mut fresh: Option<ProfileId> = None;
    let seed = identifiers
        .iter()
        .zip(&pointers)
        .find(|(_, p)| p.is_none())
        .map(|(i, _)| i)
        .or(identifiers.first())
        .map(|i| (i.kind.clone(), i.value.clone()))
        .unwrap_or_default();
    let born = || ProfileId::derive(at, &seed.0, &seed.1);
    let mut created = false;
    // True once the anchor is what the profile this event would make was merged into (made
    // by another event of the same millisecond, below).
    let mut joined = false;
    let unclaimed = pointers.iter().filter(|p| p.is_none()).count();
    if unclaimed >= 2 {
        let target = match &anchor {
            Some(a) => a.clone(),
            None => fresh.get_or_insert_with(born).clone(),
        };
        if attach_all(store, limits, identifiers, &mut pointers, &target).await? {
            created = anchor.is_none();
            roots.0.push((target.clone(), target));
        }
    }
    let mut current: Option<ProfileId> = None;
    let mut merges = Vec::new();
    let mut conflicts = Vec::new();
    for (identifier, pointer) in identifiers.iter().zip(pointers) {
        let mut pointer = pointer;
        let mut attempts = 0;
        loop {
            attempts += 1;
            if attempts > MAX_RETRIES {
                return Err(StitchError::Contended(format!(
                    "identifier of kind `{}` changed {MAX_RETRIES} times",
                    identifier.kind
                )));
            }
            let step = match (&pointer, &current) {
                (Some(p), _) => {
                    let root = roots.of(store, p).await?;
                    if &root != p {
                        store.repoint(identifier, p, &root).await?;
                    }
                    match &current {
                        None => Step::Linked(root),
                        Some(c) if *c == root => Step::Linked(root),
                        Some(c) => match merge(store, limits, c, &root).await? {
                            MergeOutcome::Merged(m) => {
                                roots.merged(&m);
                                let survivor = m.survivor.clone();
                                merges.push(m);
                                Step::Linked(survivor)
                            }
                            MergeOutcome::Refused(r) => Step::Unlinked(r),
                            MergeOutcome::Retry => {
                                current = Some(find_root(store, c).await?);
                                Step::Retry
                            }
                        },
                    }
                }
                (None, None) => match anchor.clone() {
                    // A new strongest identifier joins the profile of the event's other
                    // identifiers when the limits allow, instead of starting a profile that
                    // would be merged at once.
                    Some(a) => match attach(store, limits, identifier, &a).await? {
                        Attached::Linked => Step::Linked(a),
                        Attached::Owned(owner) => {
                            pointer = Some(owner);
                            Step::Retry
                        }
                        Attached::Moved(root) => {
                            anchor = Some(root);
                            Step::Retry
                        }
                        // Refused, it starts a profile of its own; unless the anchor is what
                        // that profile was merged into (it would lead back here): it stays out.
                        Attached::Refused(refusal) if joined => Step::Unlinked(refusal),
                        Attached::Refused(_) => {
                            anchor = None;
                            Step::Retry
                        }
                    },
                    None => {
                        // Reserve on the profile this event makes, then publish it by the
                        // claim.
                        let fresh = fresh.get_or_insert_with(born).clone();
                        match attach(store, limits, identifier, &fresh).await? {
                            Attached::Linked => {
                                created = true;
                                Step::Linked(fresh)
                            }
                            Attached::Owned(owner) => {
                                pointer = Some(owner);
                                Step::Retry
                            }
                            // An event of the same millisecond and first new identifier made
                            // this profile already (the id is derived from both), and it was
                            // merged since: follow the identifier if someone claimed it, else
                            // join what the profile became.
                            Attached::Moved(root) => {
                                pointer = store
                                    .lookup(std::slice::from_ref(identifier))
                                    .await?
                                    .pop()
                                    .flatten();
                                if pointer.is_none() {
                                    anchor = Some(root);
                                    joined = true;
                                }
                                Step::Retry
                            }
                            // ... or filled it: this identifier stays out, as on any full
                            // profile.
                            Attached::Refused(refusal) => Step::Unlinked(refusal),
                        }
                    }
                },
                (None, Some(c)) => match attach(store, limits, identifier, c).await? {
                    Attached::Linked => Step::Linked(c.clone()),
                    Attached::Refused(refusal) => Step::Unlinked(refusal),
                    Attached::Owned(owner) => {
                        pointer = Some(owner);
                        Step::Retry
                    }
                    Attached::Moved(root) => {
                        current = Some(root);
                        Step::Retry
                    }
                },
            };
            match step {
                Step::Linked(p) => {
                    current = Some(p);
                    break;
                }
                Step::Unlinked(refusal) => {
                    conflicts.push((identifier.kind.clone(), refusal));
                    break;
                }
                // Something changed under us: walk again from the store.
                Step::Retry => roots.clear(),
            }
        }
    }
    let profile = current.ok_or(StitchError::NoIdentifiers)?;
    Ok(Stitched {
        profile,
        created,
        merges,
        conflicts,
    })
}

/// Roots found during one stitch, so identifiers that point at the same profile (the common
/// case: a returning customer) cost one walk, not one each.
#[derive(Default)]
struct Roots(Vec<(ProfileId, ProfileId)>);

impl Roots {
    async fn of<S: IdentityStore>(
        &mut self,
        store: &S,
        pointer: &ProfileId,
    ) -> Result<ProfileId, StitchError> {
        if let Some((_, root)) = self.0.iter().find(|(p, _)| p == pointer) {
            return Ok(root.clone());
        }
        let root = find_root(store, pointer).await?;
        self.0.push((pointer.clone(), root.clone()));
        Ok(root)
    }

    /// This stitch merged `m.loser` away: what led to it now leads to the survivor.
    fn merged(&mut self, m: &Merge) {
        for (_, root) in &mut self.0 {
            if *root == m.loser {
                *root = m.survivor.clone();
            }
        }
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

enum Step {
    Linked(ProfileId),
    Unlinked(Refusal),
    Retry,
}

#[derive(Debug)]
enum Attached {
    Linked,
    Refused(Refusal),
    /// Another profile claimed the identifier first.
    Owned(ProfileId),
    /// The profile was merged meanwhile: this is its root.
    Moved(ProfileId),
}

/// Adds an unclaimed identifier to `root`: reserve within the limits, then claim the
/// pointer; a lost claim gives the reservation back.
async fn attach<S: IdentityStore>(
    store: &S,
    limits: &Limits,
    identifier: &Identifier,
    root: &ProfileId,
) -> Result<Attached, StitchError> {
    let r = reservation(vec![identifier.clone()], 0);
    match store.reserve(root, &r, limits).await? {
        Reserved::Moved(parent) => Ok(Attached::Moved(find_root(store, &parent).await?)),
        Reserved::Refused(refusal) => Ok(Attached::Refused(refusal)),
        Reserved::Added(added) => match store.claim(identifier, root).await? {
            None => Ok(Attached::Linked),
            Some(owner) if owner == *root => Ok(Attached::Linked),
            Some(owner) => {
                store.release(root, &added).await?;
                Ok(Attached::Owned(owner))
            }
        },
    }
}

/// Adds every identifier without a pointer to `root` at once: one reservation, then one
/// round of claims. Claims lost to another stitcher are given back and their pointers set
/// to the winner, for the walk to merge. True when any claim was won; false (nothing done)
/// when the reservation was refused or `root` was merged meanwhile: the walk then takes the
/// identifiers one by one, and the limits drop the weakest.
async fn attach_all<S: IdentityStore>(
    store: &S,
    limits: &Limits,
    identifiers: &[Identifier],
    pointers: &mut [Option<ProfileId>],
    root: &ProfileId,
) -> Result<bool, StitchError> {
    let (unclaimed, slots): (Vec<Identifier>, Vec<usize>) = identifiers
        .iter()
        .zip(pointers.iter())
        .enumerate()
        .filter(|(_, (_, p))| p.is_none())
        .map(|(i, (id, _))| (id.clone(), i))
        .unzip();
    let r = reservation(unclaimed, 0);
    if !matches!(store.reserve(root, &r, limits).await?, Reserved::Added(_)) {
        return Ok(false);
    }
    let owners = store.claim_all(&r.identifiers, root).await?;
    let mut lost = Vec::new();
    let mut won = false;
    for ((identifier, slot), owner) in r.identifiers.into_iter().zip(slots).zip(owners) {
        let owner = owner.unwrap_or_else(|| root.clone());
        won |= owner == *root;
        if owner != *root {
            lost.push(identifier);
        }
        if let Some(p) = pointers.get_mut(slot) {
            *p = Some(owner);
        }
    }
    if !lost.is_empty() {
        store.release(root, &lost).await?;
    }
    Ok(won)
}

enum MergeOutcome {
    Merged(Merge),
    Refused(Refusal),
    Retry,
}

fn reservation(identifiers: Vec<Identifier>, merges: u32) -> Reservation {
    Reservation {
        identifiers,
        merges,
    }
}

/// Follows parents from `start` to its root and points the visited profiles at the root.
pub async fn find_root<S: IdentityStore>(
    store: &S,
    start: &ProfileId,
) -> Result<ProfileId, StitchError> {
    let mut path = Vec::new();
    let mut at = start.clone();
    loop {
        let parent = store.parent(&at).await?;
        match parent {
            None => break,
            Some(p) => {
                if path.len() >= MAX_DEPTH {
                    return Err(StitchError::Contended(format!(
                        "parent chain longer than {MAX_DEPTH} from profile {start}"
                    )));
                }
                path.push((at, p.clone()));
                at = p;
            }
        }
    }
    for (node, parent) in path.iter().rev().skip(1) {
        store.reparent(node, parent, &at).await?;
    }
    Ok(at)
}

/// Merges the roots `a` and `b`: the older survives.
async fn merge<S: IdentityStore>(
    store: &S,
    limits: &Limits,
    a: &ProfileId,
    b: &ProfileId,
) -> Result<MergeOutcome, StitchError> {
    let (survivor, loser) = if a <= b { (a, b) } else { (b, a) };
    // A loser without a node (its data was deleted) merges as an empty root.
    let node = store.node(loser).await?.unwrap_or_default();
    if node.parent.is_some() {
        return Ok(MergeOutcome::Retry);
    }
    let ids: Vec<Identifier> = node.identifiers.iter().cloned().collect();
    let r = reservation(ids, node.merges.saturating_add(1));
    let added = match store.reserve(survivor, &r, limits).await? {
        Reserved::Added(added) => added,
        Reserved::Moved(_) => return Ok(MergeOutcome::Retry),
        Reserved::Refused(refusal) => return Ok(MergeOutcome::Refused(refusal)),
    };
    match store.commit_merge(loser, survivor, node.version).await? {
        Committed::Done => {
            store.record_merge(survivor, loser).await?;
            Ok(MergeOutcome::Merged(Merge {
                survivor: survivor.clone(),
                loser: loser.clone(),
            }))
        }
        Committed::AlreadyDone => Ok(MergeOutcome::Merged(Merge {
            survivor: survivor.clone(),
            loser: loser.clone(),
        })),
        Committed::Changed => {
            store.release(survivor, &added).await?;
            Ok(MergeOutcome::Retry)
        }
    }
}

/// The resolved view of a profile, for `switchboard identity show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileView {
    pub profile: ProfileId,
    /// From the profile id; None for an id that holds no time.
    pub created_at: Option<i64>,
    pub identifiers: Vec<Identifier>,
    /// Every profile merged into this one, directly or not.
    pub merged: Vec<ProfileId>,
}

/// The profile an identifier belongs to, with its identifiers and merge history.
pub async fn show<S: IdentityStore>(
    store: &S,
    identifier: &Identifier,
) -> Result<Option<ProfileView>, StitchError> {
    let Some(Some(pointer)) = store.lookup(std::slice::from_ref(identifier)).await?.pop() else {
        return Ok(None);
    };
    let root = find_root(store, &pointer).await?;
    let node = store.node(&root).await?.unwrap_or_default();
    let mut merged = Vec::new();
    let mut queue = node.merged.clone();
    while let Some(p) = queue.pop() {
        if merged.contains(&p) || merged.len() > 10_000 {
            continue;
        }
        if let Some(n) = store.node(&p).await? {
            queue.extend(n.merged);
        }
        merged.push(p);
    }
    merged.sort();
    Ok(Some(ProfileView {
        created_at: root.created_at(),
        profile: root,
        identifiers: node.identifiers.into_iter().collect(),
        merged,
    }))
}

/// Data protection: erases the profile an identifier belongs to from the graph, with every
/// profile merged into it and every identifier any of them held. Returns what was erased
/// (the root first), or `None` when no profile holds the identifier.
pub async fn forget<S: IdentityStore>(
    store: &S,
    identifier: &Identifier,
) -> Result<Option<Vec<ProfileId>>, StitchError> {
    match show(store, identifier).await? {
        Some(view) => Ok(Some(erase(store, view).await?)),
        None => Ok(None),
    }
}

/// Erases a profile found by [`show`]: its node, the nodes of the profiles merged into it,
/// and the pointers of every identifier any of them held. Returns the profiles, root first.
pub async fn erase<S: IdentityStore>(
    store: &S,
    view: ProfileView,
) -> Result<Vec<ProfileId>, StitchError> {
    let mut profiles = vec![view.profile];
    profiles.extend(view.merged);
    let mut identifiers: std::collections::BTreeSet<Identifier> =
        view.identifiers.into_iter().collect();
    for p in profiles.iter().skip(1) {
        if let Some(node) = store.node(p).await? {
            identifiers.extend(node.identifiers);
        }
    }
    let identifiers: Vec<Identifier> = identifiers.into_iter().collect();
    for p in &profiles {
        store.erase(p, &identifiers).await?;
    }
    Ok(profiles)
}
