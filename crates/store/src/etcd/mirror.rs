//! The node's copy of every key under the fleet's prefix, kept by etcd's watch: what reads
//! (the snapshot, access keys, node secrets, the fleet's records) are answered from, so that
//! they never wait on etcd and keep working while it is away.

use std::collections::{BTreeMap, HashMap};

use fulcrum_model::{Snapshot, State};

use crate::codec;
use crate::error::StoreError;
use crate::seal::Sealer;

/// The names under the prefix.
pub(crate) const STATE: &str = "state";
pub(crate) const KEYS: &str = "keys/";
pub(crate) const ACCESS_KEYS: &str = "access-keys/";
pub(crate) const SECRETS: &str = "secrets/";
pub(crate) const KEY_CHECK: &str = "key-check";
pub(crate) const NODES: &str = "nodes/";
/// Each node's view of the instances' health, under the node's lease: `health/ID`.
pub(crate) const HEALTH: &str = "health/";
/// Roles held under a lease (the floating address): `roles/NAME`.
pub(crate) const ROLES: &str = "roles/";

/// Whether `name` is only true while a lease lives (a node's record, a role's holder): not
/// configuration, not worth a snapshot or a place in the local copy.
pub(crate) fn is_leased(name: &str) -> bool {
    name.starts_with(NODES) || name.starts_with(HEALTH) || name.starts_with(ROLES)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub value: Vec<u8>,
    pub mod_revision: i64,
}

/// One change etcd reported.
pub(crate) enum Change {
    Put { name: String, entry: Entry },
    Delete { name: String, revision: i64 },
}

/// What a batch of changes touched.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Touched {
    /// Anything but the nodes' records: worth a new snapshot and a new local cache.
    pub config: bool,
    pub nodes: bool,
}

impl Touched {
    fn name(&mut self, name: &str) {
        if is_leased(name) {
            self.nodes = true;
        } else {
            self.config = true;
        }
    }
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Mirror {
    /// The etcd revision this copy is complete up to (0: never read).
    pub revision: i64,
    pub entries: BTreeMap<String, Entry>,
}

impl Mirror {
    /// Replaces everything with a full read made at `revision`, unless the copy is already
    /// newer (the watch got there first).
    pub fn replace(&mut self, revision: i64, entries: BTreeMap<String, Entry>) -> Touched {
        if revision < self.revision {
            return Touched::default();
        }
        let mut touched = Touched::default();
        for name in self.entries.keys().chain(entries.keys()) {
            if self.entries.get(name) != entries.get(name) {
                touched.name(name);
            }
        }
        self.revision = revision;
        self.entries = entries;
        touched
    }

    /// Applies a batch of watch events ending at `revision`. Events a full read already
    /// included (not newer than the copy) are skipped.
    pub fn apply(&mut self, revision: i64, changes: Vec<Change>) -> Touched {
        let mut touched = Touched::default();
        for change in changes {
            match change {
                Change::Put { name, entry } => {
                    if entry.mod_revision <= self.revision {
                        continue;
                    }
                    touched.name(&name);
                    self.entries.insert(name, entry);
                }
                Change::Delete { name, revision } => {
                    if revision <= self.revision {
                        continue;
                    }
                    touched.name(&name);
                    self.entries.remove(&name);
                }
            }
        }
        self.revision = self.revision.max(revision);
        touched
    }

    /// The revision of the state: that of the last write to it (0 when nothing was ever written).
    pub fn state_revision(&self) -> u64 {
        self.entries
            .get(STATE)
            .map_or(0, |e| u64::try_from(e.mod_revision).unwrap_or(0))
    }

    /// The snapshot this copy holds, every private key unsealed.
    pub fn snapshot(&self, sealer: &Sealer, place: &str) -> Result<Snapshot, StoreError> {
        let Some(state) = self.entries.get(STATE) else {
            return Ok(Snapshot {
                revision: 0,
                state: State::default(),
            });
        };
        let json = std::str::from_utf8(&state.value)
            .map_err(|_| StoreError::Corrupt(format!("the state in {place} is not UTF-8")))?;
        let sealed: HashMap<String, Vec<u8>> = self
            .under(KEYS)
            .map(|(id, e)| (id.to_owned(), e.value.clone()))
            .collect();
        codec::decode(sealer, self.state_revision(), json, sealed, place)
    }

    /// The entries whose names start with `prefix`, with the prefix taken off.
    pub fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a Entry)> {
        self.entries
            .range(prefix.to_owned()..)
            .map_while(move |(name, e)| name.strip_prefix(prefix).map(|rest| (rest, e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(name: &str, value: &str, rev: i64) -> Change {
        Change::Put {
            name: name.into(),
            entry: Entry {
                value: value.into(),
                mod_revision: rev,
            },
        }
    }

    #[test]
    fn events_a_full_read_already_has_are_skipped() {
        let mut m = Mirror::default();
        let mut full = BTreeMap::new();
        full.insert(
            "state".to_owned(),
            Entry {
                value: b"{}".to_vec(),
                mod_revision: 5,
            },
        );
        assert!(m.replace(7, full).config);
        // The watch, behind the read, reports a put at 4 and a delete at 6: both older.
        let t = m.apply(
            7,
            vec![
                put("state", "old", 4),
                Change::Delete {
                    name: "state".into(),
                    revision: 6,
                },
            ],
        );
        assert!(!t.config);
        assert_eq!(m.entries["state"].value, b"{}");
        let t = m.apply(9, vec![put("nodes/a", "x", 9)]);
        assert!(t.nodes && !t.config);
        assert_eq!(m.revision, 9);
        assert_eq!(m.under("nodes/").count(), 1);
        assert_eq!(m.under("keys/").count(), 0);
        // An older full read never replaces a newer copy.
        assert!(!m.replace(8, BTreeMap::new()).config);
        assert_eq!(m.entries.len(), 2);
    }
}
