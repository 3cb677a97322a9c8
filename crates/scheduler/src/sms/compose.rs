//! An SMS follow-up's outbox row, composed when the follow-up is recorded: the customer's
//! number (E.164, as `import` stores it), the text rendered from `NAME.sms.j2` (for a survey
//! by SMS with `survey.link`, whose marker the send loop signs), and a message id fixed for
//! every attempt.

use tiercare_store::{EmailRecipient, NewEmail};

use crate::outbox::RenderEmail;
use crate::phone::is_e164;

/// A new SMS id in the outbox's Message-ID form: `<sms-RANDOM@tiercare>`.
#[must_use]
pub fn new_sms_id() -> String {
    format!(
        "<sms-{:016x}{:016x}@tiercare>",
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

/// Composes the SMS to `to` (the customer, `address` their phone as stored) at `at`, or why
/// there is none (the follow-up is then skipped with that reason, which names no number).
///
/// # Errors
/// No number, a number not in E.164 form, or a template that does not render.
pub fn compose_sms(
    renderer: &dyn RenderEmail,
    to: &EmailRecipient,
    at: i64,
) -> Result<NewEmail, String> {
    let Some(phone) = to.address.as_deref().map(str::trim) else {
        return Err("the customer has no phone number".to_owned());
    };
    if !is_e164(phone) {
        return Err(
            "the customer's phone number is not in E.164 form (+ country code and number): import it again"
                .to_owned(),
        );
    }
    let text = match &to.survey {
        Some(survey) => renderer.render_sms_survey(&to.template, &to.customer_id, at, survey),
        None => renderer.render_sms(&to.template, &to.customer_id, at),
    }
    .map_err(|err| {
        format!(
            "the SMS template `{}` did not render: {}",
            to.template, err.message
        )
    })?;
    if text.trim().is_empty() {
        return Err(format!(
            "the SMS template `{}` rendered no text",
            to.template
        ));
    }
    // A provider's template parameters (Aliyun's) ride in the row's HTML body, unused by SMS.
    let params = renderer
        .render_sms_params(&to.template, &to.customer_id, at)
        .map_err(|err| {
            format!(
                "the SMS provider's parameters of `{}` did not render: {}",
                to.template, err.message
            )
        })?;
    Ok(NewEmail {
        message_id: new_sms_id(),
        to_address: phone.to_owned(),
        subject: String::new(),
        text,
        html: params,
    })
}
