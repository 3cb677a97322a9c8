//! `tiercare mail dns`: the DNS records a sending domain publishes.

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;
use tiercare_scheduler::config::Transport;
use tiercare_scheduler::mail::DkimSigner;
use tiercare_scheduler::outbox::sender_domain;
use tiercare_scheduler::workspace::Workspace;

use crate::cli::MailCommand;
use crate::output::Output;

#[derive(Serialize)]
struct Record {
    name: String,
    kind: &'static str,
    value: String,
    note: &'static str,
}

pub fn mail(command: MailCommand, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    match command {
        MailCommand::Dns { json } => dns(json, workspace_dir, out),
    }
}

fn dns(json: bool, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    let mail = &workspace.config().mail;
    let domain = sender_domain(mail);
    let mut records = Vec::new();
    let env = |name: &str| std::env::var(name).ok();
    let signing_domain = match &mail.dkim {
        Some(dkim) => {
            let signer = DkimSigner::from_config(dkim, workspace.root(), domain.as_deref(), &env)?;
            let record = signer.dns_record();
            records.push(Record {
                name: record.name,
                kind: "TXT",
                value: record.value,
                note: "DKIM: the public half of [mail.dkim]'s key; publish exactly this",
            });
            Some(signer.domain().to_owned())
        }
        None => {
            out.warn(
                "no [mail.dkim] section: mail goes out unsigned, and Gmail and Yahoo reject or \
                 junk unsigned bulk mail. Make a key (`openssl genpkey -algorithm RSA -pkeyopt \
                 rsa_keygen_bits:2048 -out dkim.pem`), add [mail.dkim] with selector and \
                 key_file, and run this again",
            );
            None
        }
    };
    let Some(domain) = signing_domain.or(domain) else {
        anyhow::bail!("[mail] from has no usable domain: set it to your sending address");
    };
    records.push(Record {
        name: domain.clone(),
        kind: "TXT",
        value: "v=spf1 mx -all".to_owned(),
        note: "SPF suggestion: list every host that sends for the domain (your SMTP relay's \
               include:, e.g. include:_spf.example-provider.com) before -all",
    });
    records.push(Record {
        name: format!("_dmarc.{domain}"),
        kind: "TXT",
        value: format!("v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}; adkim=r; aspf=r"),
        note: "DMARC suggestion: start with p=none and read the reports, then move to \
               p=quarantine",
    });
    if json {
        out.json(&records)?;
        return Ok(ExitCode::SUCCESS);
    }
    for record in &records {
        out.line(&format!("; {}", record.note));
        out.line(&format!(
            "{}. IN {} {}",
            record.name,
            record.kind,
            zone_strings(&record.value)
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `check`'s look at signing: warns when mail goes by SMTP unsigned; says why and returns
/// false when `[mail.dkim]`'s key cannot be used (`send` and `run` would refuse to start).
pub fn check_signing(workspace_dir: &Path, out: &Output) -> bool {
    let Ok(workspace) = Workspace::open(workspace_dir) else {
        return true;
    };
    let mail = &workspace.config().mail;
    match &mail.dkim {
        None if mail.transport == Transport::Smtp => {
            out.warn(
                "mail goes by SMTP without DKIM: Gmail and Yahoo reject or junk unsigned bulk \
                 mail, and honour one-click unsubscribes only under a signature. Add [mail.dkim] \
                 (see `tiercare mail dns`)",
            );
            true
        }
        None => true,
        Some(dkim) => {
            let env = |name: &str| std::env::var(name).ok();
            match DkimSigner::from_config(
                dkim,
                workspace.root(),
                sender_domain(mail).as_deref(),
                &env,
            ) {
                Ok(_) => {
                    if let Some(file) = &dkim.key_file {
                        warn_if_readable_by_others(&workspace.root().join(file), out);
                    }
                    true
                }
                Err(err) => {
                    out.error(&format!("[mail.dkim]: {err}"));
                    false
                }
            }
        }
    }
}

/// A private key others can read is a key others can sign with.
#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path, out: &Output) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path)
        && metadata.permissions().mode() & 0o077 != 0
    {
        out.warn(&format!(
            "the DKIM key {} can be read by other users: `chmod 600` it",
            path.display()
        ));
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path, _out: &Output) {}

/// A TXT value as zone-file strings of at most 255 bytes (DNS's limit per string).
fn zone_strings(value: &str) -> String {
    value
        .as_bytes()
        .chunks(255)
        .map(|chunk| format!("\"{}\"", String::from_utf8_lossy(chunk)))
        .collect::<Vec<_>>()
        .join(" ")
}
