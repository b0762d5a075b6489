//! Timestamp precision, ISO-8601 parsing/formatting and time-zone offsets.

use std::time::{SystemTime, UNIX_EPOCH};

/// The unit of stored timestamps (IoTDB's `timestamp_precision`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// Milliseconds (the default).
    Ms,
    /// Microseconds.
    Us,
    /// Nanoseconds.
    Ns,
}

impl Precision {
    /// Parses `ms`, `us` or `ns`.
    pub fn parse(s: &str) -> Option<Precision> {
        match s.trim() {
            "ms" => Some(Precision::Ms),
            "us" => Some(Precision::Us),
            "ns" => Some(Precision::Ns),
            _ => None,
        }
    }
    /// The configuration spelling.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Ms => "ms",
            Precision::Us => "us",
            Precision::Ns => "ns",
        }
    }
    /// Units per second.
    pub fn per_second(self) -> i64 {
        match self {
            Precision::Ms => 1_000,
            Precision::Us => 1_000_000,
            Precision::Ns => 1_000_000_000,
        }
    }
    /// Units per millisecond (TTLs are given in milliseconds whatever the precision).
    pub fn per_ms(self) -> i64 {
        self.per_second() / 1000
    }
    /// The current time in this precision.
    pub fn now(self) -> i64 {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        match self {
            Precision::Ms => d.as_millis() as i64,
            Precision::Us => d.as_micros() as i64,
            Precision::Ns => d.as_nanos() as i64,
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The (year, month, day) of a day number since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days in month `m` (1-12) of year `y` (proleptic Gregorian).
pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Parses a time-zone designator into seconds east of UTC: `Z`, `UTC`, `GMT`, `Etc/UTC`, `+08:00`,
/// `+0800`, `+08`, `UTC+8`. Returns None for names it does not know.
pub fn parse_zone_offset(z: &str) -> Option<i32> {
    let z = z.trim();
    let up = z.to_ascii_uppercase();
    let rest = match up.as_str() {
        "Z" | "UTC" | "GMT" | "ETC/UTC" | "ETC/GMT" | "UCT" | "UNIVERSAL" | "ZULU" => return Some(0),
        _ => up.strip_prefix("UTC").or_else(|| up.strip_prefix("GMT")).unwrap_or(&up),
    };
    let (sign, digits) = match rest.as_bytes().first()? {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let (h, m) = if let Some((h, m)) = digits.split_once(':') {
        (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?)
    } else if digits.len() == 4 {
        (digits[..2].parse().ok()?, digits[2..].parse().ok()?)
    } else {
        (digits.parse().ok()?, 0)
    };
    if h > 18 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

/// Parses an ISO-8601 date-time (`2024-01-02T03:04:05.678+08:00`, `2024-01-02 03:04:05`, `2024/01/02`,
/// `2024-01-02`) into a timestamp of `precision`; a missing zone means `default_offset_secs`.
pub fn parse_datetime(text: &str, precision: Precision, default_offset_secs: i32) -> Result<i64, String> {
    let bad = |why: &str| format!("invalid date-time '{text}': {why}");
    let s = text.trim();
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Result<i64, String> {
        let part = s.get(from..from + len).ok_or_else(|| bad("too short"))?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad("expected digits"));
        }
        part.parse::<i64>().map_err(|_| bad("expected digits"))
    };
    let year = num(0, 4)?;
    if b.get(4).is_none_or(|c| *c != b'-' && *c != b'/' && *c != b'.') {
        return Err(bad("expected yyyy-MM-dd"));
    }
    let month = num(5, 2)? as u32;
    let day = num(8, 2)? as u32;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(bad("no such date"));
    }
    let mut i = 10;
    let (mut hh, mut mm, mut ss, mut frac_units) = (0i64, 0i64, 0i64, 0i64);
    if i < b.len() && (b[i] == b'T' || b[i] == b' ') {
        i += 1;
        hh = num(i, 2)?;
        mm = num(i + 3, 2)?;
        if b.get(i + 2) != Some(&b':') {
            return Err(bad("expected HH:mm"));
        }
        i += 5;
        if b.get(i) == Some(&b':') {
            ss = num(i + 1, 2)?;
            i += 3;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let digits = &s[start..i];
            if digits.is_empty() || digits.len() > 9 {
                return Err(bad("bad fraction of a second"));
            }
            let nanos: i64 = format!("{digits:0<9}").parse().unwrap();
            frac_units = nanos / (1_000_000_000 / precision.per_second());
        }
        if hh > 23 || mm > 59 || ss > 60 {
            return Err(bad("no such time of day"));
        }
    }
    let offset = if i < b.len() {
        parse_zone_offset(&s[i..]).ok_or_else(|| bad("unknown time zone"))?
    } else {
        default_offset_secs
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hh * 3600 + mm * 60 + ss - offset as i64;
    secs.checked_mul(precision.per_second())
        .and_then(|v| v.checked_add(frac_units))
        .ok_or_else(|| bad("out of range"))
}

/// Formats a timestamp as ISO-8601 with the given offset, like IoTDB's CLI (`2024-01-02T03:04:05.678+08:00`).
pub fn format_datetime(ts: i64, precision: Precision, offset_secs: i32) -> String {
    let per = precision.per_second();
    let secs = ts.div_euclid(per) + offset_secs as i64;
    let frac = ts.rem_euclid(per);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let frac_s = match precision {
        Precision::Ms => format!("{frac:03}"),
        Precision::Us => format!("{frac:06}"),
        Precision::Ns => format!("{frac:09}"),
    };
    let a = offset_secs.abs();
    let zone = format!("{}{:02}:{:02}", if offset_secs < 0 { '-' } else { '+' }, a / 3600, (a % 3600) / 60);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{frac_s}{zone}", sod / 3600, (sod % 3600) / 60, sod % 60)
}

/// Renders a DATE value held as yyyymmdd.
pub fn format_date_int(v: i32) -> String {
    format!("{:04}-{:02}-{:02}", v / 10000, (v / 100) % 100, v % 100)
}

/// Parses `yyyy-MM-dd` into the yyyymmdd integer DATE values are held as.
pub fn parse_date_int(s: &str) -> Option<i32> {
    let s = s.trim();
    let mut it = s.split('-');
    let y: i32 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if it.next().is_some() || !(1..=12).contains(&m) || d == 0 || d > days_in_month(y as i64, m) || !(1000..=9999).contains(&y) {
        return None;
    }
    Some(y * 10000 + m as i32 * 100 + d as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip() {
        let t = parse_datetime("2024-02-29T12:34:56.789+08:00", Precision::Ms, 0).unwrap();
        assert_eq!(t, 1709181296789);
        assert_eq!(format_datetime(t, Precision::Ms, 8 * 3600), "2024-02-29T12:34:56.789+08:00");
        assert_eq!(parse_datetime("1970-01-01 00:00:01", Precision::Ns, 0).unwrap(), 1_000_000_000);
        assert_eq!(parse_datetime("1970-01-01", Precision::Ms, 3600).unwrap(), -3_600_000);
        assert!(parse_datetime("2023-02-29", Precision::Ms, 0).is_err());
        assert!(parse_datetime("2023-01-01T25:00:00", Precision::Ms, 0).is_err());
        assert_eq!(format_datetime(-1, Precision::Ms, 0), "1969-12-31T23:59:59.999+00:00");
    }

    #[test]
    fn zones_and_dates() {
        assert_eq!(parse_zone_offset("+0800"), Some(28800));
        assert_eq!(parse_zone_offset("UTC-05:30"), Some(-19800));
        assert_eq!(parse_zone_offset("Etc/UTC"), Some(0));
        assert_eq!(parse_zone_offset("Mars/Olympus"), None);
        assert_eq!(parse_date_int("2024-12-31"), Some(20241231));
        assert_eq!(parse_date_int("2024-13-01"), None);
        assert_eq!(format_date_int(20240105), "2024-01-05");
    }
}
