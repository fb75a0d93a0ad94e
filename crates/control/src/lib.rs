//! fulcrum's control plane: how changes are prepared before they reach the store, and the HTTP
//! server on the API address. The AWS Query API and the console are built on this crate.

#![forbid(unsafe_code)]

mod certificates;
mod server;

pub use certificates::{prepare_certificate, CertificateUpload, UploadError};
pub use server::{serve_api, ApiContext};
