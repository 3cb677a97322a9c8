//! [`DkimSigner`]: DKIM signatures (RFC 6376) over a built message's final bytes, with
//! RSA-SHA256 (RFC 6376, keys of 2048 bits or more) or Ed25519-SHA256 (RFC 8463), relaxed
//! header and body canonicalisation, and the DNS records to publish ([`DkimSigner::dns_record`]).
//!
//! The cryptography is `ring`'s (already the SMTP transport's TLS provider); this module only
//! reads PEM keys, canonicalises and formats. It signs the exact bytes a transport sends, after
//! every header is set, and prepends the `DKIM-Signature` header, so the folder and the SMTP
//! transport carry the same signed message. The signed headers include `List-Unsubscribe` and
//! `List-Unsubscribe-Post`, which receivers require before honouring a one-click unsubscribe
//! (RFC 8058 section 4).
//!
//! Independent verification: the end-to-end tests check every signature with Python's `dkimpy`.

use std::fmt;
use std::path::Path;

pub use crate::sending_settings::DkimConfig;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};

/// The headers a signature covers when the message has them, in this order (`h=`).
pub const SIGNED_HEADERS: &[&str] = &[
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-id",
    "precedence",
    "auto-submitted",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
];

/// Why a DKIM key or setting cannot be used. The messages say what to do; none holds key
/// material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DkimError {
    /// The key text is not a PEM private key we can read.
    #[error(
        "the DKIM key {source_name} is not a PEM private key: {reason} (expected \
         -----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----; make one with \
         `openssl genpkey -algorithm ed25519` or `openssl genrsa 2048`)"
    )]
    Pem {
        /// Where the key came from (the file, or the environment variable).
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// The key parsed as PEM but is neither an RSA key of 2048 to 8192 bits nor an Ed25519 key.
    #[error(
        "the DKIM key {source_name} is not usable: {reason} (use RSA of 2048 bits or more, or Ed25519)"
    )]
    Key {
        /// Where the key came from.
        source_name: String,
        /// What `ring` said.
        reason: String,
    },
    /// A domain or selector that cannot appear in a DNS name.
    #[error("[mail.dkim] {field} {value:?} is not a valid DNS label sequence")]
    Name {
        /// `domain` or `selector`.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// `[mail.dkim]` is incomplete, or the key cannot be read.
    #[error("{0}")]
    Config(String),
    /// The message has no header/body separator, or its headers are not text.
    #[error("cannot sign the message: {0}")]
    Message(String),
}

enum SigningKey {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// Signs messages for one domain and selector with one private key.
pub struct DkimSigner {
    domain: String,
    selector: String,
    key: SigningKey,
    rng: SystemRandom,
}

impl fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimSigner")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl DkimSigner {
    /// Reads `config`'s key and makes the signer: `root` is the workspace (for a relative `key_file`),
    /// `sender_domain` the domain of `[mail] from`, `env` reads environment variables. Every
    /// problem is an error here, when the sender starts.
    pub fn from_config(
        config: &DkimConfig,
        root: &Path,
        sender_domain: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<DkimSigner, DkimError> {
        let domain = config.domain.as_deref().or(sender_domain).ok_or_else(|| {
            DkimError::Config(
                "[mail.dkim] has no domain and [mail] from has none to take".to_owned(),
            )
        })?;
        let (pem, source_name) = match (&config.key_file, &config.key_env) {
            (Some(file), None) => {
                let path = root.join(file);
                let text = std::fs::read_to_string(&path).map_err(|err| {
                    DkimError::Config(format!(
                        "cannot read the DKIM key file {} ([mail.dkim] key_file): {err}",
                        path.display()
                    ))
                })?;
                (text, path.display().to_string())
            }
            (None, Some(variable)) => {
                let text = env(variable).filter(|text| !text.trim().is_empty()).ok_or_else(|| {
                    DkimError::Config(format!(
                        "the DKIM key is missing: set the environment variable {variable} to the \
                         PEM private key ([mail.dkim] key_env names it)"
                    ))
                })?;
                (text, format!("in ${variable}"))
            }
            _ => {
                return Err(DkimError::Config(
                    "[mail.dkim] needs exactly one of key_file (a PEM file) and key_env (a \
                     variable holding the PEM)"
                        .to_owned(),
                ));
            }
        };
        DkimSigner::from_pem(domain, &config.selector, &pem, &source_name)
    }
}

/// A DNS TXT record to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// The record's name (`sel._domainkey.shop.example`).
    pub name: String,
    /// The TXT value, unsplit (zone files split it into strings of at most 255 bytes).
    pub value: String,
}

impl DkimSigner {
    /// A signer for `domain` (`d=`) and `selector` (`s=`) with the PEM private key `pem`
    /// (PKCS#8 RSA or Ed25519, or PKCS#1 RSA). `source_name` says where the key came from, for
    /// errors.
    pub fn from_pem(
        domain: &str,
        selector: &str,
        pem: &str,
        source_name: &str,
    ) -> Result<DkimSigner, DkimError> {
        for (field, value) in [("domain", domain), ("selector", selector)] {
            if !is_dns_name(value) {
                return Err(DkimError::Name {
                    field,
                    value: value.to_owned(),
                });
            }
        }
        let (label, der) = parse_pem(pem).map_err(|reason| DkimError::Pem {
            source_name: source_name.to_owned(),
            reason,
        })?;
        let rejected = |reason: String| DkimError::Key {
            source_name: source_name.to_owned(),
            reason,
        };
        let key = match label.as_str() {
            "RSA PRIVATE KEY" => SigningKey::Rsa(
                RsaKeyPair::from_der(&der).map_err(|err| rejected(format!("RSA: {err}")))?,
            ),
            "PRIVATE KEY" => match RsaKeyPair::from_pkcs8(&der) {
                Ok(key) => SigningKey::Rsa(key),
                Err(rsa) => match Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
                    Ok(key) => SigningKey::Ed25519(key),
                    Err(ed) => {
                        return Err(rejected(format!("as RSA: {rsa}; as Ed25519: {ed}")));
                    }
                },
            },
            other => {
                return Err(DkimError::Pem {
                    source_name: source_name.to_owned(),
                    reason: format!("it holds a {other:?}, not a private key"),
                });
            }
        };
        Ok(DkimSigner {
            domain: domain.to_ascii_lowercase(),
            selector: selector.to_owned(),
            key,
            rng: SystemRandom::new(),
        })
    }

    /// `rsa` or `ed25519` (the `k=` of the DNS record; `a=` is this with `-sha256`).
    pub fn algorithm(&self) -> &'static str {
        match self.key {
            SigningKey::Rsa(_) => "rsa",
            SigningKey::Ed25519(_) => "ed25519",
        }
    }

    /// The signing domain (`d=`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The DKIM TXT record receivers look the public key up in.
    pub fn dns_record(&self) -> DnsRecord {
        let public = match &self.key {
            // RFC 6376 3.6.1: the DER SubjectPublicKeyInfo, as `openssl` and opendkim publish.
            SigningKey::Rsa(key) => rsa_subject_public_key_info(key.public().as_ref()),
            // RFC 8463: the raw 32-byte public key.
            SigningKey::Ed25519(key) => key.public_key().as_ref().to_vec(),
        };
        DnsRecord {
            name: format!("{}._domainkey.{}", self.selector, self.domain),
            value: format!(
                "v=DKIM1; k={}; p={}",
                self.algorithm(),
                STANDARD.encode(public)
            ),
        }
    }

    /// The message `raw` (CRLF line endings, headers then a blank line then the body) with a
    /// `DKIM-Signature` header prepended, signed at `timestamp` (unix seconds, `t=`).
    pub fn sign(&self, raw: &[u8], timestamp: i64) -> Result<Vec<u8>, DkimError> {
        let split = find(raw, b"\r\n\r\n")
            .ok_or_else(|| DkimError::Message("no blank line after the headers".to_owned()))?;
        let (head, body) = (&raw[..split + 2], &raw[split + 4..]);
        let head = std::str::from_utf8(head)
            .map_err(|_| DkimError::Message("the headers are not UTF-8".to_owned()))?;
        let fields = header_fields(head);
        let body_hash = STANDARD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            &relaxed_body(body),
        ));
        let mut names = Vec::new();
        let mut hashed = String::new();
        for name in SIGNED_HEADERS {
            // The last instance is the one a verifier pairs with the first `h=` entry.
            if let Some(field) = fields
                .iter()
                .rev()
                .find(|field| field_name(field).eq_ignore_ascii_case(name))
            {
                names.push(*name);
                hashed.push_str(&relaxed_header(field));
                hashed.push_str("\r\n");
            }
        }
        let unsigned = format!(
            "DKIM-Signature: v=1; a={}-sha256; c=relaxed/relaxed; d={}; s={};\r\n\tt={timestamp}; h={};\r\n\tbh={body_hash};\r\n\tb=",
            self.algorithm(),
            self.domain,
            self.selector,
            names.join(":"),
        );
        hashed.push_str(&relaxed_header(&unsigned));
        let signature = match &self.key {
            SigningKey::Rsa(key) => {
                let mut signature = vec![0; key.public().modulus_len()];
                key.sign(
                    &RSA_PKCS1_SHA256,
                    &self.rng,
                    hashed.as_bytes(),
                    &mut signature,
                )
                .map_err(|_| DkimError::Message("RSA signing failed".to_owned()))?;
                signature
            }
            // RFC 8463: Ed25519 signs the SHA-256 hash of the canonicalised headers.
            SigningKey::Ed25519(key) => key
                .sign(ring::digest::digest(&ring::digest::SHA256, hashed.as_bytes()).as_ref())
                .as_ref()
                .to_vec(),
        };
        let signature = STANDARD.encode(signature);
        let mut out = Vec::with_capacity(raw.len() + unsigned.len() + signature.len() + 16);
        out.extend_from_slice(unsigned.as_bytes());
        // Folded into lines of 72: whitespace inside b= is ignored by verifiers.
        for (i, chunk) in signature.as_bytes().chunks(72).enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\r\n\t");
            }
            out.extend_from_slice(chunk);
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(raw);
        Ok(out)
    }
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The label and DER bytes of the first PEM block in `text`.
fn parse_pem(text: &str) -> Result<(String, Vec<u8>), String> {
    let text = text.trim();
    let begin = text.find("-----BEGIN ").ok_or("no -----BEGIN line")?;
    let rest = &text[begin + "-----BEGIN ".len()..];
    let (label, rest) = rest.split_once("-----").ok_or("an unfinished BEGIN line")?;
    let end_line = format!("-----END {label}-----");
    let body = rest
        .split_once(&end_line)
        .map(|(body, _)| body)
        .ok_or_else(|| format!("no {end_line} line"))?;
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD
        .decode(compact)
        .map_err(|err| format!("the base64 between the lines is damaged ({err})"))?;
    Ok((label.to_owned(), der))
}

/// Wraps a PKCS#1 `RSAPublicKey` in a `SubjectPublicKeyInfo` (rsaEncryption, NULL parameters).
fn rsa_subject_public_key_info(pkcs1: &[u8]) -> Vec<u8> {
    const ALGORITHM: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bit_string = vec![0x00];
    bit_string.extend_from_slice(pkcs1);
    let mut inner = ALGORITHM.to_vec();
    inner.push(0x03);
    der_length(bit_string.len(), &mut inner);
    inner.extend_from_slice(&bit_string);
    let mut out = vec![0x30];
    der_length(inner.len(), &mut out);
    out.extend_from_slice(&inner);
    out
}

fn der_length(length: usize, out: &mut Vec<u8>) {
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes = length.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The header fields of `head` (which ends with CRLF), each with its continuation lines.
fn header_fields(head: &str) -> Vec<&str> {
    let mut fields = Vec::new();
    let mut start = 0;
    let bytes = head.as_bytes();
    let mut at = 0;
    while let Some(offset) = find(&bytes[at..], b"\r\n") {
        let end = at + offset;
        let next = end + 2;
        let continues = matches!(bytes.get(next), Some(b' ' | b'\t'));
        if !continues {
            fields.push(&head[start..end]);
            start = next;
        }
        at = next;
    }
    fields
}

fn field_name(field: &str) -> &str {
    field.split_once(':').map_or(field, |(name, _)| name).trim()
}

/// RFC 6376 3.4.2: lower-case name, unfolded value with whitespace runs as one space, no
/// whitespace at either end of the value or around the colon. Without the final CRLF.
fn relaxed_header(field: &str) -> String {
    let (name, value) = field.split_once(':').unwrap_or((field, ""));
    let mut out = name.trim_end_matches([' ', '\t']).to_ascii_lowercase();
    out.push(':');
    let unfolded = value.replace("\r\n", "");
    let mut space = false;
    let mut text = String::with_capacity(unfolded.len());
    for c in unfolded.chars() {
        if c == ' ' || c == '\t' {
            space = true;
        } else {
            if space && !text.is_empty() {
                text.push(' ');
            }
            space = false;
            text.push(c);
        }
    }
    out.push_str(&text);
    out
}

/// RFC 6376 3.4.4: whitespace runs in a line become one space, whitespace at line ends goes,
/// empty lines at the end go; a non-empty body ends with CRLF.
fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut rest = body;
    loop {
        let (line, next) = match find(rest, b"\r\n") {
            Some(end) => (&rest[..end], Some(&rest[end + 2..])),
            None => (rest, None),
        };
        let mut out = Vec::with_capacity(line.len());
        let mut space = false;
        for &b in line {
            if b == b' ' || b == b'\t' {
                space = true;
            } else {
                if space {
                    out.push(b' ');
                }
                space = false;
                out.push(b);
            }
        }
        lines.push(out);
        match next {
            Some(next) => rest = next,
            None => break,
        }
    }
    while lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    let mut out = Vec::with_capacity(body.len());
    for line in lines {
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relaxed_header_matches_rfc_6376_example() {
        // RFC 6376 3.4.5.
        assert_eq!(relaxed_header("A: X"), "a:X");
        assert_eq!(relaxed_header("B : Y\t\r\n\tZ  "), "b:Y Z");
    }

    #[test]
    fn relaxed_body_matches_rfc_6376_example() {
        assert_eq!(relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n"), b" C\r\nD E\r\n");
        assert_eq!(relaxed_body(b""), b"");
        assert_eq!(relaxed_body(b"\r\n\r\n"), b"");
        assert_eq!(relaxed_body(b"no newline"), b"no newline\r\n");
    }

    #[test]
    fn headers_keep_their_continuation_lines() {
        let fields = header_fields("A: 1\r\nB: 2\r\n 3\r\nC: 4\r\n");
        assert_eq!(fields, ["A: 1", "B: 2\r\n 3", "C: 4"]);
    }

    #[test]
    fn bad_keys_are_clear_errors() {
        let err = DkimSigner::from_pem("shop.example", "s1", "not a key", "key.pem").unwrap_err();
        assert!(err.to_string().contains("key.pem"), "{err}");
        assert!(err.to_string().contains("BEGIN PRIVATE KEY"), "{err}");
        let err = DkimSigner::from_pem(
            "shop.example",
            "s1",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "key.pem",
        )
        .unwrap_err();
        assert!(matches!(err, DkimError::Key { .. }), "{err}");
        let err = DkimSigner::from_pem(
            "shop example",
            "s1",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "key.pem",
        )
        .unwrap_err();
        assert!(matches!(err, DkimError::Name { .. }), "{err}");
    }

    #[test]
    fn spki_wraps_the_rsa_key() {
        let spki = rsa_subject_public_key_info(&[0x30, 0x03, 0x02, 0x01, 0x05]);
        assert_eq!(spki[0], 0x30);
        assert_eq!(usize::from(spki[1]), spki.len() - 2);
        let mut long = Vec::new();
        der_length(270, &mut long);
        assert_eq!(long, [0x82, 0x01, 0x0e]);
    }
}
