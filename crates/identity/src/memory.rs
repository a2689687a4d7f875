//! The in-memory identity store, for the embedded mode and `simulate`: the same operations
//! as the Redis adapter, each under one lock.

use std::collections::HashMap;
use std::sync::Mutex;

use switchboard_codec::Identifier;

use crate::store::{
    Committed, IdentityStore, Limits, Node, Refusal, Reservation, Reserved, StoreError,
};
use crate::{IdentityRules, ProfileId, Stitched};

#[derive(Debug, Default)]
struct Graph {
    pointers: HashMap<Identifier, ProfileId>,
    nodes: HashMap<ProfileId, Node>,
    erasures: u64,
}

/// The identity graph in process memory.
#[derive(Debug, Default)]
pub struct MemoryIdentityStore {
    graph: Mutex<Graph>,
}

impl MemoryIdentityStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stitches one event's raw identifiers as the stitcher does (the rules' normalisation,
    /// blocked values and limits, then [`crate::stitch`]), without an async runtime: the
    /// store answers at once. For `simulate`. The identifiers used come back normalised,
    /// strongest first; none usable is an error naming the kinds and why.
    pub fn stitch_now(
        &self,
        rules: &IdentityRules,
        raw: &[Identifier],
        at: i64,
    ) -> Result<(Stitched, Vec<Identifier>), String> {
        let prepared = rules.prepare(raw);
        if prepared.accepted.is_empty() {
            return Err(prepared.none_usable());
        }
        let stitched = futures::executor::block_on(crate::stitch(
            self,
            &rules.limits(),
            &prepared.accepted,
            at,
        ))
        .map_err(|e| e.to_string())?;
        Ok((stitched, prepared.accepted))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Graph) -> T) -> Result<T, StoreError> {
        let mut g = self
            .graph
            .lock()
            .map_err(|_| StoreError("memory store lock poisoned".into()))?;
        Ok(f(&mut g))
    }

    /// Every identifier pointer, for tests and diagnostics.
    pub fn pointers(&self) -> Result<Vec<(Identifier, ProfileId)>, StoreError> {
        self.with(|g| {
            g.pointers
                .iter()
                .map(|(i, p)| (i.clone(), p.clone()))
                .collect()
        })
    }
}

/// Checks a reservation against a root's limits (the Redis store's script checks the same).
fn check_limits(node: &Node, new: &[Identifier], merges: u32, limits: &Limits) -> Option<Refusal> {
    for (kind, max) in &limits.per_kind {
        let have = node.identifiers.iter().filter(|i| &i.kind == kind).count();
        let adding = new.iter().filter(|i| &i.kind == kind).count();
        if have + adding > *max as usize {
            return Some(Refusal::KindLimit(kind.clone()));
        }
    }
    if node.identifiers.len() + new.len() > limits.total as usize {
        return Some(Refusal::TooManyIdentifiers);
    }
    if merges > 0 && node.merges.saturating_add(merges) > limits.merges {
        return Some(Refusal::TooManyMerges);
    }
    None
}

impl IdentityStore for MemoryIdentityStore {
    async fn lookup(&self, ids: &[Identifier]) -> Result<Vec<Option<ProfileId>>, StoreError> {
        self.with(|g| ids.iter().map(|i| g.pointers.get(i).cloned()).collect())
    }

    async fn node(&self, id: &ProfileId) -> Result<Option<Node>, StoreError> {
        self.with(|g| g.nodes.get(id).cloned())
    }

    async fn claim(
        &self,
        identifier: &Identifier,
        profile: &ProfileId,
    ) -> Result<Option<ProfileId>, StoreError> {
        self.with(|g| match g.pointers.get(identifier) {
            Some(owner) => Some(owner.clone()),
            None => {
                g.pointers.insert(identifier.clone(), profile.clone());
                None
            }
        })
    }

    async fn repoint(
        &self,
        identifier: &Identifier,
        from: &ProfileId,
        to: &ProfileId,
    ) -> Result<(), StoreError> {
        self.with(|g| {
            if let Some(p) = g.pointers.get_mut(identifier)
                && p == from
            {
                *p = to.clone();
            }
        })
    }

    async fn reparent(
        &self,
        profile: &ProfileId,
        from: &ProfileId,
        to: &ProfileId,
    ) -> Result<(), StoreError> {
        self.with(|g| {
            if let Some(n) = g.nodes.get_mut(profile)
                && n.parent.as_ref() == Some(from)
            {
                n.parent = Some(to.clone());
            }
        })
    }

    async fn reserve(
        &self,
        root: &ProfileId,
        r: &Reservation,
        limits: &Limits,
    ) -> Result<Reserved, StoreError> {
        self.with(|g| {
            let node = g.nodes.entry(root.clone()).or_default();
            if let Some(parent) = &node.parent {
                return Reserved::Moved(parent.clone());
            }
            let mut new: Vec<Identifier> = r
                .identifiers
                .iter()
                .filter(|i| !node.identifiers.contains(*i))
                .cloned()
                .collect();
            new.dedup();
            if let Some(refusal) = check_limits(node, &new, r.merges, limits) {
                return Reserved::Refused(refusal);
            }
            node.identifiers.extend(new.iter().cloned());
            node.merges = node.merges.saturating_add(r.merges);
            node.version += 1;
            Reserved::Added(new)
        })
    }

    async fn release(&self, root: &ProfileId, ids: &[Identifier]) -> Result<(), StoreError> {
        self.with(|g| {
            if let Some(n) = g.nodes.get_mut(root) {
                for i in ids {
                    n.identifiers.remove(i);
                }
                n.version += 1;
            }
        })
    }

    async fn commit_merge(
        &self,
        loser: &ProfileId,
        survivor: &ProfileId,
        version: u64,
    ) -> Result<Committed, StoreError> {
        self.with(|g| {
            let node = g.nodes.entry(loser.clone()).or_default();
            match &node.parent {
                Some(p) if p == survivor => Committed::AlreadyDone,
                Some(_) => Committed::Changed,
                None if node.version != version => Committed::Changed,
                None => {
                    node.parent = Some(survivor.clone());
                    node.version += 1;
                    Committed::Done
                }
            }
        })
    }

    async fn record_merge(
        &self,
        survivor: &ProfileId,
        loser: &ProfileId,
    ) -> Result<(), StoreError> {
        self.with(|g| {
            g.nodes
                .entry(survivor.clone())
                .or_default()
                .merged
                .push(loser.clone())
        })
    }

    async fn erase(&self, profile: &ProfileId, ids: &[Identifier]) -> Result<(), StoreError> {
        self.with(|g| {
            g.nodes.remove(profile);
            for id in ids {
                g.pointers.remove(id);
            }
            g.erasures += 1;
        })
    }

    async fn erasures(&self) -> Result<u64, StoreError> {
        self.with(|g| g.erasures)
    }
}
