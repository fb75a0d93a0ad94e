//! Every way the store can fail. Messages name the file or operation involved, never key material.

use std::io;
use std::path::PathBuf;

use fulcrum_model::ModelError;
use thiserror::Error;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The model refused the change; nothing was written. Kept transparent so the API can map it
    /// to the AWS error code with [`ModelError::code`].
    #[error(transparent)]
    Model(#[from] ModelError),
    // The cause is part of the message and deliberately not a `source`: error chains printed
    // with `{:#}` would otherwise repeat it.
    #[error("SQLite error while {context}: {cause}")]
    Sqlite {
        context: String,
        cause: rusqlite::Error,
    },
    #[error("I/O error on {}: {}", path.display(), describe_io(cause))]
    Io { path: PathBuf, cause: io::Error },
    /// The master key is missing, malformed, unsafely stored, or not the one the data was sealed with.
    #[error("master key: {0}")]
    MasterKey(String),
    /// What is on disk cannot be read back as a state (bad JSON, missing or unreadable sealed key).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// Another process wrote to the same database since this one loaded it; writing now would
    /// silently discard its changes. (On etcd, a change that lost its compare-and-swap is run
    /// again on the winner's state; this is what is left when it kept losing.)
    #[error(
        "{place} is at revision {found}, expected {expected}: another process or node changed \
         it meanwhile"
    )]
    Conflict {
        place: String,
        expected: u64,
        found: u64,
    },
    /// The store cannot be reached (etcd is down or partitioned away): the node serves its last
    /// snapshot, and changes are refused until it is back.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// etcd answered with an error that is not a lost connection (permission denied, a request
    /// too large, a bad prefix).
    #[error("etcd error while {context}: {cause}")]
    Etcd { context: String, cause: String },
    /// The AEAD primitive failed to seal (not a wrong key: that is `MasterKey` or `Corrupt`).
    #[error("encryption failed while {0}")]
    Crypto(String),
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |cause| StoreError::Io { path, cause }
    }

    pub(crate) fn sqlite(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
        let context = context.into();
        move |cause| StoreError::Sqlite { context, cause }
    }
}

/// An I/O error in words an operator recognises: creating a directory where a file stands
/// reports "File exists", which is what it means but not how anyone would say it.
fn describe_io(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::AlreadyExists => format!("a file is in the way ({e})"),
        io::ErrorKind::NotADirectory => format!("not a directory ({e})"),
        _ => e.to_string(),
    }
}
