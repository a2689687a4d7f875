//! All loaded journeys, every version of each: new customers enter the newest, customers in
//! flight stay on theirs (or move, when the newest declares a mapping of their state).

use std::collections::BTreeMap;

use crate::Journey;

/// Journeys by id and version.
#[derive(Debug, Clone, Default)]
pub struct JourneySet {
    by_id: BTreeMap<String, BTreeMap<u32, Journey>>,
}

impl JourneySet {
    pub fn new(journeys: impl IntoIterator<Item = Journey>) -> Self {
        let mut by_id: BTreeMap<String, BTreeMap<u32, Journey>> = BTreeMap::new();
        for j in journeys {
            by_id.entry(j.id.clone()).or_default().insert(j.version, j);
        }
        Self { by_id }
    }

    /// The newest version of each journey, highest priority first (ties by id).
    pub fn newest(&self) -> Vec<&Journey> {
        let mut v: Vec<&Journey> = self
            .by_id
            .values()
            .filter_map(|versions| versions.values().next_back())
            .collect();
        v.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.id.cmp(&b.id)));
        v
    }

    pub fn get(&self, id: &str, version: u32) -> Option<&Journey> {
        self.by_id.get(id)?.get(&version)
    }

    pub fn newest_of(&self, id: &str) -> Option<&Journey> {
        self.by_id.get(id)?.values().next_back()
    }

    pub fn len(&self) -> usize {
        self.by_id.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}
