//! Confluent framing: magic 0, a schema id, an Avro body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_codec::Framing;
use switchboard_fuzz::{decode_all, writers};

fuzz_target!(|input: (u8, &[u8])| {
    let (pick, body) = input;
    let writers = writers();
    let (id, _) = writers[usize::from(pick) % writers.len()];
    let mut framed = vec![0u8];
    framed.extend_from_slice(&id.to_be_bytes());
    framed.extend_from_slice(body);
    decode_all(&framed, Framing::Confluent);
    // And the raw bytes as they come, whatever header they carry.
    decode_all(body, Framing::Confluent);
});
