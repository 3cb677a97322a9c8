//! [`FolderTransport`]: one `.eml` file per message in a folder, tiercare's default transport
//! (a fresh workspace sends mail without any server).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{BuiltMessage, Delivered, MailError, MailTransport, SendError};

/// The longest file name stem kept as is; longer ones are cut and completed with a hash.
const MAX_STEM: usize = 150;

/// Writes each message to `<dir>/<message-id>.eml`, atomically and at most once.
///
/// The file is written under a temporary hidden name, flushed to disk, then renamed into
/// place (and the folder's entry flushed too, on Unix), so a reader or a crash never sees half
/// a message. The name comes from the Message-ID, which the outbox keeps across retries: if
/// the file already exists the send succeeds without writing
/// ([`Delivered::already_delivered`]), so a resend after a crash does not duplicate. A write
/// error is [`SendError::Transient`]: retrying is always safe here.
#[derive(Debug, Clone)]
pub struct FolderTransport {
    dir: PathBuf,
}

impl FolderTransport {
    /// A transport writing into `dir`, which is created if missing.
    pub fn new(dir: impl Into<PathBuf>) -> Result<FolderTransport, MailError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| MailError::Folder {
            path: dir.clone(),
            source,
        })?;
        Ok(FolderTransport { dir })
    }

    /// The folder the files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a message with `message_id` is (or will be) written to.
    pub fn path_for(&self, message_id: &str) -> PathBuf {
        self.dir.join(format!("{}.eml", file_stem(message_id)))
    }

    fn write(&self, path: &Path, raw: &[u8]) -> io::Result<()> {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("message.eml");
        // A leftover from a crash has the same name and is simply overwritten.
        let temporary = self.dir.join(format!(".{name}.tmp"));
        let mut file = File::create(&temporary)?;
        file.write_all(raw)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, path)?;
        sync_dir(&self.dir)
    }
}

impl MailTransport for FolderTransport {
    fn send(&mut self, message: &BuiltMessage) -> Result<Delivered, SendError> {
        let path = self.path_for(message.message_id());
        let receipt = path.display().to_string();
        if path.exists() {
            tracing::debug!(message_id = %message.message_id(), "already in the mail folder");
            return Ok(Delivered {
                receipt,
                already_delivered: true,
            });
        }
        // The envelope sender, as a delivering server records it (RFC 5321 §4.4), when it is
        // not the From address (a VERP address).
        let raw = match message.return_path() {
            Some(sender) => {
                let mut raw = format!("Return-Path: <{sender}>\r\n").into_bytes();
                raw.extend_from_slice(message.raw());
                std::borrow::Cow::Owned(raw)
            }
            None => std::borrow::Cow::Borrowed(message.raw()),
        };
        self.write(&path, &raw)
            .map_err(|error| SendError::Transient {
                code: None,
                message: format!("cannot write {receipt}: {error}"),
            })?;
        tracing::debug!(message_id = %message.message_id(), "written to the mail folder");
        Ok(Delivered {
            receipt,
            already_delivered: false,
        })
    }

    fn name(&self) -> &'static str {
        "folder"
    }
}

/// Flushes the folder's entry for a renamed file, so the rename survives a power cut.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Windows cannot open a folder as a file; NTFS journals the rename itself.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// A file name stem for a Message-ID: the part between the angle brackets, with anything but
/// ASCII letters, digits and `.-_+=@` replaced by `_` and no leading dot. When that changed
/// the id (or it had to be shortened), a hash of the exact id is appended, so two different
/// ids never share a file.
fn file_stem(message_id: &str) -> String {
    let inner = message_id
        .strip_prefix('<')
        .and_then(|rest| rest.strip_suffix('>'))
        .unwrap_or(message_id);
    let mut stem: String = inner
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+=@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.starts_with('.') {
        stem.replace_range(..1, "_");
    }
    if stem != inner || stem.is_empty() || stem.len() > MAX_STEM {
        stem.truncate(MAX_STEM);
        stem.push_str(&format!("-{:016x}", fnv1a(message_id.as_bytes())));
    }
    stem
}

/// FNV-1a, 64 bits: stable across Rust versions and platforms (unlike `DefaultHasher`), which
/// matters because the name must be the same when the daemon restarts.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids_keep_their_name() {
        assert_eq!(
            file_stem("<outbox-123.4f2a@tiercare.invalid>"),
            "outbox-123.4f2a@tiercare.invalid"
        );
    }

    #[test]
    fn unsafe_ids_are_sanitised_and_kept_apart() {
        let a = file_stem("<../../etc/passwd@x>");
        let b = file_stem("<.._.._etc_passwd@x>");
        assert!(!a.contains('/') && !a.starts_with('.'), "{a}");
        assert!(!b.starts_with('.'), "{b}");
        assert_ne!(a, b);
        assert_eq!(file_stem("<a/b@x>"), file_stem("<a/b@x>"), "stable");
        assert!(file_stem(&format!("<{}@x>", "a".repeat(500))).len() <= MAX_STEM + 17);
    }
}
