//! A customer in flight stays on the version they entered, unless the new version maps
//! their state.

mod common;

use common::*;
use switchboard_journey::{Customer, Effect, Input, JourneySet, Profile, apply, compile};

const CHANNELS: [&str; 2] = ["email", "sms"];

fn version(v: u32, template: &str, migrate: &str) -> switchboard_journey::Journey {
    let yaml = format!(
        "journey: j\nversion: {v}\ntrigger: {{ event: go }}\nstart: pause\n{migrate}steps:\n  pause:\n    wait: 1h\n    next: hello\n  hello:\n    send: {{ channel: email, template: {template} }}\n    next: done\n  done:\n    exit: ok\n"
    );
    compile("j.yaml", &yaml, &CHANNELS.map(String::from)).unwrap()
}

fn template_sent_after_upgrade(v2: switchboard_journey::Journey) -> String {
    let policies = switchboard_journey::Policies::parse("p", "channels: [email, sms]").unwrap();
    let customer = Customer {
        profile: Profile {
            id: "c".into(),
            ..Profile::default()
        },
        ..Customer::default()
    };
    let go = Input::Event(ev("g", "go", "web", T0, "c").id("email", "c@x.io").0);
    let (customer, effects) = apply(
        &JourneySet::new([version(1, "old", "")]),
        &policies,
        customer,
        &go,
        T0,
    );
    let due = effects
        .iter()
        .find_map(|e| match e {
            Effect::ScheduleTimer { at, .. } => Some(*at),
            _ => None,
        })
        .unwrap();
    // The new version is deployed while the customer waits.
    let set = JourneySet::new([version(1, "old", ""), v2]);
    let (_, effects) = apply(
        &set,
        &policies,
        customer,
        &Input::Timer {
            journey: "j".into(),
            due,
        },
        due,
    );
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Send(c) => Some(format!("{} v{}", c.template, c.version)),
            _ => None,
        })
        .unwrap()
}

#[test]
fn an_in_flight_customer_finishes_on_the_version_they_entered() {
    assert_eq!(template_sent_after_upgrade(version(2, "new", "")), "old v1");
}

#[test]
fn a_declared_state_mapping_moves_them_to_the_new_version() {
    assert_eq!(
        template_sent_after_upgrade(version(
            2,
            "new",
            "migrate_from_previous: { pause: pause }\n"
        )),
        "new v2"
    );
}
