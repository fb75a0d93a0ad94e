//! Reads the API's XML answers into JSON: elements become objects, `member` lists arrays, and the
//! few numeric and boolean fields the CLI prints get their JSON types, as the aws CLI shows them.

use roxmltree::{Document, Node};
use serde_json::{Map, Value};

use super::ApiError;

/// Lists whose emptiness XML cannot show (`<Instances></Instances>` reads like an empty string).
const LISTS: &[&str] = &[
    "AccessKeyMetadata",
    "AppCookieStickinessPolicies",
    "AvailabilityZones",
    "BackendServerDescriptions",
    "Instances",
    "InstanceStates",
    "LBCookieStickinessPolicies",
    "ListenerDescriptions",
    "LoadBalancerDescriptions",
    "OtherPolicies",
    "PolicyNames",
    "SecurityGroups",
    "ServerCertificateMetadataList",
    "Subnets",
    "Tags",
];

const NUMBERS: &[&str] = &[
    "CookieExpirationPeriod",
    "HealthyThreshold",
    "InstancePort",
    "Interval",
    "LoadBalancerPort",
    "Max",
    "Timeout",
    "UnhealthyThreshold",
];

const BOOLEANS: &[&str] = &["IsTruncated"];

/// The `<{action}Result>` of a successful answer, as JSON; `{}` for actions that answer only
/// their metadata.
pub fn result(text: &str, action: &str) -> anyhow::Result<Value> {
    let doc = Document::parse(text)?;
    let root = doc.root_element();
    let wanted = format!("{action}Result");
    Ok(root
        .children()
        .find(|n| n.is_element() && n.tag_name().name() == wanted)
        .map_or_else(|| Value::Object(Map::new()), |n| object(n)))
}

/// The `Code` and `Message` of an AWS error document (`ErrorResponse/Error`), if `text` is one.
pub fn error(text: &str) -> Option<ApiError> {
    let doc = Document::parse(text).ok()?;
    let error = doc
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == "Error")?;
    let field = |name: &str| {
        error
            .children()
            .find(|n| n.tag_name().name() == name)
            .and_then(|n| n.text())
            .map(str::to_owned)
    };
    Some(ApiError {
        code: field("Code")?,
        message: field("Message").unwrap_or_default(),
    })
}

fn elements<'a, 'i>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(Node::is_element)
}

fn value(node: Node<'_, '_>) -> Value {
    let name = node.tag_name().name();
    let mut children = elements(node).peekable();
    let is_list = LISTS.contains(&name)
        || children
            .peek()
            .is_some_and(|c| c.tag_name().name() == "member");
    if is_list {
        return Value::Array(elements(node).map(value).collect());
    }
    if children.peek().is_some() {
        return object(node);
    }
    let text = node.text().unwrap_or("");
    if NUMBERS.contains(&name) {
        if let Ok(n) = text.parse::<i64>() {
            return n.into();
        }
    }
    if BOOLEANS.contains(&name) {
        if let Ok(b) = text.parse::<bool>() {
            return b.into();
        }
    }
    Value::String(text.to_owned())
}

fn object(node: Node<'_, '_>) -> Value {
    Value::Object(
        elements(node)
            .map(|c| (c.tag_name().name().to_owned(), value(c)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn answers_become_json() {
        let text = r#"<?xml version="1.0"?><DResponse xmlns="urn:x"><DResult><Items><member><Name>a&amp;b</Name><Port>80</Port><LoadBalancerPort>443</LoadBalancerPort><PolicyNames></PolicyNames></member></Items><Names><member>x</member></Names><IsTruncated>false</IsTruncated></DResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DResponse>"#;
        assert_eq!(
            super::result(text, "D").unwrap(),
            json!({
                "Items": [{"Name": "a&b", "Port": "80", "LoadBalancerPort": 443, "PolicyNames": []}],
                "Names": ["x"],
                "IsTruncated": false,
            })
        );
        let empty = r#"<XResponse><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></XResponse>"#;
        assert_eq!(super::result(empty, "X").unwrap(), json!({}));
    }

    #[test]
    fn error_documents_give_code_and_message() {
        let text = r#"<ErrorResponse xmlns="urn:x"><Error><Type>Sender</Type><Code>LoadBalancerNotFound</Code><Message>no &lt;lb&gt;</Message></Error><RequestId>r</RequestId></ErrorResponse>"#;
        let e = super::error(text).unwrap();
        assert_eq!(e.to_string(), "LoadBalancerNotFound: no <lb>");
        assert!(super::error("not xml").is_none());
    }
}
