//! Schema evolution: an older producer's events decode with the newer schema; an
//! incompatible change is refused when the schemas are loaded.

use std::fs;

use switchboard_codec::*;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

const V1: &str = include_str!("../../../schemas/channel_event.v1.avsc");

/// Writes a schema folder with the checked-in v1 as id 1 and `v2` as id 11.
fn folder_with_v2(v2: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "customer_event.v1.avsc",
        "send_command.v1.avsc",
        "journey_transition.v1.avsc",
    ] {
        fs::copy(format!("../../schemas/{f}"), dir.path().join(f)).unwrap();
    }
    fs::write(dir.path().join("channel_event.v1.avsc"), V1).unwrap();
    fs::write(dir.path().join("channel_event.v2.avsc"), v2).unwrap();
    fs::write(
        dir.path().join("manifest.toml"),
        "[[schema]]\nid = 1\nfile = \"channel_event.v1.avsc\"\n\
         [[schema]]\nid = 2\nfile = \"customer_event.v1.avsc\"\n\
         [[schema]]\nid = 3\nfile = \"send_command.v1.avsc\"\n\
         [[schema]]\nid = 4\nfile = \"journey_transition.v1.avsc\"\n\
         [[schema]]\nid = 11\nfile = \"channel_event.v2.avsc\"\n",
    )
    .unwrap();
    dir
}

/// v1 plus one field inserted before `locale`.
fn v2_with_field(field: &str) -> String {
    V1.replacen(
        "{\"name\": \"locale\"",
        &format!("{field},\n    {{\"name\": \"locale\""),
        1,
    )
}

#[test]
fn an_added_optional_field_is_backward_compatible() {
    let v2 =
        v2_with_field(r#"{"name": "consent_source", "type": ["null", "string"], "default": null}"#);
    assert_ne!(v2, V1, "the field was inserted");
    let dir = folder_with_v2(&v2);
    let newer = LocalSchemas::load(dir.path()).expect("v2 is a compatible evolution of v1");
    assert_eq!(newer.newest(ChannelEvent::NAME).unwrap().id, 11);

    // An old producer writes with v1 (id 1) ...
    let old_codec = block_on(Codec::new(LocalSchemas::embedded().unwrap())).unwrap();
    let event = ChannelEvent {
        event_id: "e-old".into(),
        event_type: "order.completed".into(),
        channel: "pos".into(),
        occurred_at: 1_790_000_000_000,
        identifiers: vec![Identifier::new("loyalty_card", "LC-7")],
        attributes: Default::default(),
        locale: Some("fr-FR".into()),
        timezone: Some("Europe/Paris".into()),
    };
    let bytes = old_codec.encode(&event, Framing::Confluent).unwrap();
    assert_eq!(&bytes[..5], &[0, 0, 0, 0, 1]);

    // ... and a reader on v2 still reads it, the new field taking its default.
    let new_codec = block_on(Codec::new(newer)).unwrap();
    let back: ChannelEvent = block_on(new_codec.decode(&bytes)).unwrap();
    assert_eq!(back, event);
}

#[test]
fn an_added_required_field_is_rejected_with_both_ids_named() {
    let v2 = v2_with_field(r#"{"name": "store_id", "type": "string"}"#);
    let dir = folder_with_v2(&v2);
    let err = LocalSchemas::load(dir.path()).unwrap_err();
    match &err {
        CodecError::Incompatible {
            name, older, newer, ..
        } => {
            assert_eq!(name, ChannelEvent::NAME);
            assert_eq!((*older, *newer), (1, 11));
        }
        other => panic!("expected Incompatible, got {other}"),
    }
    assert!(
        err.to_string()
            .contains("schema id 1 cannot be read with schema id 11"),
        "{err}"
    );
}

#[test]
fn a_changed_field_type_is_rejected() {
    let v2 = V1.replacen(
        r#"{"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}"#,
        r#"{"name": "occurred_at", "type": "string""#,
        1,
    );
    assert_ne!(v2, V1);
    let err = LocalSchemas::load(folder_with_v2(&v2).path()).unwrap_err();
    assert!(matches!(err, CodecError::Incompatible { .. }), "{err}");
}

/// Transitions written by an earlier release (schema v1, id 4) read with the newest: the new
/// fields take their defaults. The new writer is v3 (id 6).
#[test]
fn a_transition_of_the_previous_release_reads_with_the_new_fields_defaulted() {
    use apache_avro::types::Value;
    let codec = block_on(Codec::new(LocalSchemas::embedded().unwrap())).unwrap();
    let transition = JourneyTransition {
        transition_id: "t-1".into(),
        profile_id: "p-1".into(),
        journey: "browse-ab-test".into(),
        version: 1,
        kind: TransitionKind::Goal,
        step: None,
        reason: Some("order.completed".into()),
        trigger: "event:o1".into(),
        at: 1_790_000_000_000,
        variant: None,
        holdout: false,
        entry_id: None,
        step_kind: None,
    };
    let ours = codec.encode(&transition, Framing::Confluent).unwrap();
    assert_eq!(&ours[..5], &[0, 0, 0, 0, 6], "written with v3");
    let v1 = block_on(codec.resolver().resolve(SchemaRef::Id(4))).unwrap();
    let Value::Record(fields) = transition.to_value() else {
        panic!("a record")
    };
    let old: Vec<(String, Value)> = fields
        .into_iter()
        .filter(|(name, _)| {
            !["variant", "holdout", "entry_id", "step_kind"].contains(&name.as_str())
        })
        .collect();
    let mut bytes = vec![0, 0, 0, 0, 4];
    bytes.extend(apache_avro::to_avro_datum(&v1.schema, Value::Record(old)).unwrap());
    let back: JourneyTransition = block_on(codec.decode(&bytes)).unwrap();
    assert_eq!(back, transition);
}

/// v3 adds the kind `winner`. A reader still on v2 (the previous release) reads it as
/// `unknown`, the enum's default, and skips it; a v2 record reads with v3 unchanged.
#[test]
fn a_winner_reads_as_unknown_with_the_previous_schema_and_v2_records_read_with_v3() {
    use apache_avro::types::Value;
    let codec = block_on(Codec::new(LocalSchemas::embedded().unwrap())).unwrap();
    let v2 = block_on(codec.resolver().resolve(SchemaRef::Id(5))).unwrap();
    let v3 = block_on(codec.resolver().resolve(SchemaRef::Id(6))).unwrap();
    let winner = JourneyTransition {
        transition_id: "w-1".into(),
        profile_id: String::new(),
        journey: "browse-ab-test".into(),
        version: 1,
        kind: TransitionKind::Winner,
        step: Some("choose".into()),
        reason: Some("b converted best".into()),
        trigger: "optimize:browse-ab-test".into(),
        at: 1_790_000_000_000,
        variant: Some("b".into()),
        holdout: false,
        entry_id: None,
        step_kind: Some("split".into()),
    };
    let ours = codec.encode(&winner, Framing::Confluent).unwrap();
    let old = apache_avro::from_avro_datum(&v3.schema, &mut &ours[5..], Some(&v2.schema)).unwrap();
    let Value::Record(fields) = old else {
        panic!("a record")
    };
    let kind = fields.iter().find(|(name, _)| name == "kind").unwrap();
    assert_eq!(kind.1, Value::Enum(8, "unknown".into()));

    let goal = JourneyTransition {
        kind: TransitionKind::Goal,
        ..winner
    };
    let mut bytes = vec![0, 0, 0, 0, 5];
    bytes.extend(apache_avro::to_avro_datum(&v2.schema, goal.to_value()).unwrap());
    let back: JourneyTransition = block_on(codec.decode(&bytes)).unwrap();
    assert_eq!(back, goal);
}
