//! Normalisation of identifier values, and the junk values that never link anything.

use std::cell::RefCell;
use std::collections::HashMap;

use phonenumber::{Mode, country};
use serde::{Deserialize, Serialize};

/// How a kind's values are normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalisation {
    /// Trim surrounding whitespace only (ids, tokens, cookies: case matters).
    Trim,
    /// Trim and lower-case; must look like `local@domain`.
    Email,
    /// Parse as a phone number (national numbers in the default region) and write it E.164.
    Phone,
}

/// Why a raw identifier was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("identifier kind `{0}` is not configured")]
    UnknownKind(String),
    #[error("blocked value")]
    Blocked,
    #[error("not an email address")]
    BadEmail,
    #[error("not a valid phone number")]
    BadPhone,
    #[error("more than {limit} values of kind `{kind}` in one event")]
    OverLimit { kind: String, limit: u32 },
    #[error("duplicate")]
    Duplicate,
}

impl Rejected {
    /// A short label for metrics (never the value itself).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownKind(_) => "unknown_kind",
            Self::Blocked => "blocked",
            Self::BadEmail => "bad_email",
            Self::BadPhone => "bad_phone",
            Self::OverLimit { .. } => "over_limit",
            Self::Duplicate => "duplicate",
        }
    }
}

/// Values that mean "nothing" whatever the kind: compared trimmed, case-insensitively, with
/// surrounding quotes removed.
pub(crate) const BUILT_IN_BLOCKED: [&str; 9] = [
    "",
    "null",
    "nil",
    "none",
    "undefined",
    "anonymous",
    "unknown",
    "0",
    "-1",
];

/// Strips one pair of matching surrounding quotes, repeatedly (`"'null'"` → `null`).
pub(crate) fn unquote(s: &str) -> &str {
    let mut s = s.trim();
    loop {
        let stripped = ['"', '\'', '`']
            .iter()
            .find_map(|q| s.strip_prefix(*q).and_then(|r| r.strip_suffix(*q)));
        match stripped {
            Some(inner) => s = inner.trim(),
            None => return s,
        }
    }
}

pub(crate) fn normalise(
    how: Normalisation,
    raw: &str,
    region: country::Id,
) -> Result<String, Rejected> {
    let v = raw.trim();
    match how {
        Normalisation::Trim => Ok(v.to_owned()),
        Normalisation::Email => {
            let v = v.to_lowercase();
            let ok = v.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !v.contains(char::is_whitespace)
                    && v.matches('@').count() == 1
            });
            if ok { Ok(v) } else { Err(Rejected::BadEmail) }
        }
        Normalisation::Phone if v.len() > PHONE_MEMO_MAX_LEN => phone(v, region),
        Normalisation::Phone => PHONES.with_borrow_mut(|memo| {
            let known = memo.entry(region).or_default();
            if let Some(phone) = known.get(v) {
                return phone.clone();
            }
            let phone = phone(v, region);
            if known.len() >= PHONES_REMEMBERED {
                known.clear();
            }
            known.insert(v.into(), phone.clone());
            phone
        }),
    }
}

/// Phone numbers each thread remembers per region: parsing and validating one against the
/// region's patterns is the costliest step of preparing an event's identifiers, and a
/// customer's number comes back with each of their events. About 100 bytes each.
const PHONES_REMEMBERED: usize = 16_384;
/// Longer values are not remembered (a phone number written with spaces and an extension
/// fits; junk of any length must not fill the memory).
const PHONE_MEMO_MAX_LEN: usize = 40;

/// Normalised phone numbers (or why not) by region and trimmed raw value.
type PhoneMemo = HashMap<country::Id, HashMap<Box<str>, Result<String, Rejected>>>;

thread_local! {
    static PHONES: RefCell<PhoneMemo> = RefCell::new(HashMap::new());
}

fn phone(v: &str, region: country::Id) -> Result<String, Rejected> {
    let number = phonenumber::parse(Some(region), v).map_err(|_| Rejected::BadPhone)?;
    if !phonenumber::is_valid(&number) {
        return Err(Rejected::BadPhone);
    }
    Ok(number.format().mode(Mode::E164).to_string())
}
