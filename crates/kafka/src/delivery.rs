//! Delivering a partition's batch: what the broker could not take now is sent again (backing
//! off while it is away), what it refuses for good (too large, malformed, not authorised)
//! goes to the dead-letter topic as its headers, and nothing delivered is sent twice.

use std::collections::HashSet;
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec};
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::metrics::KafkaMetrics;
use crate::output::{OutRecord, Publish, Undelivered, refused_for_good};
use crate::stopped::Stopped;

/// Where a batch's records go and what their failures count.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The dead-letter topic, for records the broker refuses for good.
    pub dead_letters: String,
    errors: IntCounter,
    refused: IntCounterVec,
    refused_dead_letters: IntCounter,
    dropped: IntCounter,
}

impl Delivery {
    pub fn new(dead_letters: &str, metrics: &KafkaMetrics) -> Self {
        Self {
            dead_letters: dead_letters.to_owned(),
            errors: metrics.errors.with_label_values(&["produce"]),
            refused: metrics.records_refused.clone(),
            refused_dead_letters: metrics.dead_letters.with_label_values(&["refused"]),
            dropped: metrics.records_dropped.clone(),
        }
    }

    /// Publishes `records` (and, in transactional mode, the offset after `consumed`) until
    /// every record is delivered, or the partition stops. A record refused for good is
    /// replaced by its dead letter; a failed record is sent again with the records of its key
    /// that followed it (their order), and records already delivered are not sent again.
    pub async fn deliver(
        &self,
        publisher: &impl Publish,
        records: &[OutRecord],
        consumed: Option<i64>,
        stop: &CancellationToken,
    ) -> Result<(), Stopped> {
        let mut batch: Vec<OutRecord>;
        let mut current: &[OutRecord] = records;
        let mut delay = Duration::from_millis(50);
        loop {
            let undelivered = match publisher.publish(current, consumed).await {
                Ok(()) => return Ok(()),
                Err(u) => u,
            };
            self.errors.inc();
            let (again, outage) = self.again(current, &undelivered);
            if outage {
                warn!(
                    operation = "produce",
                    error = %undelivered,
                    retry_in_ms = delay.as_millis() as u64,
                    "retrying"
                );
                tokio::select! {
                    _ = stop.cancelled() => return Err(Stopped::Shutdown),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            } else if stop.is_cancelled() {
                return Err(Stopped::Shutdown);
            }
            batch = again;
            current = &batch;
            if current.is_empty() && consumed.is_none() {
                return Ok(());
            }
        }
    }

    /// What to send again after `undelivered`, and whether any of it failed for a reason
    /// worth waiting out (rather than a refusal, answered at once with a dead letter).
    fn again(&self, sent: &[OutRecord], undelivered: &Undelivered) -> (Vec<OutRecord>, bool) {
        let mut failed = undelivered.0.iter().peekable();
        let mut held: HashSet<(&str, Option<&[u8]>)> = HashSet::new();
        let mut again = Vec::new();
        let mut outage = false;
        for (i, record) in sent.iter().enumerate() {
            let key = (record.topic.as_str(), record.key.as_deref());
            let error = match failed.peek() {
                Some((at, e)) if *at == i => {
                    failed.next();
                    Some(e)
                }
                _ => None,
            };
            match error {
                Some(e) => {
                    held.insert(key);
                    match refused_for_good(e) {
                        Some(reason) => {
                            self.refused.with_label_values(&[reason]).inc();
                            if let Some(letter) = self.refused_letter(record, reason, e) {
                                again.push(letter);
                            }
                        }
                        None => {
                            outage = true;
                            again.push(record.clone());
                        }
                    }
                }
                // Delivered, but after a record of its key that was not: sent again behind
                // it, so the key's order holds (a consumer sees a repeat, never a reversal).
                None if held.contains(&key) => again.push(record.clone()),
                None => {}
            }
        }
        (again, outage)
    }

    /// The dead letter of a record the broker refused for good: its key and headers, no value,
    /// and `switchboard.refused.*` headers saying where it was going and why. `None` when the record refused was such a
    /// dead letter already: it is dropped, counted and logged, so the partition moves on.
    fn refused_letter(
        &self,
        record: &OutRecord,
        reason: &str,
        e: &rdkafka::error::KafkaError,
    ) -> Option<OutRecord> {
        if record.topic == self.dead_letters && record.payload.is_empty() {
            self.dropped.inc();
            error!(
                topic = record.topic,
                reason,
                error = %e,
                "the dead-letter topic refused a record without its value: dropped"
            );
            return None;
        }
        warn!(topic = record.topic, reason, error = %e, "refused by the broker: dead-lettered");
        let mut headers = record.headers.clone();
        // A dead letter refused keeps its own reason; any other record gets one.
        if record.topic != self.dead_letters {
            self.refused_dead_letters.inc();
            headers.push(("switchboard.error.reason".to_owned(), "refused".to_owned()));
        }
        headers.extend([
            ("switchboard.refused.reason".to_owned(), reason.to_owned()),
            ("switchboard.refused.detail".to_owned(), e.to_string()),
            ("switchboard.refused.topic".to_owned(), record.topic.clone()),
            (
                "switchboard.value.bytes".to_owned(),
                record.payload.len().to_string(),
            ),
            ("switchboard.value.kept".to_owned(), "0".to_owned()),
        ]);
        Some(OutRecord {
            topic: self.dead_letters.clone(),
            key: record.key.clone(),
            payload: Vec::new(),
            headers,
        })
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};

    use super::*;

    fn record(topic: &str, key: &str, value: &str) -> OutRecord {
        OutRecord {
            topic: topic.into(),
            key: Some(key.as_bytes().to_vec()),
            payload: value.as_bytes().to_vec(),
            headers: vec![],
        }
    }

    fn delivery() -> Delivery {
        let metrics = KafkaMetrics::register(&prometheus::Registry::new()).unwrap();
        Delivery::new("dlq", &metrics)
    }

    const AWAY: KafkaError =
        KafkaError::MessageProduction(RDKafkaErrorCode::BrokerTransportFailure);
    const TOO_LARGE: KafkaError =
        KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);

    #[test]
    fn only_what_was_not_delivered_is_sent_again_with_the_later_records_of_its_key() {
        let sent = [
            record("out", "a", "a1"),
            record("out", "b", "b1"),
            record("out", "a", "a2"),
            record("out", "c", "c1"),
        ];
        let (again, outage) = delivery().again(&sent, &Undelivered(vec![(0, AWAY)]));
        let values: Vec<&[u8]> = again.iter().map(|r| r.payload.as_slice()).collect();
        assert_eq!(values, [&b"a1"[..], b"a2"], "b1 and c1 were delivered");
        assert!(outage);
    }

    #[test]
    fn a_record_refused_for_good_becomes_a_dead_letter_of_its_headers_at_once() {
        let d = delivery();
        let mut big = record("out", "a", "a very large value");
        big.headers.push(("origin".into(), "pos".into()));
        let sent = [big, record("out", "b", "b1")];
        let (again, outage) = d.again(&sent, &Undelivered(vec![(0, TOO_LARGE)]));
        assert!(!outage, "a refusal is not waited out");
        assert_eq!(again.len(), 1);
        let letter = &again[0];
        assert_eq!(letter.topic, "dlq");
        assert!(letter.payload.is_empty());
        assert_eq!(letter.key.as_deref(), Some(&b"a"[..]));
        let header = |k: &str| {
            letter
                .headers
                .iter()
                .find(|(h, _)| h == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("origin"), Some("pos"));
        assert_eq!(header("switchboard.error.reason"), Some("refused"));
        assert_eq!(
            header("switchboard.refused.reason"),
            Some("message_too_large")
        );
        assert_eq!(header("switchboard.refused.topic"), Some("out"));
        assert_eq!(header("switchboard.value.bytes"), Some("18"));
        assert_eq!(d.refused.with_label_values(&["message_too_large"]).get(), 1);
    }

    #[test]
    fn a_dead_letter_refused_without_its_value_is_dropped_and_counted() {
        let d = delivery();
        let letter = OutRecord {
            payload: Vec::new(),
            ..record("dlq", "a", "")
        };
        let (again, _) = d.again(&[letter], &Undelivered(vec![(0, TOO_LARGE)]));
        assert!(again.is_empty());
        assert_eq!(d.dropped.get(), 1);
    }
}
