//! `DIR/etcd-cache.json`: the last copy of the fleet's keys this node read, so that a node that
//! starts while etcd is down serves what it served before. Secrets stay sealed in it exactly as
//! they are in etcd; the nodes' records and roles are left out (they are only true while leases live).

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::mirror::{is_leased, Entry, Mirror};
use crate::error::StoreError;

#[derive(Serialize, Deserialize)]
struct CacheFile {
    /// Which fleet this copy is of: a cache of another prefix is never used.
    prefix: String,
    revision: i64,
    entries: BTreeMap<String, CachedEntry>,
}

#[derive(Serialize, Deserialize)]
struct CachedEntry {
    /// Hex: sealed values are binary.
    value: String,
    mod_revision: i64,
}

/// Writes the copy atomically (a temporary file renamed over the old one), readable by the
/// owner only.
pub(crate) fn save(path: &Path, prefix: &str, mirror: &Mirror) -> Result<(), StoreError> {
    let file = CacheFile {
        prefix: prefix.to_owned(),
        revision: mirror.revision,
        entries: mirror
            .entries
            .iter()
            .filter(|(name, _)| !is_leased(name))
            .map(|(name, e)| {
                (
                    name.clone(),
                    CachedEntry {
                        value: hex::encode(&e.value),
                        mod_revision: e.mod_revision,
                    },
                )
            })
            .collect(),
    };
    let json = serde_json::to_vec(&file)
        .map_err(|e| StoreError::Corrupt(format!("cannot serialize the etcd cache: {e}")))?;
    let tmp = path.with_extension("json.tmp");
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(StoreError::io(path))
}

/// The copy in `path`, if there is one for `prefix`.
pub(crate) fn load(path: &Path, prefix: &str) -> Result<Option<Mirror>, StoreError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(path)(e)),
    };
    let file: CacheFile = serde_json::from_slice(&bytes).map_err(|e| {
        StoreError::Corrupt(format!("{} is not a valid cache: {e}", path.display()))
    })?;
    if file.prefix != prefix {
        tracing::warn!(
            path = %path.display(),
            cached = file.prefix,
            wanted = prefix,
            "the local etcd cache is of another prefix; not used"
        );
        return Ok(None);
    }
    let mut entries = BTreeMap::new();
    for (name, e) in file.entries {
        let value = hex::decode(&e.value).map_err(|_| {
            StoreError::Corrupt(format!(
                "{} has a malformed value for {name}",
                path.display()
            ))
        })?;
        entries.insert(
            name,
            Entry {
                value,
                mod_revision: e.mod_revision,
            },
        );
    }
    Ok(Some(Mirror {
        revision: file.revision,
        entries,
    }))
}
