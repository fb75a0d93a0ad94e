//! A submitted form (or a query string): its fields by name, in order, repeated names kept.

use fulcrum_control::ControlError;

/// Values may hold a private key (a certificate upload) or a secret (sign-in): they are wiped
/// when the form drops, and never printed.
#[derive(Default)]
pub struct Form(Vec<(String, String)>);

impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

/// Instance ids as an operator types them: separated by commas or white space.
pub fn split_ids(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Drop for Form {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for (_, v) in &mut self.0 {
            v.zeroize();
        }
    }
}

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The field's value, trimmed; empty when missing.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// The field's value as typed (a PEM block keeps its newlines).
    pub fn raw(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of a repeated field (checkboxes).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    pub fn opt(&self, name: &str) -> Option<String> {
        Some(self.get(name))
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// A whole number, blamed on the field when it is not one.
    pub fn number<T: std::str::FromStr>(&self, name: &str, label: &str) -> Result<T, ControlError> {
        let text = self.get(name);
        text.parse().map_err(|_| {
            ControlError::validation(format!("{label} must be a whole number, not '{text}'"))
                .at(name)
        })
    }

    pub fn opt_number<T: std::str::FromStr>(
        &self,
        name: &str,
        label: &str,
    ) -> Result<Option<T>, ControlError> {
        if self.get(name).is_empty() {
            Ok(None)
        } else {
            self.number(name, label).map(Some)
        }
    }

    /// A checkbox: present means on.
    pub fn checked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }

    /// The rows of a repeated group named `prefix.member.N.field` (N from 1), as the API
    /// names list members; a row whose fields are all empty is skipped but keeps its number.
    pub fn members(&self, prefix: &str, fields: &[&str]) -> Vec<(usize, Vec<String>)> {
        (1..=20)
            .filter_map(|n| {
                let row: Vec<String> = fields
                    .iter()
                    .map(|f| self.get(&format!("{prefix}.member.{n}.{f}")).to_owned())
                    .collect();
                row.iter().any(|v| !v.is_empty()).then_some((n, row))
            })
            .collect()
    }
}
