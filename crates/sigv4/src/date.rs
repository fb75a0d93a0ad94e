//! The two date formats SigV4 meets: ISO 8601 basic (`20150830T123600Z`, `X-Amz-Date`) and the
//! IMF-fixdate of the HTTP `Date` header (`Sun, 30 Aug 2015 12:36:00 GMT`). UTC only, years
//! 1970 to 9999; anything else is `None`, never a panic. The calendar is the `time` crate's.

use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::BorrowedFormatItem;
use time::macros::{datetime, format_description};
use time::{OffsetDateTime, PrimitiveDateTime};

/// `YYYYMMDD'T'HHMMSS'Z'`.
const AMZ: &[BorrowedFormatItem<'_>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");
/// RFC 7231's IMF-fixdate (RFC 1123's form). The weekday is read but not checked against the
/// date, as before.
const IMF_FIXDATE: &[BorrowedFormatItem<'_>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// A parsed UTC date and time as a `SystemTime`, if it is in 1970..=9999.
fn to_system_time(t: PrimitiveDateTime) -> Option<SystemTime> {
    let t = t.assume_utc();
    if !(1970..=9999).contains(&t.year()) {
        return None;
    }
    Some(SystemTime::from(t))
}

/// `YYYYMMDD'T'HHMMSS'Z'` of a time (times before 1970 print as 1970-01-01, times after 9999
/// as 9999-12-31T23:59:59).
pub(crate) fn format_amz(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .filter(|t| t.year() <= 9999)
        .unwrap_or(datetime!(9999-12-31 23:59:59 UTC));
    // Formatting a date in range with a description of numbers only cannot fail.
    t.format(AMZ).unwrap_or_default()
}

/// Parses `YYYYMMDD'T'HHMMSS'Z'`, exactly 16 characters.
pub(crate) fn parse_amz(s: &str) -> Option<SystemTime> {
    if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    to_system_time(PrimitiveDateTime::parse(s, AMZ).ok()?)
}

/// Parses the IMF-fixdate of RFC 7231 (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 1123).
pub(crate) fn parse_http_date(s: &str) -> Option<SystemTime> {
    to_system_time(PrimitiveDateTime::parse(s, IMF_FIXDATE).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = parse_amz("20150830T123600Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_440_938_160
        );
        assert_eq!(format_amz(t), "20150830T123600Z");
        assert_eq!(format_amz(UNIX_EPOCH), "19700101T000000Z");
        let leap = parse_amz("20240229T235959Z").unwrap();
        assert_eq!(format_amz(leap), "20240229T235959Z");
        let far = UNIX_EPOCH + std::time::Duration::from_secs(u64::MAX / 2);
        assert_eq!(format_amz(far), "99991231T235959Z", "clamped, no panic");
        assert_eq!(
            parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"),
            Some(t),
            "RFC 1123 date"
        );
    }

    #[test]
    fn refuses_nonsense() {
        for s in [
            "",
            "20150830T123600",
            "20150830 123600Z",
            "2015083OT123600Z",
            "20150230T123600Z",
            "20151301T000000Z",
            "20150830T243600Z",
            "+0150830T123600Z",
            "19690101T000000Z",
            "2015083é123600Z",
            "20150830T123660Z",
            "2015-8-30T12360Z",
            "99999999T999999Z",
        ] {
            assert_eq!(parse_amz(s), None, "{s:?}");
        }
        for s in [
            "Sun, 30 Aug 2015 12:36:00",
            "Sun 30 Aug 2015 12:36:00 GMT",
            "Sun, 30 Foo 2015 12:36:00 GMT",
            "Sun, 30 Aug 2015 12:36 GMT",
            "Sun, 30 Aug 2015 12:36:00:01 GMT",
            "Sun, 30 Aug 2015 12:36:00 GMT extra",
            "Sun, 31 Feb 2015 12:36:00 GMT",
            "Sun, 30 Aug 1969 12:36:00 GMT",
            "Sun, 30 Aug 2015 25:36:00 GMT",
        ] {
            assert_eq!(parse_http_date(s), None, "{s:?}");
        }
    }
}
