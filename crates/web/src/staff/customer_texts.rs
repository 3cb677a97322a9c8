//! The texts of the staff customers list and customer page, in English and Simplified Chinese.

use tiercare_scheduler::http_config::PageLanguage;

/// Every text of the customers pages, in one language.
pub struct CustomerTexts {
    /// The list's title.
    pub customers_title: &'static str,
    /// The list table's caption.
    pub customers_caption: &'static str,
    /// The search field.
    pub search: &'static str,
    /// A tier.
    pub tier: &'static str,
    /// Any value (an empty choice).
    pub any: &'static str,
    /// A segment.
    pub segment: &'static str,
    /// The owning manager.
    pub owner: &'static str,
    /// The sort field.
    pub sort: &'static str,
    /// The default sort.
    pub sort_default: &'static str,
    /// The filter button.
    pub apply: &'static str,
    /// The CSV export link.
    pub export_csv: &'static str,
    /// An empty list.
    pub no_customers: &'static str,
    /// The link to the first page.
    pub first_page: &'static str,
    /// The link to the next page.
    pub next_page: &'static str,
    /// The paging links' label.
    pub pages: &'static str,
    /// A sort key that is not a column.
    pub unknown_sort: &'static str,
    /// Column names: id, name, email, tier, segments, owner, owner_name, orders_total,
    /// revenue_total, last_order_at, last_contact_at.
    pub columns: [&'static str; 11],
    /// The customer page's title prefix.
    pub customer_title: &'static str,
    /// Section: profile.
    pub profile: &'static str,
    /// Profile labels: email, phone, birthday, region, time zone, attributes.
    pub profile_labels: [&'static str; 6],
    /// A value that is not given (or erased).
    pub none: &'static str,
    /// Section: consent.
    pub consent: &'static str,
    /// Consent labels: email, text messages, phone calls.
    pub consent_labels: [&'static str; 3],
    /// Yes.
    pub yes: &'static str,
    /// No.
    pub no: &'static str,
    /// The address is on the suppression list.
    pub suppressed: &'static str,
    /// Section: tier and why.
    pub tier_and_why: &'static str,
    /// Never assessed.
    pub never_assessed: &'static str,
    /// "since" (a tier since a date).
    pub since: &'static str,
    /// What the rules decide now.
    pub rules_say: &'static str,
    /// The folded explanation's summary.
    pub every_rule: &'static str,
    /// Section: tier history.
    pub tier_history: &'static str,
    /// History columns: when, from, to, reason.
    pub history_columns: [&'static str; 4],
    /// Section: pins.
    pub pins: &'static str,
    /// Pin columns: tier, reason, by, pinned, until, removed.
    pub pin_columns: [&'static str; 6],
    /// The pin form's heading.
    pub pin_tier: &'static str,
    /// The reason field.
    pub reason: &'static str,
    /// The optional end date field.
    pub until: &'static str,
    /// The pin button.
    pub pin_button: &'static str,
    /// The unpin button.
    pub unpin_button: &'static str,
    /// Said after a pin.
    pub pinned: &'static str,
    /// Said after an unpin.
    pub unpinned: &'static str,
    /// No active pin to remove.
    pub no_active_pin: &'static str,
    /// Section: orders.
    pub orders: &'static str,
    /// Order columns: when, order, amount, lines.
    pub order_columns: [&'static str; 4],
    /// Section: contacts.
    pub contacts: &'static str,
    /// Contact columns: when, kind, by, note.
    pub contact_columns: [&'static str; 4],
    /// The log-a-contact form's heading.
    pub log_contact: &'static str,
    /// The kind field.
    pub kind: &'static str,
    /// A call.
    pub call: &'static str,
    /// A visit.
    pub visit: &'static str,
    /// The note field.
    pub note: &'static str,
    /// The date field of a contact (empty: now).
    pub when: &'static str,
    /// The log button.
    pub log_button: &'static str,
    /// Said after logging a contact.
    pub logged: &'static str,
    /// Section: complaints.
    pub complaints: &'static str,
    /// Complaint columns: opened, severity, subject, resolved.
    pub complaint_columns: [&'static str; 4],
    /// Section: feedback.
    pub feedback: &'static str,
    /// Feedback columns: when, score, comment.
    pub feedback_columns: [&'static str; 3],
    /// Section: e-mails.
    pub emails: &'static str,
    /// E-mail columns: created, state, template, subject.
    pub email_columns: [&'static str; 4],
    /// Section: tasks.
    pub tasks: &'static str,
    /// Task columns: due, status, assignee, title.
    pub task_columns: [&'static str; 4],
    /// Nothing in a section.
    pub nothing: &'static str,
    /// "latest N shown".
    pub latest_shown: &'static str,
    /// Section and button: forget.
    pub forget: &'static str,
    /// What forgetting does.
    pub forget_lead: &'static str,
    /// The confirmation field: type the id.
    pub forget_confirm: &'static str,
    /// The confirmation did not match.
    pub forget_mismatch: &'static str,
    /// Said after forgetting.
    pub forgotten: &'static str,
    /// A date field's format hint.
    pub date_hint: &'static str,
    /// A date that is not YYYY-MM-DD.
    pub bad_date: &'static str,
    /// A tier the rules do not define.
    pub unknown_tier: &'static str,
    /// The rules could not be read.
    pub rules_unreadable: &'static str,
    /// Back to the list.
    pub back_to_list: &'static str,
}

impl CustomerTexts {
    /// The label of a list column (by its CSV name; the name itself when unknown).
    #[must_use]
    pub fn column<'a>(&'a self, name: &'a str) -> &'a str {
        tiercare_scheduler::customers::CSV_HEADER
            .iter()
            .position(|column| *column == name)
            .map_or(name, |index| self.columns[index])
    }
}

const ENGLISH: CustomerTexts = CustomerTexts {
    customers_title: "Customers",
    customers_caption: "Customers matching the filters",
    search: "Search (id, name, e-mail)",
    tier: "Tier",
    any: "Any",
    segment: "Segment",
    owner: "Owner",
    sort: "Sort by",
    sort_default: "Import order",
    apply: "Show",
    export_csv: "Export CSV",
    no_customers: "No customer matches these filters.",
    first_page: "First page",
    next_page: "Next page",
    pages: "Pages",
    unknown_sort: "This sort is not offered here; the list is in import order.",
    columns: [
        "Id",
        "Name",
        "E-mail",
        "Tier",
        "Segments",
        "Owner id",
        "Owner",
        "Orders",
        "Revenue",
        "Last order",
        "Last contact",
    ],
    customer_title: "Customer",
    profile: "Profile",
    profile_labels: [
        "E-mail",
        "Phone",
        "Birthday",
        "Region",
        "Time zone",
        "Attributes",
    ],
    none: "—",
    consent: "Consent",
    consent_labels: ["E-mail", "Text messages", "Phone calls"],
    yes: "yes",
    no: "no",
    suppressed: "The e-mail address is on the suppression list: no e-mail is sent to it.",
    tier_and_why: "Tier and why",
    never_assessed: "Never assessed: the next assessment gives a tier.",
    since: "since",
    rules_say: "By the rules now",
    every_rule: "Every rule's verdict (as `tiercare explain` shows it)",
    tier_history: "Tier history",
    history_columns: ["When", "From", "To", "Reason"],
    pins: "Pins",
    pin_columns: ["Tier", "Reason", "By", "Pinned", "Until", "Removed"],
    pin_tier: "Pin the tier",
    reason: "Reason",
    until: "Until (optional)",
    pin_button: "Pin",
    unpin_button: "Remove the pin",
    pinned: "Pinned: the pin takes effect at the next assessment.",
    unpinned: "The pin is removed: the rules decide at the next assessment.",
    no_active_pin: "This customer has no active pin.",
    orders: "Orders",
    order_columns: ["When", "Order", "Amount", "Lines"],
    contacts: "Contacts",
    contact_columns: ["When", "Kind", "By", "Note"],
    log_contact: "Log a call or visit",
    kind: "Kind",
    call: "Call",
    visit: "Visit",
    note: "Note",
    when: "Date (empty: now)",
    log_button: "Log",
    logged: "The contact is logged.",
    complaints: "Complaints",
    complaint_columns: ["Opened", "Severity", "Subject", "Resolved"],
    feedback: "Feedback",
    feedback_columns: ["When", "Score", "Comment"],
    emails: "E-mails",
    email_columns: ["Created", "State", "Template", "Subject"],
    tasks: "Tasks",
    task_columns: ["Due", "Status", "Assignee", "Title"],
    nothing: "None.",
    latest_shown: "latest shown",
    forget: "Forget this customer",
    forget_lead: "Erases the customer's personal data (profile, notes, e-mail texts) for a \
                  data-rights request, keeps orders and tiers, and suppresses their addresses. \
                  It cannot be undone.",
    forget_confirm: "Type the customer's id to confirm",
    forget_mismatch: "The id typed does not match: nothing was erased.",
    forgotten: "The customer is forgotten: their personal data is erased.",
    date_hint: "YYYY-MM-DD",
    bad_date: "Write the date as YYYY-MM-DD, such as 2026-12-31.",
    unknown_tier: "The rules define no such tier.",
    rules_unreadable: "The rules could not be read, so the tier cannot be explained:",
    back_to_list: "Back to the customers",
};

const SIMPLIFIED_CHINESE: CustomerTexts = CustomerTexts {
    customers_title: "客户",
    customers_caption: "符合筛选条件的客户",
    search: "搜索（编号、姓名、邮箱）",
    tier: "等级",
    any: "全部",
    segment: "分群",
    owner: "负责人",
    sort: "排序",
    sort_default: "导入顺序",
    apply: "显示",
    export_csv: "导出 CSV",
    no_customers: "没有符合这些条件的客户。",
    first_page: "第一页",
    next_page: "下一页",
    pages: "分页",
    unknown_sort: "此处不提供该排序；列表按导入顺序显示。",
    columns: [
        "编号",
        "姓名",
        "邮箱",
        "等级",
        "分群",
        "负责人编号",
        "负责人",
        "订单数",
        "消费额",
        "最近下单",
        "最近联系",
    ],
    customer_title: "客户",
    profile: "资料",
    profile_labels: ["邮箱", "电话", "生日", "地区", "时区", "属性"],
    none: "—",
    consent: "授权",
    consent_labels: ["邮件", "短信", "电话"],
    yes: "是",
    no: "否",
    suppressed: "该邮箱在屏蔽名单中：不会向其发送邮件。",
    tier_and_why: "等级及原因",
    never_assessed: "尚未评估：下次评估后会有等级。",
    since: "自",
    rules_say: "按当前规则",
    every_rule: "每条规则的判断（与 `tiercare explain` 相同）",
    tier_history: "等级历史",
    history_columns: ["时间", "原等级", "新等级", "原因"],
    pins: "手动锁定",
    pin_columns: ["等级", "原因", "操作人", "锁定时间", "截止", "解除时间"],
    pin_tier: "锁定等级",
    reason: "原因",
    until: "截止日期（可选）",
    pin_button: "锁定",
    unpin_button: "解除锁定",
    pinned: "已锁定：下次评估时生效。",
    unpinned: "已解除锁定：下次评估由规则决定。",
    no_active_pin: "该客户没有生效中的锁定。",
    orders: "订单",
    order_columns: ["时间", "订单", "金额", "明细行"],
    contacts: "联系记录",
    contact_columns: ["时间", "方式", "联系人", "备注"],
    log_contact: "记录一次电话或拜访",
    kind: "方式",
    call: "电话",
    visit: "拜访",
    note: "备注",
    when: "日期（留空为现在）",
    log_button: "记录",
    logged: "联系已记录。",
    complaints: "投诉",
    complaint_columns: ["提出时间", "严重程度", "主题", "解决时间"],
    feedback: "反馈",
    feedback_columns: ["时间", "评分", "评论"],
    emails: "邮件",
    email_columns: ["创建时间", "状态", "模板", "主题"],
    tasks: "任务",
    task_columns: ["到期", "状态", "负责人", "标题"],
    nothing: "无。",
    latest_shown: "仅显示最近的",
    forget: "删除该客户的个人数据",
    forget_lead: "应数据权利请求删除该客户的个人数据（资料、备注、邮件内容），保留订单与等级，\
                  并屏蔽其邮箱。此操作无法撤销。",
    forget_confirm: "输入客户编号以确认",
    forget_mismatch: "输入的编号不一致：未删除任何数据。",
    forgotten: "已删除该客户的个人数据。",
    date_hint: "YYYY-MM-DD",
    bad_date: "日期格式为 YYYY-MM-DD，例如 2026-12-31。",
    unknown_tier: "规则中没有这个等级。",
    rules_unreadable: "无法读取规则，因此无法解释等级：",
    back_to_list: "返回客户列表",
};

/// The texts of `language`.
#[must_use]
pub fn texts(language: PageLanguage) -> &'static CustomerTexts {
    match language {
        PageLanguage::English => &ENGLISH,
        PageLanguage::SimplifiedChinese => &SIMPLIFIED_CHINESE,
    }
}
