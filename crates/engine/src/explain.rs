//! `switchboard explain` and `simulate --explain`: what Switchboard knows of one customer and
//! why it did what it did. Pure: the identity view and the engine's record in, text out.

use std::fmt::Write as _;

use switchboard_codec::Identifier;
use switchboard_identity::ProfileId;
use switchboard_journey::time::iso;
use switchboard_journey::{JourneySet, Policies};

use crate::record::Record;

/// Who the customer is, as the identity graph says.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    pub profile: &'a ProfileId,
    pub identifiers: &'a [Identifier],
    /// Profiles merged into this one.
    pub merged: &'a [ProfileId],
}

/// The customer's identifiers and merges, consent, cap usage per channel, each journey's
/// state and next timer, open goal windows, then the recent decisions (newest first).
pub fn explain(
    who: Who<'_>,
    record: Option<&Record>,
    journeys: &JourneySet,
    policies: &Policies,
    now: i64,
) -> String {
    let mut s = format!("profile {}\n", who.profile);
    let ids: Vec<String> = (who.identifiers.iter())
        .map(|i| format!("{}:{}", i.kind, i.value))
        .collect();
    let _ = writeln!(s, "  identifiers: {}", list(&ids));
    let mut merged: Vec<String> = who.merged.iter().map(ToString::to_string).collect();
    if let Some(r) = record {
        for a in &r.absorbed {
            let name = a.profile.to_string();
            if let Some(m) = merged.iter_mut().find(|m| **m == name) {
                *m = format!("{name} at {}", iso(a.at));
            }
        }
    }
    let _ = writeln!(s, "  merged into it: {}", list(&merged));
    let Some(r) = record else {
        s.push_str("  no journey state: no event of this customer has reached the engine yet\n");
        return s;
    };
    let profile = &r.customer.profile;
    let consent: Vec<String> = (policies.channels.iter())
        .map(|c| match profile.consent.get(c) {
            Some(true) => format!("{c} yes"),
            Some(false) => format!("{c} no (opted out)"),
            None => format!(
                "{c} {} (default)",
                if policies.consent_by_default {
                    "yes"
                } else {
                    "no"
                }
            ),
        })
        .collect();
    let _ = writeln!(s, "consent: {}", consent.join(", "));
    let caps: Vec<String> = (policies.caps.iter())
        .map(|cap| {
            let since = now.saturating_sub(cap.window_ms);
            let used = (profile.sends.iter())
                .filter(|x| x.at > since && cap.channel.as_ref().is_none_or(|c| *c == x.channel))
                .count();
            let on = cap.channel.as_deref().unwrap_or("all channels");
            format!("{on} {used} of {} per {}", cap.max, duration(cap.window_ms))
        })
        .collect();
    let _ = writeln!(s, "caps: {}", list(&caps));
    s.push_str("journeys:\n");
    if r.customer.instances.is_empty() {
        s.push_str("  in none\n");
    }
    for inst in r.customer.instances.values() {
        let priority = journeys.priority_of(&inst.journey);
        let variant = inst
            .variant
            .as_ref()
            .map(|v| format!(", variant {v}"))
            .unwrap_or_default();
        let next = inst
            .wake_at
            .map(|at| format!(", next timer {}", iso(at)))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  {} v{} (priority {priority}): at {}, entered {}{variant}{next}",
            inst.journey,
            inst.version,
            inst.state,
            iso(inst.entered_at)
        );
    }
    if !r.customer.attributions.is_empty() {
        s.push_str("goals still open:\n");
    }
    for (a, (goal, until)) in
        (r.customer.attributions.iter()).filter_map(|a| Some((a, a.goal(journeys)?)))
    {
        let arm = match (a.holdout, &a.variant) {
            (true, _) => "control group".to_owned(),
            (false, Some(v)) => format!("variant {v}"),
            (false, None) => "treated".to_owned(),
        };
        let _ = writeln!(
            s,
            "  {} of {} ({arm}): counts if it comes by {}",
            goal,
            a.journey,
            iso(until)
        );
    }
    s.push_str("recent decisions, newest first:\n");
    if r.customer.decisions.is_empty() {
        s.push_str("  none\n");
    }
    for d in r.customer.decisions.iter().rev() {
        let step = d.step.as_ref().map(|x| format!("/{x}")).unwrap_or_default();
        let detail = d
            .detail
            .as_ref()
            .map(|x| format!(" ({x})"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  {}  {}{step}  {}{detail}  because {}",
            iso(d.at),
            d.journey,
            d.reason,
            d.trigger
        );
    }
    s
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

fn duration(ms: i64) -> String {
    let hours = ms / 3_600_000;
    if hours % 24 == 0 {
        format!("{}d", hours / 24)
    } else {
        format!("{hours}h")
    }
}
