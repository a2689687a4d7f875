//! A record and an outbox as Redis stores them.
//!
//! A record is `<epoch>:<format>:` then the record, zstd-compressed against the format's
//! dictionary. The epoch leads in decimal so the save script reads it with a pattern anchored
//! at the start, without decoding the rest. The format's number names the encoding and the
//! dictionary together: formats 0 to 2 are JSON (0 without a dictionary, 1 and 2 with
//! `record-v1.dict` and `record-v2.dict`), formats 3 and 4 are MessagePack with named fields
//! against `record-v3.dict` and `record-v4.dict` (4, the one written, trained once records
//! carried goal attributions and decisions). Named fields keep what JSON gave: empty fields left
//! out and read back as empty, fields added or removed by a release read by name; MessagePack
//! reads in half the time, its strings carry their length instead of being scanned for
//! escapes. What a customer can work out again is left out of the MessagePack (ids derived
//! from others, an entry time the history holds: `switchboard_journey`'s `compact`), and
//! read back the same; records written with them read as before (releases before
//! 2026-12-05 do not read records without them: roll back past it only with the records).
//!
//! Most of a record is field names and the example journeys' vocabulary, the same in every
//! record: against a dictionary trained by `benches/examples/record_dictionary.rs` on records as the
//! engine leaves them, zstd at level 1 stores a customer with two journeys in flight in a
//! fraction of its encoding, without building tables of its own. A released format is fixed
//! forever (a test pins each dictionary); a new one gets a new number and the old ones stay
//! readable.
//!
//! An outbox is a MessagePack array of [`Outgoing`], uncompressed (it lives until published);
//! one written as JSON by an earlier release starts with `[` and is read as JSON.

use std::cell::RefCell;

use serde::Serialize;
use serde::de::DeserializeOwned;

use switchboard_engine::{Outgoing, Record, StateError};

/// How a record's bytes are encoded before compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Json,
    MessagePack,
}

/// Dictionary 1: a record's field names and the example journeys' words (JSON).
const V1: &[u8] = include_bytes!("record-v1.dict");

/// Dictionary 2: trained on 25 000 JSON records of generated traffic.
const V2: &[u8] = include_bytes!("record-v2.dict");

/// Dictionary 3: trained on MessagePack records of generated traffic.
const V3: &[u8] = include_bytes!("record-v3.dict");

/// Dictionary 4: trained on MessagePack records of generated traffic once records carried
/// goal attributions and decisions.
const V4: &[u8] = include_bytes!("record-v4.dict");

/// The format records are written in, and its dictionary.
const FORMAT: u8 = 4;
const DICTIONARY: &[u8] = V4;

/// Formats by number: the encoding and the dictionary (empty for none).
fn format(id: u8) -> Option<(Encoding, &'static [u8])> {
    match id {
        0 => Some((Encoding::Json, b"")),
        1 => Some((Encoding::Json, V1)),
        2 => Some((Encoding::Json, V2)),
        3 => Some((Encoding::MessagePack, V3)),
        4 => Some((Encoding::MessagePack, V4)),
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

/// MessagePack with field names, so that fields are read by name as JSON's are.
fn pack(value: &(impl Serialize + ?Sized)) -> Result<Vec<u8>, StateError> {
    // Room for a typical record (about 450 bytes), so that it is written without growing.
    let mut out = Vec::with_capacity(1024);
    rmp_serde::encode::write_named(&mut out, value).map_err(|e| err("not serializable", e))?;
    Ok(out)
}

fn unpack<T: DeserializeOwned>(encoding: Encoding, bytes: &[u8]) -> Result<T, String> {
    match encoding {
        Encoding::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        Encoding::MessagePack => rmp_serde::from_slice(bytes).map_err(|e| e.to_string()),
    }
}

/// A record's bytes before compression, as [`encode`] writes them: what the format's
/// dictionary is trained on.
pub fn packed(record: &Record) -> Result<Vec<u8>, StateError> {
    pack(record)
}

/// The value to store for `record`, written by a partition owner of `epoch`.
pub fn encode(epoch: u64, record: &Record) -> Result<Vec<u8>, StateError> {
    let packed = packed(record)?;
    let mut out = format!("{epoch}:{FORMAT}:").into_bytes();
    COMPRESSOR.with_borrow_mut(|c| {
        let c = match c {
            Some(c) => c,
            None => c.insert(
                zstd::bulk::Compressor::with_dictionary(LEVEL, DICTIONARY).map_err(zstd_err)?,
            ),
        };
        out.extend(c.compress(&packed).map_err(zstd_err)?);
        Ok(out)
    })
}

/// The record in a stored value.
pub fn decode(value: &[u8]) -> Result<Record, StateError> {
    let mut parts = value.splitn(3, |b| *b == b':');
    let (Some(_epoch), Some(id), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(err("not '<epoch>:<format>:<data>'", value.len()));
    };
    let id = std::str::from_utf8(id)
        .ok()
        .and_then(|id| id.parse::<u8>().ok())
        .ok_or_else(|| err("no format number", String::from_utf8_lossy(id)))?;
    let (encoding, dict) = format(id).ok_or_else(|| err("unknown format", id))?;
    let size = zstd::zstd_safe::get_frame_content_size(data)
        .ok()
        .flatten()
        .ok_or_else(|| err("not zstd", "no frame content size"))?;
    let size = usize::try_from(size)
        .ok()
        .filter(|s| *s <= MAX_RECORD)
        .ok_or_else(|| err("too large", size))?;
    let bytes = DECOMPRESSORS.with_borrow_mut(|all| {
        if !all.iter().any(|(i, _)| *i == id) {
            let d = zstd::bulk::Decompressor::with_dictionary(dict).map_err(zstd_err)?;
            all.push((id, d));
        }
        match all.iter_mut().find(|(i, _)| *i == id) {
            Some((_, d)) => d.decompress(data, size).map_err(zstd_err),
            None => Err(err("unknown format", id)),
        }
    })?;
    unpack(encoding, &bytes).map_err(|e| err("not a record", e))
}

/// The value to store for an outbox.
pub fn encode_outbox(outbox: &[Outgoing]) -> Result<Vec<u8>, StateError> {
    pack(outbox)
}

/// The outbox in a stored value.
pub fn decode_outbox(value: &[u8]) -> Result<Vec<Outgoing>, StateError> {
    let encoding = match value.first() {
        Some(b'[') => Encoding::Json,
        _ => Encoding::MessagePack,
    };
    unpack(encoding, value).map_err(|e| StateError(format!("stored outbox: {e}")))
}

/// The JSON of a stored value, for tools and tests that look into Redis.
pub fn to_json(value: &[u8]) -> Result<String, StateError> {
    serde_json::to_string(&decode(value)?).map_err(|e| err("not serializable", e))
}

#[cfg(test)]
mod tests {
    use switchboard_test_support::customers::after_cart_and_view;

    use super::*;
    use switchboard_engine::RecentEvents;

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
            absorbed: Vec::new(),
        }
    }

    #[test]
    fn a_record_survives_storage_in_a_fraction_of_its_json() {
        let record = typical(7);
        let value = encode(7, &record).unwrap();
        assert!(value.starts_with(b"7:4:"));
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

    /// A value as an earlier release wrote it: the record's JSON against dictionary `id`.
    fn written_as_json(epoch: u64, id: u8, record: &Record) -> Vec<u8> {
        let (encoding, dict) = format(id).unwrap();
        assert_eq!(encoding, Encoding::Json);
        let mut value = format!("{epoch}:{id}:").into_bytes();
        let mut c = zstd::bulk::Compressor::with_dictionary(1, dict).unwrap();
        value.extend(c.compress(&serde_json::to_vec(record).unwrap()).unwrap());
        value
    }

    #[test]
    fn records_written_as_json_by_earlier_releases_stay_readable() {
        for id in [0, 1, 2] {
            let record = typical(8 + u32::from(id));
            let value = written_as_json(5, id, &record);
            assert_eq!(decode(&value).unwrap(), record, "format {id}");
        }
    }

    #[test]
    fn records_are_written_in_messagepack_against_the_newest_dictionary() {
        let record = typical(11);
        let value = encode(4, &record).unwrap();
        let data = &value[b"4:4:".len()..];
        let mut d = zstd::bulk::Decompressor::with_dictionary(V4).unwrap();
        let bytes = d.decompress(data, MAX_RECORD).unwrap();
        assert_eq!(bytes, packed(&record).unwrap());
        assert_eq!(rmp_serde::from_slice::<Record>(&bytes).unwrap(), record);
    }

    /// The ids of `record`'s live instances, which their attributions share.
    fn live_entry_ids(record: &Record) -> Vec<String> {
        let c = &record.customer;
        let attributed = |id: &String| c.attributions.iter().any(|a| a.entry == *id);
        (c.instances.values().map(|i| i.id.clone()))
            .filter(attributed)
            .collect()
    }

    #[test]
    fn ids_a_record_can_work_out_are_not_stored_and_read_back_the_same() {
        let record = typical(12);
        let ids = live_entry_ids(&record);
        assert!(!ids.is_empty(), "{record:?}");
        let bytes = packed(&record).unwrap();
        for id in &ids {
            let found = bytes.windows(id.len()).any(|w| w == id.as_bytes());
            assert!(!found, "{id} stored");
        }
        let value = encode(4, &record).unwrap();
        assert_eq!(decode(&value).unwrap(), record);
        // JSON (explain, formats 0 to 2) keeps them.
        let json = serde_json::to_string(&record).unwrap();
        assert!(ids.iter().all(|id| json.contains(id.as_str())), "{json}");
        // MessagePack as format 4 was written before: every id in it.
        let mut with_ids = Vec::new();
        let as_before = serde_json::to_value(&record).unwrap();
        rmp_serde::encode::write_named(&mut with_ids, &as_before).unwrap();
        assert!(with_ids.len() >= bytes.len() + 36 * 2 * ids.len());
        assert_eq!(rmp_serde::from_slice::<Record>(&with_ids).unwrap(), record);
    }

    #[test]
    fn the_time_of_a_journeys_last_entry_is_stored_once() {
        let record = typical(14);
        let c = &record.customer;
        assert!(!c.attributions.is_empty());
        let mut without = record.clone();
        without.customer.attributions.clear();
        let count = |bytes: &[u8], at: i64| {
            let at = rmp_serde::to_vec(&at).unwrap();
            bytes.windows(at.len()).filter(|w| *w == at).count()
        };
        let (bytes, without) = (packed(&record).unwrap(), packed(&without).unwrap());
        for a in &c.attributions {
            assert_eq!(c.profile.history[&a.journey].at, a.entered_at);
            assert_eq!(count(&bytes, a.entered_at), count(&without, a.entered_at));
        }
        assert_eq!(decode(&encode(4, &record).unwrap()).unwrap(), record);
    }

    #[test]
    fn ids_that_cannot_be_worked_out_are_stored() {
        let mut record = typical(13);
        let c = &mut record.customer;
        // A migrated instance: its id is of the version it entered.
        let (_, migrated) = c.instances.iter_mut().next().unwrap();
        migrated.version += 1;
        let migrated = migrated.id.clone();
        // An ended instance: its attribution stays, with no instance to take the id from.
        let ended = c.attributions.iter().find(|a| a.entry != migrated).unwrap();
        let ended = (ended.journey.clone(), ended.entry.clone());
        c.instances.remove(&ended.0);
        // An entry older than the journey's last (after a merge): its time is its own.
        let a = c.attributions.first_mut().unwrap();
        a.entered_at -= 60_000;
        let older = rmp_serde::to_vec(&a.entered_at).unwrap();
        let bytes = packed(&record).unwrap();
        let found = bytes.windows(older.len()).any(|w| w == older);
        assert!(found, "the older entry's time not stored");
        for id in [&migrated, &ended.1] {
            let found = bytes.windows(id.len()).any(|w| w == id.as_bytes());
            assert!(found, "{id} not stored");
        }
        assert_eq!(decode(&encode(4, &record).unwrap()).unwrap(), record);
    }

    #[test]
    fn empty_fields_are_left_out_and_read_back_empty() {
        // Named fields, as JSON's: a record without the optional fields has no bytes of them,
        // and one written before a field existed reads it as empty.
        let bare = Record {
            offset: -1,
            ..Record::default()
        };
        let bytes = packed(&bare).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for absent in [
            "merged_into",
            "recent",
            "absorbed",
            "attributes",
            "tags",
            "history",
        ] {
            assert!(!text.contains(absent), "{absent} written: {text:?}");
        }
        assert_eq!(rmp_serde::from_slice::<Record>(&bytes).unwrap(), bare);
    }

    #[test]
    fn an_outbox_round_trips_and_one_written_as_json_stays_readable() {
        use switchboard_codec::{JourneyTransition, SendCommand, SendReason, TransitionKind};
        let command = SendCommand {
            command_id: "c-1".into(),
            profile_id: "p-1".into(),
            channel: "sms".into(),
            address: "+447700900123".into(),
            template: "cart-reminder".into(),
            locale: "en-GB".into(),
            vars: [("value".to_owned(), "120.5".to_owned())].into(),
            journey: "abandoned-cart".into(),
            version: 3,
            step: "remind".into(),
            variant: Some("b".into()),
            not_after: Some(1_764_000_100_000),
            reason: SendReason {
                trigger: "cart-12".into(),
                path: vec!["pause".into(), "remind".into()],
                fallback_from: vec!["push".into()],
            },
            created_at: 1_764_000_000_000,
        };
        let transition = JourneyTransition {
            transition_id: "t-1".into(),
            profile_id: "p-1".into(),
            journey: "abandoned-cart".into(),
            version: 3,
            kind: TransitionKind::Step,
            step: Some("remind".into()),
            reason: None,
            trigger: "cart-12".into(),
            at: 1_764_000_000_000,
            variant: None,
            holdout: false,
            entry_id: Some("entry-1".into()),
            step_kind: Some("send".into()),
        };
        let outbox = vec![Outgoing::Command(command), Outgoing::Transition(transition)];
        let value = encode_outbox(&outbox).unwrap();
        assert_eq!(decode_outbox(&value).unwrap(), outbox);
        let json = serde_json::to_vec(&outbox).unwrap();
        assert_eq!(decode_outbox(&json).unwrap(), outbox);
        let e = decode_outbox(b"\xc1").unwrap_err();
        assert!(e.0.starts_with("stored outbox"), "{e}");
    }

    #[test]
    fn released_dictionaries_never_change() {
        // Records written with them must stay readable: a changed dictionary is a new number.
        for (id, len, digest) in [
            (1, 1886, "40f3a2fe-e32d-58b8-958f-811357b230f9"),
            (2, 2048, "23e48b7c-8eb0-5806-8fda-04a4adda9246"),
            (3, 4096, "5fa3b51d-23f4-52e2-a171-4d306ad05dc3"),
            (4, 4096, "c6d1a71b-35f9-5ca2-870e-b49c1946c18f"),
        ] {
            let (_, dict) = format(id).unwrap();
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
