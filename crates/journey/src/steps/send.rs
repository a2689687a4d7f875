//! `send`: the first preferred channel the customer can receive (an address), has not
//! opted out of, and whose frequency caps leave room; deferred, not dropped, in quiet hours.
//!
//! Suppression reasons: `consent` (opted out everywhere it could go), `no_channel` (no
//! address on any preferred channel), `cap` (caps full), `var_error` (a personalisation var
//! failed to evaluate, e.g. on an attribute the event lacks: no message goes out with a hole
//! in it). In quiet hours the send is `deferred` (reason `quiet_hours`) to their end, when a
//! timer retries it.

use switchboard_codec::{SendCommand, SendReason, TransitionKind};

use super::Flow;
use crate::run::Run;
use crate::state::{Effect, Instance, Sent};
use crate::time::{local_minute, next_local_time};
use crate::{Journey, State, StepKind, ids};

/// Why a preferred channel was passed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Skip {
    NoAddress,
    Consent,
    Cap,
}

impl Skip {
    fn as_str(self) -> &'static str {
        match self {
            Self::NoAddress => "no address",
            Self::Consent => "opted out",
            Self::Cap => "capped",
        }
    }
}

pub(super) fn run(
    run: &mut Run<'_>,
    j: &Journey,
    inst: &mut Instance,
    state: &State,
    path: &[&str],
) -> Flow {
    let StepKind::Send {
        channels,
        template,
        vars,
        locale,
        next,
    } = &state.kind
    else {
        return Flow::End("not_a_send".into());
    };
    let profile = &run.customer.profile;
    let sent_since = |channel: Option<&str>, window: i64| {
        let from = run.now.saturating_sub(window);
        profile
            .sends
            .iter()
            .filter(|s| s.at > from && channel.is_none_or(|c| c == s.channel))
            .count()
    };
    let overall_full = run
        .policies
        .caps
        .iter()
        .any(|c| c.channel.is_none() && sent_since(None, c.window_ms) >= c.max as usize);

    let mut skipped = Vec::new();
    let mut chosen = None;
    for channel in channels {
        let skip = if !profile.addresses.contains_key(channel) {
            Some(Skip::NoAddress)
        } else if !profile
            .consent
            .get(channel)
            .copied()
            .unwrap_or(run.policies.consent_by_default)
        {
            Some(Skip::Consent)
        } else if overall_full
            || run.policies.caps.iter().any(|c| {
                c.channel.as_deref() == Some(channel)
                    && sent_since(Some(channel), c.window_ms) >= c.max as usize
            })
        {
            Some(Skip::Cap)
        } else {
            None
        };
        match skip {
            Some(s) => skipped.push((channel.clone(), s)),
            None => {
                chosen = Some(channel.clone());
                break;
            }
        }
    }
    let Some(channel) = chosen else {
        let reason = match skipped.iter().map(|(_, s)| *s).max() {
            Some(Skip::Cap) => "cap",
            Some(Skip::Consent) => "consent",
            _ => "no_channel",
        };
        let tried = (skipped.iter())
            .map(|(c, why)| format!("{c}: {}", why.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        run.decide(&inst.journey, Some(&state.name), reason, Some(tried));
        run.transition(
            inst,
            TransitionKind::Suppressed,
            Some(state),
            Some(reason.into()),
        );
        return Flow::Next(*next);
    };

    let tz = profile
        .timezone
        .clone()
        .unwrap_or_else(|| run.policies.default_timezone.clone());
    let quiet = (run.policies.quiet_hours.as_ref()).filter(|q| q.applies_to(&channel));
    if let Some(q) = quiet
        && q.contains(local_minute(run.now, &tz))
    {
        let at = next_local_time(run.now, &tz, q.to);
        let retry = format!("{channel} retried at {}", crate::time::iso(at));
        run.decide(&inst.journey, Some(&state.name), "quiet_hours", Some(retry));
        inst.wake_at = Some(at);
        run.effects.push(Effect::ScheduleTimer {
            journey: inst.journey.clone(),
            at,
        });
        run.transition(
            inst,
            TransitionKind::Deferred,
            Some(state),
            Some("quiet_hours".into()),
        );
        return Flow::Suspend;
    }

    let mut rendered = std::collections::BTreeMap::new();
    for (name, expr) in vars {
        match (run.scope).evaluate(expr, inst.trigger.as_ref(), &run.customer.profile) {
            Ok(v) => {
                rendered.insert(name.clone(), crate::condition::render(&v));
            }
            Err(error) => {
                let detail = format!("var `{name}`: {error}");
                run.decide(&inst.journey, Some(&state.name), "var_error", Some(detail));
                run.transition(
                    inst,
                    TransitionKind::Suppressed,
                    Some(state),
                    Some("var_error".into()),
                );
                return Flow::Next(*next);
            }
        }
    }
    let vars = rendered;
    let profile = &run.customer.profile;
    let address = profile.addresses.get(&channel).cloned().unwrap_or_default();
    let locale = locale
        .clone()
        .or_else(|| profile.locale.clone())
        .unwrap_or_else(|| run.policies.default_locale.clone());
    let command = SendCommand {
        command_id: ids::uuid(&[
            &j.id,
            itoa::Buffer::new().format(j.version),
            &inst.id,
            &state.name,
            &run.trigger,
        ]),
        profile_id: profile.id.clone(),
        channel: channel.clone(),
        address,
        template: template.clone(),
        locale,
        vars,
        journey: j.id.clone(),
        version: i32::try_from(j.version).unwrap_or(i32::MAX),
        step: state.name.clone(),
        variant: inst.variant.clone(),
        // Sent outside the customer's quiet hours: a channel system must not deliver it
        // once they begin.
        not_after: quiet.map(|q| next_local_time(run.now, &tz, q.from)),
        reason: SendReason {
            trigger: run.trigger.clone(),
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            fallback_from: skipped.into_iter().map(|(c, _)| c).collect(),
        },
        created_at: run.now,
    };
    let what = format!("{} {}", command.channel, command.template);
    run.decide(&inst.journey, Some(&state.name), "sent", Some(what));
    run.customer.profile.sends.push(Sent {
        channel,
        at: run.now,
    });
    run.effects.push(Effect::Send(Box::new(command)));
    Flow::Next(*next)
}
