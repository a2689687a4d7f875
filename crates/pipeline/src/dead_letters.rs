//! The dead-letter record: the original bytes and key, untouched, with headers naming the
//! source topic, partition, offset and the reason.

use rdkafka::message::{Headers, Message, OwnedMessage};

use crate::output::OutRecord;

/// A record for the dead-letter topic from a message that cannot be processed.
pub fn dead_letter(topic: &str, msg: &OwnedMessage, reason: &str, detail: &str) -> OutRecord {
    let mut headers: Vec<(String, String)> = msg
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
    OutRecord {
        topic: topic.to_owned(),
        key: msg.key().map(<[u8]>::to_vec),
        payload: msg.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        headers,
    }
}
