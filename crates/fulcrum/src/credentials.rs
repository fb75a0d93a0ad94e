//! The admin access key that `serve` creates on first start, written where the aws CLI and the
//! SDKs look for credentials.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use fulcrum_store::{KeyScope, Store};

pub const PROFILE: &str = "fulcrum";

/// Creates the admin key and `DIR/credentials` when the store has no access key yet. Returns
/// the path of the file when it was written now.
pub fn ensure_admin_key(
    store: &Store,
    data_dir: &Path,
    region: &str,
) -> anyhow::Result<Option<PathBuf>> {
    if !store.list_access_keys()?.is_empty() {
        return Ok(None);
    }
    let (id, secret) =
        store.create_access_key("admin (created by fulcrum serve)", KeyScope::Admin)?;
    let path = data_dir.join("credentials");
    let contents = format!(
        "[{PROFILE}]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\nregion = {region}\n"
    );
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // A file left from an earlier data dir keeps its mode on open; this one holds a secret.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Some(path))
}
