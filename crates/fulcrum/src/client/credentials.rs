//! Which access key signs: the flags, else the environment the aws CLI also reads, else the
//! profile of the credentials file that `fulcrum serve` wrote.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::ClientArgs;

pub use crate::credentials::PROFILE;

pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The profile's `region`, when it came from a file that has one.
    pub region: Option<String>,
}

pub fn resolve(args: &ClientArgs) -> anyhow::Result<Credentials> {
    if let (Some(id), Some(secret)) = (&args.access_key_id, &args.secret_access_key) {
        return Ok(Credentials {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
            region: None,
        });
    }
    let env = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => {
            return Ok(Credentials {
                access_key_id: id,
                secret_access_key: secret,
                region: None,
            })
        }
        (Some(_), None) | (None, Some(_)) => {
            bail!("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither")
        }
        (None, None) => {}
    }
    let path = match &args.credentials {
        Some(path) => path.clone(),
        // Where `fulcrum serve` on this machine, run the same way, keeps it.
        None => std::env::var_os("FULCRUM_DATA_DIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from("./fulcrum-data"), PathBuf::from)
            .join("credentials"),
    };
    from_file(&path, &args.profile)
}

fn from_file(path: &Path, profile: &str) -> anyhow::Result<Credentials> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "no credentials: pass --access-key-id and --secret-access-key, set \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or point --credentials at the file \
             `fulcrum serve` wrote into its data dir (cannot read {})",
            path.display()
        )
    })?;
    let values = profile_values(&text, profile);
    let get = |key: &str| {
        values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(id), Some(secret)) => Ok(Credentials {
            access_key_id: id,
            secret_access_key: secret,
            region: get("region"),
        }),
        _ => bail!(
            "{} has no profile [{profile}] with aws_access_key_id and aws_secret_access_key",
            path.display()
        ),
    }
}

/// The `key = value` lines of `[profile]` in an INI file as the aws CLI writes them.
fn profile_values(text: &str, profile: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut values = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = section.trim() == profile;
        } else if inside {
            if let Some((k, v)) = line.split_once('=') {
                values.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::profile_values;

    #[test]
    fn reads_only_the_named_profile() {
        let text = "[default]\naws_access_key_id = A\n\n# note\n[fulcrum]\naws_access_key_id = B\n\
                    aws_secret_access_key=S=x\nregion = eu-west-1\n[other]\nregion = x\n";
        let v = profile_values(text, "fulcrum");
        assert_eq!(
            v,
            [
                ("aws_access_key_id".to_owned(), "B".to_owned()),
                ("aws_secret_access_key".to_owned(), "S=x".to_owned()),
                ("region".to_owned(), "eu-west-1".to_owned()),
            ]
        );
        assert!(profile_values(text, "missing").is_empty());
    }
}
