//! The dead-letter record: the original key, value and headers, with headers naming the
//! source topic, partition, offset and the reason. It always fits the broker's default record
//! size limit: a value too large for it is cut (headers say how much was kept), so a dead
//! letter can never stop its partition.

use rdkafka::message::{Headers, Message, OwnedMessage};

use crate::output::OutRecord;

/// The most a dead letter may hold, key, value and headers together: below both Kafka's
/// default `message.max.bytes` (1 048 588, a batch with its overhead) and librdkafka's
/// producer default (1 000 000), with room for the record's framing.
pub const MAX_DEAD_LETTER_BYTES: usize = 1_000_000 - 4 * 1024;

/// The most the original headers may take; beyond it they are left out (and counted).
const MAX_ORIGINAL_HEADER_BYTES: usize = 64 * 1024;

/// The most of the original key kept.
const MAX_KEY_BYTES: usize = 16 * 1024;

/// A record for the dead-letter topic from a message that cannot be processed.
pub fn dead_letter(topic: &str, msg: &OwnedMessage, reason: &str, detail: &str) -> OutRecord {
    let original: Vec<(String, String)> = msg
        .headers()
        .map(|h| {
            h.iter()
                .map(|x| {
                    (
                        x.key.to_owned(),
                        String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let original_bytes: usize = original.iter().map(|(k, v)| k.len() + v.len()).sum();
    let mut headers = Vec::with_capacity(original.len() + 8);
    if original_bytes <= MAX_ORIGINAL_HEADER_BYTES {
        headers.extend(original);
    } else {
        headers.push((
            "switchboard.headers.dropped".to_owned(),
            original.len().to_string(),
        ));
    }
    headers.extend([
        (
            "switchboard.source.topic".to_owned(),
            msg.topic().to_owned(),
        ),
        (
            "switchboard.source.partition".to_owned(),
            msg.partition().to_string(),
        ),
        (
            "switchboard.source.offset".to_owned(),
            msg.offset().to_string(),
        ),
        ("switchboard.error.reason".to_owned(), reason.to_owned()),
        (
            "switchboard.error.detail".to_owned(),
            detail.chars().take(1000).collect(),
        ),
    ]);
    let key = msg.key().filter(|k| k.len() <= MAX_KEY_BYTES);
    if let Some(k) = msg.key().filter(|k| k.len() > MAX_KEY_BYTES) {
        headers.push(("switchboard.key.bytes".to_owned(), k.len().to_string()));
    }
    let value = msg.payload().unwrap_or_default();
    let used: usize = key.map_or(0, <[u8]>::len)
        + headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum::<usize>()
        + 128; // the two headers below
    let room = MAX_DEAD_LETTER_BYTES.saturating_sub(used);
    let kept = value.len().min(room);
    if kept < value.len() {
        headers.extend([
            (
                "switchboard.value.bytes".to_owned(),
                value.len().to_string(),
            ),
            ("switchboard.value.kept".to_owned(), kept.to_string()),
        ]);
    }
    OutRecord {
        topic: topic.to_owned(),
        key: key.map(<[u8]>::to_vec),
        payload: value.get(..kept).unwrap_or_default().to_vec(),
        headers,
    }
}

/// A record for the dead-letter topic from an outgoing `value` its schema for `topic` cannot
/// carry: the value as JSON (cut to fit), with the reason `unencodable` and the error.
pub fn unencodable<T: serde::Serialize>(
    dead_letters: &str,
    topic: &str,
    key: &str,
    value: &T,
    error: &dyn std::fmt::Display,
) -> OutRecord {
    let mut payload = serde_json::to_vec(value).unwrap_or_default();
    payload.truncate(MAX_DEAD_LETTER_BYTES / 2);
    OutRecord {
        topic: dead_letters.to_owned(),
        key: Some(
            key.as_bytes()
                .chunks(MAX_KEY_BYTES)
                .next()
                .unwrap_or_default()
                .to_vec(),
        ),
        payload,
        headers: vec![
            ("switchboard.target.topic".to_owned(), topic.to_owned()),
            (
                "switchboard.error.reason".to_owned(),
                "unencodable".to_owned(),
            ),
            (
                "switchboard.error.detail".to_owned(),
                error.to_string().chars().take(1000).collect(),
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::{OwnedHeaders, Timestamp};

    use super::*;

    fn message(value: Vec<u8>) -> OwnedMessage {
        OwnedMessage::new(
            Some(value),
            Some(b"cookie-1".to_vec()),
            "events.web".into(),
            Timestamp::NotAvailable,
            2,
            41,
            Some(OwnedHeaders::new().insert(rdkafka::message::Header {
                key: "origin",
                value: Some("pos-7"),
            })),
        )
    }

    fn header<'a>(r: &'a OutRecord, key: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn size(r: &OutRecord) -> usize {
        r.payload.len()
            + r.key.as_ref().map_or(0, Vec::len)
            + r.headers
                .iter()
                .map(|(k, v)| k.len() + v.len() + 8)
                .sum::<usize>()
    }

    #[test]
    fn a_small_record_is_kept_whole_with_its_coordinates() {
        let letter = dead_letter("dlq", &message(b"not avro".to_vec()), "bad_magic", "x");
        assert_eq!(letter.payload, b"not avro");
        assert_eq!(letter.key.as_deref(), Some(&b"cookie-1"[..]));
        assert_eq!(header(&letter, "origin"), Some("pos-7"));
        assert_eq!(
            header(&letter, "switchboard.source.topic"),
            Some("events.web")
        );
        assert_eq!(header(&letter, "switchboard.source.partition"), Some("2"));
        assert_eq!(header(&letter, "switchboard.source.offset"), Some("41"));
        assert_eq!(header(&letter, "switchboard.value.kept"), None);
    }

    #[test]
    fn a_two_mebibyte_record_is_cut_to_fit_and_says_so() {
        let value = vec![7u8; 2 * 1024 * 1024];
        let letter = dead_letter("dlq", &message(value.clone()), "oversize", "too big");
        assert!(size(&letter) <= MAX_DEAD_LETTER_BYTES, "{}", size(&letter));
        let kept: usize = header(&letter, "switchboard.value.kept")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(kept, letter.payload.len());
        assert!(kept > 900_000, "as much as fits is kept: {kept}");
        assert_eq!(letter.payload[..], value[..kept], "the value's beginning");
        assert_eq!(header(&letter, "switchboard.value.bytes"), Some("2097152"));
        assert_eq!(
            header(&letter, "switchboard.error.reason"),
            Some("oversize")
        );
    }

    #[test]
    fn an_unencodable_record_keeps_its_value_as_json_and_says_where_it_was_going() {
        let value = serde_json::json!({"command_id": "c1", "channel": "email"});
        let error = "no schema for record io.switchboard.SendCommand";
        let r = unencodable("events.dlq", "commands.email", "p1", &value, &error);
        assert_eq!(r.topic, "events.dlq");
        assert_eq!(r.key.as_deref(), Some(&b"p1"[..]));
        let back: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
        assert_eq!(back, value);
        let header = |k: &str| {
            r.headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("switchboard.error.reason"), Some("unencodable"));
        assert_eq!(header("switchboard.target.topic"), Some("commands.email"));
        assert_eq!(header("switchboard.error.detail"), Some(error));
    }
}
