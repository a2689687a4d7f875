//! Folding a merged profile's state into the survivor's: pure, like the interpreter.

use switchboard_codec::TransitionKind;

use crate::state::{Customer, Effect, Transition};

/// Folds `loser` into `survivor` at `now` and returns the survivor's new state with the
/// timers to schedule for the instances it took over, and an `exited` transition (reason
/// `merged`, trigger `merge:<survivor>`) for each of the loser's instances that ends here,
/// so every entry has its exit.
///
/// - attributes, addresses, locale and time zone: the survivor's values win, the loser fills
///   the gaps;
/// - consent: an opt-out on either side wins (it is honoured everywhere);
/// - tags, recent sends and journey history: the union (sends count towards caps);
/// - attributions: both profiles' entries, each still waiting for its goal;
/// - journey instances: the loser's instance moves over unless the survivor is in the same
///   journey already, so nobody gets the same journey twice; the loser's instance then ends.
pub fn fold(survivor: Customer, loser: Customer, now: i64) -> (Customer, Vec<Effect>) {
    let mut s = survivor;
    let l = loser;
    for (k, v) in l.profile.attributes {
        s.profile.attributes.entry(k).or_insert(v);
    }
    for (k, v) in l.profile.addresses {
        s.profile.addresses.entry(k).or_insert(v);
    }
    for (channel, consent) in l.profile.consent {
        let e = s.profile.consent.entry(channel).or_insert(consent);
        *e = *e && consent;
    }
    s.profile.tags.extend(l.profile.tags);
    s.profile.locale = s.profile.locale.or(l.profile.locale);
    s.profile.timezone = s.profile.timezone.or(l.profile.timezone);
    s.profile.last_channel = s.profile.last_channel.or(l.profile.last_channel);
    s.profile.sends.extend(l.profile.sends);
    s.profile.sends.sort_by_key(|x| x.at);
    for (journey, entry) in l.profile.history {
        let e = s.profile.history.entry(journey).or_insert(entry);
        if entry.at > e.at {
            *e = entry;
        }
    }
    // Every entry keeps its attribution: a goal after the merge counts for each entry still
    // in its window, the loser's too.
    for a in l.attributions {
        if !s.attributions.iter().any(|mine| mine.entry == a.entry) {
            s.attributions.push(a);
        }
    }
    s.attributions.sort_by_key(|a| a.entered_at);
    s.decisions.extend(l.decisions);
    s.decisions.sort_by_key(|d| d.at);
    let over = s
        .decisions
        .len()
        .saturating_sub(crate::state::MAX_DECISIONS);
    s.decisions.drain(..over);
    let mut effects = Vec::new();
    for (journey, inst) in l.instances {
        if s.instances.contains_key(&journey) {
            effects.push(Effect::Transition(Transition {
                journey,
                version: inst.version,
                kind: TransitionKind::Exited,
                step: Some(inst.state),
                reason: Some("merged".into()),
                trigger: format!("merge:{}", s.profile.id),
                at: now,
                variant: inst.variant,
                holdout: false,
                entry: inst.id,
                step_kind: None,
            }));
            continue;
        }
        if let Some(at) = inst.wake_at {
            effects.push(Effect::ScheduleTimer {
                journey: journey.clone(),
                at,
            });
        }
        s.instances.insert(journey, inst);
    }
    (s, effects)
}
