//! The pages' languages and texts: the workspace's `[http] language`, else the request's
//! `Accept-Language`, else English.

use axum::http::{HeaderMap, header};
use tiercare_scheduler::http_config::PageLanguage;

/// Every text of the pages, in one language.
pub struct Texts {
    /// The `lang` attribute.
    pub lang: &'static str,
    /// The unsubscribe page's title.
    pub unsubscribe_title: &'static str,
    /// What the unsubscribe button does.
    pub unsubscribe_lead: &'static str,
    /// The unsubscribe button.
    pub unsubscribe_button: &'static str,
    /// The link to the preference page.
    pub preferences_link: &'static str,
    /// The title after unsubscribing.
    pub unsubscribed_title: &'static str,
    /// The text after unsubscribing.
    pub unsubscribed_text: &'static str,
    /// The preference page's title.
    pub preferences_title: &'static str,
    /// Whether emails come: yes.
    pub email_on: &'static str,
    /// Whether emails come: no.
    pub email_off: &'static str,
    /// Whether text messages come: yes.
    pub sms_on: &'static str,
    /// Whether text messages come: no.
    pub sms_off: &'static str,
    /// The button that stops emails.
    pub stop_email: &'static str,
    /// The button that stops text messages.
    pub stop_sms: &'static str,
    /// Said after a change was saved.
    pub saved: &'static str,
    /// The address no longer gets these emails.
    pub address_unsubscribed: &'static str,
    /// A link that is not (or no longer) valid.
    pub invalid_link: &'static str,
    /// A request that is not understood.
    pub bad_request: &'static str,
    /// Too many requests.
    pub too_many: &'static str,
    /// A page that does not exist.
    pub not_found: &'static str,
    /// Something failed on our side.
    pub server_error: &'static str,
    /// The survey page's title.
    pub survey_title: &'static str,
    /// The label of the survey's comment box.
    pub survey_comment: &'static str,
    /// The button that sends a survey answer.
    pub survey_send: &'static str,
    /// The thank-you page's title.
    pub survey_thanks_title: &'static str,
    /// Said after a first answer.
    pub survey_thanks: &'static str,
    /// Said after an answer replaced an earlier one.
    pub survey_changed: &'static str,
    /// Under the thanks: the answer can still be changed and a comment added.
    pub survey_more: &'static str,
    /// A survey link past its lifetime.
    pub survey_expired: &'static str,
    /// "Your answer so far: {}", with the score in place of `{}`.
    survey_answered_as: &'static str,
    /// "From {} (lowest) to {} (highest)", with the scores in place of the `{}`s.
    survey_scale_as: &'static str,
}

impl Texts {
    /// The sentence giving the answer recorded so far.
    pub fn survey_answered(&self, answer: u8) -> String {
        self.survey_answered_as
            .replacen("{}", &answer.to_string(), 1)
    }

    /// The sentence giving the survey's scale.
    pub fn survey_scale(&self, min: u8, max: u8) -> String {
        self.survey_scale_as
            .replacen("{}", &min.to_string(), 1)
            .replacen("{}", &max.to_string(), 1)
    }
}

const ENGLISH: Texts = Texts {
    lang: "en",
    unsubscribe_title: "Unsubscribe",
    unsubscribe_lead: "Press the button to stop receiving these emails.",
    unsubscribe_button: "Unsubscribe",
    preferences_link: "Choose what you receive instead",
    unsubscribed_title: "You are unsubscribed",
    unsubscribed_text: "You will not receive these emails any more.",
    preferences_title: "Your preferences",
    email_on: "You receive our emails.",
    email_off: "You do not receive our emails.",
    sms_on: "You receive our text messages.",
    sms_off: "You do not receive our text messages.",
    stop_email: "Stop emails",
    stop_sms: "Stop text messages",
    saved: "Your choice is saved.",
    address_unsubscribed: "This address is unsubscribed from our emails.",
    invalid_link: "This link is not valid or has expired. Use the link in a recent email.",
    bad_request: "The request was not understood.",
    too_many: "Too many requests. Please try again in a minute.",
    not_found: "This page does not exist.",
    server_error: "Something went wrong on our side. Please try again later.",
    survey_title: "Your answer",
    survey_comment: "Anything you would like to add? (optional)",
    survey_send: "Send my answer",
    survey_thanks_title: "Thank you",
    survey_thanks: "Thank you: your answer is recorded.",
    survey_changed: "Thank you: your answer is changed.",
    survey_more: "You can still change your answer or add a comment below.",
    survey_expired: "This survey link has expired. Thank you for your interest.",
    survey_answered_as: "Your answer so far: {}.",
    survey_scale_as: "From {} (lowest) to {} (highest).",
};

const SIMPLIFIED_CHINESE: Texts = Texts {
    lang: "zh-CN",
    unsubscribe_title: "退订",
    unsubscribe_lead: "点击下面的按钮，不再接收这些邮件。",
    unsubscribe_button: "退订",
    preferences_link: "改为选择您想接收的内容",
    unsubscribed_title: "您已退订",
    unsubscribed_text: "您将不会再收到这些邮件。",
    preferences_title: "您的偏好设置",
    email_on: "您正在接收我们的邮件。",
    email_off: "您不接收我们的邮件。",
    sms_on: "您正在接收我们的短信。",
    sms_off: "您不接收我们的短信。",
    stop_email: "停止接收邮件",
    stop_sms: "停止接收短信",
    saved: "您的选择已保存。",
    address_unsubscribed: "此地址已退订我们的邮件。",
    invalid_link: "此链接无效或已过期。请使用最近一封邮件中的链接。",
    bad_request: "无法理解该请求。",
    too_many: "请求过多，请一分钟后再试。",
    not_found: "此页面不存在。",
    server_error: "我们这边出了问题，请稍后再试。",
    survey_title: "您的评价",
    survey_comment: "还有什么想告诉我们的吗？（可不填）",
    survey_send: "提交评价",
    survey_thanks_title: "谢谢您",
    survey_thanks: "谢谢！您的评价已记录。",
    survey_changed: "谢谢！您的评价已更改。",
    survey_more: "您仍可以在下面更改评价或补充意见。",
    survey_expired: "此调查链接已过期。感谢您的关注。",
    survey_answered_as: "您目前的评分：{}。",
    survey_scale_as: "从 {}（最低）到 {}（最高）。",
};

/// The texts of a request: the configured language, else its `Accept-Language`.
pub fn texts_for(configured: Option<PageLanguage>, headers: &HeaderMap) -> &'static Texts {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok());
    texts(negotiate(configured, accept))
}

/// The texts of `language`.
pub fn texts(language: PageLanguage) -> &'static Texts {
    match language {
        PageLanguage::English => &ENGLISH,
        PageLanguage::SimplifiedChinese => &SIMPLIFIED_CHINESE,
    }
}

/// The language of a page: the configured one, else the first of the request's
/// `Accept-Language` (by quality) that the pages have, else English.
pub fn negotiate(configured: Option<PageLanguage>, accept_language: Option<&str>) -> PageLanguage {
    if let Some(language) = configured {
        return language;
    }
    let Some(header) = accept_language else {
        return PageLanguage::English;
    };
    let mut ranges: Vec<(f32, usize, PageLanguage)> = Vec::new();
    for (index, part) in header.split(',').enumerate() {
        let mut pieces = part.split(';');
        let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let quality = pieces
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let language = if tag == "zh" || tag.starts_with("zh-") {
            PageLanguage::SimplifiedChinese
        } else if tag == "en" || tag.starts_with("en-") {
            PageLanguage::English
        } else {
            continue;
        };
        if quality > 0.0 {
            ranges.push((quality, index, language));
        }
    }
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranges
        .first()
        .map_or(PageLanguage::English, |&(_, _, language)| language)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_wins_then_the_best_accepted_language() {
        use PageLanguage::{English, SimplifiedChinese};
        assert_eq!(negotiate(Some(English), Some("zh-CN")), English);
        assert_eq!(
            negotiate(None, Some("zh-CN,zh;q=0.9,en;q=0.8")),
            SimplifiedChinese
        );
        assert_eq!(negotiate(None, Some("fr, en;q=0.5, zh;q=0.4")), English);
        assert_eq!(
            negotiate(None, Some("en;q=0.1, zh-Hans;q=0.9")),
            SimplifiedChinese
        );
        assert_eq!(negotiate(None, Some("de")), English);
        assert_eq!(negotiate(None, None), English);
    }
}
