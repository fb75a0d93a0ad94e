//! CBOR (RFC 8949) as Smithy's rpc-v2-cbor protocol uses it, with `minicbor`: maps with text
//! keys for structures, arrays for lists, tag 1 around epoch seconds for timestamps. Decoding
//! takes definite and indefinite lengths alike (the protocol allows both) and refuses nesting
//! deeper than any CloudWatch input needs, so a hostile body cannot exhaust the stack.

use minicbor::data::{Tag, Type};
use minicbor::{Decoder, Encoder};

use super::value::Value;
use crate::error::ApiError;

/// Deeper than GetMetricData's input (queries, stat, metric, dimensions) with room to spare.
const MAX_DEPTH: usize = 16;
/// Tag 1: epoch-based date/time.
const EPOCH_TIME: Tag = Tag::new(1);

/// A request body; empty is an empty structure (an operation with no parameters).
pub(crate) fn decode(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(Value::Struct(Vec::new()));
    }
    let mut d = Decoder::new(body);
    let value = item(&mut d, 0).map_err(|e| serialization(e.to_string()))?;
    if d.position() != body.len() {
        return Err(serialization(
            "unexpected bytes after the CBOR value".into(),
        ));
    }
    Ok(value)
}

fn serialization(why: String) -> ApiError {
    ApiError::new(
        "SerializationException",
        format!("the request body is not valid CBOR: {why}"),
    )
}

type Decoded = Result<Value, minicbor::decode::Error>;

fn item(d: &mut Decoder<'_>, depth: usize) -> Decoded {
    use minicbor::decode::Error;
    if depth > MAX_DEPTH {
        return Err(Error::message("nested too deeply"));
    }
    Ok(match d.datatype()? {
        Type::Bool => Value::Bool(d.bool()?),
        Type::Null => {
            d.null()?;
            Value::Null
        }
        Type::Undefined => {
            d.undefined()?;
            Value::Null
        }
        Type::U8
        | Type::U16
        | Type::U32
        | Type::U64
        | Type::I8
        | Type::I16
        | Type::I32
        | Type::I64
        | Type::Int => {
            let n = i128::from(d.int()?);
            i64::try_from(n).map_or(Value::Float(n as f64), Value::Int)
        }
        Type::F16 | Type::F32 | Type::F64 => Value::Float(d.f64()?),
        Type::String => Value::Text(d.str()?.to_owned()),
        Type::StringIndef => {
            let mut s = String::new();
            for chunk in d.str_iter()? {
                s.push_str(chunk?);
            }
            Value::Text(s)
        }
        Type::Bytes => Value::Bytes(d.bytes()?.to_vec()),
        Type::BytesIndef => {
            let mut b = Vec::new();
            for chunk in d.bytes_iter()? {
                b.extend_from_slice(chunk?);
            }
            Value::Bytes(b)
        }
        Type::Array | Type::ArrayIndef => {
            let len = d.array()?;
            let mut items = Vec::new();
            let mut i = 0u64;
            while more(d, len, i)? {
                items.push(item(d, depth + 1)?);
                i += 1;
            }
            Value::List(items)
        }
        Type::Map | Type::MapIndef => {
            let len = d.map()?;
            let mut members = Vec::new();
            let mut i = 0u64;
            while more(d, len, i)? {
                let key = match item(d, depth + 1)? {
                    Value::Text(k) => k,
                    _ => return Err(Error::message("map keys must be text")),
                };
                members.push((key, item(d, depth + 1)?));
                i += 1;
            }
            Value::Struct(members)
        }
        Type::Tag => {
            let tag = d.tag()?;
            let inner = item(d, depth + 1)?;
            if tag != EPOCH_TIME {
                return Err(Error::message(format!("unexpected tag {}", tag.as_u64())));
            }
            match inner {
                Value::Int(n) => Value::Time(n as f64),
                Value::Float(f) => Value::Time(f),
                _ => return Err(Error::message("a timestamp must be a number")),
            }
        }
        other => return Err(Error::message(format!("unexpected {other}"))),
    })
}

/// Whether an array or map of `len` items (`None`: indefinite, ended by a break) has more
/// after `i`; consumes the break.
fn more(d: &mut Decoder<'_>, len: Option<u64>, i: u64) -> Result<bool, minicbor::decode::Error> {
    match len {
        Some(n) => Ok(i < n),
        None if d.datatype()? == Type::Break => {
            d.set_position(d.position() + 1);
            Ok(false)
        }
        None => Ok(true),
    }
}

/// An answer's body.
pub(crate) fn encode(value: &Value) -> Vec<u8> {
    let mut e = Encoder::new(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = write(&mut e, value);
    e.into_writer()
}

type Written = Result<(), minicbor::encode::Error<std::convert::Infallible>>;

fn write(e: &mut Encoder<Vec<u8>>, value: &Value) -> Written {
    match value {
        Value::Null => {
            e.null()?;
        }
        Value::Bool(b) => {
            e.bool(*b)?;
        }
        Value::Int(n) => {
            e.i64(*n)?;
        }
        Value::Float(f) => {
            e.f64(*f)?;
        }
        Value::Text(s) => {
            e.str(s)?;
        }
        Value::Bytes(b) => {
            e.bytes(b)?;
        }
        Value::List(items) => {
            e.array(items.len() as u64)?;
            for v in items {
                write(e, v)?;
            }
        }
        Value::Struct(members) | Value::Map(members) => {
            e.map(members.len() as u64)?;
            for (k, v) in members {
                e.str(k)?;
                write(e, v)?;
            }
        }
        Value::Time(t) => {
            e.tag(EPOCH_TIME)?;
            if t.fract() == 0.0 && t.abs() < 9e15 {
                e.i64(*t as i64)?;
            } else {
                e.f64(*t)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_botocore_sends() {
        // {"Namespace": "AWS/ELB", "Period": 60, "StartTime": 1(1796083200),
        //  "Statistics": ["Sum"]}, as botocore's serializer writes it.
        let body = [
            &[0xa4][..],
            &[0x69],
            b"Namespace",
            &[0x67],
            b"AWS/ELB",
            &[0x66],
            b"Period",
            &[0x18, 60],
            &[0x69],
            b"StartTime",
            &[0xc1, 0x1a, 0x6b, 0x0e, 0x0e, 0x00],
            &[0x6a],
            b"Statistics",
            &[0x81, 0x63],
            b"Sum",
        ]
        .concat();
        let v = decode(&body).unwrap();
        assert_eq!(
            v,
            Value::Struct(vec![
                ("Namespace".into(), Value::text("AWS/ELB")),
                ("Period".into(), Value::Int(60)),
                ("StartTime".into(), Value::Time(1_796_083_200.0)),
                ("Statistics".into(), Value::List(vec![Value::text("Sum")])),
            ])
        );
    }

    #[test]
    fn indefinite_lengths_and_small_floats() {
        // {_ "a": [_ 1.5 (f16), -2], "b": null}
        let body = [
            0xbf, 0x61, b'a', 0x9f, 0xf9, 0x3e, 0x00, 0x21, 0xff, 0x61, b'b', 0xf6, 0xff,
        ];
        assert_eq!(
            decode(&body).unwrap(),
            Value::Struct(vec![
                (
                    "a".into(),
                    Value::List(vec![Value::Float(1.5), Value::Int(-2)])
                ),
                ("b".into(), Value::Null),
            ])
        );
    }

    #[test]
    fn round_trip() {
        let v = Value::structure([
            ("Label", Some(Value::text("Latency"))),
            (
                "Datapoints",
                Some(Value::List(vec![Value::structure([
                    ("Timestamp", Some(Value::Time(1_796_083_200.0))),
                    ("Average", Some(Value::Float(0.25))),
                    (
                        "ExtendedStatistics",
                        Some(Value::Map(vec![("p99".into(), Value::Float(0.5))])),
                    ),
                ])])),
            ),
        ]);
        let back = decode(&encode(&v)).unwrap();
        // Maps come back as structures: CBOR does not tell them apart.
        let text = format!("{back:?}");
        assert!(text.contains("Time(1796083200.0)"), "{text}");
        assert!(text.contains("\"p99\", Float(0.5)"), "{text}");
    }

    #[test]
    fn hostile_bodies_are_refused() {
        assert_eq!(
            decode(&[0x9f; 100]).unwrap_err().code,
            "SerializationException"
        );
        assert!(decode(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode(&[0xa1, 0x01, 0x02]).is_err(), "integer key");
        assert!(decode(&[0xc2, 0x40]).is_err(), "unknown tag");
        assert!(decode(&[0xf6, 0xf6]).is_err(), "trailing bytes");
        assert_eq!(decode(b"").unwrap(), Value::Struct(Vec::new()));
    }
}
