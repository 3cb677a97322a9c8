//! The store's refusals as the staff pages show them (the 409 pages of the outbox and the
//! tasks): the store's own words on English pages, the same facts in Chinese on Chinese pages.
//!
//! The store's messages are English and written for the terminal; a page in Chinese gets a
//! translation built from the error's fields, so no text is parsed. A refusal without a
//! translation here keeps the store's words.

use chrono::{TimeZone, Utc};
use tiercare_scheduler::http_config::PageLanguage;
use tiercare_store::{ContactProblem, PinProblem, StoreError};

/// What `err` says, in `lang`; times on the workspace's clock `timezone`.
#[must_use]
pub fn refusal(err: &StoreError, lang: PageLanguage, timezone: chrono_tz::Tz) -> String {
    if lang == PageLanguage::English {
        return err.to_string();
    }
    match err {
        StoreError::UnknownEmail { id } => format!("没有编号为 #{id} 的邮件。"),
        StoreError::EmailState {
            id, state, wanted, ..
        } => {
            let (action, allowed) = match *wanted {
                "retried" => ("重试", "只有失败、未知、已延后或已取消的邮件可以重试。"),
                "cancelled" => ("取消", "只有排队中、已延后、未知或失败的邮件可以取消。"),
                _ => ("更改", ""),
            };
            format!(
                "邮件 #{id} 的状态是“{}”，不能{action}。{allowed}",
                email_state(state)
            )
        }
        StoreError::UnknownTask { id } => format!("没有编号为 #{id} 的任务。"),
        StoreError::TaskAlreadyDone {
            id,
            done_at,
            done_by,
        } => {
            let at = on_clock(*done_at, timezone);
            format!("任务 #{id} 已由 {done_by} 于 {at} 完成，无需更改。")
        }
        StoreError::InvalidTask { task, problem } => {
            format!("无法更改任务 {task}：{}", task_problem(problem))
        }
        StoreError::UnknownManager { id } => {
            format!("没有编号为“{id}”的客户经理：经理编号是经理导入文件中 manager_id 列的值。")
        }
        StoreError::InactiveManager { id } => format!(
            "客户经理“{id}”已停用，不接收新的客户或任务：请选择在职的经理，\
             或在经理导入文件中将其设为在职。"
        ),
        StoreError::InvalidPin { problem, .. } => pin_problem(problem, lang, timezone),
        StoreError::InvalidContact { problem, .. } => contact_problem(*problem, lang),
        other => other.to_string(),
    }
}

/// Why a pin was refused, in `lang`, as the customer page says it (without the customer's id,
/// which the page shows); times on the workspace's clock `timezone`.
#[must_use]
pub fn pin_problem(problem: &PinProblem, lang: PageLanguage, timezone: chrono_tz::Tz) -> String {
    if lang == PageLanguage::English {
        return problem.to_string();
    }
    match problem {
        PinProblem::EmptyTier => "等级为空：请选择要锁定的等级。".to_owned(),
        PinProblem::NoReason => "锁定需要理由：请说明为什么手动设定这位客户的等级。".to_owned(),
        PinProblem::NoPinner => "请说明由谁锁定。".to_owned(),
        PinProblem::EndNotAfterNow { until, now } => format!(
            "结束时间 {} 不晚于现在（{}）：请给出更晚的结束日期，或留空。",
            on_clock(*until, timezone),
            on_clock(*now, timezone)
        ),
    }
}

/// Why a logged contact was refused, in `lang`.
#[must_use]
pub fn contact_problem(problem: ContactProblem, lang: PageLanguage) -> String {
    if lang == PageLanguage::English {
        return problem.to_string();
    }
    match problem {
        ContactProblem::Kind => "请用一个词说明联系方式，例如电话或拜访。".to_owned(),
        ContactProblem::Forgotten => {
            "该客户已被遗忘（数据权利请求）：不再保存关于其的任何新记录。".to_owned()
        }
    }
}

/// `at` on the workspace's clock, to the minute (the unix seconds when out of range).
fn on_clock(at: i64, timezone: chrono_tz::Tz) -> String {
    Utc.timestamp_opt(at, 0).single().map_or_else(
        || at.to_string(),
        |time| {
            time.with_timezone(&timezone)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        },
    )
}

/// An outbox state's Chinese name (the stored name when unknown).
fn email_state(state: &str) -> String {
    let name = match state {
        "queued" => "排队中",
        "claimed" => "发送中",
        "sent" => "已发送",
        "deferred" => "已延后",
        "failed" => "失败",
        "unknown" => "未知",
        "cancelled" => "已取消",
        "suppressed" => "已屏蔽",
        other => return other.to_owned(),
    };
    name.to_owned()
}

/// The Chinese of the store's reasons a task cannot change (the store's words when unknown).
fn task_problem(problem: &str) -> String {
    if problem.starts_with("a snooze must end after now") {
        "暂缓的结束时间必须晚于现在：请给出更晚的时间。".to_owned()
    } else if problem.starts_with("the title is empty") {
        "标题为空：请写明要做什么。".to_owned()
    } else if problem.starts_with("say who did it") {
        "请说明由谁完成。".to_owned()
    } else {
        problem.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_pages_keep_the_stores_words_and_chinese_pages_get_the_same_facts() {
        let err = StoreError::EmailState {
            id: 7,
            state: "sent".to_owned(),
            wanted: "cancelled",
            hint: "only queued, deferred, unknown or failed e-mails can be cancelled",
        };
        assert_eq!(
            refusal(&err, PageLanguage::English, chrono_tz::UTC),
            err.to_string()
        );
        let zh = refusal(&err, PageLanguage::SimplifiedChinese, chrono_tz::UTC);
        assert_eq!(
            zh,
            "邮件 #7 的状态是“已发送”，不能取消。只有排队中、已延后、未知或失败的邮件可以取消。"
        );
        let done = StoreError::TaskAlreadyDone {
            id: 3,
            done_at: 1_796_634_000,
            done_by: "alice".to_owned(),
        };
        assert_eq!(
            refusal(
                &done,
                PageLanguage::SimplifiedChinese,
                chrono_tz::Asia::Shanghai
            ),
            "任务 #3 已由 alice 于 2026-12-07 17:00 完成，无需更改。"
        );
        // Every refusal the pages show has Chinese words (no ASCII sentence left).
        for err in [
            StoreError::UnknownEmail { id: 1 },
            StoreError::UnknownTask { id: 1 },
            StoreError::UnknownManager { id: "m1".into() },
            StoreError::InactiveManager { id: "m1".into() },
            StoreError::InvalidPin {
                id: "c1".into(),
                problem: PinProblem::NoReason,
            },
            StoreError::InvalidPin {
                id: "c1".into(),
                problem: PinProblem::EndNotAfterNow { until: 0, now: 1 },
            },
            StoreError::InvalidContact {
                id: "c1".into(),
                problem: ContactProblem::Forgotten,
            },
            StoreError::InvalidTask {
                task: "#1".into(),
                problem: "a snooze must end after now (1), not at 0: give a later time".into(),
            },
        ] {
            let zh = refusal(&err, PageLanguage::SimplifiedChinese, chrono_tz::UTC);
            assert_ne!(zh, err.to_string());
            assert!(
                !zh.contains("manager ids are") && !zh.contains("no task"),
                "{zh}"
            );
            assert!(
                zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{zh}"
            );
        }
    }
}
