//! A journey designer's mistakes are named with file, line and state.

use switchboard_journey::*;

fn channels() -> Vec<String> {
    ["web", "app", "email", "sms", "push", "pos"]
        .map(String::from)
        .to_vec()
}

fn errors(yaml: &str) -> Vec<String> {
    compile("j.yaml", yaml, &channels())
        .unwrap_err()
        .into_iter()
        .map(|e| e.to_string())
        .collect()
}

const GOOD: &str = r#"journey: cart
version: 1
trigger:
  event: cart.updated
  if: event.cart_value > 0
start: pause
steps:
  pause:
    wait: 1h
    next: remind
  remind:
    send: { channels: [push, email], template: cart-reminder, vars: { value: "string(event.cart_value)" } }
    next: done
  done:
    exit: gave-up
"#;

#[test]
fn a_good_journey_compiles() {
    let j = compile("j.yaml", GOOD, &channels()).unwrap();
    assert_eq!(j.states.len(), 3);
    let remind = j.state(j.state_id("remind").unwrap()).unwrap();
    assert_eq!(remind.line, 12, "the line of the state body");
}

#[test]
fn an_unknown_next_names_the_line_of_the_reference() {
    let e = errors(&GOOD.replace("next: done", "next: finish"));
    assert_eq!(
        e,
        vec!["j.yaml:13: state `remind`: `next` names unknown state `finish`".to_owned()],
        "{e:?}"
    );
}

#[test]
fn invalid_cel_is_named_with_its_line() {
    let e = errors(&GOOD.replace("event.cart_value > 0", "event.cart_value >"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("j.yaml:5: invalid CEL"), "{e:?}");
}

#[test]
fn cel_compares_floats_with_ints() {
    use std::collections::HashMap;
    let c = condition::Condition::compile("event.cart_value > 0").unwrap();
    let event = condition::map(HashMap::from([(
        "cart_value".to_owned(),
        cel::Value::Float(12.5),
    )]));
    let context = condition::bindings(event, condition::map(HashMap::new()));
    assert!(c.holds(&context).unwrap());
}

#[test]
fn a_key_given_twice_is_named_without_parser_jargon() {
    let e = errors(&GOOD.replace("version: 1\n", "version: 1\nversion: 2\n"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("j.yaml:3: "), "{e:?}");
    assert!(
        e[0].contains("the key `version` appears twice in one mapping"),
        "{e:?}"
    );
    assert!(!e[0].contains("DuplicateKeyPolicy"), "{e:?}");
}

#[test]
fn a_policies_file_in_the_journeys_folder_is_named_as_such() {
    let policies = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/policies.yaml"
    ))
    .unwrap();
    let e = errors(&policies);
    assert_eq!(
        e,
        [
            "j.yaml:1: this is a policies file (it has `channels` and no `journey`): give it with `--policies FILE`; the journeys folder holds journeys only"
        ]
    );
}

#[test]
fn a_name_that_is_not_a_variable_is_refused_with_file_line_state_and_name() {
    let e = errors(&GOOD.replace(
        r#"vars: { value: "string(event.cart_value)" }"#,
        r#"vars: { value: "string(event.cart_value)", name: "customer.first_name" }"#,
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("j.yaml:12: state `remind`: "), "{e:?}");
    assert!(
        e[0].contains("names `customer`, which is not a variable"),
        "{e:?}"
    );
}

#[test]
fn names_bound_by_macros_and_the_declared_variables_are_accepted() {
    let yaml = GOOD.replace(
        "if: event.cart_value > 0",
        r#"if: event.cart_value > 0 && !profile.tags.exists(t, t == "vip") && [1, 2].all(n, n > 0)"#,
    );
    compile("j.yaml", &yaml, &channels()).unwrap();
    let trigger = errors(&GOOD.replace("if: event.cart_value > 0", "if: cart_value > 0"));
    assert_eq!(trigger.len(), 1, "{trigger:?}");
    assert!(trigger[0].starts_with("j.yaml:5: "), "{trigger:?}");
    assert!(trigger[0].contains("`cart_value`"), "{trigger:?}");
}

const OPTIMIZED: &str = r#"journey: subject
version: 1
trigger: { event: product.viewed }
goal: { event: order.completed, within: 3d }
start: choose
steps:
  choose:
    split:
      - { variant: a, weight: 50, next: done }
      - { variant: b, weight: 50, next: done }
    optimize: { goal: order.completed, after: 14d, min_entries: 1000 }
  done:
    exit: sent
"#;

#[test]
fn an_optimized_split_compiles_with_its_period_and_minimum() {
    let j = compile("j.yaml", OPTIMIZED, &channels()).unwrap();
    let (state, optimize) = j.optimized_split().unwrap();
    assert_eq!(state.name, "choose");
    assert_eq!(
        *optimize,
        Optimize {
            after_ms: 14 * 86_400_000,
            min_entries: 1000
        }
    );
}

#[test]
fn optimize_mistakes_are_named_with_line_and_state() {
    // The line of the state body: 8, or 7 without the goal's line.
    let no_goal = errors(&OPTIMIZED.replace("goal: { event: order.completed, within: 3d }\n", ""));
    assert_eq!(
        no_goal,
        vec![
            "j.yaml:7: state `choose`: `optimize` needs the journey's `goal`: conversions are counted against it"
                .to_owned()
        ]
    );
    let other_goal = errors(&OPTIMIZED.replace("goal: order.completed,", "goal: app.installed,"));
    assert_eq!(
        other_goal,
        vec![
            "j.yaml:8: state `choose`: optimize.goal `app.installed` differs from the journey's goal `order.completed`"
                .to_owned()
        ]
    );
    let bad_period = errors(&OPTIMIZED.replace("after: 14d", "after: soon"));
    assert_eq!(bad_period.len(), 1, "{bad_period:?}");
    assert!(
        bad_period[0].starts_with("j.yaml:8: state `choose`: optimize.after: "),
        "{bad_period:?}"
    );
    let on_exit = errors(&OPTIMIZED.replace(
        "    exit: sent\n",
        "    exit: sent\n    optimize: { after: 1d }\n",
    ));
    assert!(
        on_exit.contains(&"j.yaml:13: state `done`: `optimize` belongs to a `split`".to_owned()),
        "{on_exit:?}"
    );
}
