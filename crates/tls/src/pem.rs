//! Reading PEM text from users: which blocks it holds (by label, for precise messages) and their
//! decoded contents.

use rustls::pki_types::pem::{self, PemObject, SectionKind};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};
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

/// A decoded PEM block.
pub(crate) enum Block {
    Certificate(CertificateDer<'static>),
    /// A `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block's DER, wiped when dropped.
    Key(KeyKind, Zeroizing<Vec<u8>>),
    /// A block of another label rustls knows (`PUBLIC KEY`, `X509 CRL`, …).
    Other,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Block::Certificate(der) => write!(f, "Certificate({} bytes)", der.len()),
            // Never the key's bytes.
            Block::Key(kind, _) => write!(f, "Key({kind:?})"),
            Block::Other => f.write_str("Other"),
        }
    }
}

/// The encoding of a private key block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Pkcs8,
    Pkcs1,
    Sec1,
}

impl KeyKind {
    /// The key as rustls takes it, borrowing the (zeroized) buffer.
    pub(crate) fn der<'a>(self, der: &'a [u8]) -> PrivateKeyDer<'a> {
        match self {
            KeyKind::Pkcs8 => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
            KeyKind::Pkcs1 => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
            KeyKind::Sec1 => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
        }
    }
}

/// Decodes every PEM block that rustls knows (with `rustls-pki-types`' PEM reader); blocks with
/// other labels are skipped, so callers compare with [`labels`] first. The error says what is
/// wrong with the PEM itself.
pub(crate) fn decode(text: &str) -> Result<Vec<Block>, String> {
    // Pasted PEM often carries indentation or CRLFs; the decoder only accepts lines that start
    // with the markers. The copy may hold a private key, so it is wiped when dropped.
    let normalized = Zeroizing::new(text.lines().map(str::trim).collect::<Vec<_>>().join("\n"));
    let mut blocks = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(normalized.as_bytes()) {
        let (kind, der) = match section {
            Ok(section) => section,
            Err(pem::Error::MissingSectionEnd { end_marker }) => {
                return Err(format!(
                    "a PEM block is truncated: its end line \"{}\" is missing",
                    String::from_utf8_lossy(&end_marker).trim()
                ))
            }
            Err(pem::Error::IllegalSectionStart { line }) => {
                return Err(format!(
                    "a PEM begin line is malformed: \"{}\"",
                    String::from_utf8_lossy(&line).trim()
                ))
            }
            Err(pem::Error::Base64Decode(_)) => {
                return Err("a PEM block is not valid base64".to_string())
            }
            Err(pem::Error::SectionTooLarge) => return Err("a PEM block is too large".to_string()),
            Err(e) => return Err(format!("the PEM cannot be read: {e}")),
        };
        blocks.push(match kind {
            SectionKind::Certificate => Block::Certificate(CertificateDer::from(der)),
            SectionKind::PrivateKey => Block::Key(KeyKind::Pkcs8, Zeroizing::new(der)),
            SectionKind::RsaPrivateKey => Block::Key(KeyKind::Pkcs1, Zeroizing::new(der)),
            SectionKind::EcPrivateKey => Block::Key(KeyKind::Sec1, Zeroizing::new(der)),
            _ => Block::Other,
        });
    }
    Ok(blocks)
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
        assert!(decode("no pem here").unwrap().is_empty());
    }
}
