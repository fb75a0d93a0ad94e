//! Server certificates: the list (domains, issuer, expiry with a warning under 30 days, the
//! listeners using each), upload, rename, delete (refused while in use, the listeners named).

use fulcrum_control::{certificate_uses, CertificateChange, CertificateUpload, ControlError};
use fulcrum_model::PrivateKeyPem;
use maud::html;

use super::{done_notice, not_found, submitted};
use crate::form::Form;
use crate::layout::{
    csrf, date, error_of, form_error, input, input_as, page, textarea, Failure, Section,
};
use crate::reply::Reply;
use crate::Ctx;

const IAM: &str = "iam";
/// Certificates closer than this to their expiry are flagged.
const WARN_SECS: u64 = 30 * 24 * 3600;

pub(crate) fn list(ctx: &Ctx<'_>, shown: Option<&Failure>) -> Reply {
    let snapshot = ctx.control.snapshot();
    let state = &snapshot.state;
    let now = fulcrum_control::now();
    let mut certs: Vec<_> = state.certificates.values().collect();
    certs.sort_by(|a, b| a.name.cmp(&b.name));
    let editable = ctx.can_change();
    let err = error_of(shown, "upload");
    let f = submitted(ctx, shown, "upload");
    let body = html! {
        h1 { "Certificates" }
        (done_notice(ctx))
        // Errors of a form the page shows only on demand (or not at all for a read-only key).
        (form_error(
            shown
                .filter(|f| f.form != "upload" && !f.form.starts_with("rename-") || !editable)
                .map(|f| &f.error),
            &[] as &[&str],
        ))
        @if certs.is_empty() {
            p.empty { "No certificates uploaded yet." }
        } @else {
            table.list {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Domains" } th scope="col" { "Issuer" }
                    th scope="col" { "Expires" } th scope="col" { "Used by" } th scope="col" { span.sr { "Actions" } }
                } }
                tbody {
                    @for c in &certs {
                        @let summary = fulcrum_tls::summarize_certificate(&c.body_pem).ok();
                        @let uses = certificate_uses(state, &c.id);
                        @let expiring = c.expiration < now + WARN_SECS;
                        tr data-certificate=(c.name) {
                            th scope="row" { (c.name) }
                            td { (summary.as_ref().map(|s| s.dns_names.join(", ")).unwrap_or_default()) }
                            td { (summary.as_ref().map(|s| s.issuer.clone()).unwrap_or_default()) }
                            td.warn[expiring] {
                                (date(c.expiration))
                                @if c.expiration < now { " " span.badge.bad { "expired" } }
                                @else if expiring { " " span.badge.bad { "expires in " ((c.expiration - now) / 86400) " days" } }
                            }
                            td {
                                @if uses.is_empty() { "-" }
                                @for u in &uses {
                                    a href={ "/console/load-balancers/" (u.load_balancer) } { (u.load_balancer) ":" (u.port) } " "
                                }
                            }
                            td {
                                @if editable {
                                    @let rename_error = error_of(shown, &format!("rename-{}", c.name));
                                    details open[rename_error.is_some()] {
                                        summary { "Rename or delete" }
                                        form method="post" action={ "/console/certificates/" (c.name) "/rename" } {
                                            (csrf(ctx.session))
                                            (input_as(&format!("NewServerCertificateName-{}", c.name), &format!("New name for {}", c.name), "NewServerCertificateName", "text", &c.name, rename_error, None))
                                            (form_error(rename_error, &["NewServerCertificateName"]))
                                            button type="submit" { "Rename" }
                                        }
                                        form method="post" action={ "/console/certificates/" (c.name) "/delete" } {
                                            (csrf(ctx.session))
                                            button.danger type="submit" aria-label={ "Delete certificate " (c.name) } { "Delete" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if editable {
            section aria-labelledby="upload-h" {
                h2 id="upload-h" { "Upload a certificate" }
                form method="post" action="/console/certificates" {
                    (csrf(ctx.session))
                    (form_error(err, &["ServerCertificateName", "CertificateBody", "PrivateKey", "CertificateChain"]))
                    (input("Name", "ServerCertificateName", "text", f.map_or("", |f| f.get("ServerCertificateName")), err, None))
                    (textarea("Certificate body (PEM)", "CertificateBody", f.map_or("", |f| f.raw("CertificateBody")), err, "-----BEGIN CERTIFICATE----- ..."))
                    (textarea("Private key (PEM)", "PrivateKey", "", err, "Never shown again, never logged; stored encrypted."))
                    (textarea("Certificate chain (PEM, optional)", "CertificateChain", f.map_or("", |f| f.raw("CertificateChain")), err, "The intermediates, issuer after issuer."))
                    button.primary type="submit" { "Upload" }
                }
            }
        }
    };
    let status = super::status_of(shown);
    Reply::page(
        status,
        page(
            "Certificates",
            Some(ctx.session),
            Some(Section::Certificates),
            body,
        ),
    )
}

/// The upload a form holds (the certificates page's, or the wizard's security step).
pub(crate) fn upload_of(f: &Form) -> CertificateUpload {
    CertificateUpload {
        name: f.get("ServerCertificateName").to_owned(),
        path: None,
        body_pem: f.raw("CertificateBody").to_owned(),
        private_key_pem: PrivateKeyPem::new(f.raw("PrivateKey").to_owned()),
        chain_pem: f
            .opt("CertificateChain")
            .map(|_| f.raw("CertificateChain").to_owned()),
        tags: Vec::new(),
    }
}

/// `POST /certificates`: an upload.
pub(crate) fn upload(ctx: &Ctx<'_>) -> Reply {
    let name = ctx.req.form.get("ServerCertificateName").to_owned();
    let upload = upload_of(&ctx.req.form);
    let outcome = ctx.change(
        IAM,
        "UploadServerCertificate",
        &format!("ServerCertificateName={name}"),
        |c| c.upload_certificate(upload),
    );
    match outcome {
        Ok(_) => Reply::redirect(format!("/console/certificates?done=Uploaded+{name}")),
        Err(e) => list(ctx, Some(&Failure::new("upload", e))),
    }
}

/// `POST /certificates/NAME/ACTION`: rename or delete.
pub(crate) fn change(ctx: &Ctx<'_>, name: &str, action: &str) -> Reply {
    let resources = format!("ServerCertificateName={name}");
    let (form, outcome): (String, Result<String, ControlError>) = match action {
        "rename" => {
            let new_name = ctx.req.form.get("NewServerCertificateName").to_owned();
            (
                format!("rename-{name}"),
                ctx.change(IAM, "UpdateServerCertificate", &resources, |c| {
                    c.update_certificate(
                        name,
                        CertificateChange {
                            new_name: Some(new_name.clone()),
                            new_path: None,
                        },
                    )
                })
                .map(|()| format!("Renamed {name} to {new_name}")),
            )
        }
        "delete" => (
            "delete".to_owned(),
            ctx.change(IAM, "DeleteServerCertificate", &resources, |c| {
                c.delete_certificate(name)
            })
            .map(|()| format!("Deleted {name}")),
        ),
        _ => return not_found(ctx, "There is no such action."),
    };
    match outcome {
        Ok(text) => Reply::redirect(format!(
            "/console/certificates?done={}",
            text.replace(' ', "+")
        )),
        Err(e) => list(ctx, Some(&Failure::new(form, e))),
    }
}
