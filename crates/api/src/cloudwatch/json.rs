//! JSON as the awsJson1_0 protocol uses it: objects for structures and maps, arrays for
//! lists, timestamps as epoch seconds (a plain number).

use super::value::Value;
use crate::error::ApiError;

/// A request body; empty is an empty structure.
pub(crate) fn decode(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(Value::Struct(Vec::new()));
    }
    // serde_json refuses nesting deeper than 128 itself.
    let json: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            "SerializationException",
            format!("the request body is not valid JSON: {e}"),
        )
    })?;
    Ok(from_json(json))
}

fn from_json(json: serde_json::Value) -> Value {
    use serde_json::Value as J;
    match json {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(b),
        J::Number(n) => n
            .as_i64()
            .map(Value::Int)
            .unwrap_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN))),
        J::String(s) => Value::Text(s),
        J::Array(items) => Value::List(items.into_iter().map(from_json).collect()),
        J::Object(members) => Value::Struct(
            members
                .into_iter()
                .map(|(k, v)| (k, from_json(v)))
                .collect(),
        ),
    }
}

/// An answer's body.
pub(crate) fn encode(value: &Value) -> Vec<u8> {
    serde_json::to_vec(&to_json(value)).unwrap_or_default()
}

fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    let number = |f: f64| serde_json::Number::from_f64(f).map_or(J::Null, J::Number);
    match value {
        Value::Null | Value::Bytes(_) => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(n) => J::from(*n),
        Value::Float(f) => number(*f),
        Value::Text(s) => J::String(s.clone()),
        Value::Time(t) if t.fract() == 0.0 && t.abs() < 9e15 => J::from(*t as i64),
        Value::Time(t) => number(*t),
        Value::List(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Struct(members) | Value::Map(members) => J::Object(
            members
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_botocore_sends_and_reads() {
        let v = decode(br#"{"Namespace": "AWS/ELB", "Period": 60, "StartTime": 1796083200.5}"#)
            .unwrap();
        assert_eq!(
            v,
            Value::Struct(vec![
                ("Namespace".into(), Value::text("AWS/ELB")),
                ("Period".into(), Value::Int(60)),
                ("StartTime".into(), Value::Float(1_796_083_200.5)),
            ])
        );
        let out = Value::structure([
            ("Timestamp", Some(Value::Time(1_796_083_200.0))),
            ("Sum", Some(Value::Float(3.0))),
        ]);
        let text = String::from_utf8(encode(&out)).unwrap();
        assert!(text.contains(r#""Timestamp":1796083200"#), "{text}");
        assert!(text.contains(r#""Sum":3.0"#), "{text}");
        assert_eq!(decode(b"{").unwrap_err().code, "SerializationException");
    }
}
