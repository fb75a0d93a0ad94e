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
    #[error("SQLite error while {context}: {source}")]
    Sqlite {
        context: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The master key is missing, malformed, unsafely stored, or not the one the data was sealed with.
    #[error("master key: {0}")]
    MasterKey(String),
    /// What is on disk cannot be read back as a state (bad JSON, missing or unreadable sealed key).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// Another process wrote to the same database since this one loaded it; writing now would
    /// silently discard its changes.
    #[error(
        "the database {} is at revision {found}, expected {expected}: another process is using \
         the same data dir",
        path.display()
    )]
    Conflict {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    /// The AEAD primitive failed to seal (not a wrong key: that is `MasterKey` or `Corrupt`).
    #[error("encryption failed while {0}")]
    Crypto(String),
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }

    pub(crate) fn sqlite(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
        let context = context.into();
        move |source| StoreError::Sqlite { context, source }
    }
}
