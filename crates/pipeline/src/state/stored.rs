//! A record as Redis stores it: `<epoch>:<dictionary>:` then the record's JSON,
//! zstd-compressed against that dictionary.
//!
//! The epoch leads in decimal so the save script reads it with `GETRANGE` without touching the
//! rest. Most of a record is field names and the example journeys' vocabulary, the same in
//! every record: against a dictionary of it zstd at level 1 stores a customer with two
//! journeys in flight in under a quarter of its JSON. Dictionary 2 (`record-v2.dict`) is
//! trained by `examples/record_dictionary.rs` on records as the engine leaves them, so it
//! carries entropy tables as well as text and zstd codes a record without building tables of
//! its own: 2.6 times faster to write and 2.8 to read than dictionary 1 (`record-v1.dict`,
//! text only), at the same size. A released dictionary is fixed forever (a test pins each);
//! a new one gets a new number and the old ones stay readable. Dictionary 0 is none.

use std::cell::RefCell;

use super::{Record, StateError};

/// Dictionary 1: a record's field names and the example journeys' words.
const V1: &[u8] = include_bytes!("record-v1.dict");

/// Dictionary 2: trained on 25 000 records of generated traffic through the example journeys.
const V2: &[u8] = include_bytes!("record-v2.dict");

/// The dictionary records are written with, and its number.
const DICTIONARY: u8 = 2;
const WRITTEN_WITH: &[u8] = V2;

/// Dictionaries by number; 0 is none.
fn dictionary(id: u8) -> Option<&'static [u8]> {
    match id {
        0 => Some(b""),
        1 => Some(V1),
        2 => Some(V2),
        _ => None,
    }
}

/// zstd's fastest level: the records are small, and every event writes one.
const LEVEL: i32 = 1;

/// A record larger than this is refused rather than inflated (a corrupt or foreign value).
const MAX_RECORD: usize = 16 << 20;

type Decompressors = Vec<(u8, zstd::bulk::Decompressor<'static>)>;

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSORS: RefCell<Decompressors> = const { RefCell::new(Vec::new()) };
}

fn err(what: &str, e: impl std::fmt::Display) -> StateError {
    StateError(format!("stored record: {what}: {e}"))
}

fn zstd_err(e: std::io::Error) -> StateError {
    err("zstd", e)
}

/// The value to store for `record`, written by a partition owner of `epoch`.
pub fn encode(epoch: u64, record: &Record) -> Result<Vec<u8>, StateError> {
    let json = serde_json::to_vec(record).map_err(|e| err("not serializable", e))?;
    let mut out = format!("{epoch}:{DICTIONARY}:").into_bytes();
    COMPRESSOR.with_borrow_mut(|c| {
        let c = match c {
            Some(c) => c,
            None => c.insert(
                zstd::bulk::Compressor::with_dictionary(LEVEL, WRITTEN_WITH).map_err(zstd_err)?,
            ),
        };
        out.extend(c.compress(&json).map_err(zstd_err)?);
        Ok(out)
    })
}

/// The record in a stored value.
pub fn decode(value: &[u8]) -> Result<Record, StateError> {
    let mut parts = value.splitn(3, |b| *b == b':');
    let (Some(_epoch), Some(id), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(err("not '<epoch>:<dictionary>:<data>'", value.len()));
    };
    let id = std::str::from_utf8(id)
        .ok()
        .and_then(|id| id.parse::<u8>().ok())
        .ok_or_else(|| err("no dictionary number", String::from_utf8_lossy(id)))?;
    let dict = dictionary(id).ok_or_else(|| err("unknown dictionary", id))?;
    let size = zstd::zstd_safe::get_frame_content_size(data)
        .ok()
        .flatten()
        .ok_or_else(|| err("not zstd", "no frame content size"))?;
    let size = usize::try_from(size)
        .ok()
        .filter(|s| *s <= MAX_RECORD)
        .ok_or_else(|| err("too large", size))?;
    let json = DECOMPRESSORS.with_borrow_mut(|all| {
        if !all.iter().any(|(i, _)| *i == id) {
            let d = zstd::bulk::Decompressor::with_dictionary(dict).map_err(zstd_err)?;
            all.push((id, d));
        }
        match all.iter_mut().find(|(i, _)| *i == id) {
            Some((_, d)) => d.decompress(data, size).map_err(zstd_err),
            None => Err(err("unknown dictionary", id)),
        }
    })?;
    serde_json::from_slice(&json).map_err(|e| err("not a record", e))
}

/// The JSON of a stored value, for tools and tests that look into Redis.
pub fn to_json(value: &[u8]) -> Result<String, StateError> {
    serde_json::to_string(&decode(value)?).map_err(|e| err("not serializable", e))
}

#[cfg(test)]
mod tests {
    use switchboard_test_support::customers::after_cart_and_view;

    use super::*;
    use crate::state::RecentEvents;

    fn typical(n: u32) -> Record {
        let mut recent = RecentEvents::default();
        for event in ["cart", "view"] {
            recent.first_time(&format!("{event}-{n}"), 1_764_000_000_000, 86_400_000);
        }
        Record {
            customer: after_cart_and_view(n),
            offset: 41,
            merged_into: None,
            recent,
        }
    }

    #[test]
    fn a_record_survives_storage_in_a_fraction_of_its_json() {
        let record = typical(7);
        let value = encode(7, &record).unwrap();
        assert!(value.starts_with(b"7:2:"));
        let json = serde_json::to_vec(&record).unwrap();
        println!("{} bytes of JSON stored in {}", json.len(), value.len());
        assert!(
            value.len() * 4 < json.len(),
            "{} of {}",
            value.len(),
            json.len()
        );
        assert_eq!(decode(&value).unwrap(), record);
    }

    #[test]
    fn a_record_without_the_dictionary_survives_too() {
        let record = typical(8);
        let mut value = b"3:0:".to_vec();
        value.extend(zstd::bulk::compress(&serde_json::to_vec(&record).unwrap(), 1).unwrap());
        assert_eq!(decode(&value).unwrap(), record);
    }

    #[test]
    fn a_record_written_with_dictionary_one_stays_readable() {
        let record = typical(9);
        let mut value = b"5:1:".to_vec();
        let mut c = zstd::bulk::Compressor::with_dictionary(1, V1).unwrap();
        value.extend(c.compress(&serde_json::to_vec(&record).unwrap()).unwrap());
        assert_eq!(decode(&value).unwrap(), record);
    }

    #[test]
    fn records_are_written_with_the_dictionary_their_number_names() {
        assert_eq!(dictionary(DICTIONARY), Some(WRITTEN_WITH));
    }

    #[test]
    fn released_dictionaries_never_change() {
        // Records written with them must stay readable: a changed dictionary is a new number.
        for (id, len, digest) in [
            (1, 1886, "40f3a2fe-e32d-58b8-958f-811357b230f9"),
            (2, 2048, "23e48b7c-8eb0-5806-8fda-04a4adda9246"),
        ] {
            let dict = dictionary(id).unwrap();
            assert_eq!(dict.len(), len, "dictionary {id}");
            assert_eq!(
                uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, dict).to_string(),
                digest,
                "dictionary {id}"
            );
        }
    }

    #[test]
    fn a_foreign_value_is_an_error_not_a_panic() {
        for value in [
            &b""[..],
            b"12",
            b"12:1",
            b"12:{\"customer\":{}}",
            b"3:9:\x28\xb5\x2f\xfd\x00",
            b"3:1:\x28\xb5\x2f\xfd\x00",
        ] {
            let e = decode(value).unwrap_err();
            assert!(e.0.starts_with("stored record"), "{e}");
        }
    }
}
