//! Just enough DER to find the raw AlgorithmIdentifiers that rustls's signature verifiers are keyed
//! by; x509-parser decodes them into structures that cannot be compared byte for byte.

const SEQUENCE: u8 = 0x30;

/// Splits one DER element off the front of `input`: (tag, contents, rest).
fn take_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let octets = usize::from(first & 0x7f);
        // Four length octets already allow 4 GiB; anything longer is hostile or broken.
        if octets == 0 || octets > 4 || rest.len() < octets {
            return None;
        }
        let (len_bytes, after) = rest.split_at(octets);
        rest = after;
        len_bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b))
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

fn take_sequence(input: &[u8]) -> Option<(&[u8], &[u8])> {
    match take_tlv(input)? {
        (SEQUENCE, contents, rest) => Some((contents, rest)),
        _ => None,
    }
}

/// The contents of a certificate's outer signatureAlgorithm.
pub(crate) fn certificate_signature_algorithm(cert_der: &[u8]) -> Option<&[u8]> {
    let (cert, _) = take_sequence(cert_der)?;
    let (_tbs, rest) = take_sequence(cert)?;
    let (algorithm, _) = take_sequence(rest)?;
    Some(algorithm)
}

/// The contents of a SubjectPublicKeyInfo's algorithm.
pub(crate) fn spki_algorithm(spki_der: &[u8]) -> Option<&[u8]> {
    let (spki, _) = take_sequence(spki_der)?;
    let (algorithm, _) = take_sequence(spki)?;
    Some(algorithm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_and_oversized_lengths_are_refused() {
        assert_eq!(take_tlv(&[]), None);
        assert_eq!(take_tlv(&[0x30]), None);
        assert_eq!(take_tlv(&[0x30, 0x05, 1, 2]), None);
        assert_eq!(take_tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(take_tlv(&[0x30, 0x80]), None);
        assert_eq!(
            take_tlv(&[0x30, 0x81, 0x01, 7, 9]),
            Some((0x30, &[7u8][..], &[9u8][..]))
        );
        assert_eq!(certificate_signature_algorithm(&[0x30, 0x00]), None);
        assert_eq!(spki_algorithm(&[0x04, 0x00]), None);
    }
}
