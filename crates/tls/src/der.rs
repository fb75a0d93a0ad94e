//! Just enough DER to find the raw AlgorithmIdentifiers that rustls's signature verifiers are keyed
//! by; x509-parser decodes them into structures that cannot be compared byte for byte.

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const NULL: u8 = 0x05;
const OID: u8 = 0x06;

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

/// The elements of a SEQUENCE that fills `der` exactly, as (tag, contents).
fn sequence_elements(der: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let (mut contents, rest) = take_sequence(der)?;
    if !rest.is_empty() {
        return None;
    }
    let mut elements = Vec::new();
    while !contents.is_empty() {
        let (tag, element, after) = take_tlv(contents)?;
        elements.push((tag, element));
        contents = after;
    }
    Some(elements)
}

/// A PKCS#1 RSAPublicKey: SEQUENCE { modulus INTEGER, publicExponent INTEGER }.
pub(crate) fn is_rsa_public_key(der: &[u8]) -> bool {
    matches!(
        sequence_elements(der).as_deref(),
        Some([(INTEGER, modulus), (INTEGER, exponent)]) if !modulus.is_empty() && !exponent.is_empty()
    )
}

/// PKCS#8, SEC1 and PKCS#1 private keys all start with a version INTEGER followed by at least two
/// more elements; public keys and certificates never start with an INTEGER.
pub(crate) fn looks_like_private_key(der: &[u8]) -> bool {
    matches!(
        sequence_elements(der).as_deref(),
        Some([(INTEGER, _), _, _, ..])
    )
}

/// Wraps a PKCS#1 RSAPublicKey into the SubjectPublicKeyInfo that certificates carry.
pub(crate) fn rsa_spki(rsa_public_key: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { rsaEncryption, NULL }
    let mut algorithm = tlv(OID, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]);
    algorithm.extend(tlv(NULL, &[]));
    let mut bits = vec![0u8]; // no unused bits
    bits.extend_from_slice(rsa_public_key);
    let mut spki = tlv(SEQUENCE, &algorithm);
    spki.extend(tlv(BIT_STRING, &bits));
    tlv(SEQUENCE, &spki)
}

fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let octets: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | octets.len() as u8);
        out.extend(octets);
    }
    out.extend_from_slice(contents);
    out
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

    #[test]
    fn shapes_of_keys() {
        let rsa = [0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03];
        assert!(is_rsa_public_key(&rsa));
        assert!(!looks_like_private_key(&rsa));
        assert!(!is_rsa_public_key(&[0x30, 0x03, 0x02, 0x01, 0x05]));
        let private = [
            0x30, 0x09, 0x02, 0x01, 0x00, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03,
        ];
        assert!(looks_like_private_key(&private));
        assert!(!is_rsa_public_key(&private));
        let spki = rsa_spki(&rsa);
        let (algorithm, rest) = take_sequence(&spki)
            .and_then(|(s, r)| {
                assert!(r.is_empty());
                take_sequence(s)
            })
            .unwrap();
        assert_eq!(algorithm.len(), 13);
        assert_eq!(rest, [&[0x03, 0x09, 0x00][..], &rsa[..]].concat());
        assert_eq!(tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(tlv(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
    }
}
