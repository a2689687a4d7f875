//! What the Avro targets share: the embedded schemas, and the property every decoder input
//! must keep: an error, or a record that survives re-encoding unchanged.

use std::sync::LazyLock;

use switchboard_codec::{
    AvroRecord, ChannelEvent, Codec, CustomerEvent, Framing, LocalSchemas, SendCommand,
};

pub static CODEC: LazyLock<Codec<LocalSchemas>> = LazyLock::new(|| {
    let schemas = LocalSchemas::embedded().expect("the embedded schemas load");
    futures::executor::block_on(Codec::new(schemas)).expect("the codec starts")
});

/// The writer schemas a framed payload may name, so the fuzzer starts from valid headers.
pub fn writers() -> Vec<(u32, u64)> {
    [ChannelEvent::NAME, CustomerEvent::NAME, SendCommand::NAME]
        .iter()
        .filter_map(|n| CODEC.resolver().newest(n))
        .map(|s| (s.id, s.fingerprint))
        .collect()
}

/// Decodes `framed` as each record type; whatever decodes must encode, decode back, and encode
/// to the same bytes in `framing`. Bytes rather than records are compared because a record
/// holding a NaN attribute is not equal to itself.
pub fn decode_all(framed: &[u8], framing: Framing) {
    roundtrip::<ChannelEvent>(framed, framing);
    roundtrip::<CustomerEvent>(framed, framing);
    roundtrip::<SendCommand>(framed, framing);
}

fn roundtrip<T>(framed: &[u8], framing: Framing)
where
    T: switchboard_codec::AvroRecord + std::fmt::Debug,
{
    let Ok(record) = futures::executor::block_on(CODEC.decode::<T>(framed)) else {
        return;
    };
    let again = CODEC
        .encode(&record, framing)
        .expect("a decoded record encodes");
    let back: T = futures::executor::block_on(CODEC.decode(&again)).expect("and decodes");
    let last = CODEC.encode(&back, framing).expect("the copy encodes");
    assert_eq!(last, again, "{record:?} changed on its way back: {back:?}");
}
