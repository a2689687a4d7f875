//! What conditions and expressions see: the profile as earlier steps left it, and the event
//! that moved the instance (vars: the trigger).

mod common;

use common::*;
use switchboard_codec::{AttrValue, SendCommand};
use switchboard_journey::{Customer, Effect, Input, JourneySet, Policies, Profile, apply, compile};

fn journeys(yamls: &[&str]) -> JourneySet {
    JourneySet::new(
        yamls
            .iter()
            .enumerate()
            .map(|(i, yaml)| compile(&format!("j{i}.yaml"), yaml, &["email".into()]).unwrap()),
    )
}

fn policies() -> Policies {
    Policies::parse("p", "channels: [email]").unwrap()
}

fn sent(effects: &[Effect]) -> Vec<&SendCommand> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(c) => Some(&**c),
            _ => None,
        })
        .collect()
}

fn customer() -> Customer {
    Customer {
        profile: Profile {
            id: "p-1".into(),
            ..Profile::default()
        },
        ..Customer::default()
    }
}

#[test]
fn a_step_sees_the_profile_as_earlier_steps_left_it() {
    let set = journeys(&["journey: u
version: 1
trigger: { event: order.completed }
start: mark
steps:
  mark:
    update: { add_tags: [vip], set: { score: '2', seen_score: 'has(profile.score)' } }
    next: check
  check:
    branch:
      - if: '\"vip\" in profile.tags && profile.score == 2'
        next: yes
      - else: no
  yes:
    send: { channel: email, template: vip, vars: { score: 'string(profile.score)' } }
    next: done
  no:
    send: { channel: email, template: not-vip }
    next: done
  done:
    exit: ok
"]);
    let e = ev("o-1", "order.completed", "web", T0, "c")
        .id("email", "c@x.io")
        .0;
    let (after, effects) = apply(&set, &policies(), customer(), &Input::Event(e), T0);
    let sends = sent(&effects);
    assert_eq!(sends.len(), 1, "{effects:?}");
    assert_eq!(sends[0].template, "vip");
    assert_eq!(sends[0].vars["score"], "2");
    // Every expression of one update sees the profile from before it.
    assert_eq!(
        after.profile.attributes.get("seen_score"),
        Some(&AttrValue::Bool(false))
    );
}

#[test]
fn each_journey_and_step_sees_its_own_event() {
    // One event enters `gate` (its condition reads it) and moves `waiter` on from a wait_for,
    // whose branch reads the awaited event while its send's vars read the trigger.
    let set = journeys(&[
        "journey: waiter
version: 1
priority: 10
trigger: { event: cart.updated }
start: wait
steps:
  wait:
    wait_for: { event: order.completed, timeout: 1d }
    on_event: check
    on_timeout: done
  check:
    branch:
      - if: 'event.total > 100.0'
        next: big
      - else: done
  big:
    send: { channel: email, template: big, vars: { cart: 'string(event.cart_value)' } }
    next: done
  done:
    exit: ok
",
        "journey: gate
version: 1
trigger: { event: order.completed, if: 'event.total > 100.0 && !has(event.cart_value)' }
start: hello
steps:
  hello:
    send: { channel: email, template: gate }
    next: done
  done:
    exit: ok
",
    ]);
    let cart = ev("c-1", "cart.updated", "web", T0, "c")
        .id("email", "c@x.io")
        .num("cart_value", 40.0)
        .0;
    let (waiting, _) = apply(&set, &policies(), customer(), &Input::Event(cart), T0);
    let order = ev("o-1", "order.completed", "web", T0 + HOUR, "c")
        .num("total", 150.0)
        .0;
    let (_, effects) = apply(&set, &policies(), waiting, &Input::Event(order), T0 + HOUR);
    let mut sends: Vec<(String, Option<String>)> = sent(&effects)
        .iter()
        .map(|c| (c.template.clone(), c.vars.get("cart").cloned()))
        .collect();
    sends.sort();
    assert_eq!(
        sends,
        vec![("big".into(), Some("40".into())), ("gate".into(), None)]
    );
}

#[test]
fn conditions_see_every_field_of_the_event_and_the_profile() {
    let set = journeys(&[r#"journey: all
version: 1
trigger:
  event: x.y
  if: >-
    event.type == "x.y" && event.channel == "web" && event.id == "e-1"
    && event.occurred_at == 1768471200000 && event.flag && event.n == 3 && event.d == 2.5
    && event.s == "t" && event.none == null && size(event) == 9
audience: >-
  profile.id == "p-1" && "vip" in profile.tags && profile.consent.email
  && !profile.consent.sms && profile.channels == ["email"] && profile.locale == "en-GB"
  && profile.timezone == "Europe/London" && profile.last_channel == "web"
  && profile.score == 2 && size(profile) == 8
start: done
steps:
  done:
    exit: ok
"#]);
    let mut e = ev("e-1", "x.y", "web", T0, "c")
        .id("email", "c@x.io")
        .flag("flag", true)
        .num("d", 2.5)
        .text("s", "t")
        .0;
    e.attributes.insert("n".into(), AttrValue::Long(3));
    e.attributes.insert("none".into(), AttrValue::Null);
    let mut c = customer();
    c.profile.tags.insert("vip".into());
    c.profile.consent = [("email".into(), true), ("sms".into(), false)].into();
    c.profile.locale = Some("en-GB".into());
    c.profile.timezone = Some("Europe/London".into());
    c.profile
        .attributes
        .insert("score".into(), AttrValue::Long(2));
    let (after, _) = apply(&set, &policies(), c.clone(), &Input::Event(e.clone()), T0);
    assert!(after.profile.history.contains_key("all"), "not entered");
    // And a condition that does not hold keeps the customer out.
    c.profile.tags.clear();
    let (after, _) = apply(&set, &policies(), c, &Input::Event(e), T0);
    assert!(!after.profile.history.contains_key("all"), "entered");
}

/// `event` and `profile` are read in place, field by field; what needs the whole map (`in`,
/// comprehensions over its keys, equality) still sees the whole map, and a field that is
/// neither a field nor an attribute is absent.
#[test]
fn the_event_and_profile_are_whole_maps_to_what_needs_one() {
    let set = journeys(&[r#"journey: whole
version: 1
trigger:
  event: x.y
  if: >-
    "n" in event && !("absent" in event) && has(event.n) && !has(event.absent)
    && event.exists(k, k == "channel") && event.filter(k, k == "n" || k == "s").size() == 2
    && event["type"] == "x.y" && event == event && [event][0].n == 3
    && profile.consent == {"email": true} && "score" in profile
start: done
steps:
  done:
    exit: ok
"#]);
    let mut e = ev("e-1", "x.y", "web", T0, "c").text("s", "t").0;
    e.attributes.insert("n".into(), AttrValue::Long(3));
    let mut c = customer();
    c.profile.consent = [("email".into(), true)].into();
    c.profile
        .attributes
        .insert("score".into(), AttrValue::Long(2));
    let (after, _) = apply(&set, &policies(), c, &Input::Event(e), T0);
    assert!(
        after.profile.history.contains_key("whole"),
        "not entered: {:?}",
        after.decisions
    );
}
