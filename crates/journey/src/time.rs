//! Durations and local times of day, as journey files write them.

/// Milliseconds in a duration such as `1h`, `24h`, `7d`, `23h 30m`.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration ({e}); write e.g. 30m, 1h, 7d"))?;
    i64::try_from(d.as_millis()).map_err(|_| format!("`{s}` is too long"))
}

/// A time of day `HH:MM` as minutes after midnight.
pub fn parse_time_of_day(s: &str) -> Result<u32, String> {
    let bad = || format!("`{s}` is not a time of day; write HH:MM, e.g. 09:00");
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// The first instant at or after `now_ms` when the local clock in `tz` shows `minute`
/// (minutes after midnight). Unknown zones fall back to UTC.
pub fn next_local_time(now_ms: i64, tz: &str, minute: u32) -> i64 {
    let zone = jiff::tz::TimeZone::get(tz).unwrap_or(jiff::tz::TimeZone::UTC);
    let Ok(now) = jiff::Timestamp::from_millisecond(now_ms) else {
        return now_ms;
    };
    let zoned = now.to_zoned(zone);
    let (h, m) = (
        i8::try_from(minute / 60).unwrap_or(0),
        i8::try_from(minute % 60).unwrap_or(0),
    );
    let candidate = |z: &jiff::Zoned| {
        z.with()
            .hour(h)
            .minute(m)
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()
    };
    let today = candidate(&zoned);
    let at = match today {
        Some(t) if t.timestamp() >= now => Some(t),
        _ => zoned.tomorrow().ok().as_ref().and_then(candidate),
    };
    at.map_or(now_ms, |t| t.timestamp().as_millisecond())
}

/// Minutes after local midnight of `now_ms` in `tz`.
pub fn local_minute(now_ms: i64, tz: &str) -> u32 {
    let zone = jiff::tz::TimeZone::get(tz).unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::from_millisecond(now_ms).map_or(0, |t| {
        let z = t.to_zoned(zone);
        u32::try_from(z.hour()).unwrap_or(0) * 60 + u32::try_from(z.minute()).unwrap_or(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn durations_read_as_designers_write_them() {
        assert_eq!(parse_duration("1h").unwrap(), HOUR);
        assert_eq!(parse_duration("7d").unwrap(), 7 * 24 * HOUR);
        assert_eq!(parse_duration("23h 30m").unwrap(), 23 * HOUR + HOUR / 2);
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn next_local_time_respects_the_zone() {
        // 2026-01-15T20:00Z is 21:00 in Paris: the next 09:00 Paris is 2026-01-16T08:00Z.
        let now = jiff::Timestamp::from_second(1_768_507_200)
            .unwrap()
            .as_millisecond();
        let next = next_local_time(now, "Europe/Paris", 9 * 60);
        assert_eq!(next - now, 12 * HOUR);
        assert_eq!(local_minute(now, "Europe/Paris"), 21 * 60);
        assert_eq!(
            next_local_time(now, "UTC", 20 * 60),
            now,
            "already that time"
        );
    }
}

/// `ms` (Unix milliseconds) as an RFC 3339 instant, for people.
pub fn iso(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}
