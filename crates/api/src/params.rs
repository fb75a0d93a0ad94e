//! The AWS Query protocol's parameters: a flat form (`Action=...&Listeners.member.1.Protocol=...`)
//! read into typed values, with a precise `ValidationError` for anything missing or malformed.

use std::collections::BTreeMap;

use percent_encoding::percent_decode;
use zeroize::{Zeroize, Zeroizing};

use crate::error::ApiError;

/// The decoded parameters of one request. They may hold a private key (UploadServerCertificate's
/// `PrivateKey`): every name and value is wiped when the parameters are dropped.
#[derive(Debug, Default)]
pub struct Params(BTreeMap<String, String>);

impl Drop for Params {
    fn drop(&mut self) {
        for (mut name, mut value) in std::mem::take(&mut self.0) {
            name.zeroize();
            value.zeroize();
        }
    }
}

impl Params {
    /// Decodes `application/x-www-form-urlencoded` text; later values win over earlier ones.
    pub fn parse(form: &[u8]) -> Result<Params, ApiError> {
        let mut params = Params::default();
        params.extend(form)?;
        Ok(params)
    }

    pub fn extend(&mut self, form: &[u8]) -> Result<(), ApiError> {
        for pair in form.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            if let Some(mut replaced) = self.0.insert(decode(k)?, decode(v)?) {
                replaced.zeroize();
            }
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| {
            ApiError::validation(format!("The request must contain the parameter {name}"))
        })
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.get(name)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ApiError::validation(format!(
                    "{name} must be true or false, not '{v}'"
                ))),
            })
            .transpose()
    }

    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::validation(format!("{name} must be a number in range, not '{v}'"))
                })
            })
            .transpose()
    }

    pub fn required_number<T: std::str::FromStr>(&self, name: &str) -> Result<T, ApiError> {
        self.number(name)?.ok_or_else(|| {
            ApiError::validation(format!("The request must contain the parameter {name}"))
        })
    }

    /// The members of a list (`{prefix}.member.N...`), each as its own parameters (names
    /// relative to the member), in N order.
    pub fn members(&self, prefix: &str) -> Result<Vec<Params>, ApiError> {
        let head = format!("{prefix}.member.");
        let mut by_index: BTreeMap<u32, Params> = BTreeMap::new();
        for (k, v) in self.0.range(head.clone()..) {
            let Some(rest) = k.strip_prefix(&head) else {
                break;
            };
            let (index, field) = match rest.split_once('.') {
                Some((i, f)) => (i, f),
                None => (rest, ""),
            };
            let index: u32 =
                index.parse().ok().filter(|i| *i >= 1).ok_or_else(|| {
                    ApiError::validation(format!("{k} has an invalid member index"))
                })?;
            by_index
                .entry(index)
                .or_default()
                .0
                .insert(field.to_owned(), v.clone());
        }
        Ok(by_index.into_values().collect())
    }

    /// A list of plain strings (`{prefix}.member.N=value`).
    pub fn strings(&self, prefix: &str) -> Result<Vec<String>, ApiError> {
        self.members(prefix)?
            .into_iter()
            .map(|m| {
                m.get("").map(str::to_owned).ok_or_else(|| {
                    ApiError::validation(format!("{prefix} members must be plain values"))
                })
            })
            .collect()
    }

    /// A list of structures whose single field `field` is wanted
    /// (`Instances.member.N.InstanceId`).
    pub fn member_field(&self, prefix: &str, field: &str) -> Result<Vec<String>, ApiError> {
        self.members(prefix)?
            .into_iter()
            .map(|m| m.required(field).map(str::to_owned))
            .collect()
    }
}

/// Decodes one name or value: `+` is a space, `%XX` a byte, with `percent-encoding`'s decoder
/// (the one under `form_urlencoded`, and the one SigV4's canonical query uses). Unlike
/// `form_urlencoded::parse`, which keeps a stray `%` and replaces invalid UTF-8 with U+FFFD,
/// both are refused here, so a garbled parameter is an error rather than a different value.
fn decode(raw: &[u8]) -> Result<String, ApiError> {
    let mut rest = raw;
    while let Some(i) = rest.iter().position(|b| *b == b'%') {
        if !rest
            .get(i + 1..i + 3)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        {
            return Err(ApiError::malformed(
                "invalid percent-encoding in the request",
            ));
        }
        rest = &rest[i + 3..];
    }
    let decoded: Vec<u8> = if raw.contains(&b'+') {
        let spaced: Zeroizing<Vec<u8>> = Zeroizing::new(
            raw.iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect(),
        );
        percent_decode(&spaced).collect()
    } else {
        percent_decode(raw).collect()
    };
    String::from_utf8(decoded).map_err(|e| {
        e.into_bytes().zeroize();
        ApiError::malformed("parameters must be UTF-8")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_structures() {
        let p = Params::parse(
            b"Action=CreateLoadBalancer&Listeners.member.2.Protocol=HTTPS&Listeners.member.1.Protocol=HTTP\
              &Listeners.member.10.Protocol=TCP&Names.member.1=a%20b&Names.member.2=c+d&Empty=",
        )
        .unwrap();
        assert_eq!(p.get("Action"), Some("CreateLoadBalancer"));
        let protos: Vec<_> = p
            .members("Listeners")
            .unwrap()
            .iter()
            .map(|m| m.get("Protocol").unwrap().to_owned())
            .collect();
        assert_eq!(
            protos,
            ["HTTP", "HTTPS", "TCP"],
            "ordered by index as a number"
        );
        assert_eq!(p.strings("Names").unwrap(), ["a b", "c d"]);
        assert_eq!(p.get("Empty"), Some(""));
        assert!(p.members("Nothing").unwrap().is_empty());
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert!(Params::parse(b"a=%zz").is_err());
        assert!(Params::parse(b"a=%4").is_err());
        assert!(Params::parse(b"a=%ff").is_err(), "not UTF-8");
        assert!(Params::parse(b"L.member.x.P=1")
            .unwrap()
            .members("L")
            .is_err());
        assert!(Params::parse(b"L.member.0=1")
            .unwrap()
            .members("L")
            .is_err());
        let p = Params::parse(b"n=abc&b=maybe").unwrap();
        assert!(p.number::<u32>("n").is_err());
        assert!(p.bool("b").is_err());
        assert!(p.required("missing").is_err());
    }
}
