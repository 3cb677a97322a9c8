//! `tiercare.toml`: the workspace's settings, parsed and validated.
//!
//! The file holds no secrets: the SMTP password is named by an environment variable
//! (`password_env`) and read from the environment when mail is sent.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

pub mod webhooks;

/// The name of the settings file at the root of every workspace.
pub const CONFIG_FILE: &str = "tiercare.toml";

/// How long a write waits for a lock by default: long enough to ride out a daemon's transaction.
pub const DEFAULT_BUSY_TIMEOUT_MS: u64 = 5000;

/// A workspace's validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The workspace's time zone: times without an offset in imported files are read in it.
    pub timezone: chrono_tz::Tz,
    /// The database file, relative to the workspace root unless absolute.
    pub database: PathBuf,
    /// How long a write waits for another process's lock before giving up.
    pub busy_timeout: std::time::Duration,
    /// How mail leaves the workspace.
    pub mail: MailConfig,
    /// How `tiercare run` keeps time (`[daemon]`).
    pub daemon: DaemonConfig,
    /// How rules are kept from doing harm (`[rules]`).
    pub rules: RulesConfig,
    /// The web server (`[http]`), when configured.
    pub http: Option<crate::http_config::HttpConfig>,
    /// Outgoing webhooks (`[[webhooks]]`), see [`crate::webhooks`].
    pub webhooks: Vec<webhooks::WebhookEndpoint>,
    /// The growth models (`[growth]`).
    pub growth: crate::growth::GrowthConfig,
    /// SMS (`[sms]`): the provider, limits, `max_segments`.
    pub sms: crate::sms_settings::SmsConfig,
    /// What imports assume (`[import]`: `default_region` of phone numbers).
    pub import: crate::phone::ImportConfig,
    /// The points an imported order earns (`[points]`).
    pub points: crate::points_settings::PointsConfig,
}

/// How rules are kept from doing harm (`[rules]`): the time budget of each customer's
/// evaluation, the share of customers a rule may fail for before an assessment is refused, and
/// the sample of real customers every new rule set must run on first.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Milliseconds one customer's evaluation (every rule) may take (`budget_ms`, default 50);
    /// a script still running then is stopped and its rule fails for that customer. Also the
    /// budget of one row of a mapping file's scripts.
    pub budget_ms: u64,
    /// The largest share of customers (0 to 1) whose rules may fail in an assessment
    /// (`max_failure_share`, default 0.01): above it the assessment is not recorded.
    pub max_failure_share: f64,
    /// How many real customers (spread over the tiers) a rule set runs on before it is accepted
    /// by `check` and by a daemon reload (`sample`, default 200).
    pub sample: usize,
    /// `check` warns about a rule slower than this many milliseconds for a sampled customer
    /// (`slow_ms`, default 5).
    pub slow_ms: u64,
}

impl Config {
    /// What the growth models need: the workspace's zone and `[growth]`.
    #[must_use]
    pub fn growth_settings(&self) -> crate::growth::GrowthSettings {
        crate::growth::GrowthSettings {
            timezone: self.timezone,
            config: self.growth,
        }
    }
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            budget_ms: 50,
            max_failure_share: 0.01,
            sample: 200,
            slow_ms: 5,
        }
    }
}

impl RulesConfig {
    /// The evaluation budget, timed with [`std::time::Instant`].
    #[must_use]
    pub fn budget(&self) -> tiercare_engine::Budget {
        tiercare_engine::Budget {
            limit: std::time::Duration::from_millis(self.budget_ms),
            now: std::time::Instant::now,
        }
    }
}

/// The daemon's settings (`[daemon]`); durations in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaemonConfig {
    /// How often follow-ups are recorded and due mail is delivered (`tick`, default `1m`).
    pub tick: i64,
    /// How late a missed reassessment may still be made up, once (`lateness`, default `6h`).
    pub lateness: i64,
    /// After downtime, how far back follow-ups are still recorded (`catch_up`, default `7d`);
    /// older ones are skipped and logged.
    pub catch_up: i64,
    /// How long `rules/` and `templates/` must be quiet after a change, and the time between
    /// the two readings that must find the same content, before a reload (`settle_ms`,
    /// default 1000; `debounce_ms` is its older name).
    pub settle_ms: u64,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            tick: 60,
            lateness: 6 * 3_600,
            catch_up: 7 * 86_400,
            settle_ms: 1_000,
        }
    }
}

pub(crate) use crate::time::parse_duration;

/// Mail settings (`[mail]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// Which transport delivers mail.
    #[serde(default)]
    pub transport: Transport,
    /// For the folder transport: where `.eml` files are written, relative to the workspace root.
    #[serde(default = "default_mail_folder")]
    pub folder: PathBuf,
    /// The `From` address of care emails.
    #[serde(default = "default_from")]
    pub from: String,
    /// SMTP settings, used when `transport = "smtp"`.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    /// The address of the `mailto:` unsubscribe link every care email carries (default: the
    /// `from` address). Requests arriving there are applied with `tiercare unsubscribe`.
    #[serde(default)]
    pub unsubscribe_mailto: Option<String>,
    /// The base of the one-click HTTPS unsubscribe link (RFC 8058), e.g.
    /// `https://shop.example/unsubscribe`; a signed `token=` is appended. Without it, emails
    /// carry only the mailto link.
    #[serde(default)]
    pub unsubscribe_url: Option<String>,
    /// The environment variable holding the secret that signs unsubscribe tokens (never the
    /// secret itself). Required when `unsubscribe_url` or `[http] public_url` is set. The secret
    /// also keys the suppression list's address hashes.
    #[serde(default = "default_unsubscribe_secret_env")]
    pub unsubscribe_secret_env: String,
    /// The envelope sender's base (`bounces@shop.example`): when set, each email's SMTP
    /// envelope sender is the VERP address `bounces+<outbox id>.<mac>@shop.example`
    /// ([`crate::mail::verp`]), signed with the secret `unsubscribe_secret_env` names.
    #[serde(default)]
    pub bounce_address: Option<String>,
    /// Bounce handling (`[mail.bounces]`): soft bounce policy, provider webhooks.
    #[serde(default)]
    pub bounces: crate::bounces::BounceConfig,
    /// The environment variable holding the previous secret after a rotation: links signed
    /// with it are honoured for 60 days after they were sent, and suppressions keyed with it
    /// are still recognised (and re-keyed).
    #[serde(default = "default_unsubscribe_secret_previous_env")]
    pub unsubscribe_secret_previous_env: String,
    /// Sending limits (`[mail.limits]`).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// How the outbox retries and recovers (`[mail.outbox]`).
    #[serde(default)]
    pub outbox: OutboxConfig,
    /// DKIM signing (`[mail.dkim]`); unsigned without it.
    #[serde(default)]
    pub dkim: Option<crate::sending_settings::DkimConfig>,
    /// The `List-Id` of care emails (RFC 2919), e.g. `care.shop.example`; default
    /// `care.` and the domain of `from`.
    #[serde(default)]
    pub list_id: Option<String>,
    /// Limits per receiving domain (`[mail.domains."gmail.com"]`), over the defaults for the
    /// large providers ([`crate::sending_settings::default_domains`]).
    #[serde(default)]
    pub domains: std::collections::BTreeMap<String, crate::sending_settings::DomainLimits>,
    /// When sending pauses itself (`[mail.reputation]`).
    #[serde(default)]
    pub reputation: crate::sending_settings::ReputationConfig,
    /// The warm-up schedule of a new sending domain (`[mail.warmup]`); off without it.
    #[serde(default)]
    pub warmup: Option<crate::sending_settings::WarmupConfig>,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            transport: Transport::Folder,
            folder: default_mail_folder(),
            from: default_from(),
            smtp: None,
            unsubscribe_mailto: None,
            unsubscribe_url: None,
            unsubscribe_secret_env: default_unsubscribe_secret_env(),
            bounce_address: None,
            bounces: crate::bounces::BounceConfig::default(),
            unsubscribe_secret_previous_env: default_unsubscribe_secret_previous_env(),
            limits: LimitsConfig::default(),
            outbox: OutboxConfig::default(),
            dkim: None,
            list_id: None,
            domains: std::collections::BTreeMap::new(),
            reputation: crate::sending_settings::ReputationConfig::default(),
            warmup: None,
        }
    }
}

/// Sending limits (`[mail.limits]`), e.g. a provider's quota; each is counted over the sliding
/// window before each send, across processes (from the outbox's sent times).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// At most this many emails in any 60 seconds.
    pub per_minute: Option<u32>,
    /// At most this many emails in any hour.
    pub per_hour: Option<u32>,
    /// At most this many emails in any 24 hours.
    pub per_day: Option<u32>,
}

/// What to do with an email a crashed sender left claimed (`[mail.outbox] after_crash`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterCrash {
    /// Mark it unknown and send it again once, with the same Message-ID (nothing lost; a
    /// duplicate possible, counted).
    #[default]
    ResendOnce,
    /// Mark it unknown and leave it for `tiercare outbox retry` (nothing twice; maybe lost).
    Hold,
}

/// How the outbox retries and recovers (`[mail.outbox]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Emails claimed per transaction.
    pub batch_size: u32,
    /// SMTP attempts before a transiently failing email is given up as failed.
    pub max_attempts: u32,
    /// The first retry waits about this long (seconds); each next one twice as long, with
    /// jitter (between half and all of it), up to `retry_max_seconds`.
    pub retry_base_seconds: u32,
    /// The longest wait between retries (seconds).
    pub retry_max_seconds: u32,
    /// Accepted for old configurations and no longer used: a sender holds the sender lock
    /// ([`crate::lock`]), so every claim it finds was left by a dead one and is recovered at
    /// once, with no timeout to wait for.
    pub claim_timeout_minutes: u32,
    /// What to do with such an email.
    pub after_crash: AfterCrash,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            batch_size: 100,
            max_attempts: 8,
            retry_base_seconds: 60,
            retry_max_seconds: 6 * 3600,
            claim_timeout_minutes: 15,
            after_crash: AfterCrash::ResendOnce,
        }
    }
}

/// The mail transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// One `.eml` file per message in a local folder: the default, no server needed.
    #[default]
    Folder,
    /// An SMTP server.
    Smtp,
}

/// SMTP settings (`[mail.smtp]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Server host name.
    pub host: String,
    /// Server port (587 for STARTTLS, 465 for TLS).
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// Connection security.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// Login name, if the server wants AUTH.
    #[serde(default)]
    pub username: Option<String>,
    /// The environment variable that holds the password (never the password itself).
    #[serde(default = "default_password_env")]
    pub password_env: String,
    /// How long to wait for the connection, each write and each reply, in seconds.
    #[serde(default = "default_smtp_timeout")]
    pub timeout_seconds: u32,
    /// Connections used in parallel by one `tiercare send` or daemon tick, each kept open
    /// between messages.
    #[serde(default = "default_smtp_connections")]
    pub connections: u32,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a server on the same machine.
    None,
}

fn default_mail_folder() -> PathBuf {
    PathBuf::from("mail")
}

fn default_from() -> String {
    "Customer Care <care@example.com>".to_owned()
}

fn default_smtp_port() -> u16 {
    587
}

fn default_smtp_timeout() -> u32 {
    30
}

fn default_smtp_connections() -> u32 {
    1
}

fn default_unsubscribe_secret_env() -> String {
    "TIERCARE_UNSUBSCRIBE_SECRET".to_owned()
}

fn default_unsubscribe_secret_previous_env() -> String {
    "TIERCARE_UNSUBSCRIBE_SECRET_PREVIOUS".to_owned()
}

fn default_password_env() -> String {
    "TIERCARE_SMTP_PASSWORD".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    workspace: RawWorkspace,
    #[serde(default)]
    database: RawDatabase,
    mail: Option<MailConfig>,
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    rules: RulesConfig,
    http: Option<crate::http_config::HttpConfig>,
    #[serde(default)]
    webhooks: Vec<webhooks::RawWebhook>,
    #[serde(default)]
    growth: crate::growth::GrowthConfig,
    #[serde(default)]
    sms: crate::sms_settings::SmsConfig,
    #[serde(default)]
    import: crate::phone::ImportConfig,
    #[serde(default)]
    points: crate::points_settings::PointsConfig,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    tick: Option<toml::Spanned<String>>,
    lateness: Option<toml::Spanned<String>>,
    catch_up: Option<toml::Spanned<String>>,
    settle_ms: Option<u64>,
    debounce_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWorkspace {
    timezone: Option<toml::Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    path: Option<PathBuf>,
    busy_timeout_ms: Option<u64>,
}

/// A problem in `tiercare.toml`, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{line}:{column}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

impl Config {
    /// Parses and validates the text of a `tiercare.toml`.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|err| {
            let (line, column) = err
                .span()
                .map(|span| position(text, span.start))
                .map_or((None, None), |(l, c)| (Some(l), Some(c)));
            ConfigError {
                line,
                column,
                message: err.message().trim().to_owned(),
            }
        })?;
        let timezone = match raw.workspace.timezone {
            None => chrono_tz::UTC,
            Some(spanned) => {
                let (line, column) = position(text, spanned.span().start);
                spanned.get_ref().parse::<chrono_tz::Tz>().map_err(|_| ConfigError {
                    line: Some(line),
                    column: Some(column),
                    message: format!(
                        "unknown time zone `{}`: use an IANA name such as \"Europe/London\" or \"Asia/Shanghai\"",
                        spanned.get_ref()
                    ),
                })?
            }
        };
        let mail = raw.mail.unwrap_or_default();
        let invalid = |message: String| ConfigError {
            line: None,
            column: None,
            message,
        };
        if mail.outbox.batch_size == 0 || mail.outbox.max_attempts == 0 {
            return Err(invalid(
                "[mail.outbox] batch_size and max_attempts must be at least 1".to_owned(),
            ));
        }
        if mail.outbox.retry_base_seconds == 0
            || mail.outbox.retry_max_seconds < mail.outbox.retry_base_seconds
        {
            return Err(invalid(
                "[mail.outbox] retry_base_seconds must be at least 1 and at most retry_max_seconds"
                    .to_owned(),
            ));
        }
        if mail.outbox.claim_timeout_minutes == 0 {
            return Err(invalid(
                "[mail.outbox] claim_timeout_minutes must be at least 1".to_owned(),
            ));
        }
        for (name, value) in [
            ("per_minute", mail.limits.per_minute),
            ("per_hour", mail.limits.per_hour),
            ("per_day", mail.limits.per_day),
        ] {
            if value == Some(0) {
                return Err(invalid(format!(
                    "[mail.limits] {name} must be at least 1 (leave it out for no limit)"
                )));
            }
        }
        crate::sending_settings::validate_domains(&mail.domains).map_err(invalid)?;
        crate::sending_settings::validate_reputation(&mail.reputation, mail.warmup.as_ref())
            .map_err(invalid)?;
        if let Some(url) = &mail.unsubscribe_url
            && !url.starts_with("https://")
        {
            return Err(invalid(format!(
                "mail.unsubscribe_url {url:?} must start with https:// (RFC 8058 one-click links are HTTPS)"
            )));
        }
        if let Some(smtp) = &mail.smtp
            && (smtp.timeout_seconds == 0 || smtp.connections == 0)
        {
            return Err(invalid(
                "[mail.smtp] timeout_seconds and connections must be at least 1".to_owned(),
            ));
        }
        mail.bounces.check().map_err(invalid)?;
        if mail.transport == Transport::Smtp && mail.smtp.is_none() {
            return Err(ConfigError {
                line: None,
                column: None,
                message: "mail.transport is \"smtp\" but there is no [mail.smtp] section: add one with at least `host`".to_owned(),
            });
        }
        let duration = |value: Option<toml::Spanned<String>>, key: &str, default: i64, min: i64| {
            let Some(spanned) = value else {
                return Ok(default);
            };
            let (line, column) = position(text, spanned.span().start);
            match parse_duration(spanned.get_ref()) {
                Some(seconds) if seconds >= min => Ok(seconds),
                _ => Err(ConfigError {
                    line: Some(line),
                    column: Some(column),
                    message: format!(
                        "invalid daemon.{key} `{}`: write a number and a unit, such as \"30s\", \"5m\", \"6h\" or \"7d\" (at least {min}s)",
                        spanned.get_ref()
                    ),
                }),
            }
        };
        let defaults = DaemonConfig::default();
        let daemon = DaemonConfig {
            tick: duration(raw.daemon.tick, "tick", defaults.tick, 1)?,
            lateness: duration(raw.daemon.lateness, "lateness", defaults.lateness, 0)?,
            catch_up: duration(raw.daemon.catch_up, "catch_up", defaults.catch_up, 0)?,
            settle_ms: raw
                .daemon
                .settle_ms
                .or(raw.daemon.debounce_ms)
                .unwrap_or(defaults.settle_ms),
        };
        Ok(Config {
            daemon,
            timezone,
            database: raw
                .database
                .path
                .unwrap_or_else(|| PathBuf::from("tiercare.db")),
            busy_timeout: std::time::Duration::from_millis(
                raw.database
                    .busy_timeout_ms
                    .unwrap_or(DEFAULT_BUSY_TIMEOUT_MS),
            ),
            mail,
            rules: validate_rules(raw.rules)?,
            http: match raw.http {
                Some(http) => Some(http.validate().map(|()| http).map_err(invalid)?),
                None => None,
            },
            webhooks: webhooks::validate(raw.webhooks, text)?,
            growth: crate::growth::validate(raw.growth).map_err(|message| ConfigError {
                line: None,
                column: None,
                message,
            })?,
            sms: raw.sms.validate().map(|()| raw.sms).map_err(invalid)?,
            points: raw
                .points
                .validate()
                .map(|()| raw.points)
                .map_err(invalid)?,
            import: match raw.import.default_region.as_deref() {
                Some(code) if crate::phone::region(code).is_none() => {
                    return Err(invalid(format!(
                        "[import] default_region {code:?} is not a region tiercare reads phone numbers of: use one of {}",
                        crate::phone::REGIONS
                            .iter()
                            .map(|r| r.code)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                _ => raw.import,
            },
        })
    }

    /// The text `tiercare init` writes: every setting, commented.
    pub fn initial_text(timezone: chrono_tz::Tz) -> String {
        format!(
            r#"# tiercare workspace settings. Every command finds this file at the workspace root
# (the current directory, `--workspace DIR` or $TIERCARE_HOME).

[workspace]
# Times in imported files that carry no UTC offset are read in this IANA time zone.
timezone = "{timezone}"

[database]
# The SQLite database, relative to this file. The CLI and the daemon share it safely.
path = "tiercare.db"
# How long a write waits for another process's lock before it gives up, in milliseconds.
# busy_timeout_ms = 5000

[mail]
# "folder" writes one .eml file per message into `folder` (no mail server needed);
# "smtp" delivers through the server in [mail.smtp].
transport = "folder"
folder = "mail"
from = "Customer Care <care@example.com>"
# Every care email carries List-Unsubscribe with a mailto link (to this address; default: from)
# and, when unsubscribe_url is set, a one-click HTTPS link with a token signed by the secret in
# the environment variable unsubscribe_secret_env names.
# unsubscribe_mailto = "unsubscribe@example.com"
# unsubscribe_url = "https://example.com/unsubscribe"
# unsubscribe_secret_env = "TIERCARE_UNSUBSCRIBE_SECRET"
# With bounce_address, each email's envelope sender (where bounces go) is a VERP address
# bounces+<id>.<mac>@shop.example signed with that same secret; `tiercare inbound` reads the
# bounces (see README, "Bounces and replies").
# bounce_address = "bounces@example.com"

# [mail.bounces]
# soft_limit = 3                          # soft bounces that suppress an address ...
# soft_window_days = 30                   # ... within this many days
# unsubscribe_secret_previous_env = "TIERCARE_UNSUBSCRIBE_SECRET_PREVIOUS"   # after a rotation

# [mail.limits]                           # leave out for no limit
# per_minute = 60
# per_hour = 1000
# per_day = 10000

# [mail.outbox]
# batch_size = 100                        # emails claimed per transaction
# max_attempts = 8                        # 4xx retries before an email fails
# retry_base_seconds = 60                 # first retry after ~1 min, then doubling, with jitter
# retry_max_seconds = 21600               # ... up to 6 hours
# after_crash = "resend_once"             # an email handed over when a sender died may have
#                                         # arrived: resend it (same Message-ID), or "hold" it
#                                         # as unknown for `tiercare outbox retry`

# Landing in the inbox (see README, "Landing in the inbox"): DKIM signing, with the key in a
# PEM file or in an environment variable (never here); `tiercare mail dns` prints the records.
# list_id = "care.example.com"            # List-Id of care emails (default: care.<from's domain>)
# [mail.dkim]
# selector = "s2026"
# key_file = "dkim.pem"                   # or key_env = "TIERCARE_DKIM_KEY"
# Per receiving domain (defaults for gmail.com, yahoo.com, outlook.com, icloud.com, ...):
# [mail.domains."gmail.com"]
# per_minute = 120
# per_hour = 3000
# concurrency = 3
# Sending pauses itself when hard bounces or complaints pass these shares of the sends:
# [mail.reputation]
# hard_bounce_percent = 5.0
# complaint_percent = 0.3
# min_sends = 50
# window_hours = 24
# [mail.warmup]                           # a new sending domain: daily caps from a start date
# start = "2026-12-01"
# daily = [50, 100, 200, 400, 800, 1600, 3200]

# [mail.smtp]
# host = "smtp.example.com"
# port = 587
# security = "starttls"                   # "starttls", "tls" or "none"
# username = "care@example.com"
# password_env = "TIERCARE_SMTP_PASSWORD"  # the password comes from this environment variable
# timeout_seconds = 30
# connections = 1                         # parallel connections, each kept open between messages

# [sms]                                   # SMS follow-ups (`sms: {{ template: NAME }}`)
# provider = "folder"                     # "folder": one .json file per SMS in `folder`;
# folder = "sms"                          # "http" ([sms.http]) or "twilio" ([sms.twilio])
# max_segments = 3                        # `check` refuses a template needing more
# per_minute = 60                         # sender limits, leave out for none (also per_hour,
#                                         # per_day)
# [sms.http]                              # a generic gateway: {{to}} {{text}} {{id}} in the fields
# url = "https://sms.example.com/send"
# body = "json"                           # or "form"
# fields = {{ to = "{{to}}", text = "{{text}}", ref = "{{id}}" }}
# bearer_env = "SMS_API_TOKEN"            # or header_env, basic_user_env/basic_password_env
# success_field = "status"                # optionally: the answer's field that says it went
# success_value = "ok"
# [sms.twilio]
# account_sid = "AC..."
# auth_token_env = "TWILIO_AUTH_TOKEN"
# from = "+15550001111"

# [import]
# default_region = "CN"                   # phone numbers without +country code are read as CN

# [points]                                # points an order earns when it is imported (once per
# per_order = 0                           # order; an order imported again with another amount
# per_currency_unit = 1                   # has its points adjusted)
# rounding = "down"                       # or "nearest", "up"
# expires = "365d"                        # leave out: earned points never expire

# [http]                                  # `tiercare serve`, and `tiercare run` when present:
#                                         # one-click unsubscribes and the preference page
# listen = "127.0.0.1:8025"               # behind your reverse proxy (TLS)
# public_url = "https://shop.example"     # emails' links: <public_url>/unsubscribe?token=...
# language = "en"                         # or "zh-CN"; unset: the browser's Accept-Language

[daemon]
# `tiercare run`: how often follow-ups are recorded and due mail is sent.
# tick = "1m"
# A reassessment missed while the daemon was down is made up once if it is at most this late;
# older ones are skipped (and logged), never run several times.
# lateness = "6h"
# After downtime, follow-ups due at most this long ago are still recorded; older ones are not.
# catch_up = "7d"
# How long rules/ and templates/ must be quiet after a change before the daemon reloads them;
# the content is also read twice this far apart and must be the same (a slow save never loads
# half-written).
# settle_ms = 1000

[rules]
# Rules are kept from doing harm (see README, "Rule limits"):
# budget_ms = 50                          # time one customer's evaluation may take; then it fails
# max_failure_share = 0.01                # above this share of failing customers, an assessment
#                                         # is not recorded
# sample = 200                            # real customers a new rule set must run on first
# slow_ms = 5                             # `check` warns about rules slower than this

# Webhooks to other systems (see README, "Webhooks"): one [[webhooks]] table per endpoint.
# [[webhooks]]
# name = "crm"
# url = "https://crm.example.com/hooks/tiercare"
# events = ["tier.changed", "email.sent", "email.failed", "task.created", "task.done"]
# secret_env = "TIERCARE_WEBHOOK_CRM_SECRET"  # its signing secret (whsec_...) comes from here
"#
        )
    }
}

/// Checks the `[rules]` values.
fn validate_rules(rules: RulesConfig) -> Result<RulesConfig, ConfigError> {
    let invalid = |message: &str| ConfigError {
        line: None,
        column: None,
        message: message.to_owned(),
    };
    if rules.budget_ms == 0 {
        return Err(invalid("[rules] budget_ms must be at least 1"));
    }
    if !(0.0..=1.0).contains(&rules.max_failure_share) {
        return Err(invalid(
            "[rules] max_failure_share must be between 0 and 1 (0.01 is 1% of customers)",
        ));
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_text_parses_to_the_defaults() {
        let config = Config::parse(&Config::initial_text(chrono_tz::Europe::London)).unwrap();
        assert_eq!(config.timezone, chrono_tz::Europe::London);
        assert_eq!(config.database, PathBuf::from("tiercare.db"));
        assert_eq!(config.mail.transport, Transport::Folder);
        assert_eq!(config.mail.folder, PathBuf::from("mail"));
        assert!(config.mail.smtp.is_none());
    }

    #[test]
    fn smtp_section_is_read_with_the_password_named_not_given() {
        let config = Config::parse(
            "[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = 2525\nsecurity = \"none\"\n",
        )
        .unwrap();
        let smtp = config.mail.smtp.unwrap();
        assert_eq!(smtp.port, 2525);
        assert_eq!(smtp.security, SmtpSecurity::None);
        assert_eq!(smtp.password_env, "TIERCARE_SMTP_PASSWORD");
    }

    #[test]
    fn a_password_key_is_refused() {
        let err = Config::parse(
            "[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"h\"\npassword = \"hunter2\"\n",
        )
        .unwrap_err();
        assert_eq!(err.line, Some(5));
        assert!(err.message.contains("unknown field `password`"), "{err}");
    }

    #[test]
    fn unknown_time_zone_points_at_the_value() {
        let err = Config::parse("[workspace]\ntimezone = \"Mars/Olympus\"\n").unwrap_err();
        assert_eq!((err.line, err.column), (Some(2), Some(12)));
        assert!(err.message.contains("Mars/Olympus"), "{err}");
    }

    #[test]
    fn daemon_durations_are_read_with_units_and_bad_ones_located() {
        let config =
            Config::parse("[daemon]\ntick = \"30s\"\nlateness = \"2h\"\ncatch_up = \"1d\"\n")
                .unwrap();
        assert_eq!(config.daemon.tick, 30);
        assert_eq!(config.daemon.lateness, 7_200);
        assert_eq!(config.daemon.catch_up, 86_400);
        assert_eq!(config.daemon.settle_ms, 1_000);
        let settle = |text: &str| Config::parse(text).unwrap().daemon.settle_ms;
        assert_eq!(settle("[daemon]\nsettle_ms = 250\n"), 250);
        assert_eq!(settle("[daemon]\ndebounce_ms = 300\n"), 300);
        let err = Config::parse("[daemon]\ntick = \"0s\"\n").unwrap_err();
        assert_eq!((err.line, err.column), (Some(2), Some(8)));
        let err = Config::parse("[daemon]\nlateness = \"soon\"\n").unwrap_err();
        assert!(err.message.contains("daemon.lateness"), "{err}");
    }

    #[test]
    fn outbox_settings_and_limits_are_read_and_checked() {
        let config = Config::parse(
            "[mail]\nunsubscribe_url = \"https://shop.example/u\"\n[mail.limits]\nper_minute = 5\n\
             [mail.outbox]\nmax_attempts = 3\nafter_crash = \"hold\"\n",
        )
        .unwrap();
        assert_eq!(config.mail.limits.per_minute, Some(5));
        assert_eq!(config.mail.outbox.max_attempts, 3);
        assert_eq!(config.mail.outbox.after_crash, AfterCrash::Hold);
        assert_eq!(config.mail.outbox.batch_size, 100);
        assert_eq!(
            config.mail.unsubscribe_secret_env,
            "TIERCARE_UNSUBSCRIBE_SECRET"
        );
        for bad in [
            "[mail]\nunsubscribe_url = \"http://x\"\n",
            "[mail.limits]\nper_day = 0\n",
            "[mail.outbox]\nretry_base_seconds = 100\nretry_max_seconds = 10\n",
            "[mail.outbox]\nafter_crash = \"panic\"\n",
        ] {
            assert!(Config::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn smtp_transport_needs_its_section() {
        let err = Config::parse("[mail]\ntransport = \"smtp\"\n").unwrap_err();
        assert!(err.message.contains("[mail.smtp]"), "{err}");
    }
}
