//! Server certificates: upload (checked by the TLS engine), get (never the key), list, rename,
//! delete (refused while a listener uses it), tags.

use fulcrum_control::{CertificateChange, CertificateUpload};
use fulcrum_model::{PrivateKeyPem, ServerCertificate, Tag};

use super::{answer, page};
use crate::error::ApiError;
use crate::time::iso8601;
use crate::xml::{done, Xml};
use crate::Call;

fn tags(call: &Call<'_>) -> Result<Vec<Tag>, ApiError> {
    call.params
        .members("Tags")?
        .iter()
        .map(|m| {
            Ok(Tag {
                key: m.required("Key")?.to_owned(),
                value: m.get("Value").unwrap_or("").to_owned(),
            })
        })
        .collect()
}

fn metadata(x: &mut Xml, call: &Call<'_>, c: &ServerCertificate) {
    x.text("Path", &c.path)
        .text("ServerCertificateName", &c.name)
        .text("ServerCertificateId", &c.id)
        .text("Arn", call.ctl.certificate_arn(c))
        .text("UploadDate", iso8601(c.upload_date))
        .text("Expiration", iso8601(c.expiration));
}

fn write_tags(x: &mut Xml, tags: &[Tag]) {
    x.list("Tags", tags, |x, t| {
        x.text("Key", &t.key).text("Value", &t.value);
    });
}

pub(crate) fn upload(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    let shown = call.ctl.upload_certificate(CertificateUpload {
        name: p.required("ServerCertificateName")?.to_owned(),
        path: p.get("Path").map(str::to_owned),
        body_pem: p.required("CertificateBody")?.to_owned(),
        private_key_pem: PrivateKeyPem::new(p.required("PrivateKey")?.to_owned()),
        chain_pem: p.get("CertificateChain").map(str::to_owned),
        tags: tags(call)?,
    })?;
    let mut x = answer("UploadServerCertificate");
    x.open("ServerCertificateMetadata");
    metadata(&mut x, call, &shown);
    x.close("ServerCertificateMetadata");
    write_tags(&mut x, &shown.tags);
    Ok(done(x, "UploadServerCertificate"))
}

pub(crate) fn get(call: &Call<'_>) -> Result<Xml, ApiError> {
    let name = call.params.required("ServerCertificateName")?;
    let snapshot = call.ctl.snapshot();
    let c = &call.ctl.certificate(&snapshot.state, name)?;
    let mut x = answer("GetServerCertificate");
    x.open("ServerCertificate")
        .open("ServerCertificateMetadata");
    metadata(&mut x, call, c);
    // As IAM answers: PEM without its trailing newline (Terraform compares the body it
    // uploaded, trimmed, with this one), and no Tags member when there are none.
    x.close("ServerCertificateMetadata")
        .text("CertificateBody", c.body_pem.trim())
        .opt_text("CertificateChain", c.chain_pem.as_deref().map(str::trim));
    if !c.tags.is_empty() {
        write_tags(&mut x, &c.tags);
    }
    x.close("ServerCertificate");
    Ok(done(x, "GetServerCertificate"))
}

pub(crate) fn list(call: &Call<'_>) -> Result<Xml, ApiError> {
    let prefix = call.params.get("PathPrefix").unwrap_or("/");
    let snapshot = call.ctl.snapshot();
    let mut all: Vec<&ServerCertificate> = snapshot
        .state
        .certificates
        .values()
        .filter(|c| c.path.starts_with(prefix))
        .collect();
    // By path, then name; NUL sorts before any character a path or name may hold.
    let sort_key = |c: &ServerCertificate| format!("{}\0{}", c.path, c.name);
    all.sort_by_key(|c| sort_key(c));
    let shown = page(call, &all, sort_key)?;
    let mut x = answer("ListServerCertificates");
    x.list("ServerCertificateMetadataList", &shown.items, |x, c| {
        metadata(x, call, c)
    });
    shown.write_end(&mut x);
    Ok(done(x, "ListServerCertificates"))
}

pub(crate) fn update_certificate(call: &Call<'_>) -> Result<Xml, ApiError> {
    let p = call.params;
    let name = p.required("ServerCertificateName")?;
    let new_name = p.get("NewServerCertificateName");
    let new_path = p.get("NewPath");
    call.ctl.update_certificate(
        name,
        CertificateChange {
            new_name: new_name.map(str::to_owned),
            new_path: new_path.map(str::to_owned),
        },
    )?;
    Ok(done(
        answer("UpdateServerCertificate"),
        "UpdateServerCertificate",
    ))
}

pub(crate) fn delete(call: &Call<'_>) -> Result<Xml, ApiError> {
    let name = call.params.required("ServerCertificateName")?;
    call.ctl.delete_certificate(name)?;
    Ok(done(
        answer("DeleteServerCertificate"),
        "DeleteServerCertificate",
    ))
}

pub(crate) fn tag(call: &Call<'_>) -> Result<Xml, ApiError> {
    let name = call.params.required("ServerCertificateName")?;
    let tags = tags(call)?;
    call.ctl.tag_certificate(name, &tags)?;
    Ok(done(answer("TagServerCertificate"), "TagServerCertificate"))
}

pub(crate) fn untag(call: &Call<'_>) -> Result<Xml, ApiError> {
    let name = call.params.required("ServerCertificateName")?;
    let keys = call.params.strings("TagKeys")?;
    call.ctl.untag_certificate(name, &keys)?;
    Ok(done(
        answer("UntagServerCertificate"),
        "UntagServerCertificate",
    ))
}

pub(crate) fn list_tags(call: &Call<'_>) -> Result<Xml, ApiError> {
    let name = call.params.required("ServerCertificateName")?;
    let snapshot = call.ctl.snapshot();
    let c = &call.ctl.certificate(&snapshot.state, name)?;
    let tags: Vec<&Tag> = c.tags.iter().collect();
    let shown = page(call, &tags, |t| t.key.clone())?;
    let mut x = answer("ListServerCertificateTags");
    x.list("Tags", &shown.items, |x, t| {
        x.text("Key", &t.key).text("Value", &t.value);
    });
    shown.write_end(&mut x);
    Ok(done(x, "ListServerCertificateTags"))
}
