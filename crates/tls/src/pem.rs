//! Reading PEM text from users: which blocks it holds (by label, for precise messages) and their
//! decoded contents.

use rustls_pemfile::Item;
use zeroize::Zeroizing;

/// "1st", "2nd", "3rd", "4th", … for messages about the n-th block or certificate.
pub(crate) fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The labels of the PEM blocks in `text`, in order ("CERTIFICATE", "PRIVATE KEY", …).
pub(crate) fn labels(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("-----BEGIN "))
        .map(|rest| rest.trim_end_matches('-').trim())
        .collect()
}

/// Decodes every PEM block that rustls knows; blocks with other labels are skipped, so callers
/// compare with [`labels`] first. The error says what is wrong with the PEM itself.
pub(crate) fn decode(text: &str) -> Result<Vec<Item>, String> {
    // Pasted PEM often carries indentation or CRLFs; the decoder only accepts lines that start
    // with the markers. The copy may hold a private key, so it is wiped when dropped.
    let normalized = Zeroizing::new(text.lines().map(str::trim).collect::<Vec<_>>().join("\n"));
    let mut rest = normalized.as_bytes();
    let mut items = Vec::new();
    loop {
        match rustls_pemfile::read_one_from_slice(rest) {
            Ok(Some((item, after))) => {
                items.push(item);
                rest = after;
            }
            Ok(None) => return Ok(items),
            Err(rustls_pemfile::Error::MissingSectionEnd { end_marker }) => {
                return Err(format!(
                    "a PEM block is truncated: its end line \"{}\" is missing",
                    String::from_utf8_lossy(&end_marker).trim()
                ))
            }
            Err(rustls_pemfile::Error::IllegalSectionStart { line }) => {
                return Err(format!(
                    "a PEM begin line is malformed: \"{}\"",
                    String::from_utf8_lossy(&line).trim()
                ))
            }
            Err(rustls_pemfile::Error::Base64Decode(_)) => {
                return Err("a PEM block is not valid base64".to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 102, 111]
            .into_iter()
            .map(ordinal)
            .collect();
        assert_eq!(
            got,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "102nd",
                "111th"
            ]
        );
    }

    #[test]
    fn labels_are_read_from_indented_text() {
        let text = "junk\n  -----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\r\n-----BEGIN CERTIFICATE-----\r\n";
        assert_eq!(labels(text), ["EC PARAMETERS", "CERTIFICATE"]);
    }

    #[test]
    fn broken_pem_is_described() {
        let truncated = "-----BEGIN CERTIFICATE-----\nMIIB\n";
        assert!(decode(truncated).unwrap_err().contains("truncated"));
        let bad_base64 = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(decode(bad_base64).unwrap_err().contains("base64"));
        assert_eq!(decode("no pem here").unwrap(), vec![]);
    }
}
