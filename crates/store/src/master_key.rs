//! The master key that seals private keys and access-key secrets, and where it comes from.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::StoreError;

/// The environment variable that, when set, supplies the master key instead of `DIR/master.key`
/// (for deployments that keep secrets out of the data dir, e.g. a secrets manager).
pub const MASTER_KEY_ENV: &str = "FULCRUM_MASTER_KEY";

/// The file in the data dir that holds the master key when the environment does not.
pub const MASTER_KEY_FILE: &str = "master.key";

const KEY_LEN: usize = 32;

/// A 256-bit AES key. Wiped from memory on drop and never shown by `Debug`.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl MasterKey {
    /// Parses 64 hex digits (surrounding whitespace allowed, so a file or variable may end in a
    /// newline). The error never echoes the input: a near-miss key is still mostly a key.
    pub fn from_hex(text: &str) -> Result<MasterKey, StoreError> {
        parse_hex(text)
            .map(MasterKey)
            .map_err(StoreError::MasterKey)
    }

    /// A fresh random key from the system CSPRNG.
    pub fn generate() -> MasterKey {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        // The OS RNG failing means the machine cannot do cryptography at all; there is no
        // sensible fallback, and a predictable key would be worse than stopping.
        aws_lc_rs::rand::fill(&mut bytes[..]).expect("the system random number generator failed");
        MasterKey(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(&self.0[..]))
    }
}

/// The reason, if any, that `text` is not a key; never quotes `text`.
fn parse_hex(text: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, String> {
    let text = text.trim();
    if text.len() != KEY_LEN * 2 {
        return Err(format!(
            "expected {} hex digits ({KEY_LEN} bytes), found {} characters",
            KEY_LEN * 2,
            text.chars().count()
        ));
    }
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    hex::decode_to_slice(text, &mut bytes[..]).map_err(|_| {
        format!(
            "expected {} hex digits, found other characters",
            KEY_LEN * 2
        )
    })?;
    Ok(bytes)
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// The master key for `data_dir`: from `env_value` (the value of [`MASTER_KEY_ENV`], passed in so
/// tests need not touch the process environment) if given, else from `DIR/master.key`, creating
/// that file on first use.
pub(crate) fn resolve(
    data_dir: &Path,
    env_value: Option<OsString>,
) -> Result<MasterKey, StoreError> {
    match env_value {
        Some(value) => {
            let value = Zeroizing::new(value.into_string().map_err(|_| {
                StoreError::MasterKey(format!("{MASTER_KEY_ENV} is not valid UTF-8"))
            })?);
            parse_hex(&value)
                .map(MasterKey)
                .map_err(|e| StoreError::MasterKey(format!("{MASTER_KEY_ENV} is malformed: {e}")))
        }
        None => load_or_create(&data_dir.join(MASTER_KEY_FILE)),
    }
}

fn load_or_create(path: &Path) -> Result<MasterKey, StoreError> {
    match create(path) {
        Ok(key) => Ok(key),
        // Also covers a concurrent first start: whoever lost the race reads the winner's key.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => load(path),
        Err(e) => Err(StoreError::io(path)(e)),
    }
}

fn create(path: &Path) -> std::io::Result<MasterKey> {
    // create_new + mode: the file never exists with wider permissions, not even for an instant.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    let key = MasterKey::generate();
    let mut line = key.to_hex();
    line.push('\n');
    file.write_all(line.as_bytes())?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), "created a new master key");
    Ok(key)
}

fn load(path: &Path) -> Result<MasterKey, StoreError> {
    let meta = fs::metadata(path).map_err(StoreError::io(path))?;
    if !meta.is_file() {
        return Err(StoreError::MasterKey(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StoreError::MasterKey(format!(
            "{} has mode {mode:04o}; it must be readable by its owner only (chmod 600 {})",
            path.display(),
            path.display()
        )));
    }
    let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| {
        if e.kind() == ErrorKind::InvalidData {
            StoreError::MasterKey(format!("{} is not valid UTF-8", path.display()))
        } else {
            StoreError::io(path)(e)
        }
    })?);
    MasterKey::from_hex(&text)
        .map_err(|e| StoreError::MasterKey(format!("{} is malformed: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";

    #[test]
    fn from_hex_accepts_64_hex_digits() {
        let key = MasterKey::from_hex(HEX).unwrap();
        assert_eq!(key.bytes()[1], 0x11);
        assert_eq!(key.bytes()[31], 0xff);
        assert_eq!(
            MasterKey::from_hex(&format!("{HEX}\n")).unwrap().bytes(),
            key.bytes()
        );
        assert_eq!(key.to_hex().as_str(), HEX.to_ascii_lowercase());
    }

    #[test]
    fn from_hex_refuses_anything_else_without_echoing_it() {
        for bad in [
            "",
            "abcd",
            &HEX[..62],
            &format!("{HEX}00"),
            &format!("{}zz", &HEX[..62]),
        ] {
            let err = MasterKey::from_hex(bad).unwrap_err().to_string();
            assert!(err.starts_with("master key:"), "{err}");
            if bad.len() > 8 {
                assert!(!err.contains(&bad[..8]), "the error echoes the key: {err}");
            }
        }
    }

    #[test]
    fn debug_is_redacted() {
        let key = MasterKey::from_hex(HEX).unwrap();
        assert_eq!(format!("{key:?}"), "MasterKey(<redacted>)");
    }

    #[test]
    fn the_environment_value_wins_and_no_file_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let key = resolve(dir.path(), Some(HEX.into())).unwrap();
        assert_eq!(key.bytes(), MasterKey::from_hex(HEX).unwrap().bytes());
        assert!(!dir.path().join(MASTER_KEY_FILE).exists());
        let err = resolve(dir.path(), Some("nope".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains(MASTER_KEY_ENV), "{err}");
        assert_eq!(err.matches("master key:").count(), 1, "{err}");
    }

    #[test]
    fn the_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = resolve(dir.path(), None).unwrap();
        let second = resolve(dir.path(), None).unwrap();
        assert_eq!(first.bytes(), second.bytes());
        assert_ne!(first.bytes(), MasterKey::generate().bytes());
    }
}
