//! The result of one request made by the test clients.

use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderMap, Version};
use serde_json::Value;

/// Result of one request.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Response status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The whole response body.
    pub body: Bytes,
    /// HTTP version of the response (HTTP/1.1 or HTTP/2).
    pub version: Version,
    /// The server's leaf certificate (DER) when the request went over TLS.
    pub peer_cert_der: Option<Vec<u8>>,
    /// The body parsed as JSON, on first use (`None` when it is not JSON).
    parsed: OnceLock<Option<Value>>,
}

impl Reply {
    /// Builds a reply from its parts.
    pub fn new(
        status: u16,
        headers: HeaderMap,
        body: Bytes,
        version: Version,
        peer_cert_der: Option<Vec<u8>>,
    ) -> Reply {
        Reply {
            status,
            headers,
            body,
            version,
            peer_cert_der,
            parsed: OnceLock::new(),
        }
    }

    fn parsed(&self) -> Option<&Value> {
        self.parsed
            .get_or_init(|| serde_json::from_slice(&self.body).ok())
            .as_ref()
    }

    /// The body as JSON (panics, showing the reply, if it is not JSON).
    pub fn json(&self) -> Value {
        match self.parsed() {
            Some(value) => value.clone(),
            None => panic!("reply body is not JSON: {}", self.describe()),
        }
    }

    /// The backend that answered: `json["instance"]`, else the `x-instance` response header (panics if neither).
    pub fn instance(&self) -> String {
        if let Some(name) = self.parsed().and_then(|v| v["instance"].as_str()) {
            return name.to_string();
        }
        match self.response_header("x-instance") {
            Some(name) => name.to_string(),
            None => panic!("reply names no instance: {}", self.describe()),
        }
    }

    /// A request header as the backend saw it: `json["headers"][name]` (name is lowercased; `None` if absent or not JSON).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.parsed()?.get("headers")?.get(name.as_str())?.as_str()
    }

    /// A response header (the first value, if it is valid text).
    pub fn response_header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// All values of a response header (e.g. every `set-cookie`).
    pub fn response_headers(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A one-line description for assertion messages: status, version and the start of the body.
    pub fn describe(&self) -> String {
        let text = self.text();
        let shown: String = text.chars().take(500).collect();
        format!("{} {:?} body {:?}", self.status, self.version, shown)
    }
}
