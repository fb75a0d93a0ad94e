//! Timestamps in the ISO 8601 form AWS responses use, with the `time` crate's calendar.

use time::format_description::BorrowedFormatItem;
use time::macros::{datetime, format_description};
use time::OffsetDateTime;

const ISO8601_MILLIS: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000Z");

/// `2024-05-01T12:34:56.000Z` for seconds since the Unix epoch. Instants after year 9999 (which
/// no stored timestamp holds) show as its last second rather than failing a response.
pub fn iso8601(secs: u64) -> String {
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .filter(|t| t.year() <= 9999)
        .unwrap_or(datetime!(9999-12-31 23:59:59 UTC));
    // Numbers of a date in range only: formatting cannot fail.
    t.format(ISO8601_MILLIS).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(1_700_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(iso8601(4_102_444_799), "2099-12-31T23:59:59.000Z");
        assert_eq!(
            iso8601(u64::MAX),
            "9999-12-31T23:59:59.000Z",
            "clamped, no panic"
        );
    }
}
