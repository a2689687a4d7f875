//! All loaded journeys, every version of each: new customers enter the newest, customers in
//! flight stay on theirs (or move, when the newest declares a mapping of their state).

use std::collections::BTreeMap;

use crate::Journey;

/// Journeys by id and version.
#[derive(Debug, Clone, Default)]
pub struct JourneySet {
    by_id: BTreeMap<String, BTreeMap<u32, Journey>>,
    /// The newest version of each journey (id and version), highest priority first: the
    /// order in which an event's triggers are entered, worked out once.
    by_priority: Vec<(String, u32)>,
}

impl JourneySet {
    pub fn new(journeys: impl IntoIterator<Item = Journey>) -> Self {
        let mut by_id: BTreeMap<String, BTreeMap<u32, Journey>> = BTreeMap::new();
        for j in journeys {
            by_id.entry(j.id.clone()).or_default().insert(j.version, j);
        }
        let mut newest: Vec<&Journey> = (by_id.values())
            .filter_map(|versions| versions.values().next_back())
            .collect();
        newest.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.id.cmp(&b.id)));
        let by_priority = (newest.into_iter())
            .map(|j| (j.id.clone(), j.version))
            .collect();
        Self { by_id, by_priority }
    }

    /// The newest version of each journey, highest priority first (ties by id).
    pub fn newest(&self) -> Vec<&Journey> {
        self.by_priority().collect()
    }

    fn by_priority(&self) -> impl Iterator<Item = &Journey> {
        (self.by_priority.iter()).filter_map(|(id, version)| self.get(id, *version))
    }

    /// The journeys (newest versions) that `event_type` triggers, highest priority first.
    pub fn triggered_by<'s>(&'s self, event_type: &'s str) -> impl Iterator<Item = &'s Journey> {
        self.by_priority()
            .filter(move |j| j.trigger_event == event_type)
    }

    pub fn get(&self, id: &str, version: u32) -> Option<&Journey> {
        self.by_id.get(id)?.get(&version)
    }

    pub fn newest_of(&self, id: &str) -> Option<&Journey> {
        self.by_id.get(id)?.values().next_back()
    }

    /// A journey's priority (its newest version's; 0 for a journey not loaded): where sends
    /// compete, the higher goes first, on events, on timers due together and after a
    /// quiet-hours deferral alike.
    pub fn priority_of(&self, id: &str) -> i32 {
        self.newest_of(id).map_or(0, |j| j.priority)
    }

    /// The order in which timers fire: by due time; at the same instant, the higher
    /// journey priority first (ties by journey id). The engine and `simulate` both sort by it.
    pub fn timer_order(&self, a: (i64, &str), b: (i64, &str)) -> std::cmp::Ordering {
        a.0.cmp(&b.0)
            .then_with(|| self.priority_of(b.1).cmp(&self.priority_of(a.1)))
            .then_with(|| a.1.cmp(b.1))
    }

    pub fn len(&self) -> usize {
        self.by_id.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}
