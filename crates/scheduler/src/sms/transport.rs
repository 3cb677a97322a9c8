//! [`SmsTransport`]: how an SMS leaves, how a failure is classified for the outbox, and the
//! folder transport (the default: one file per message, atomic, never twice).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// One SMS to hand over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsMessage {
    /// The message's id without angle brackets (`sms-…@tiercare`), the same on every attempt.
    pub id: String,
    /// The E.164 number.
    pub to: String,
    /// The text.
    pub text: String,
    /// The SMS template it was rendered from (`birthday` for `birthday.sms.j2`): a provider
    /// that sends only registered templates (Aliyun) maps it to its own.
    pub template: String,
    /// That provider's template parameters, rendered with the text (a JSON object of strings),
    /// if its settings name any.
    pub params: Option<String>,
}

/// A delivered SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsDelivered {
    /// What the provider answered (its status and message id), or the file written; never the
    /// number or the text.
    pub receipt: String,
    /// The folder transport found the file already there (a resend after a crash).
    pub already_delivered: bool,
}

/// Why an SMS was not delivered, classified for the outbox as mail's failures are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsError {
    /// Not delivered, worth retrying with backoff: 429, 5xx, 408, a refused connection, a
    /// timeout before the request was sent, a local write error.
    #[error("deferred: {0}")]
    Transient(String),
    /// Not delivered and never will be as it stands: another 4xx (a number the provider
    /// refuses, bad credentials), or a success status without the success field.
    #[error("failed: {0}")]
    Permanent(String),
    /// The request was sent but no answer came (a timeout or a lost connection while waiting):
    /// it may or may not have been delivered.
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

/// Something that delivers SMS: the folder, the generic HTTP provider, Twilio, Aliyun.
pub trait SmsTransport: Send {
    /// Hands `message` over.
    ///
    /// # Errors
    /// What the outbox should do next.
    fn send(&mut self, message: &SmsMessage) -> Result<SmsDelivered, SmsError>;

    /// A short name for logs and reports (`"folder"`, `"http"`, `"twilio"`, `"aliyun"`).
    fn name(&self) -> &'static str;
}

/// Writes each SMS to `<dir>/<id>.json` (`{"id", "to", "text"}`), atomically (a hidden
/// temporary file, flushed, renamed, the folder flushed) and at most once: the name comes from
/// the message's id, which the outbox keeps across retries, so a file already there is a
/// resend after a crash and nothing is written.
#[derive(Debug, Clone)]
pub struct FolderSmsTransport {
    dir: PathBuf,
}

impl FolderSmsTransport {
    /// A transport writing into `dir`, created at the first message.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> FolderSmsTransport {
        FolderSmsTransport { dir: dir.into() }
    }

    /// The file of the SMS with `id`.
    #[must_use]
    pub fn path_for(&self, id: &str) -> PathBuf {
        let stem: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.@".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let stem = stem.trim_start_matches('.');
        self.dir.join(format!("{stem}.json"))
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("message.json");
        fs::create_dir_all(&self.dir)?;
        let temporary = self.dir.join(format!(".{name}.tmp"));
        let mut file = File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, path)?;
        #[cfg(unix)]
        File::open(&self.dir)?.sync_all()?;
        Ok(())
    }
}

impl SmsTransport for FolderSmsTransport {
    fn send(&mut self, message: &SmsMessage) -> Result<SmsDelivered, SmsError> {
        let path = self.path_for(&message.id);
        let receipt = path.display().to_string();
        if path.exists() {
            return Ok(SmsDelivered {
                receipt,
                already_delivered: true,
            });
        }
        let body = serde_json::json!({
            "id": message.id,
            "to": message.to,
            "text": message.text,
        });
        let mut bytes = serde_json::to_vec_pretty(&body).unwrap_or_default();
        bytes.push(b'\n');
        self.write(&path, &bytes)
            .map_err(|error| SmsError::Transient(format!("cannot write {receipt}: {error}")))?;
        Ok(SmsDelivered {
            receipt,
            already_delivered: false,
        })
    }

    fn name(&self) -> &'static str {
        "folder"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_writes_each_message_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut folder = FolderSmsTransport::new(dir.path().join("sms"));
        let message = SmsMessage {
            id: "sms-1a2b@tiercare".into(),
            to: "+8613812345678".into(),
            text: "生日快乐!".into(),
            template: "birthday".into(),
            params: None,
        };
        let first = folder.send(&message).unwrap();
        assert!(!first.already_delivered);
        let again = folder.send(&message).unwrap();
        assert!(again.already_delivered);
        let written = fs::read_to_string(folder.path_for(&message.id)).unwrap();
        let value: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert_eq!(value["text"], "生日快乐!");
        assert_eq!(fs::read_dir(dir.path().join("sms")).unwrap().count(), 1);
        assert!(!folder.path_for("../x").to_string_lossy().contains("../"));
    }
}
