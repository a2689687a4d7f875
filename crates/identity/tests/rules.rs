//! Identity rules: normalisation, junk values, limits and order.

use proptest::prelude::*;
use switchboard_codec::Identifier;
use switchboard_identity::*;

fn ids(pairs: &[(&str, &str)]) -> Vec<Identifier> {
    pairs.iter().map(|(k, v)| Identifier::new(*k, *v)).collect()
}

#[test]
fn values_are_normalised_per_kind() {
    let p = IdentityRules::default().prepare(&ids(&[
        ("email", "  Ann.Smith@Example.COM "),
        ("phone", "07911 123456"),
        ("phone", "+33 6 12 34 56 78"),
        ("customer_id", " C-42 "),
    ]));
    assert_eq!(p.rejected, vec![]);
    assert_eq!(
        p.accepted,
        ids(&[
            ("customer_id", "C-42"),
            ("email", "ann.smith@example.com"),
            ("phone", "+33612345678"),
            ("phone", "+447911123456")
        ])
    );
}

#[test]
fn a_phone_number_seen_before_normalises_as_the_first_time_in_its_own_region() {
    let gb = IdentityRules::default();
    let us = IdentityRules {
        default_region: "US".into(),
        ..IdentityRules::default()
    };
    let national = ids(&[("phone", "07911 123456")]);
    let us_number = ids(&[("phone", "(415) 555-2671")]);
    for _ in 0..2 {
        assert_eq!(
            gb.prepare(&national).accepted,
            ids(&[("phone", "+447911123456")])
        );
        // The same digits are no number in the US; a US number is none in GB.
        assert_eq!(us.prepare(&national).accepted, vec![]);
        assert_eq!(
            us.prepare(&us_number).accepted,
            ids(&[("phone", "+14155552671")])
        );
        assert_eq!(gb.prepare(&us_number).accepted, vec![]);
    }
}

#[test]
fn junk_values_never_link_anything() {
    let rules = IdentityRules {
        blocked: vec!["test@example.com".into()],
        ..IdentityRules::default()
    };
    for junk in [
        "",
        "  ",
        "null",
        "NULL",
        "undefined",
        "anonymous",
        "0",
        "-1",
        "\"null\"",
        "'undefined'",
        "\"'anonymous'\"",
        "test@example.com",
        "TEST@example.com",
    ] {
        let p = rules.prepare(&ids(&[("anonymous_id", junk), ("email", junk)]));
        assert!(
            p.accepted.is_empty(),
            "`{junk}` was accepted: {:?}",
            p.accepted
        );
    }
}

#[test]
fn malformed_emails_and_phones_are_rejected_with_a_reason_not_the_value() {
    let p = IdentityRules::default().prepare(&ids(&[
        ("email", "no-at-sign"),
        ("phone", "12"),
        ("fax", "123"),
        ("email", "a@b.co"),
    ]));
    assert_eq!(p.accepted, ids(&[("email", "a@b.co")]));
    let reasons: Vec<&str> = p.rejected.iter().map(|(_, r)| r.reason()).collect();
    assert_eq!(reasons, vec!["bad_email", "bad_phone", "unknown_kind"]);
}

#[test]
fn one_event_cannot_carry_more_than_the_limit_of_a_kind() {
    let p = IdentityRules::default().prepare(&ids(&[("customer_id", "b"), ("customer_id", "a")]));
    assert_eq!(
        p.accepted,
        ids(&[("customer_id", "a")]),
        "deterministic: the smallest value is kept"
    );
    assert_eq!(p.rejected[0].1.reason(), "over_limit");
}

#[test]
fn duplicates_after_normalisation_count_once() {
    let p = IdentityRules::default().prepare(&ids(&[("email", "A@x.io"), ("email", "a@X.IO ")]));
    assert_eq!(p.accepted.len(), 1);
    assert_eq!(p.rejected[0].1, Rejected::Duplicate);
}

#[test]
fn the_rules_read_from_toml_and_bad_ones_name_the_key() {
    let rules: IdentityRules = toml::from_str(
        "default_region = \"FR\"\nblocked = [\"guest\"]\n[[kinds]]\nkind = \"customer_id\"\nnormalise = \"trim\"\npriority = 100\nmax_per_profile = 1\n[[kinds]]\nkind = \"phone\"\nnormalise = \"phone\"\npriority = 50\n",
    )
    .unwrap();
    rules.validate().unwrap();
    assert_eq!(
        rules.prepare(&ids(&[("phone", "06 12 34 56 78")])).accepted,
        ids(&[("phone", "+33612345678")])
    );
    assert!(
        rules
            .prepare(&ids(&[("customer_id", "GUEST")]))
            .accepted
            .is_empty()
    );

    let bad = IdentityRules {
        default_region: "XX".into(),
        ..IdentityRules::default()
    };
    assert_eq!(bad.validate().unwrap_err().key, "default_region");
    let mut twice = IdentityRules::default();
    twice.kinds.push(twice.kinds[0].clone());
    assert_eq!(twice.validate().unwrap_err().key, "kinds[7].kind");
}

proptest! {
    #[test]
    fn preparing_never_panics_and_is_idempotent(raw in prop::collection::vec((prop::sample::select(vec!["email", "phone", "customer_id", "device_id", "other"]), ".{0,30}"), 0..8)) {
        let rules = IdentityRules::default();
        let input: Vec<Identifier> = raw.iter().map(|(k, v)| Identifier::new(*k, v.clone())).collect();
        let once = rules.prepare(&input);
        let twice = rules.prepare(&once.accepted);
        prop_assert_eq!(&twice.accepted, &once.accepted);
        prop_assert!(twice.rejected.is_empty());
    }
}
