//! A small writer for the XML documents the Query protocol answers with.

use std::fmt::Write;

pub struct Xml {
    buf: String,
}

impl Xml {
    /// Starts `<{action}Response xmlns="{namespace}"><{action}Result>`.
    pub fn response(action: &str, namespace: &str) -> Xml {
        let mut buf = String::with_capacity(1024);
        buf.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        let _ = write!(buf, r#"<{action}Response xmlns="{namespace}">"#);
        Xml { buf }
    }

    /// Starts the answer of `action` with its `<{action}Result>` open.
    pub fn result(action: &str, namespace: &str) -> Xml {
        let mut x = Xml::response(action, namespace);
        x.open(&format!("{action}Result"));
        x
    }

    pub fn open(&mut self, tag: &str) -> &mut Self {
        let _ = write!(self.buf, "<{tag}>");
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Self {
        let _ = write!(self.buf, "</{tag}>");
        self
    }

    /// `<tag>text</tag>`, with the text escaped.
    pub fn text(&mut self, tag: &str, text: impl std::fmt::Display) -> &mut Self {
        let _ = write!(self.buf, "<{tag}>");
        escape_into(&mut self.buf, &text.to_string());
        let _ = write!(self.buf, "</{tag}>");
        self
    }

    pub fn opt_text(&mut self, tag: &str, text: Option<impl std::fmt::Display>) -> &mut Self {
        if let Some(t) = text {
            self.text(tag, t);
        }
        self
    }

    /// `<tag><member>..</member>...</tag>` with each item written by `f`.
    pub fn list<T>(
        &mut self,
        tag: &str,
        items: impl IntoIterator<Item = T>,
        mut f: impl FnMut(&mut Xml, T),
    ) -> &mut Self {
        self.open(tag);
        for item in items {
            self.open("member");
            f(self, item);
            self.close("member");
        }
        self.close(tag)
    }

    /// A list of plain strings.
    pub fn strings<S: std::fmt::Display>(
        &mut self,
        tag: &str,
        items: impl IntoIterator<Item = S>,
    ) -> &mut Self {
        self.open(tag);
        for item in items {
            self.text("member", item);
        }
        self.close(tag)
    }

    /// Ends the document with the response metadata.
    pub fn finish(mut self, action: &str, request_id: &str) -> String {
        let _ = write!(
            self.buf,
            "<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
        );
        self.buf
    }
}

/// Closes the result element of `action`; the caller then finishes the document.
pub fn done(mut x: Xml, action: &str) -> Xml {
    x.close(&format!("{action}Result"));
    x
}

pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

pub fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    escape_into(&mut s, text);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_well_formed_and_escaped() {
        let mut x = Xml::response("Describe", "urn:x");
        x.open("DescribeResult")
            .text("Name", "a<b>&\"c'")
            .strings("Zones", ["z1", "z2"])
            .close("DescribeResult");
        let doc = x.finish("Describe", "rid");
        assert_eq!(
            doc,
            r#"<?xml version="1.0" encoding="UTF-8"?><DescribeResponse xmlns="urn:x"><DescribeResult><Name>a&lt;b&gt;&amp;&quot;c&apos;</Name><Zones><member>z1</member><member>z2</member></Zones></DescribeResult><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></DescribeResponse>"#
        );
    }
}
