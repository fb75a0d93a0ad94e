//! The canonical request, the string to sign, the signing key and the signature, as AWS defines
//! them for every service but S3, and as the AWS SDKs compute them. Shared by [`crate::verify`]
//! and [`crate::sign`]. Works on bytes: no input can make it panic.

use aws_lc_rs::{digest, hmac};
use percent_encoding::{percent_decode_str, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use zeroize::Zeroizing;

/// The only algorithm SigV4 (as opposed to SigV4a) uses.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The credential scope's terminator.
pub(crate) const TERMINATOR: &str = "aws4_request";
/// The payload hash a presigned URL may declare instead of hashing the body.
pub(crate) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// `hex(SHA-256(data))`, lower case.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data))
}

/// Every byte but RFC 3986's unreserved characters (`A-Z a-z 0-9 - _ . ~`), which SigV4 never
/// encodes.
const SIGV4_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The same, keeping `/` (the path's separators).
const SIGV4_ENCODE_PATH: &AsciiSet = &SIGV4_ENCODE.remove(b'/');

/// Appends `bytes` URI-encoded the SigV4 way: unreserved characters (and `/` when
/// `keep_slash`) as they are, every other byte as `%XX` with upper-case hex.
fn uri_encode_into(out: &mut String, bytes: &[u8], keep_slash: bool) {
    let set = if keep_slash {
        SIGV4_ENCODE_PATH
    } else {
        SIGV4_ENCODE
    };
    out.extend(percent_encode(bytes, set));
}

/// Decodes a query-string component as browsers and the SDKs' parsers do: `+` is a space,
/// `%XX` is a byte, and a `%` not followed by two hex digits stays a literal `%`.
///
/// This is `percent-encoding`'s decoder, the one `form_urlencoded` (and so the API's parameter
/// parser) is built on, but called directly: `form_urlencoded::parse` returns text, with
/// invalid UTF-8 replaced by U+FFFD, while the canonical query must re-encode the bytes the
/// client signed (`%FF` stays `%FF`), and a malformed `%` is signed as the client sent it
/// rather than refused.
pub(crate) fn query_decode(s: &str) -> Vec<u8> {
    if s.contains('+') {
        percent_decode_str(&s.replace('+', " ")).collect()
    } else {
        percent_decode_str(s).collect()
    }
}

/// The query's `name=value` pairs, decoded; empty pieces (`a&&b`) are skipped and a piece
/// without `=` has an empty value.
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (query_decode(name), query_decode(value))
    })
}

/// The canonical URI of a (percent-encoded, as received) request path: `.` and `..` segments
/// resolved and empty segments removed, then every byte but unreserved characters and `/`
/// encoded once more, so `%20` on the wire is `%2520` here (AWS's "encode twice" for all
/// services but S3). An empty path is `/`.
pub(crate) fn canonical_uri(path: &str) -> String {
    let normalized = normalize_path(path);
    let mut out = String::with_capacity(normalized.len() + 8);
    uri_encode_into(&mut out, normalized.as_bytes(), true);
    out
}

fn normalize_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    if !path.contains('.') && !path.contains("//") {
        return path;
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    out.push('/');
    out.push_str(&segments.join("/"));
    let ends_with_slash = ["/", "/.", "/./", "/..", "/../"]
        .iter()
        .any(|s| path.ends_with(s));
    if ends_with_slash && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// The canonical query string: every parameter decoded and re-encoded the SigV4 way
/// (unreserved characters as they are, space as `%20`), sorted by encoded name then encoded
/// value, joined with `&`. `skip` leaves out parameters with that (decoded) name, as the
/// verifier of a presigned URL does with `X-Amz-Signature`.
pub(crate) fn canonical_query(query: Option<&str>, skip: Option<&str>) -> String {
    let Some(query) = query else {
        return String::new();
    };
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .filter(|(name, _)| !matches!(skip, Some(s) if name.as_slice() == s.as_bytes()))
        .map(|(name, value)| {
            let mut n = String::with_capacity(name.len());
            uri_encode_into(&mut n, &name, false);
            let mut v = String::with_capacity(value.len());
            uri_encode_into(&mut v, &value, false);
            (n, v)
        })
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(query.len() + 16);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// A header value as SigV4 canonicalizes it: leading and trailing spaces removed and runs of
/// spaces inside collapsed to one (only spaces, as the AWS SDKs do).
pub(crate) fn trim_value(value: &[u8]) -> Vec<u8> {
    let start = value.iter().position(|&b| b != b' ').unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(start, |e| e + 1);
    let mut out = Vec::with_capacity(end - start);
    let mut last_space = false;
    for &b in &value[start..end] {
        if b == b' ' {
            if !last_space {
                out.push(b);
            }
            last_space = true;
        } else {
            out.push(b);
            last_space = false;
        }
    }
    out
}

/// A signed header's lower-case name and its values, as received.
pub(crate) type HeaderValues<'a> = (&'a str, Vec<&'a [u8]>);

/// A canonical request, before it is written out.
pub(crate) struct CanonicalRequest<'a> {
    pub(crate) method: &'a str,
    pub(crate) uri: String,
    pub(crate) query: String,
    /// `(lower-case name, values)` in the order of `signed_headers`; each value as received.
    pub(crate) headers: Vec<HeaderValues<'a>>,
    pub(crate) signed_headers: &'a str,
    pub(crate) payload_hash: &'a str,
}

impl CanonicalRequest<'_> {
    /// The canonical request's bytes:
    /// `method \n uri \n query \n (name:values \n)* \n signed_headers \n payload_hash`.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(self.method.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(self.uri.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(self.query.as_bytes());
        out.push(b'\n');
        for (name, values) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.push(b':');
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&trim_value(value));
            }
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(self.signed_headers.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(self.payload_hash.as_bytes());
        out
    }
}

/// `date/region/service/aws4_request`.
pub(crate) fn scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/{TERMINATOR}")
}

/// The string to sign: algorithm, `X-Amz-Date`, scope and the canonical request's hash.
pub(crate) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request)
    )
}

/// HMAC-SHA256 of `string_to_sign` under the key derived from `secret`:
/// `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub(crate) fn signature(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
    string_to_sign: &str,
) -> [u8; 32] {
    /// `HMAC-SHA256(key, data)`, in a buffer wiped when dropped.
    fn mac(key: &[u8], data: &[u8]) -> Zeroizing<[u8; 32]> {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(tag.as_ref());
        out
    }
    // The secret and every key derived from it are wiped when dropped. (aws-lc-rs's `Tag` and
    // HMAC contexts, which hold them briefly, are not ours to wipe.)
    let mut key = Zeroizing::new(Vec::with_capacity(4 + secret.len()));
    key.extend_from_slice(b"AWS4");
    key.extend_from_slice(secret.as_bytes());
    let k_date = mac(&key, date.as_bytes());
    let k_region = mac(&*k_date, region.as_bytes());
    let k_service = mac(&*k_region, service.as_bytes());
    let k_signing = mac(&*k_service, TERMINATOR.as_bytes());
    *mac(&*k_signing, string_to_sign.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_sorted_and_reencoded() {
        assert_eq!(
            canonical_query(Some("Param-3=Value3&Param=Value2&%E1%88%B4=Value1"), None),
            "%E1%88%B4=Value1&Param=Value2&Param-3=Value3"
        );
        assert_eq!(
            canonical_query(Some("b=a+b&a=x%2fy&a=%7e&c&&d="), None),
            "a=x%2Fy&a=~&b=a%20b&c=&d="
        );
        assert_eq!(canonical_query(Some("a=%zz&b=%4"), None), "a=%25zz&b=%254");
        assert_eq!(
            canonical_query(Some("X-Amz-Signature=abc&A=1"), Some("X-Amz-Signature")),
            "A=1"
        );
        assert_eq!(canonical_query(None, None), "");
        assert_eq!(canonical_query(Some("%FF%00=%C3"), None), "%FF%00=%C3");
    }

    #[test]
    fn uri_is_normalized_and_encoded_again() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("/a b"), "/a%20b");
        assert_eq!(canonical_uri("/example%20space/"), "/example%2520space/");
        assert_eq!(canonical_uri("/./a//b/../c/"), "/a/c/");
        assert_eq!(canonical_uri("/.."), "/");
        assert_eq!(canonical_uri("/-._~azAZ09!*"), "/-._~azAZ09%21%2A");
    }

    #[test]
    fn header_values_are_trimmed() {
        assert_eq!(trim_value(b"  a   b  c "), b"a b c");
        assert_eq!(trim_value(b"\"a   b   c\""), b"\"a b c\"");
        assert_eq!(trim_value(b"    "), b"");
        assert_eq!(trim_value(b"a\tb"), b"a\tb");
        assert_eq!(trim_value(b""), b"");
    }
}
