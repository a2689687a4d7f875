//! Deterministic ids and draws: the same inputs give the same command ids, holdouts and
//! variants on every run, replay and machine.

use uuid::Uuid;

/// Namespace of Switchboard's UUIDv5 ids.
const NAMESPACE: Uuid = Uuid::from_u128(0x5b1c_7d0e_8a3f_4c21_9e6d_2f40_aa71_c0de);

/// A UUIDv5 of the parts, joined with `/`.
pub fn uuid(parts: &[&str]) -> String {
    Uuid::new_v5(&NAMESPACE, parts.join("/").as_bytes()).to_string()
}

/// A number in `[0, 1)` drawn from the parts: the same parts, the same number.
pub fn fraction(parts: &[&str]) -> f64 {
    let id = Uuid::new_v5(&NAMESPACE, parts.join("/").as_bytes());
    let high = u64::try_from(id.as_u128() >> 64).unwrap_or(0) >> 11; // 53 bits
    #[allow(clippy::cast_precision_loss)]
    let f = high as f64 / (1u64 << 53) as f64;
    f
}
