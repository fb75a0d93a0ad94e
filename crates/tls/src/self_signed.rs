//! A self-signed certificate for `serve --demo` and for tests.

use crate::TlsError;

/// A self-signed ECDSA P-256 certificate for `names`, as (certificate PEM, private key PEM).
pub fn self_signed(names: &[String]) -> Result<(String, String), TlsError> {
    if names.is_empty() {
        return Err(TlsError::Config(
            "a self-signed certificate needs at least one DNS name".to_string(),
        ));
    }
    let certified = rcgen::generate_simple_self_signed(names.to_vec()).map_err(|e| {
        TlsError::Config(format!(
            "cannot generate a self-signed certificate for {names:?}: {e}"
        ))
    })?;
    Ok((certified.cert.pem(), certified.key_pair.serialize_pem()))
}
