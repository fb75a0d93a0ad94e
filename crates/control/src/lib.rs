//! fulcrum's control plane: how changes are prepared before they reach the store. The AWS Query
//! API and the console are built on this crate.

#![forbid(unsafe_code)]

mod certificates;

pub use certificates::{prepare_certificate, CertificateUpload, UploadError};
