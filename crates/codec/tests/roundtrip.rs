//! Every record survives encode → decode in both framings, through the checked-in schemas.

use std::collections::BTreeMap;

use proptest::prelude::*;
use switchboard_codec::*;

fn codec() -> Codec<LocalSchemas> {
    let local = LocalSchemas::embedded().expect("embedded schemas load");
    futures_block_on(Codec::new(local)).expect("codec")
}

fn futures_block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn attr() -> impl Strategy<Value = AttrValue> {
    prop_oneof![
        Just(AttrValue::Null),
        any::<bool>().prop_map(AttrValue::Bool),
        any::<i64>().prop_map(AttrValue::Long),
        (-1e12f64..1e12).prop_map(AttrValue::Double),
        ".{0,20}".prop_map(AttrValue::String),
    ]
}

prop_compose! {
    fn channel_event()(
        event_id in "[a-f0-9-]{1,36}",
        event_type in "[a-z]{1,8}\\.[a-z]{1,10}",
        channel in prop::sample::select(vec!["web", "app", "email", "sms", "push", "pos"]),
        occurred_at in 0i64..4_102_444_800_000,
        identifiers in prop::collection::vec(("[a-z_]{1,12}", ".{0,30}").prop_map(|(k, v)| Identifier::new(k, v)), 1..5),
        attributes in prop::collection::btree_map("[a-z_]{1,10}", attr(), 0..6),
        locale in proptest::option::of("[a-z]{2}-[A-Z]{2}"),
        timezone in proptest::option::of("[A-Z][a-z]+/[A-Z][a-z]+"),
    ) -> ChannelEvent {
        ChannelEvent { event_id, event_type, channel: channel.to_owned(), occurred_at, identifiers, attributes, locale, timezone }
    }
}

proptest! {
    #[test]
    fn channel_events_round_trip_as_json(event in channel_event()) {
        // The JSON topics, `simulate` and the engine's stored records read attributes bare.
        let json = serde_json::to_string(&event).unwrap();
        let back: ChannelEvent = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &event);
    }
}

#[test]
fn a_bare_attribute_is_read_by_its_kind() {
    let attrs: BTreeMap<String, AttrValue> = serde_json::from_str(
        r#"{"n": null, "b": true, "l": -3, "d": 2.5, "whole": 2.0, "s": "x", "big": 18446744073709551615}"#,
    )
    .unwrap();
    assert_eq!(attrs["n"], AttrValue::Null);
    assert_eq!(attrs["b"], AttrValue::Bool(true));
    assert_eq!(attrs["l"], AttrValue::Long(-3));
    assert_eq!(attrs["d"], AttrValue::Double(2.5));
    assert_eq!(attrs["whole"], AttrValue::Double(2.0));
    assert_eq!(attrs["s"], AttrValue::String("x".into()));
    assert_eq!(
        attrs["big"],
        AttrValue::Double(18_446_744_073_709_551_615.0)
    );
    for nested in [r#"{"a": [1]}"#, r#"{"a": {"b": 1}}"#] {
        let e = serde_json::from_str::<BTreeMap<String, AttrValue>>(nested).unwrap_err();
        assert!(
            e.to_string()
                .contains("null, a boolean, a number or a string"),
            "{e}"
        );
    }
}

proptest! {
    #[test]
    fn channel_events_round_trip_in_both_framings(event in channel_event()) {
        let codec = codec();
        for framing in [Framing::Confluent, Framing::SingleObject] {
            let bytes = codec.encode(&event, framing).unwrap();
            let back: ChannelEvent = futures_block_on(codec.decode(&bytes)).unwrap();
            prop_assert_eq!(&back, &event);
        }
    }

    #[test]
    fn customer_events_round_trip(event in channel_event(), offset in 0i64..i64::MAX, merged in any::<bool>()) {
        let codec = codec();
        let payload = if merged {
            CustomerPayload::Merged(ProfileMerged { survivor: "p1".into(), loser: "p2".into(), cause_event_id: event.event_id.clone() })
        } else {
            CustomerPayload::Event(event.clone())
        };
        let record = CustomerEvent {
            profile_id: "p1".into(),
            stitched_at: event.occurred_at,
            source: SourcePosition { topic: "events.web".into(), partition: 3, offset },
            payload,
            identifiers: event.identifiers.clone(),
        };
        let bytes = codec.encode(&record, Framing::Confluent).unwrap();
        let back: CustomerEvent = futures_block_on(codec.decode(&bytes)).unwrap();
        prop_assert_eq!(back, record);
    }
}

#[test]
fn send_commands_and_transitions_round_trip() {
    let codec = codec();
    let command = SendCommand {
        command_id: "6f1c0d5e-0000-5000-8000-000000000001".into(),
        profile_id: "p-42".into(),
        channel: "sms".into(),
        address: "+447700900123".into(),
        template: "cart-reminder".into(),
        locale: "en-GB".into(),
        vars: BTreeMap::from([("value".into(), "129.90".into())]),
        journey: "abandoned-cart".into(),
        version: 3,
        step: "remind".into(),
        variant: Some("b".into()),
        not_after: Some(1_800_000_000_000),
        reason: SendReason {
            trigger: "event:e-1".into(),
            path: vec!["pause".into(), "remind".into()],
            fallback_from: vec!["push".into()],
        },
        created_at: 1_790_000_000_000,
    };
    let bytes = codec.encode(&command, Framing::Confluent).unwrap();
    let back: SendCommand = futures_block_on(codec.decode(&bytes)).unwrap();
    assert_eq!(back, command);

    let transition = JourneyTransition {
        transition_id: "t-1".into(),
        profile_id: "p-42".into(),
        journey: "abandoned-cart".into(),
        version: 3,
        kind: TransitionKind::Suppressed,
        step: Some("remind".into()),
        reason: Some("quiet_hours".into()),
        trigger: "timer:abc".into(),
        at: 1_790_000_000_000,
        variant: Some("b".into()),
        holdout: false,
        entry_id: Some("entry-1".into()),
        step_kind: Some("send".into()),
    };
    let bytes = codec.encode(&transition, Framing::SingleObject).unwrap();
    let back: JourneyTransition = futures_block_on(codec.decode(&bytes)).unwrap();
    assert_eq!(back, transition);
}

#[test]
fn non_finite_doubles_keep_their_bits() {
    let codec = codec();
    let odd = [
        f64::NAN,
        -f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        5e-324,
    ];
    let event = ChannelEvent {
        event_id: "e".into(),
        event_type: "cart.updated".into(),
        channel: "web".into(),
        occurred_at: 0,
        identifiers: vec![Identifier::new("cookie", "c")],
        attributes: odd
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("a{i}"), AttrValue::Double(*d)))
            .collect(),
        locale: None,
        timezone: None,
    };
    let bytes = codec.encode(&event, Framing::SingleObject).unwrap();
    let back: ChannelEvent = futures_block_on(codec.decode(&bytes)).unwrap();
    for (i, d) in odd.iter().enumerate() {
        let Some(AttrValue::Double(got)) = back.attributes.get(&format!("a{i}")) else {
            panic!("a{i} is not a double: {:?}", back.attributes);
        };
        assert_eq!(got.to_bits(), d.to_bits(), "a{i}");
    }
    assert_eq!(codec.encode(&back, Framing::SingleObject).unwrap(), bytes);
}

#[test]
fn a_command_is_not_decoded_as_an_event() {
    let codec = codec();
    let transition = JourneyTransition {
        transition_id: "t".into(),
        profile_id: "p".into(),
        journey: "j".into(),
        version: 1,
        kind: TransitionKind::Entered,
        step: None,
        reason: None,
        trigger: "event:x".into(),
        at: 0,
        variant: None,
        holdout: false,
        entry_id: None,
        step_kind: None,
    };
    let bytes = codec.encode(&transition, Framing::Confluent).unwrap();
    let err = futures_block_on(codec.decode::<ChannelEvent>(&bytes)).unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::WrongType {
                expected: "io.switchboard.ChannelEvent",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.reason(), "wrong_type");
}

prop_compose! {
    fn send_command()(
        command_id in "[a-f0-9-]{36}",
        channel in prop::sample::select(vec!["email", "sms", "push"]),
        address in ".{0,40}",
        var in proptest::option::of(("[a-z_]{1,10}", ".{0,20}")),
        version in any::<i32>(),
        variant in proptest::option::of("[a-z]{1,3}"),
        not_after in proptest::option::of(any::<i64>()),
        path in prop::collection::vec("[a-z-]{1,12}", 0..4),
        fallback_from in prop::collection::vec("[a-z]{2,5}", 0..3),
        created_at in any::<i64>(),
    ) -> SendCommand {
        SendCommand {
            command_id, profile_id: "01a21337-4dc1-7a45-b9a4-559cff67d1d7".into(),
            channel: channel.to_owned(), address, template: "cart-reminder".into(),
            locale: "en-GB".into(), vars: var.into_iter().collect(), journey: "abandoned-cart".into(),
            version, step: "remind".into(), variant, not_after,
            reason: SendReason { trigger: "event:e-1".into(), path, fallback_from }, created_at,
        }
    }
}

prop_compose! {
    fn transition()(
        kind in prop::sample::select(TransitionKind::all().collect::<Vec<_>>()),
        version in any::<i32>(),
        step in proptest::option::of("[a-z-]{1,12}"),
        reason in proptest::option::of("[a-z_]{1,12}"),
        at in any::<i64>(),
        variant in proptest::option::of("[a-z]{1,3}"),
        holdout in any::<bool>(),
        entry_id in proptest::option::of("[a-f0-9-]{1,36}"),
        step_kind in proptest::option::of("[a-z_]{1,10}"),
    ) -> JourneyTransition {
        JourneyTransition { transition_id: "t-1".into(), profile_id: "p-42".into(), journey: "welcome".into(), version, kind, step, reason, trigger: "timer:welcome@1".into(), at, variant, holdout, entry_id, step_kind }
    }
}

/// The datum the codec writes (straight from the record) against the one apache-avro writes
/// from the record's `Value` with the same schema: the same bytes. Maps hold at most one
/// entry here, since apache-avro writes map entries in hash order.
fn same_datum_as_apache_avro<T: AvroRecord>(
    codec: &Codec<LocalSchemas>,
    record: &T,
) -> Result<(), TestCaseError> {
    let bytes = codec.encode(record, Framing::Confluent).unwrap();
    let schema = futures_block_on(codec.writer_of(&bytes)).unwrap();
    let theirs = apache_avro::to_avro_datum(&schema.schema, record.to_value()).unwrap();
    prop_assert_eq!(&bytes[5..], &theirs[..]);
    Ok(())
}

proptest! {
    #[test]
    fn the_codec_writes_the_datum_apache_avro_writes(
        mut event in channel_event(),
        command in send_command(),
        transition in transition(),
        merged in any::<bool>(),
    ) {
        let codec = codec();
        while event.attributes.len() > 1 {
            event.attributes.pop_first();
        }
        same_datum_as_apache_avro(&codec, &event)?;
        same_datum_as_apache_avro(&codec, &command)?;
        same_datum_as_apache_avro(&codec, &transition)?;
        let payload = if merged {
            CustomerPayload::Merged(ProfileMerged { survivor: "p1".into(), loser: "p2".into(), cause_event_id: event.event_id.clone() })
        } else {
            CustomerPayload::Event(event.clone())
        };
        let stitched = CustomerEvent {
            profile_id: "p1".into(),
            stitched_at: event.occurred_at,
            source: SourcePosition { topic: "events.web".into(), partition: 3, offset: 7 },
            payload,
            identifiers: event.identifiers.clone(),
        };
        same_datum_as_apache_avro(&codec, &stitched)?;
        // And every one reads back as itself.
        let back: SendCommand = futures_block_on(codec.decode(&codec.encode(&command, Framing::SingleObject).unwrap())).unwrap();
        prop_assert_eq!(back, command);
        let back: JourneyTransition = futures_block_on(codec.decode(&codec.encode(&transition, Framing::SingleObject).unwrap())).unwrap();
        prop_assert_eq!(back, transition);
    }
}

/// The record the codec reads from a datum in the newest schema (straight from the bytes)
/// against the one apache-avro reads from it (through its `Value`): the same record, from
/// the same datum, maps of any size included.
fn same_record_as_apache_avro<T: AvroRecord + PartialEq + std::fmt::Debug>(
    codec: &Codec<LocalSchemas>,
    record: &T,
) -> Result<(), TestCaseError> {
    let bytes = codec.encode(record, Framing::Confluent).unwrap();
    let schema = futures_block_on(codec.writer_of(&bytes)).unwrap();
    let value = apache_avro::from_avro_datum(&schema.schema, &mut &bytes[5..], None).unwrap();
    let theirs = T::from_value(value).unwrap();
    let ours: T = codec.decode_with(&schema, &bytes).unwrap();
    prop_assert_eq!(&ours, &theirs);
    prop_assert_eq!(&ours, record);
    Ok(())
}

proptest! {
    #[test]
    fn the_codec_reads_the_record_apache_avro_reads(
        event in channel_event(),
        command in send_command(),
        transition in transition(),
        vars in prop::collection::btree_map("[a-z_]{1,10}", ".{0,20}", 0..6),
        merged in any::<bool>(),
    ) {
        let codec = codec();
        same_record_as_apache_avro(&codec, &event)?;
        same_record_as_apache_avro(&codec, &SendCommand { vars, ..command })?;
        same_record_as_apache_avro(&codec, &transition)?;
        let payload = if merged {
            CustomerPayload::Merged(ProfileMerged { survivor: "p1".into(), loser: "p2".into(), cause_event_id: event.event_id.clone() })
        } else {
            CustomerPayload::Event(event.clone())
        };
        same_record_as_apache_avro(&codec, &CustomerEvent {
            profile_id: "p1".into(),
            stitched_at: event.occurred_at,
            source: SourcePosition { topic: "events.web".into(), partition: 3, offset: 7 },
            payload,
            identifiers: event.identifiers.clone(),
        })?;
    }
}

/// A merge notice written by an earlier release, whose `fold` listed what to fold, reads as
/// the same merge: the list was never read, and the codec now writes it empty.
#[test]
fn a_merge_with_a_fold_list_from_an_earlier_release_still_reads() {
    use apache_avro::types::Value;
    let codec = codec();
    let merge = CustomerEvent {
        profile_id: "p1".into(),
        stitched_at: 1,
        source: SourcePosition {
            topic: "events.web".into(),
            partition: 3,
            offset: 7,
        },
        payload: CustomerPayload::Merged(ProfileMerged {
            survivor: "p1".into(),
            loser: "p2".into(),
            cause_event_id: "e1".into(),
        }),
        identifiers: vec![],
    };
    let ours = codec.encode(&merge, Framing::Confluent).unwrap();
    let schema = futures_block_on(codec.writer_of(&ours)).unwrap();
    let listed = |v: Value| match v {
        Value::Record(fields) => Value::Record(
            fields
                .into_iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("payload", Value::Union(1, m)) => (
                        k,
                        Value::Union(
                            1,
                            Box::new(match *m {
                                Value::Record(mf) => Value::Record(
                                    mf.into_iter()
                                        .map(|(n, x)| {
                                            if n == "fold" {
                                                (
                                                    n,
                                                    Value::Array(vec![
                                                        Value::String("attributes".into()),
                                                        Value::String("timers".into()),
                                                    ]),
                                                )
                                            } else {
                                                (n, x)
                                            }
                                        })
                                        .collect(),
                                ),
                                other => other,
                            }),
                        ),
                    ),
                    (_, v) => (k, v),
                })
                .collect(),
        ),
        other => other,
    };
    let mut theirs = ours[..5].to_vec();
    theirs.extend(apache_avro::to_avro_datum(&schema.schema, listed(merge.to_value())).unwrap());
    assert_ne!(theirs, ours, "the old record carries the list");
    let back: CustomerEvent = futures_block_on(codec.decode(&theirs)).unwrap();
    assert_eq!(back, merge);
}
