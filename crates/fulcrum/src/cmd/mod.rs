//! The client commands: each module is one group (`fulcrum cert ...`, `fulcrum lb ...`) that turns
//! its arguments into API calls and prints the result as text or JSON.

pub mod cert;
pub mod fleet;
pub mod instance;
pub mod key;
pub mod lb;

use std::future::Future;

use anyhow::Context;
use serde_json::Value;

use crate::client::{Client, Output};

/// Runs one command's calls; a command makes a few calls in sequence, one thread is plenty.
fn block_on(work: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(work)
}

/// Prints `result` as JSON, or as the text `text` makes of it (nothing when that is empty).
fn print(client: &Client, result: &Value, text: impl FnOnce(&Value) -> String) {
    match client.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(result).expect("JSON values serialize")
        ),
        Output::Text => {
            let text = text(result);
            if !text.is_empty() {
                println!("{}", text.trim_end_matches('\n'));
            }
        }
    }
}

/// A field as text: strings as they are, numbers and booleans written out, anything else empty.
fn field(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other @ (Value::Number(_) | Value::Bool(_)) => other.to_string(),
        _ => String::new(),
    }
}

/// The items of a list field (none when it is missing).
fn items<'v>(v: &'v Value, key: &str) -> &'v [Value] {
    v[key].as_array().map_or(&[], Vec::as_slice)
}

/// Columns aligned under their headers, two spaces apart; `empty` when there are no rows.
fn table(headers: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return empty.to_owned();
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i + 1 == headers.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// Every item of an IAM listing, page after page (`Marker`, `IsTruncated`).
async fn list_all(c: &Client, action: &str, list: &str) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut p = crate::client::Params::default();
        p.opt("Marker", marker.as_ref());
        let r = c.call(crate::client::IAM, action, &p.0).await?;
        all.extend_from_slice(items(&r, list));
        marker = Some(field(&r, "Marker")).filter(|m| !m.is_empty());
        if r["IsTruncated"] != Value::Bool(true) || marker.is_none() {
            return Ok(all);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["web".to_owned(), "x".to_owned(), "last".to_owned()],
            vec!["a".to_owned(), "longer".to_owned(), String::new()],
        ];
        assert_eq!(
            super::table(&["NAME", "B", "C"], &rows, "none"),
            "NAME  B       C\nweb   x       last\na     longer\n"
        );
        assert_eq!(super::table(&["NAME"], &[], "none"), "none");
    }

    #[test]
    fn fields_read_as_text() {
        let v = json!({"s": "x", "n": 80, "b": true, "a": []});
        assert_eq!(super::field(&v, "s"), "x");
        assert_eq!(super::field(&v, "n"), "80");
        assert_eq!(super::field(&v, "b"), "true");
        assert_eq!(super::field(&v, "a"), "");
        assert_eq!(super::field(&v, "missing"), "");
    }
}
