//! [`SmtpMailer`]: delivery to an SMTP server, with every failure classified for the outbox.
//!
//! # Why not `lettre::SmtpTransport`
//!
//! lettre's `SmtpTransport::send_raw` runs MAIL, RCPT, DATA and the content in one call and
//! reports a timeout or a lost connection the same way wherever it happened. The outbox needs
//! to know *where*: a connection lost before the content was handed over means "not
//! delivered, retry" ([`SendError::Transient`]); lost after the final `.` was written and
//! before the server answered means "maybe delivered" ([`SendError::Unknown`]), and blindly
//! retrying that would send the mail twice. So the mailer drives lettre's own
//! [`SmtpConnection`] step by step (connect, STARTTLS, AUTH, then MAIL, RCPT, DATA and the
//! content, each with lettre's commands and codec) and knows which step failed. The content
//! goes through [`SmtpConnection::message_iter`] with an iterator that notes when lettre asked
//! it for more after the last byte: from then on the whole message is in the socket and only
//! the terminating `.` and the reply are outstanding, so a failure is `Unknown` — unless the
//! connection was *reset*: a server that read the final `.` has read everything, so its close
//! cannot reset the connection; a reset says it closed (or died) with our bytes unread, before
//! the final `.`, so nothing was stored and the failure is [`SendError::Transient`].
//!
//! The same reason rules out lettre's connection pool, which lives behind `send_raw`. The
//! mailer keeps its own: with `pool` set, one connection is kept open between messages and
//! reused (a [`MailTransport`] sends one message at a time, so one connection is all a pool
//! could give it), replaced after [`IDLE_LIMIT`] of silence or [`MESSAGES_PER_CONNECTION`]
//! messages, and replaced at once if the server turns out to have closed it while idle (found
//! on MAIL, before anything is handed over, so the retry is safe).

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;

use super::{BuiltMessage, Delivered, MailError, MailTransport, SendError};
use crate::config::{SmtpConfig, SmtpSecurity};

/// A kept connection idle longer than this is closed rather than reused: servers drop idle
/// clients (often after 60 seconds to 5 minutes), and a fresh connection costs little.
pub const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// A kept connection is closed after this many messages, staying under the per-connection
/// message limits some providers enforce.
pub const MESSAGES_PER_CONNECTION: u32 = 100;

/// How to reach an SMTP server. Holds no secret: the password is read from the environment
/// variable `password_env` names, by [`SmtpMailer::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpTransportConfig {
    /// Server host name (also the name its TLS certificate must carry).
    pub host: String,
    /// Server port: 587 for STARTTLS, 465 for TLS.
    pub port: u16,
    /// Connection security. `None` is only for a server on the same machine (and tests).
    pub security: SmtpSecurity,
    /// Login name, if the server wants AUTH (PLAIN or LOGIN).
    pub username: Option<String>,
    /// The environment variable holding the password (read only when `username` is set).
    pub password_env: String,
    /// How long to wait for the connection, each write and each reply.
    pub timeout: Duration,
    /// Keep the connection open between messages.
    pub pool: bool,
}

impl SmtpTransportConfig {
    /// The default timeout (`[mail.smtp] timeout_seconds = 30`).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// The settings from `tiercare.toml`'s `[mail.smtp]`, with connection reuse on.
    pub fn from_settings(settings: &SmtpConfig) -> SmtpTransportConfig {
        SmtpTransportConfig {
            host: settings.host.clone(),
            port: settings.port,
            security: settings.security,
            username: settings.username.clone(),
            password_env: settings.password_env.clone(),
            timeout: Duration::from_secs(u64::from(settings.timeout_seconds)),
            pool: true,
        }
    }
}

/// Sends messages to one SMTP server. See the [module docs](self) for how failures are told
/// apart. `Debug` never shows the password.
pub struct SmtpMailer {
    host: String,
    port: u16,
    security: SmtpSecurity,
    tls: Option<TlsParameters>,
    hello: ClientId,
    username: Option<String>,
    credentials: Option<Credentials>,
    timeout: Duration,
    pool: bool,
    kept: Option<Kept>,
}

/// A connection kept for the next message.
struct Kept {
    connection: SmtpConnection,
    idle_since: Instant,
    sent: u32,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.credentials.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("pool", &self.pool)
            .field("connected", &self.kept.is_some())
            .finish()
    }
}

/// Where in a transaction a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Mail,
    Rcpt,
    Data,
    Content,
}

/// A failed transaction.
enum Failure {
    /// Refused by the mailer before sending anything: the server lacks a feature this
    /// message needs.
    Unsupported(&'static str),
    /// lettre reported an error at `step`; `handed_over` says whether every byte of the
    /// content had been written by then.
    Smtp {
        step: Step,
        handed_over: bool,
        error: lettre::transport::smtp::Error,
    },
}

impl SmtpMailer {
    /// A mailer for `config`. `env` looks up environment variables (pass
    /// `&|name| std::env::var(name).ok()`, or a map in tests): when a username is set, the
    /// password is read from `config.password_env` now and kept only in memory.
    /// No connection is made until the first message.
    pub fn new(
        config: &SmtpTransportConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<SmtpMailer, MailError> {
        if config.host.trim().is_empty() {
            return Err(MailError::InvalidConfig(
                "the SMTP host is empty".to_owned(),
            ));
        }
        if config.timeout.is_zero() {
            return Err(MailError::InvalidConfig(
                "the SMTP timeout must be longer than zero".to_owned(),
            ));
        }
        let credentials = match &config.username {
            Some(username) => {
                let password = env(&config.password_env)
                    .filter(|password| !password.is_empty())
                    .ok_or_else(|| MailError::MissingPassword {
                        variable: config.password_env.clone(),
                    })?;
                Some(Credentials::new(username.clone(), password))
            }
            None => None,
        };
        let tls = match config.security {
            SmtpSecurity::None => None,
            SmtpSecurity::Starttls | SmtpSecurity::Tls => {
                Some(TlsParameters::new(config.host.clone()).map_err(|error| {
                    MailError::InvalidConfig(format!(
                        "cannot set up TLS for {}: {error}",
                        config.host
                    ))
                })?)
            }
        };
        Ok(SmtpMailer {
            host: config.host.clone(),
            port: config.port,
            security: config.security,
            tls,
            hello: ClientId::default(),
            username: config.username.clone(),
            credentials,
            timeout: config.timeout,
            pool: config.pool,
            kept: None,
        })
    }

    /// A mailer reading the password from the process environment.
    pub fn from_environment(config: &SmtpTransportConfig) -> Result<SmtpMailer, MailError> {
        SmtpMailer::new(config, &|name| std::env::var(name).ok())
    }

    /// Opens a connection: greeting, EHLO, STARTTLS or TLS as configured, AUTH. Every failure
    /// here is [`SendError::Transient`], whatever the code: it concerns the server or the
    /// settings, not this message, which must wait for them to be fixed rather than fail.
    fn connect(&self) -> Result<SmtpConnection, SendError> {
        let transient = |what: &str, error: lettre::transport::smtp::Error| SendError::Transient {
            code: error.status().map(u16::from),
            message: format!("{what} {}:{}: {error}", self.host, self.port),
        };
        let wrapper = match self.security {
            SmtpSecurity::Tls => self.tls.as_ref(),
            SmtpSecurity::None | SmtpSecurity::Starttls => None,
        };
        let mut connection = SmtpConnection::connect(
            (self.host.as_str(), self.port),
            Some(self.timeout),
            &self.hello,
            wrapper,
            None,
        )
        .map_err(|error| transient("cannot connect to", error))?;
        if let (SmtpSecurity::Starttls, Some(tls)) = (self.security, &self.tls) {
            connection
                .starttls(tls, &self.hello)
                .map_err(|error| transient("STARTTLS failed with", error))?;
        }
        if let Some(credentials) = &self.credentials {
            connection
                .auth(DEFAULT_MECHANISMS, credentials)
                .map_err(|error| transient("authentication refused by", error))?;
        }
        Ok(connection)
    }

    /// Runs one transaction on `connection`.
    fn transaction(
        connection: &mut SmtpConnection,
        message: &BuiltMessage,
    ) -> Result<Response, Failure> {
        let failed = |step| {
            move |error| Failure::Smtp {
                step,
                handed_over: false,
                error,
            }
        };
        let envelope = message.envelope();
        let mut parameters = Vec::new();
        let info = connection.server_info();
        let ascii = |address: &lettre::Address| AsRef::<str>::as_ref(address).is_ascii();
        if !envelope.to().iter().all(ascii) || envelope.from().is_some_and(|from| !ascii(from)) {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Err(Failure::Unsupported(
                    "the server does not accept non-ASCII addresses (no SMTPUTF8)",
                ));
            }
            parameters.push(MailParameter::SmtpUtfEight);
        }
        if !message.raw().is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                return Err(Failure::Unsupported(
                    "the server does not accept 8-bit messages (no 8BITMIME)",
                ));
            }
            parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        connection
            .command(Mail::new(envelope.from().cloned(), parameters))
            .map_err(failed(Step::Mail))?;
        for to in envelope.to() {
            connection
                .command(Rcpt::new(to.clone(), Vec::new()))
                .map_err(failed(Step::Rcpt))?;
        }
        connection.command(Data).map_err(failed(Step::Data))?;
        let handed_over = Cell::new(false);
        // lettre writes CRLF before the final `.`: leave out the message's own last CRLF so
        // the server receives exactly the built bytes.
        let raw = message.raw();
        let content = HandOver {
            content: Some(raw.strip_suffix(b"\r\n").unwrap_or(raw)),
            handed_over: &handed_over,
        };
        connection
            .message_iter(content)
            .map_err(|error| Failure::Smtp {
                step: Step::Content,
                handed_over: handed_over.get(),
                error,
            })
    }

    /// Sends on a kept connection if there is a usable one, else (or if it turns out stale) on
    /// a new one.
    fn deliver(&mut self, message: &BuiltMessage) -> Result<Delivered, SendError> {
        if let Some(mut kept) = self.kept.take()
            && kept.idle_since.elapsed() < IDLE_LIMIT
        {
            match Self::transaction(&mut kept.connection, message) {
                Err(failure) if is_stale(&failure) => {
                    tracing::debug!(
                        transport = "smtp",
                        "kept connection was closed; reconnecting"
                    );
                }
                outcome => return self.settle(kept, outcome),
            }
        }
        // A stale or long-idle connection is dropped here without a QUIT: the server has
        // probably closed it already, and a QUIT into a silently dead connection would
        // wait a full timeout.
        let mut kept = Kept {
            connection: self.connect()?,
            idle_since: Instant::now(),
            sent: 0,
        };
        let outcome = Self::transaction(&mut kept.connection, message);
        self.settle(kept, outcome)
    }

    /// Classifies the outcome and decides whether the connection is kept.
    fn settle(
        &mut self,
        mut kept: Kept,
        outcome: Result<Response, Failure>,
    ) -> Result<Delivered, SendError> {
        match outcome {
            Ok(response) => {
                kept.sent += 1;
                if self.pool && kept.sent < MESSAGES_PER_CONNECTION {
                    kept.idle_since = Instant::now();
                    self.kept = Some(kept);
                } else {
                    let _ = kept.connection.quit();
                }
                Ok(Delivered {
                    receipt: describe(&response),
                    already_delivered: false,
                })
            }
            Err(failure) => {
                let error = classify(&failure);
                // After a reply the connection is still in step with the server: reset the
                // transaction and keep it. After anything else (a timeout, a lost connection,
                // a garbled reply) its state is unknown: drop it without a QUIT, which could
                // only wait for another timeout.
                let in_step = match &failure {
                    Failure::Unsupported(_) => true,
                    Failure::Smtp { error, .. } => {
                        error.status().is_some_and(|code| u16::from(code) != 421)
                    }
                };
                if self.pool && in_step && kept.connection.command(Rset).is_ok() {
                    kept.idle_since = Instant::now();
                    self.kept = Some(kept);
                } else if in_step {
                    let _ = kept.connection.quit();
                }
                Err(error)
            }
        }
    }
}

impl MailTransport for SmtpMailer {
    fn send(&mut self, message: &BuiltMessage) -> Result<Delivered, SendError> {
        let outcome = self.deliver(message);
        match &outcome {
            Ok(_) => tracing::debug!(
                transport = "smtp",
                message_id = %message.message_id(),
                "delivered"
            ),
            Err(error) => tracing::debug!(
                transport = "smtp",
                message_id = %message.message_id(),
                code = ?error.code(),
                "not delivered: {error}"
            ),
        }
        outcome
    }

    fn name(&self) -> &'static str {
        "smtp"
    }
}

impl Drop for SmtpMailer {
    fn drop(&mut self) {
        if let Some(mut kept) = self.kept.take()
            && kept.idle_since.elapsed() < IDLE_LIMIT
        {
            // Courtesy only: the server cleans up either way.
            let _ = kept.connection.quit();
        }
    }
}

/// The message content for [`SmtpConnection::message_iter`], noting when lettre asks for more
/// after the last byte: by then every byte of the content has been written to the socket.
struct HandOver<'a> {
    content: Option<&'a [u8]>,
    handed_over: &'a Cell<bool>,
}

impl<'a> Iterator for HandOver<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let next = self.content.take();
        if next.is_none() {
            self.handed_over.set(true);
        }
        next
    }
}

/// Sorts a failed transaction into the outbox's classes (see [`SendError`]).
fn classify(failure: &Failure) -> SendError {
    let (step, handed_over, error) = match failure {
        Failure::Unsupported(reason) => {
            return SendError::Permanent {
                code: None,
                message: (*reason).to_owned(),
                hard_bounce: false,
            };
        }
        Failure::Smtp {
            step,
            handed_over,
            error,
        } => (*step, *handed_over, error),
    };
    if let Some(code) = error.status() {
        let code = u16::from(code);
        let message = error.to_string();
        return if code >= 500 {
            SendError::Permanent {
                code: Some(code),
                hard_bounce: match step {
                    Step::Rcpt => matches!(code, 550 | 551 | 553),
                    // Our relay refused the message for good after DATA: a hard bounce,
                    // unless the status says the message or a policy is the problem
                    // (5.3.x system, 5.6.x content, 5.7.x policy), not the address.
                    Step::Content => {
                        super::transport::enhanced_status(&message).is_none_or(|status| {
                            !["5.3.", "5.6.", "5.7."]
                                .iter()
                                .any(|p| status.starts_with(p))
                        })
                    }
                    Step::Mail | Step::Data => false,
                },
                message,
            }
        } else {
            SendError::Transient {
                code: Some(code),
                message,
            }
        };
    }
    if handed_over && reset(error) {
        // A server that read the final `.` has read every byte we sent, so closing its end
        // cannot reset the connection; a reset means our bytes reached a socket closed (or
        // aborted) before it read them all: the message was cut off before the final `.` and
        // nothing was stored. (A middlebox resetting a connection after the server took the
        // message would be mistaken for this; a clean close or a silence stays unknown.)
        SendError::Transient {
            code: None,
            message: format!(
                "the server reset the connection before it read the end of the message: {error}"
            ),
        }
    } else if handed_over {
        SendError::Unknown {
            message: format!(
                "the message was handed over but no reply came{}: {error}",
                if timed_out(error) { " in time" } else { "" }
            ),
        }
    } else {
        let step = match step {
            Step::Mail => "MAIL",
            Step::Rcpt => "RCPT",
            Step::Data => "DATA",
            Step::Content => "sending the content",
        };
        SendError::Transient {
            code: None,
            message: format!("connection failed at {step}: {error}"),
        }
    }
}

/// True if the error is a read or write timeout. lettre's `is_timeout` looks for
/// `ErrorKind::TimedOut` only, but a socket timeout shows as `WouldBlock` on Unix.
fn timed_out(error: &lettre::transport::smtp::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            );
        }
        source = cause.source();
    }
    false
}

/// True if the error is the connection being reset by the peer (`ECONNRESET`, or `EPIPE` on a
/// write after the reset).
fn reset(error: &lettre::transport::smtp::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            );
        }
        source = cause.source();
    }
    false
}

/// True when a kept connection failed on MAIL in a way that says the server closed it while it
/// was idle (no reply at all, or `421` closing): nothing was handed over, so sending again on
/// a new connection is safe.
fn is_stale(failure: &Failure) -> bool {
    match failure {
        Failure::Smtp {
            step: Step::Mail,
            error,
            ..
        } => error.status().is_none_or(|code| u16::from(code) == 421),
        _ => false,
    }
}

/// The server's final reply, e.g. `250 2.0.0 Ok: queued as 12`.
fn describe(response: &Response) -> String {
    let lines: Vec<&str> = response.message().collect();
    format!("{} {}", u16::from(response.code()), lines.join(" "))
}
