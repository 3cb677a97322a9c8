//! SMS: the second channel beside mail, through the same outbox, delivery gate and contact
//! policy.
//!
//! - `compose.rs`: an SMS follow-up's outbox row, composed when it is recorded.
//! - `transport.rs`: the [`SmsTransport`] trait, failure classes, the folder transport.
//! - `http.rs`: the generic HTTP provider and Twilio.
//! - `aliyun.rs`: Aliyun SMS (Dysmsapi `SendSms`): registered template codes, RPC signature v1.
//! - `send.rs`: [`deliver_sms_due`], the SMS send loop.
//!
//! Their settings are `[sms]` ([`crate::sms_settings`]), phone numbers E.164 ([`crate::phone`]).
//! Templates (`NAME.sms.j2`), their encoding and segments are the engine's
//! ([`tiercare_engine::sms`]); [`crate::templates::EmailRenderer`] renders them with the
//! email templates' context.

pub mod aliyun;
pub mod compose;
pub mod http;
pub mod send;
pub mod transport;

pub use crate::sms_settings::{SmsConfig, SmsProvider};
pub use send::{SmsSendReport, deliver_sms_due};
pub use transport::{FolderSmsTransport, SmsError, SmsMessage, SmsTransport};

use std::path::Path;

/// The transport `config` names, its secrets read through `env`; the folder relative to the
/// workspace `root`.
///
/// # Errors
/// A secret's variable is not set.
pub fn sms_transport(
    root: &Path,
    config: &SmsConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Box<dyn SmsTransport>, http::ProviderError> {
    Ok(match config.provider {
        SmsProvider::Folder => Box::new(FolderSmsTransport::new(root.join(&config.folder))),
        SmsProvider::Http => match &config.http {
            Some(http) => Box::new(http::HttpSmsTransport::generic(
                http,
                config.timeout_seconds,
                env,
            )?),
            None => return Err(http::ProviderError("[sms.http] is missing".to_owned())),
        },
        SmsProvider::Twilio => match &config.twilio {
            Some(twilio) => Box::new(http::HttpSmsTransport::twilio(
                twilio,
                config.timeout_seconds,
                env,
            )?),
            None => return Err(http::ProviderError("[sms.twilio] is missing".to_owned())),
        },
        SmsProvider::Aliyun => match &config.aliyun {
            Some(aliyun) => Box::new(aliyun::AliyunSmsTransport::new(
                aliyun,
                config.timeout_seconds,
                env,
            )?),
            None => return Err(http::ProviderError("[sms.aliyun] is missing".to_owned())),
        },
    })
}
