//! Malformed payloads are typed errors with a stable reason, never panics.

use proptest::prelude::*;
use switchboard_codec::*;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn codec() -> Codec<LocalSchemas> {
    block_on(Codec::new(LocalSchemas::embedded().expect("schemas"))).expect("codec")
}

fn event() -> ChannelEvent {
    ChannelEvent {
        event_id: "e-1".into(),
        event_type: "cart.updated".into(),
        channel: "web".into(),
        occurred_at: 1_790_000_000_000,
        identifiers: vec![
            Identifier::new("anonymous_id", "c-123"),
            Identifier::new("email", "a@example.com"),
        ],
        attributes: [("cart_value".to_owned(), AttrValue::Double(129.9))].into(),
        locale: Some("en-GB".into()),
        timezone: None,
    }
}

fn reason(bytes: &[u8]) -> &'static str {
    block_on(codec().decode::<ChannelEvent>(bytes))
        .unwrap_err()
        .reason()
}

#[test]
fn each_kind_of_malformed_input_has_its_own_reason() {
    let good = codec().encode(&event(), Framing::Confluent).unwrap();
    assert_eq!(reason(&[]), "empty");
    assert_eq!(reason(&[0, 0, 1]), "short_header");
    assert_eq!(reason(&[0xC3, 0x01, 1, 2]), "short_header");
    assert_eq!(reason(b"{\"event_id\":\"x\"}"), "wrong_magic");
    assert_eq!(reason(&[0, 0, 0, 0x30, 0x39, 2, b'a']), "unknown_schema_id");
    assert_eq!(
        reason(&[0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0]),
        "unknown_fingerprint"
    );
    assert_eq!(reason(&good[..good.len() / 2]), "bad_body");
    let mut trailing = good.clone();
    trailing.extend_from_slice(&[1, 2, 3]);
    assert_eq!(reason(&trailing), "trailing_bytes");
    let command_id_3 = [0u8, 0, 0, 0, 3, 2, b'x'];
    assert_eq!(reason(&command_id_3), "wrong_type");
}

#[test]
fn a_huge_declared_length_is_an_error_not_an_allocation() {
    // Confluent header for ChannelEvent (id 1), then a string length of ~2^62 as zig-zag varint.
    let bytes = [
        0u8, 0, 0, 0, 1, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F,
    ];
    assert_eq!(reason(&bytes), "bad_body");
}

#[test]
fn a_huge_declared_array_is_refused_before_anything_is_reserved() {
    // A 13-byte ChannelEvent whose identifiers array declares 100 million items: apache-avro
    // would reserve 100 M values (gigabytes) before reading the first. Found by the
    // `avro_confluent` fuzz target.
    let mut bytes = vec![0u8, 0, 0, 0, 1, 2, b'e', 2, b't', 2, b'c', 2];
    let mut n: u64 = 100_000_000 << 1; // zig-zag
    while n >= 0x80 {
        bytes.push((n as u8) | 0x80);
        n >>= 7;
    }
    bytes.push(n as u8);
    let err = block_on(codec().decode::<ChannelEvent>(&bytes)).unwrap_err();
    assert_eq!(err.reason(), "bad_body");
    assert!(err.to_string().contains("allocate"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let c = codec();
        let _ = block_on(c.decode::<ChannelEvent>(&bytes));
        let _ = block_on(c.decode::<SendCommand>(&bytes));
    }

    #[test]
    fn random_bodies_behind_valid_headers_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..256),
        single_object in any::<bool>(),
    ) {
        let c = codec();
        let good = c.encode(&event(), if single_object { Framing::SingleObject } else { Framing::Confluent }).unwrap();
        let header = if single_object { 10 } else { 5 };
        let mut bytes = good[..header].to_vec();
        bytes.extend_from_slice(&body);
        let _ = block_on(c.decode::<ChannelEvent>(&bytes));
    }

    #[test]
    fn every_truncation_of_a_good_event_is_an_error(cut in 0usize..60) {
        let c = codec();
        let good = c.encode(&event(), Framing::Confluent).unwrap();
        let cut = cut.min(good.len() - 1);
        prop_assert!(block_on(c.decode::<ChannelEvent>(&good[..cut])).is_err());
    }
}
