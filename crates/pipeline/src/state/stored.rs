//! A record as Redis stores it: `<epoch>:` then the record's JSON, zstd-compressed.
//!
//! The epoch leads in decimal so the save script reads it with `GETRANGE` without touching the
//! rest. zstd at level 1 takes a record of two journeys in flight from about 970 bytes to
//! about 400 (field names repeat, and most of a record is field names), for a few
//! microseconds each way.

use std::cell::RefCell;

use super::{Record, StateError};

/// zstd's fastest level: the records are small, and every event writes one.
const LEVEL: i32 = 1;

/// A record larger than this is refused rather than inflated (a corrupt or foreign value).
const MAX_RECORD: usize = 16 << 20;

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

fn err(what: &str, e: impl std::fmt::Display) -> StateError {
    StateError(format!("stored record: {what}: {e}"))
}

/// The value to store for `record`, written by a partition owner of `epoch`.
pub fn encode(epoch: u64, record: &Record) -> Result<Vec<u8>, StateError> {
    let json = serde_json::to_vec(record).map_err(|e| err("not serializable", e))?;
    let mut out = format!("{epoch}:").into_bytes();
    COMPRESSOR.with_borrow_mut(|c| {
        let c = match c {
            Some(c) => c,
            None => c.insert(zstd::bulk::Compressor::new(LEVEL).map_err(|e| err("zstd", e))?),
        };
        out.extend(c.compress(&json).map_err(|e| err("zstd", e))?);
        Ok(out)
    })
}

/// The record in a stored value.
pub fn decode(value: &[u8]) -> Result<Record, StateError> {
    let data = value
        .iter()
        .position(|b| *b == b':')
        .and_then(|at| value.get(at + 1..))
        .ok_or_else(|| err("no epoch", "missing ':'"))?;
    let size = zstd::zstd_safe::get_frame_content_size(data)
        .ok()
        .flatten()
        .ok_or_else(|| err("not zstd", "no frame content size"))?;
    let size = usize::try_from(size)
        .ok()
        .filter(|s| *s <= MAX_RECORD)
        .ok_or_else(|| err("too large", size))?;
    let json = DECOMPRESSOR.with_borrow_mut(|d| {
        let d = match d {
            Some(d) => d,
            None => d.insert(zstd::bulk::Decompressor::new().map_err(|e| err("zstd", e))?),
        };
        d.decompress(data, size).map_err(|e| err("zstd", e))
    })?;
    serde_json::from_slice(&json).map_err(|e| err("not a record", e))
}

/// The JSON of a stored value, for tools and tests that look into Redis.
pub fn to_json(value: &[u8]) -> Result<String, StateError> {
    serde_json::to_string(&decode(value)?).map_err(|e| err("not serializable", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_storage_and_shrinks() {
        let mut record = Record {
            offset: 41,
            ..Record::default()
        };
        record.customer.profile.id = "0193a5f0-7c1e-7d3a-9f2b-3c4d5e6f7a8b".into();
        for channel in ["email", "sms", "push"] {
            record.customer.profile.consent.insert(channel.into(), true);
            record
                .customer
                .profile
                .addresses
                .insert(channel.into(), format!("{channel}-address-of-the-customer"));
        }
        let value = encode(7, &record).unwrap();
        assert!(value.starts_with(b"7:"));
        let json = serde_json::to_vec(&record).unwrap();
        assert!(
            value.len() < json.len(),
            "{} >= {}",
            value.len(),
            json.len()
        );
        assert_eq!(decode(&value).unwrap(), record);
    }

    #[test]
    fn a_foreign_value_is_an_error_not_a_panic() {
        for value in [
            &b""[..],
            b"12",
            b"12:{\"customer\":{}}",
            b"3:\x28\xb5\x2f\xfd\x00",
        ] {
            let e = decode(value).unwrap_err();
            assert!(e.0.starts_with("stored record"), "{e}");
        }
    }
}
