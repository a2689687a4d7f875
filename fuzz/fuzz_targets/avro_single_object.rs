//! Avro single-object framing: C3 01, the writer's fingerprint, an Avro body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_codec::Framing;
use switchboard_fuzz::{decode_all, writers};

fuzz_target!(|input: (u8, &[u8])| {
    let (pick, body) = input;
    let writers = writers();
    let (_, fingerprint) = writers[usize::from(pick) % writers.len()];
    let mut framed = vec![0xC3, 0x01];
    framed.extend_from_slice(&fingerprint.to_le_bytes());
    framed.extend_from_slice(body);
    decode_all(&framed, Framing::SingleObject);
});
