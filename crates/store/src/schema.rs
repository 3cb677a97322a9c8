//! The database schema: its identity, the append-only list of migrations and
//! the code that applies them.
//!
//! Conventions of the schema: times are `INTEGER` unix seconds in UTC, dates
//! (birthdays) are `TEXT` in `YYYY-MM-DD`, money is `REAL`. Every table is
//! `STRICT`, so SQLite refuses a value of the wrong type instead of storing it.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::error::{AtPath, StoreError};
use crate::pragma::foreign_keys_off;

/// `PRAGMA application_id` of every tiercare database: `'TIRC'` in ASCII.
///
/// It lets tiercare recognise its own files and refuse to touch a SQLite file
/// that belongs to another program.
pub const APPLICATION_ID: i32 = 0x5449_5243;

/// The schema migrations, applied in order, each in its own transaction.
/// `PRAGMA user_version` counts how many have been applied.
///
/// **Append only.** Never edit, reorder or remove a migration once it has
/// shipped: databases in the field have already run it, and would silently
/// differ from new ones. Change the schema by appending a new migration.
/// The test `shipped_migrations_are_never_edited` pins the text of each one.
///
/// 1. customers, managers, orders and their lines, interactions, complaints,
///    feedback, and the audit rows of imports;
/// 2. assessments, each customer's current tier (with its scores and
///    reasons) and tier history, segments and their history, and manual
///    tier pins.
///
/// 3. the follow-up ledger (one row per decided occurrence of a follow-up
///    rule, unique by its occurrence key), managers' tasks, and indexes of
///    tier and segment changes by time.
///
/// 4. the outbox (one row per e-mail, written with its follow-up), its
///    state-change events, and the suppression list (address hashes).
///
/// 5. the daemon: each schedule's last handled slot (`schedule_firings`) and the daemon's
///    state for `tiercare status` (`daemon_state`).
/// 6. (data rights) the audit of privacy requests: one row per
///    `tiercare customer forget`, without personal data.
/// 7. an index of sent e-mails by time, for the rate limits.
/// 8. drops migration 3's indexes of tier and segment changes by time: no query uses them
///    (the planner reads changes through the by-customer indexes), and a first assessment of
///    a million customers spent a fifth of its row writes keeping them.
/// 9. (outbox hand-over) `outbox.handed_at`: when a claimed e-mail was handed to a transport,
///    so crash recovery can tell a claim that never went out from one that may have arrived.
/// 10. `customer_tiers.pending_since`: when a held downgrade was first asked for, so
///     hysteresis counts time, not runs.
/// 11. (deliverability) per-domain pauses (`mail_domain_pauses`) and the reputation guard's
///     resume time (`mail_reputation_state`).
/// 12. (bounces) the `bounces` table (one row per bounce or complaint, by address hash),
///     `outbox.bounced_at` and `outbox.bounce_kind`, and the suppression list rebuilt to
///     allow the reasons `soft_bounces` and `complaint`.
/// 13. (webhooks) the outgoing webhooks' queue: `webhook_endpoints` (copied from
///     `tiercare.toml`), `webhook_events` and one `webhook_deliveries` row per (event, endpoint).
/// 14. (growth) `assessment_growth`: the growth models' fit (or why none) of an assessment.
/// 15. (staff) the web workspace: `staff_users`, `staff_sessions`, `staff_login_attempts`,
///     `staff_audit`.
/// 16. (managers) each manager's time zone and leave (`managers.timezone`, `leave_from`,
///     `leave_until`), the managers' digests (`manager_digests`, one per manager per local day:
///     the unique key that keeps a digest from going twice) and the escalations of overdue
///     tasks (`task_escalations`, one per task).
/// 17. (pool) `owner_changes` (the owner audit, kept by triggers on `customers`),
///     `pool_warnings` (the public pool's warnings), and the index `customers_unowned`.
/// 18. (surveys) `outbox.survey` (the survey a `survey:` e-mail asks, as JSON) and the survey
///     answers' columns of `feedback`: `survey`, `survey_kind`, `answer` (the score as asked)
///     and `outbox_id` (the e-mail answered, at most one answer each); the partial index
///     `outbox_surveys` for the report.
/// 19. (web-customers) `customers_by_owner`: a manager's customers by the owner index (the
///     staff customers list).
/// 20. (incentives) `coupons` (single-use codes per pool, issued at most once per pool and
///     customer, redeemed by an order) and the `points` ledger.
/// 21. (sms) `outbox.channel` (`email` or `sms`) and the due rows' index per channel.
/// 22. (address lookups) `customers_email_lower` and `outbox_sent_to_lower`.
/// 23. (staff search) `customers_search`: an FTS5 `trigram` index (`detail=none`) of the
///     customers' external id, name and e-mail address (external content: it holds no copy of
///     the text), kept by triggers on `customers`, with FTS5's `secure-delete` on so a
///     forgotten name leaves no trigram behind; filled for the existing rows.
/// 24. (ledger) `followups.kind` also allows `sms` and `points`, and past SMS and points
///     follow-ups (stored as `email` and `set_attribute`) are labelled so. A rebuild of the
///     table, run with foreign keys off (see `FOREIGN_KEYS_OFF`).
/// 25. (one-customer preview) `order_items_by_sku`: the order lines by product.
/// 26. (growth at 1M) `orders_by_customer` rebuilt with the amount after the time
///     (`customer_id, ordered_at, amount`): a covering index of the growth models' read.
///
/// A migration whose text starts with `FOREIGN_KEYS_OFF` runs with foreign-key enforcement
/// off (SQLite's way to rebuild a table others refer to: dropping it would otherwise delete or
/// null every row that refers to it), and must leave no broken reference: the runner checks
/// with `PRAGMA foreign_key_check` before it commits.
pub const MIGRATIONS: &[&str] = &[
    // 1: customers, managers, and the facts imported about customers.
    r#"
CREATE TABLE customers (
    id            INTEGER PRIMARY KEY,
    external_id   TEXT NOT NULL UNIQUE,
    name          TEXT,
    email         TEXT,
    phone         TEXT,
    birthday      TEXT CHECK (birthday IS NULL OR date(birthday) IS birthday),
    region        TEXT,
    -- a manager's external id; no foreign key: managers may be imported later
    owner         TEXT,
    timezone      TEXT,
    consent_email INTEGER NOT NULL DEFAULT 0 CHECK (consent_email IN (0, 1)),
    consent_sms   INTEGER NOT NULL DEFAULT 0 CHECK (consent_sms IN (0, 1)),
    consent_phone INTEGER NOT NULL DEFAULT 0 CHECK (consent_phone IN (0, 1)),
    attributes    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE managers (
    id          INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    email       TEXT,
    role        TEXT,
    capacity    INTEGER CHECK (capacity IS NULL OR capacity >= 0),
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE orders (
    id          INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    ordered_at  INTEGER NOT NULL,
    amount      REAL NOT NULL,
    item_count  INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX orders_by_customer ON orders(customer_id, ordered_at);

CREATE TABLE order_items (
    order_id    INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    line_no     INTEGER NOT NULL,
    sku         TEXT,
    description TEXT,
    quantity    REAL NOT NULL,
    unit_price  REAL NOT NULL,
    amount      REAL NOT NULL,
    PRIMARY KEY (order_id, line_no)
) STRICT, WITHOUT ROWID;

CREATE TABLE interactions (
    id          INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    by_manager  TEXT,
    note        TEXT
) STRICT;
CREATE INDEX interactions_by_customer ON interactions(customer_id, occurred_at);

CREATE TABLE complaints (
    id          INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    opened_at   INTEGER NOT NULL,
    resolved_at INTEGER,
    -- 1 low, 2 medium, 3 high, 4 critical
    severity    INTEGER NOT NULL CHECK (severity BETWEEN 1 AND 4),
    subject     TEXT
) STRICT;
CREATE INDEX complaints_by_customer ON complaints(customer_id, opened_at);

CREATE TABLE feedback (
    id          INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    given_at    INTEGER NOT NULL,
    score       REAL NOT NULL,
    comment     TEXT
) STRICT;
CREATE INDEX feedback_by_customer ON feedback(customer_id, given_at);

-- an audit row per committed import
CREATE TABLE imports (
    id                INTEGER PRIMARY KEY,
    kind              TEXT NOT NULL,
    source            TEXT NOT NULL,
    started_at        INTEGER NOT NULL,
    finished_at       INTEGER NOT NULL,
    rows_read         INTEGER NOT NULL,
    imported          INTEGER NOT NULL,
    updated           INTEGER NOT NULL,
    unchanged         INTEGER NOT NULL,
    skipped           INTEGER NOT NULL,
    rejected          INTEGER NOT NULL,
    customers_created INTEGER NOT NULL
) STRICT;
"#,
    // 2: assessments, current tiers and segments with their history, pins.
    r#"
-- one row per recorded assessment
CREATE TABLE assessments (
    id              INTEGER PRIMARY KEY,
    -- the time the features were computed for
    at              INTEGER NOT NULL,
    ruleset_version TEXT NOT NULL,
    started_at      INTEGER NOT NULL,
    finished_at     INTEGER NOT NULL,
    customers       INTEGER NOT NULL CHECK (customers >= 0),
    changed         INTEGER NOT NULL CHECK (changed >= 0),
    rule_errors     INTEGER NOT NULL CHECK (rule_errors >= 0)
) STRICT;

-- each assessed customer's current tier, as written by the latest
-- assessment that decided about them
CREATE TABLE customer_tiers (
    customer_id   INTEGER PRIMARY KEY REFERENCES customers(id) ON DELETE CASCADE,
    tier          TEXT NOT NULL CHECK (tier <> ''),
    -- when the tier was assigned; only moves when the tier changes
    since         INTEGER NOT NULL,
    -- the latest assessment that wrote this row (scores and reasons are its)
    assessment_id INTEGER NOT NULL REFERENCES assessments(id),
    pending_tier  TEXT,
    pending_count INTEGER NOT NULL DEFAULT 0 CHECK (pending_count >= 0),
    pinned        INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1)),
    scores        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(scores)),
    reasons       TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(reasons))
) STRICT;
-- counts per tier, and the customers of a tier, without reading every row
CREATE INDEX customer_tiers_by_tier ON customer_tiers(tier);

-- a row per tier change; from_tier is NULL for a first assignment
CREATE TABLE tier_history (
    id            INTEGER PRIMARY KEY,
    customer_id   INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    assessment_id INTEGER NOT NULL REFERENCES assessments(id),
    at            INTEGER NOT NULL,
    from_tier     TEXT,
    to_tier       TEXT NOT NULL,
    reason        TEXT NOT NULL
) STRICT;
CREATE INDEX tier_history_by_customer ON tier_history(customer_id, at);

-- each customer's current segment in each segment set
CREATE TABLE customer_segments (
    customer_id   INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    segment_set   TEXT NOT NULL,
    segment       TEXT NOT NULL,
    -- when the customer entered the segment
    since         INTEGER NOT NULL,
    -- the assessment that put the customer in the segment
    assessment_id INTEGER NOT NULL REFERENCES assessments(id),
    PRIMARY KEY (customer_id, segment_set)
) STRICT, WITHOUT ROWID;

-- a row per segment change; from_segment is NULL when the customer entered
-- the set, to_segment NULL when they left every segment of it
CREATE TABLE segment_history (
    id            INTEGER PRIMARY KEY,
    customer_id   INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    assessment_id INTEGER NOT NULL REFERENCES assessments(id),
    at            INTEGER NOT NULL,
    segment_set   TEXT NOT NULL,
    from_segment  TEXT,
    to_segment    TEXT
) STRICT;
CREATE INDEX segment_history_by_customer ON segment_history(customer_id, at);

-- manual tier pins; a pin applies while removed_at IS NULL and until (if
-- any) is later than now
CREATE TABLE tier_pins (
    id          INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    tier        TEXT NOT NULL CHECK (tier <> ''),
    reason      TEXT NOT NULL CHECK (reason <> ''),
    pinned_by   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    until       INTEGER CHECK (until IS NULL OR until > created_at),
    removed_at  INTEGER
) STRICT;
CREATE INDEX tier_pins_by_customer ON tier_pins(customer_id, created_at);
-- at most one pin per customer that has not been removed (so at most one
-- active pin); pinning again removes the previous one first
CREATE UNIQUE INDEX tier_pins_open ON tier_pins(customer_id) WHERE removed_at IS NULL;
"#,
    // 3: the follow-up ledger and managers' tasks.
    r#"
-- The follow-up ledger: one row per occurrence of a follow-up rule for a
-- customer that the planner decided about, whatever it decided. Rows are
-- never deleted by tiercare (only with their customer), so planning the same
-- occurrence again finds its row and does nothing: the occurrence key is the
-- idempotency key. An outbox (a later migration) refers to a row by its id,
-- and is written in the same transaction as the row.
CREATE TABLE followups (
    id              INTEGER PRIMARY KEY,
    -- '<rule id>:<occurrence_at>:<customer external id>' (rule ids have no
    -- ':'; see OccurrenceKey)
    occurrence_key  TEXT NOT NULL UNIQUE CHECK (occurrence_key <> ''),
    -- the follow-up rule's id in the rule files
    rule_id         TEXT NOT NULL CHECK (rule_id <> '' AND instr(rule_id, ':') = 0),
    customer_id     INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    -- when the rule's trigger occurred, unix seconds UTC (part of the key)
    occurrence_at   INTEGER NOT NULL,
    -- when to carry it out, unix seconds UTC (the occurrence, possibly
    -- moved by the contact policy); an e-mail's contact time
    scheduled_at    INTEGER NOT NULL,
    -- what to do: an e-mail to the customer, a task for a manager, a
    -- notification e-mail to the customer's owner, a custom attribute set
    kind            TEXT NOT NULL
                    CHECK (kind IN ('email', 'task', 'notify_owner', 'set_attribute')),
    -- the action's details as a JSON object, "kind" included (template;
    -- assignee, title, due time; attribute name and value)
    action          TEXT NOT NULL
                    CHECK (json_valid(action) AND json_type(action) = 'object'),
    -- why the rule fired, in words (the rule's explanation)
    reason          TEXT NOT NULL,
    -- when the planner decided, unix seconds UTC, and with which rule set
    decided_at      INTEGER NOT NULL,
    ruleset_version TEXT NOT NULL,
    -- planned: to be carried out (e-mails wait for the outbox);
    -- done: carried out (tasks and attributes are, when decided);
    -- cancelled: called off after it was planned;
    -- skipped: decided against (a cap, no consent, no assignee, ...)
    status          TEXT NOT NULL DEFAULT 'planned'
                    CHECK (status IN ('planned', 'done', 'cancelled', 'skipped')),
    -- why it was skipped or cancelled; required for those two, NULL else
    status_reason   TEXT
                    CHECK ((status IN ('cancelled', 'skipped')) = (status_reason IS NOT NULL)),
    -- when the status was last set, unix seconds UTC
    status_at       INTEGER NOT NULL
) STRICT;
-- a customer's follow-ups by time, and the contacts they count as
CREATE INDEX followups_by_customer ON followups(customer_id, scheduled_at);
-- the last occurrence of each rule for each customer, from the index alone
CREATE INDEX followups_by_rule ON followups(rule_id, customer_id, occurrence_at, status);

-- Tasks for managers: created by a follow-up (at most one per follow-up) or
-- by hand (followup_id NULL).
CREATE TABLE tasks (
    id            INTEGER PRIMARY KEY,
    followup_id   INTEGER UNIQUE REFERENCES followups(id) ON DELETE CASCADE,
    customer_id   INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    -- the manager's external id; no foreign key, as for customers.owner
    assignee      TEXT NOT NULL CHECK (assignee <> ''),
    title         TEXT NOT NULL CHECK (title <> ''),
    -- when it is due, unix seconds UTC; past due and not done is overdue
    due_at        INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    -- open, snoozed (until snoozed_until, then due again) or done
    status        TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'snoozed', 'done')),
    snoozed_until INTEGER CHECK ((status = 'snoozed') = (snoozed_until IS NOT NULL)),
    -- when and by whom it was done; set exactly when status is done
    done_at       INTEGER CHECK ((status = 'done') = (done_at IS NOT NULL)),
    done_by       TEXT CHECK ((status = 'done') = (done_by IS NOT NULL)),
    -- free text: what to do, and what was done
    note          TEXT
) STRICT;
-- a manager's tasks by state and due time; and everyone's
CREATE INDEX tasks_by_assignee ON tasks(assignee, status, due_at);
CREATE INDEX tasks_by_status ON tasks(status, due_at);
CREATE INDEX tasks_by_customer ON tasks(customer_id);

-- the planner reads the tier and segment changes since its last run
CREATE INDEX tier_history_by_time ON tier_history(at);
CREATE INDEX segment_history_by_time ON segment_history(at);
"#,
    // 4: the outbox, its events, and the suppression list.
    r#"
-- The outbox: one row per e-mail to send, written in the same transaction as
-- the follow-up that decided it, rendered at that time, and carried through
-- its states by the send loop. The Message-ID is fixed here, so a resend
-- after a crash carries the same one and receivers can drop the duplicate.
CREATE TABLE outbox (
    id             INTEGER PRIMARY KEY,
    -- the follow-up that decided the e-mail (at most one e-mail each); NULL
    -- for an e-mail made by hand, or once the customer is forgotten
    followup_id    INTEGER UNIQUE REFERENCES followups(id) ON DELETE SET NULL,
    -- NULL once the customer is forgotten
    customer_id    INTEGER REFERENCES customers(id) ON DELETE SET NULL,
    rule_id        TEXT NOT NULL,
    template       TEXT NOT NULL CHECK (template <> ''),
    -- to the customer, or a notification to the customer's owner
    recipient_kind TEXT NOT NULL CHECK (recipient_kind IN ('customer', 'owner')),
    to_address     TEXT NOT NULL,
    -- '<...@...>', fixed at enqueue
    message_id     TEXT NOT NULL UNIQUE CHECK (message_id LIKE '<%@%>'),
    subject        TEXT NOT NULL,
    body_text      TEXT NOT NULL,
    body_html      TEXT,
    -- queued: waiting for due_at; claimed: handed to a sender (committed
    -- before the SMTP conversation starts); sent: accepted by the server;
    -- deferred: a transient failure, retried at due_at; failed: a permanent
    -- failure or out of attempts; unknown: the server may or may not have it
    -- (timeout, dropped connection, crash while claimed); cancelled: called
    -- off by hand; suppressed: the address was suppressed or consent withdrawn
    state          TEXT NOT NULL DEFAULT 'queued'
                   CHECK (state IN ('queued', 'claimed', 'sent', 'deferred', 'failed',
                                    'unknown', 'cancelled', 'suppressed')),
    -- when it may be sent (first, or next after a deferral), unix seconds UTC
    due_at         INTEGER NOT NULL,
    -- SMTP conversations started for it
    attempts       INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error     TEXT,
    created_at     INTEGER NOT NULL,
    -- set while claimed (and kept afterwards: when the last attempt began)
    claimed_at     INTEGER CHECK (state <> 'claimed' OR claimed_at IS NOT NULL),
    sent_at        INTEGER CHECK ((state = 'sent') = (sent_at IS NOT NULL)),
    updated_at     INTEGER NOT NULL,
    -- times a row left claimed by a crash was recovered and sent again
    recoveries     INTEGER NOT NULL DEFAULT 0 CHECK (recoveries >= 0)
) STRICT;
-- what is due: the send loop's claim reads only this
CREATE INDEX outbox_due ON outbox(due_at) WHERE state IN ('queued', 'deferred');
-- rows left claimed, for crash recovery
CREATE INDEX outbox_claimed ON outbox(claimed_at) WHERE state = 'claimed';
-- listings by state, and a customer's e-mails (and forgetting them)
CREATE INDEX outbox_by_state ON outbox(state, id);
CREATE INDEX outbox_by_customer ON outbox(customer_id);

-- one row per state change of an outbox row; from_state NULL at creation
CREATE TABLE outbox_events (
    id         INTEGER PRIMARY KEY,
    outbox_id  INTEGER NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    detail     TEXT
) STRICT;
CREATE INDEX outbox_events_by_outbox ON outbox_events(outbox_id, id);

-- Addresses that must never get e-mail again, by hash only: lowercase-hex
-- SHA-256 of the trimmed, lowercased address.
CREATE TABLE suppressions (
    id           INTEGER PRIMARY KEY,
    address_hash TEXT NOT NULL UNIQUE
                 CHECK (length(address_hash) = 64 AND address_hash NOT GLOB '*[^0-9a-f]*'),
    reason       TEXT NOT NULL
                 CHECK (reason IN ('unsubscribe', 'hard_bounce', 'forgotten', 'manual')),
    -- where it came from: 'cli', 'csv:<file>', 'token', 'smtp:<outbox id>', ...
    source       TEXT NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;
"#,
    // 5: the daemon: where each schedule stands, and the daemon's state for `tiercare status`.
    r#"
-- one row per schedule of the daemon (the rule set's reassessment, the follow-up tick): the
-- latest scheduled time handled (fired or skipped) only ever moves forward, so a restart never
-- repeats a firing and a clock stepped backwards fires nothing again
CREATE TABLE schedule_firings (
    name          TEXT PRIMARY KEY,
    -- the cron text the slot was computed from ('' for the follow-up tick)
    schedule      TEXT NOT NULL,
    last_slot     INTEGER NOT NULL,
    -- the latest slot that actually ran (not skipped), and the clock time it ran
    last_fired_at INTEGER,
    last_run_at   INTEGER,
    skipped       INTEGER NOT NULL DEFAULT 0 CHECK (skipped >= 0),
    updated_at    INTEGER NOT NULL
) STRICT;

-- the running (or last) daemon's state, one row, written by the daemon and read by
-- `tiercare status` from another process; times are the daemon's clock
CREATE TABLE daemon_state (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    pid                  INTEGER NOT NULL,
    started_at           INTEGER NOT NULL,
    heartbeat_at         INTEGER NOT NULL,
    stopped_at           INTEGER,
    clock                TEXT NOT NULL,
    ruleset_version      TEXT,
    ruleset_loaded_at    INTEGER,
    reloads              INTEGER NOT NULL DEFAULT 0,
    last_reload_ms       INTEGER,
    last_reload_error    TEXT,
    last_reload_error_at INTEGER,
    last_assessment_at   INTEGER,
    next_assessment_at   INTEGER,
    last_tick_at         INTEGER,
    last_tick_error      TEXT,
    last_send_error      TEXT,
    last_send_error_at   INTEGER,
    updated_at           INTEGER NOT NULL
) STRICT;
"#,
    // 6: the audit of privacy requests.
    r#"
-- One row per privacy request carried out (`tiercare customer forget`): who
-- asked, when, and counts of what was erased, cancelled and suppressed. It
-- never holds personal data: the customer is referred to by row id only
-- (NULL if the row is ever deleted).
CREATE TABLE privacy_requests (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('forget')),
    customer_id INTEGER REFERENCES customers(id) ON DELETE SET NULL,
    at          INTEGER NOT NULL,
    by_whom     TEXT NOT NULL,
    -- what was done, as a JSON object of counts
    detail      TEXT NOT NULL CHECK (json_valid(detail) AND json_type(detail) = 'object')
) STRICT;
CREATE INDEX privacy_requests_by_customer ON privacy_requests(customer_id);
"#,
    // 7: an index for the rate limits.
    r#"
-- Rate limits count the emails sent in the last minute, hour and day
-- (`sent_since`); without this index each count scans every sent row.
CREATE INDEX outbox_by_sent_at ON outbox(sent_at) WHERE sent_at IS NOT NULL;
"#,
    // 8: drop the unused indexes of history by time.
    r#"
-- The planner reads tier and segment changes in customer order through the
-- *_by_customer indexes, and reports select history by assessment; nothing
-- reads these, and every assessment paid to keep them.
DROP INDEX tier_history_by_time;
DROP INDEX segment_history_by_time;
"#,
    // 9: when a claimed e-mail was handed to a transport.
    r#"
-- Set just before a claimed e-mail goes to a transport, cleared by each claim:
-- a claim left open with handed_at NULL was never sent and can simply be
-- queued again; only one with handed_at set may have arrived.
ALTER TABLE outbox ADD COLUMN handed_at INTEGER;
"#,
    // 10: when a held downgrade was first asked for (hysteresis counts time, not runs).
    r#"
-- the `at` of the first assessment that asked for the pending downgrade; NULL
-- when none is pending (and for downgrades pending before this migration,
-- whose hold starts again at the next assessment)
ALTER TABLE customer_tiers ADD COLUMN pending_since INTEGER;
"#,
    // 11: per-domain pauses and the reputation guard's resume time (deliverability, #23).
    r#"
-- Receiving domains that answered "slow down" (421, 4.7.x): nothing goes to
-- them before paused_until; strikes counts such answers in a row (each
-- doubles the pause) and a delivery to the domain deletes the row. reason
-- holds reply codes only, never the server's text (it may quote addresses).
CREATE TABLE mail_domain_pauses (
    domain       TEXT PRIMARY KEY CHECK (domain <> ''),
    paused_until INTEGER NOT NULL,
    strikes      INTEGER NOT NULL CHECK (strikes >= 1),
    reason       TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
-- One row: when sending was last resumed by hand (`tiercare outbox resume`)
-- after the reputation guard paused it; the guard counts from then on.
CREATE TABLE mail_reputation_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    resumed_at INTEGER NOT NULL
) STRICT;
"#,
    // 12: bounces and complaints, and the suppression reasons they give.
    r#"
-- One row per bounce (a DSN, a 5xx after DATA, a provider's notification) or
-- complaint. The address is kept by hash only (as the suppression list keeps
-- it); the diagnostic text may quote it and is erased when the customer is
-- forgotten. event_key (the DSN's Message-ID, a provider's event id) makes a
-- notification delivered twice count once.
CREATE TABLE bounces (
    id           INTEGER PRIMARY KEY,
    outbox_id    INTEGER REFERENCES outbox(id) ON DELETE SET NULL,
    address_hash TEXT NOT NULL
                 CHECK (length(address_hash) = 64 AND address_hash NOT GLOB '*[^0-9a-f]*'),
    kind         TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint')),
    -- the RFC 3463 status code ('5.1.1') or the SMTP reply code ('550')
    status       TEXT,
    diagnostic   TEXT,
    -- where it came from: 'dsn', 'smtp', 'postmark', 'mailgun', 'webhook'
    source       TEXT NOT NULL,
    event_key    TEXT UNIQUE,
    at           INTEGER NOT NULL
) STRICT;
-- soft bounces of an address in a window, and an e-mail's bounces
CREATE INDEX bounces_by_address ON bounces(address_hash, at);
CREATE INDEX bounces_by_outbox ON bounces(outbox_id) WHERE outbox_id IS NOT NULL;

-- the latest bounce or complaint of an e-mail (its state is kept: a bounce
-- after `sent` leaves it sent, and reports still count it as sent)
ALTER TABLE outbox ADD COLUMN bounced_at INTEGER;
ALTER TABLE outbox ADD COLUMN bounce_kind TEXT
    CHECK (bounce_kind IS NULL OR bounce_kind IN ('hard', 'soft', 'complaint'));

-- The suppression list again, with two more reasons: repeated soft bounces
-- and complaints. SQLite cannot change a CHECK in place.
CREATE TABLE suppressions_new (
    id           INTEGER PRIMARY KEY,
    address_hash TEXT NOT NULL UNIQUE
                 CHECK (length(address_hash) = 64 AND address_hash NOT GLOB '*[^0-9a-f]*'),
    reason       TEXT NOT NULL
                 CHECK (reason IN ('unsubscribe', 'hard_bounce', 'soft_bounces', 'complaint',
                                   'forgotten', 'manual')),
    source       TEXT NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;
INSERT INTO suppressions_new SELECT * FROM suppressions;
DROP TABLE suppressions;
ALTER TABLE suppressions_new RENAME TO suppressions;
"#,
    // 13 (webhooks): the outgoing webhooks' endpoints, events and deliveries.
    r#"
-- The endpoints of tiercare.toml's [[webhooks]], copied here by every command that writes, so
-- an event is queued in the transaction that records what it reports, whoever writes it.
CREATE TABLE webhook_endpoints (
    name   TEXT PRIMARY KEY CHECK (name <> ''),
    url    TEXT NOT NULL CHECK (url LIKE 'http://%' OR url LIKE 'https://%'),
    -- the event types it wants, a JSON array of names
    events TEXT NOT NULL CHECK (json_valid(events) AND json_type(events) = 'array')
) STRICT;

-- One row per event, its body's data fixed when it was recorded; event_id is the webhook-id
-- of every attempt at every endpoint (receivers deduplicate by it).
CREATE TABLE webhook_events (
    id          INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE CHECK (event_id LIKE 'evt_%'),
    type        TEXT NOT NULL CHECK (type <> ''),
    occurred_at INTEGER NOT NULL,
    data        TEXT NOT NULL CHECK (json_valid(data) AND json_type(data) = 'object')
) STRICT;

-- One row per (event, endpoint). queued: waiting or failing (attempts > 0, last_error, tried
-- again at next_attempt_at, NULL: at once); delivered: answered with a 2xx; dead: given up
-- after the endpoint's give-up age, counted from failing_since.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    event           INTEGER NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
    endpoint        TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      TEXT,
    failing_since   INTEGER,
    next_attempt_at INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    delivered_at    INTEGER CHECK ((state = 'delivered') = (delivered_at IS NOT NULL)),
    UNIQUE (event, endpoint)
) STRICT;
-- each endpoint's queue in order: the dispatcher reads its head
CREATE INDEX webhook_deliveries_queued ON webhook_deliveries(endpoint, id) WHERE state = 'queued';
"#,
    // 14: the growth models' fit stored with each assessment (BG/NBD and Gamma-Gamma).
    r#"
-- the fitted parameters and fit quality as JSON, or why the models could not
-- be fitted; one row per assessment that ran them
CREATE TABLE assessment_growth (
    assessment_id INTEGER PRIMARY KEY REFERENCES assessments(id) ON DELETE CASCADE,
    fit           TEXT NOT NULL
) STRICT;
"#,
    // staff workspace: staff accounts, their sessions, login attempts and the audit of changes
    // made through the web.
    r#"
-- staff accounts of the web workspace; password is an Argon2id PHC string;
-- a manager account is linked to a manager's external id
CREATE TABLE staff_users (
    id         INTEGER PRIMARY KEY,
    login      TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'viewer')),
    manager_id TEXT,
    password   TEXT NOT NULL,
    active     INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CHECK ((role = 'manager') = (manager_id IS NOT NULL))
) STRICT;
-- signed-in sessions: the SHA-256 of the cookie's random 256-bit id, never the id
CREATE TABLE staff_sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES staff_users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
) STRICT;
CREATE INDEX staff_sessions_user ON staff_sessions(user_id);
-- login attempts, for the rate limit per account and per client
CREATE TABLE staff_login_attempts (
    id        INTEGER PRIMARY KEY,
    login     TEXT NOT NULL,
    client    TEXT NOT NULL,
    succeeded INTEGER NOT NULL,
    at        INTEGER NOT NULL
) STRICT;
CREATE INDEX staff_login_attempts_login ON staff_login_attempts(login, at);
CREATE INDEX staff_login_attempts_client ON staff_login_attempts(client, at);
-- every change made through the web: who, when, what, on which object
CREATE TABLE staff_audit (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    user_id  INTEGER REFERENCES staff_users(id) ON DELETE SET NULL,
    login    TEXT NOT NULL,
    action   TEXT NOT NULL,
    object   TEXT NOT NULL,
    details  TEXT
) STRICT;
CREATE INDEX staff_audit_at ON staff_audit(at);
"#,
    // 16: managers' zones and leave, their daily digests and the escalations of overdue tasks.
    r#"
-- the manager's IANA zone (their digest's clock; NULL: the workspace's), and leave:
-- from leave_from (inclusive) until leave_until (exclusive), unix seconds UTC; NULL: open
ALTER TABLE managers ADD COLUMN timezone TEXT;
ALTER TABLE managers ADD COLUMN leave_from INTEGER;
ALTER TABLE managers ADD COLUMN leave_until INTEGER;

-- One row per manager per local day on which their digest was decided, written in the
-- transaction that queues its e-mail: the unique key makes a digest at most once per day,
-- whatever crashes or processes come. outbox_id NULL: nothing to say (not sent) or no address.
CREATE TABLE manager_digests (
    id         INTEGER PRIMARY KEY,
    manager    TEXT NOT NULL CHECK (manager <> ''),
    -- the day in the manager's zone, YYYY-MM-DD
    local_day  TEXT NOT NULL CHECK (date(local_day) IS local_day),
    created_at INTEGER NOT NULL,
    outbox_id  INTEGER REFERENCES outbox(id) ON DELETE SET NULL,
    -- what it listed: counts per section, as a JSON object
    summary    TEXT NOT NULL CHECK (json_valid(summary) AND json_type(summary) = 'object'),
    UNIQUE (manager, local_day)
) STRICT;

-- One row per escalated task: a task is escalated once, to the supervisor named then.
CREATE TABLE task_escalations (
    task_id      INTEGER PRIMARY KEY REFERENCES tasks(id) ON DELETE CASCADE,
    escalated_to TEXT NOT NULL CHECK (escalated_to <> ''),
    at           INTEGER NOT NULL,
    digest_id    INTEGER REFERENCES manager_digests(id) ON DELETE SET NULL
) STRICT;
"#,
    // 17: (pool) the owner audit, the public pool's warnings, unowned customers by index.
    r#"
-- One row per change of a customer's owner, whatever made it: assignment by
-- the rules, a reclaim into the public pool, an import or an edit. The
-- triggers below write a row for every change; assignment and reclaim then
-- set their own kind, reason and author on it, in the same transaction.
CREATE TABLE owner_changes (
    id          INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    -- managers' external ids; NULL: no owner (the pool)
    from_owner  TEXT,
    to_owner    TEXT,
    kind        TEXT NOT NULL CHECK (kind IN ('assigned', 'reclaimed', 'set')),
    -- why, in words ('reclaimed: no follow-up for 31 days')
    reason      TEXT NOT NULL,
    -- who made the change: 'assignment', 'pool', or NULL for imports and edits
    changed_by  TEXT,
    at          INTEGER NOT NULL
) STRICT;
CREATE INDEX owner_changes_by_customer ON owner_changes(customer_id, id);
CREATE INDEX owner_changes_to_owner ON owner_changes(to_owner, at);
CREATE TRIGGER owner_changes_on_insert AFTER INSERT ON customers
WHEN new.owner IS NOT NULL AND trim(new.owner) <> ''
BEGIN
    INSERT INTO owner_changes (customer_id, from_owner, to_owner, kind, reason, changed_by, at)
    VALUES (new.id, NULL, new.owner, 'set', 'set by an import or an edit', NULL, new.created_at);
END;
CREATE TRIGGER owner_changes_on_update AFTER UPDATE OF owner ON customers
WHEN old.owner IS NOT new.owner
BEGIN
    INSERT INTO owner_changes (customer_id, from_owner, to_owner, kind, reason, changed_by, at)
    VALUES (new.id, old.owner, new.owner, 'set', 'set by an import or an edit', NULL,
            new.updated_at);
END;

-- The public pool's warnings: one row per customer, owner and reclaim due
-- time (a reclaim cycle; a follow-up moves the due time and so starts a new
-- cycle). A customer is reclaimed only after its cycle's warning.
CREATE TABLE pool_warnings (
    id          INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    owner       TEXT NOT NULL,
    reclaim_at  INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    warned_at   INTEGER NOT NULL,
    UNIQUE (customer_id, owner, reclaim_at)
) STRICT;
CREATE INDEX pool_warnings_by_owner ON pool_warnings(owner, warned_at);

-- Customers without an owner, without reading every customer: assignment's
-- idle tick finds nothing here and stops.
CREATE INDEX customers_unowned ON customers(id) WHERE owner IS NULL OR trim(owner) = '';
"#,
    // 18 (surveys): the survey an e-mail asks, and survey answers recorded as feedback.
    r#"
-- the survey a `survey:` follow-up's e-mail asks ({"id","kind","question"}); NULL for others
ALTER TABLE outbox ADD COLUMN survey TEXT CHECK (survey IS NULL OR json_valid(survey));
-- a survey answer: the survey's id and kind, the score as asked (NPS 0-10, CSAT 1-5; `score`
-- holds it on the 0-10 feedback scale) and the e-mail it answers; NULL for imported feedback
ALTER TABLE feedback ADD COLUMN survey TEXT;
ALTER TABLE feedback ADD COLUMN survey_kind TEXT CHECK (survey_kind IS NULL OR survey_kind IN ('nps', 'csat'));
ALTER TABLE feedback ADD COLUMN answer INTEGER;
ALTER TABLE feedback ADD COLUMN outbox_id INTEGER REFERENCES outbox(id) ON DELETE SET NULL;
CREATE UNIQUE INDEX feedback_by_outbox ON feedback(outbox_id) WHERE outbox_id IS NOT NULL;
-- the report reads survey e-mails only: without this it would scan the whole outbox
CREATE INDEX outbox_surveys ON outbox(sent_at) WHERE survey IS NOT NULL;
"#,
    // 19: (web-customers) a manager's customers found without a scan: the staff customers
    // list pages through them by the owner index.
    r#"
CREATE INDEX customers_by_owner ON customers(owner);
"#,
    // 20 (incentives): coupon codes and the points ledger.
    r#"
-- Coupon codes of every pool: imported codes wait with no customer; a code is issued to one
-- customer (with the follow-up that sent it), at most one per (pool, customer), and redeemed
-- by the order that carried it.
CREATE TABLE coupons (
    id             INTEGER PRIMARY KEY,
    pool           TEXT NOT NULL CHECK (pool <> ''),
    code           TEXT NOT NULL UNIQUE CHECK (code <> ''),
    source         TEXT NOT NULL CHECK (source IN ('imported', 'generated')),
    created_at     INTEGER NOT NULL,
    customer_id    INTEGER REFERENCES customers(id) ON DELETE CASCADE,
    followup_id    INTEGER REFERENCES followups(id) ON DELETE SET NULL,
    rule_id        TEXT,
    tier           TEXT,
    issued_at      INTEGER,
    expires_at     INTEGER,
    value          TEXT,
    description    TEXT,
    redeemed_at    INTEGER,
    redeemed_order TEXT,
    CHECK ((customer_id IS NULL) = (issued_at IS NULL)),
    CHECK (redeemed_at IS NULL OR customer_id IS NOT NULL),
    UNIQUE (pool, customer_id)
) STRICT;
-- the next code of a pool to issue
CREATE INDEX coupons_available ON coupons(pool, id) WHERE customer_id IS NULL;

-- The points ledger: earned (amount > 0, expiring at expires_at if set) and spent
-- (amount < 0); source is the idempotency key of the entry ('followup:<id>',
-- 'order:<external id>').
CREATE TABLE points (
    id          INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    source      TEXT NOT NULL UNIQUE CHECK (source <> ''),
    at          INTEGER NOT NULL,
    amount      REAL NOT NULL CHECK (amount <> 0),
    expires_at  INTEGER CHECK (expires_at IS NULL OR amount > 0),
    rule_id     TEXT
) STRICT;
CREATE INDEX points_by_customer ON points(customer_id, at);
"#,
    // 21 (sms): the channel of each outbox message.
    r#"
-- How the message goes: an e-mail, or an SMS (to_address then holds the E.164 phone number,
-- subject is empty and body_text is the text). Every other column, state and guarantee of the
-- outbox is the same for both; each channel's sender claims only its own rows.
ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'email'
    CHECK (channel IN ('email', 'sms'));
-- what is due, per channel: each sender's claim reads only its own
CREATE INDEX outbox_due_by_channel ON outbox(channel, due_at) WHERE state IN ('queued', 'deferred');
"#,
    // 22 (address lookups): an unsubscribe finds the customers of an address, and a bounce
    // without a message id finds the e-mail it answers, by index instead of a table scan.
    r#"
CREATE INDEX customers_email_lower ON customers(lower(trim(email))) WHERE email IS NOT NULL;
CREATE INDEX outbox_sent_to_lower ON outbox(lower(to_address))
    WHERE state IN ('sent', 'failed', 'unknown');
"#,
    // 23 (staff search): substring search of the customers through a trigram index.
    r#"
-- The customers' searched texts as trigrams, so a substring search of 3 characters or more
-- reads the index instead of every customer. External content: the text stays in
-- `customers` only. detail=none: no positions (a third of the size); a search asks for every
-- trigram of its text and re-checks each hit against the text, as it must anyway (the
-- tokenizer folds case beyond ASCII).
CREATE VIRTUAL TABLE customers_search USING fts5(
    external_id, name, email,
    content = 'customers', content_rowid = 'id', tokenize = 'trigram', detail = 'none'
);
-- A delete removes the row's entries from the index itself (not only a tombstone beside
-- them), so an erased name leaves no trigram in the file.
INSERT INTO customers_search (customers_search, rank) VALUES ('secure-delete', 1);
INSERT INTO customers_search (customers_search) VALUES ('rebuild');
CREATE TRIGGER customers_search_on_insert AFTER INSERT ON customers
BEGIN
    INSERT INTO customers_search (rowid, external_id, name, email)
    VALUES (new.id, new.external_id, new.name, new.email);
END;
CREATE TRIGGER customers_search_on_delete AFTER DELETE ON customers
BEGIN
    INSERT INTO customers_search (customers_search, rowid, external_id, name, email)
    VALUES ('delete', old.id, old.external_id, old.name, old.email);
END;
CREATE TRIGGER customers_search_on_update AFTER UPDATE OF external_id, name, email ON customers
WHEN old.external_id IS NOT new.external_id OR old.name IS NOT new.name
    OR old.email IS NOT new.email
BEGIN
    INSERT INTO customers_search (customers_search, rowid, external_id, name, email)
    VALUES ('delete', old.id, old.external_id, old.name, old.email);
    INSERT INTO customers_search (rowid, external_id, name, email)
    VALUES (new.id, new.external_id, new.name, new.email);
END;
"#,
    // 24 (ledger): the follow-up kinds `sms` and `points`. SQLite cannot change a CHECK in place,
    // and other tables refer to followups (tasks cascade), so the table is rebuilt with foreign
    // keys off (https://www.sqlite.org/lang_altertable.html#otheralter).
    r#"-- foreign_keys: off
CREATE TABLE followups_new (
    id              INTEGER PRIMARY KEY,
    occurrence_key  TEXT NOT NULL UNIQUE CHECK (occurrence_key <> ''),
    rule_id         TEXT NOT NULL CHECK (rule_id <> '' AND instr(rule_id, ':') = 0),
    customer_id     INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    occurrence_at   INTEGER NOT NULL,
    scheduled_at    INTEGER NOT NULL,
    -- what to do: an e-mail to the customer, an SMS to the customer, a task for a manager, a
    -- notification e-mail to the customer's owner, custom attributes set, points credited
    kind            TEXT NOT NULL
                    CHECK (kind IN ('email', 'sms', 'task', 'notify_owner', 'set_attribute',
                                    'points')),
    action          TEXT NOT NULL
                    CHECK (json_valid(action) AND json_type(action) = 'object'),
    reason          TEXT NOT NULL,
    decided_at      INTEGER NOT NULL,
    ruleset_version TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'planned'
                    CHECK (status IN ('planned', 'done', 'cancelled', 'skipped')),
    status_reason   TEXT
                    CHECK ((status IN ('cancelled', 'skipped')) = (status_reason IS NOT NULL)),
    status_at       INTEGER NOT NULL
) STRICT;
-- SMS and points follow-ups were stored as 'email' and 'set_attribute': the action's JSON
-- (and an SMS's outbox channel) says what they are
INSERT INTO followups_new (id, occurrence_key, rule_id, customer_id, occurrence_at,
    scheduled_at, kind, action, reason, decided_at, ruleset_version, status, status_reason,
    status_at)
SELECT f.id, f.occurrence_key, f.rule_id, f.customer_id, f.occurrence_at, f.scheduled_at,
    CASE
        WHEN json_extract(f.action, '$.kind') = 'sms'
             OR EXISTS (SELECT 1 FROM outbox o WHERE o.followup_id = f.id AND o.channel = 'sms')
            THEN 'sms'
        WHEN json_extract(f.action, '$.kind') = 'earn_points' THEN 'points'
        ELSE f.kind
    END,
    f.action, f.reason, f.decided_at, f.ruleset_version, f.status, f.status_reason, f.status_at
FROM followups f;
DROP TABLE followups;
ALTER TABLE followups_new RENAME TO followups;
CREATE INDEX followups_by_customer ON followups(customer_id, scheduled_at);
CREATE INDEX followups_by_rule ON followups(rule_id, customer_id, occurrence_at, status);
"#,
    // 25 (one-customer preview): the order lines by product. The recommender reads every
    // product's buyers from this index (product by product, no sort, no description text), and
    // a product's description from its own lines.
    r#"
CREATE INDEX order_items_by_sku ON order_items(sku);
"#,
    // 26 (growth at 1M): `orders_by_customer` also holds the amount, so the growth models'
    // read of every order by customer and time is a scan of the index alone, without a look-up
    // of each order's row (a third of that read's time at 10,000,000 orders).
    r#"
DROP INDEX orders_by_customer;
CREATE INDEX orders_by_customer ON orders(customer_id, ordered_at, amount);
"#,
];

/// The first line of a migration that [`migrate`] runs with foreign keys off.
pub const FOREIGN_KEYS_OFF: &str = "-- foreign_keys: off\n";

/// Whether `sql` is a migration to run with foreign keys off.
fn wants_foreign_keys_off(sql: &str) -> bool {
    sql.starts_with(FOREIGN_KEYS_OFF)
}

/// The schema version this build writes: the number of migrations it knows.
pub fn supported_version() -> u32 {
    u32::try_from(MIGRATIONS.len()).expect("fewer than 2^32 migrations")
}

/// Reads `PRAGMA user_version`: how many migrations the database has run.
pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    // user_version is a signed 32-bit header field; tiercare only writes
    // small positive values, so a negative one is as foreign as a huge one.
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    Ok(u32::try_from(version).unwrap_or(u32::MAX))
}

/// Brings the database at `path` up to date with `migrations`.
///
/// Each pending migration runs in its own `IMMEDIATE` transaction that also
/// bumps `user_version` (and, for the first, stamps [`APPLICATION_ID`]), so a
/// crash leaves the database at a version boundary. The version is re-read
/// under the write lock, so two processes migrating at once apply each
/// migration exactly once.
pub(crate) fn migrate(
    conn: &Connection,
    path: &Path,
    migrations: &[&str],
) -> Result<(), StoreError> {
    let supported = u32::try_from(migrations.len()).expect("fewer than 2^32 migrations");
    let too_new = |found| StoreError::TooNew {
        path: path.to_path_buf(),
        found,
        supported,
    };
    // A read first, so opening an up-to-date database never waits for (or
    // takes) the write lock.
    let found = user_version(conn).at(path)?;
    if found > supported {
        return Err(too_new(found));
    }
    if found == supported {
        return Ok(());
    }
    loop {
        // SQLite ignores `foreign_keys` inside a transaction: switched before it begins, for the
        // migration that looks next; checked again under the write lock (another process may
        // have run it meanwhile).
        let peeked = user_version(conn).at(path)?;
        let keys_off = migrations
            .get(peeked as usize)
            .is_some_and(|sql| wants_foreign_keys_off(sql));
        let guard = if keys_off {
            Some(foreign_keys_off(conn).at(path)?)
        } else {
            None
        };
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate).at(path)?;
        let version = user_version(&tx).at(path)?;
        if version > supported {
            return Err(too_new(version));
        }
        let Some(sql) = migrations.get(version as usize) else {
            return Ok(());
        };
        if wants_foreign_keys_off(sql) != keys_off {
            // Rolled back; the next round switches the keys the right way.
            drop(tx);
            drop(guard);
            continue;
        }
        tx.execute_batch(sql).at(path)?;
        if keys_off {
            let broken: Option<(String, i64, String)> = tx
                .query_row("PRAGMA foreign_key_check", [], |row| {
                    Ok((
                        row.get(0)?,
                        row.get::<_, Option<i64>>(1)?.unwrap_or(0),
                        row.get(2)?,
                    ))
                })
                .optional()
                .at(path)?;
            if let Some((table, rowid, parent)) = broken {
                return Err(StoreError::MigrationBroke {
                    path: path.to_path_buf(),
                    version: version + 1,
                    problem: format!("row {rowid} of {table} refers to a missing row of {parent}"),
                });
            }
        }
        if version == 0 {
            tx.pragma_update(None, "application_id", APPLICATION_ID)
                .at(path)?;
        }
        tx.pragma_update(None, "user_version", version + 1)
            .at(path)?;
        tx.commit().at(path)?;
        drop(guard);
    }
}

#[cfg(test)]
#[path = "schema_ledger_tests.rs"]
mod ledger_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::fnv1a64;

    /// The FNV-1a hash of each shipped migration. If this test fails you
    /// edited a shipped migration: undo that and append a new one instead.
    const SHIPPED: &[u64] = &[
        0x9640_3f88_dafe_6d5b,
        0x7fc2_623d_7075_9370,
        0x4ff4_1613_d686_d88f,
        0x5711_9058_f43c_7f09,
        0xb356_4463_9f43_faf9,
        0xff49_ae73_65f9_254e,
        0x71e1_f6ec_dded_aa54,
        0xc43f_5b07_4a72_5ace,
        0x3770_7b77_45be_c1bb,
        0x2a87_3833_325e_af53,
        0x0ef2_d6be_f1e9_f00c,
        0x411b_92ae_6c7f_d828,
        0x5815_5198_4d2c_feb6,
        0xe68e_70ce_4379_6827,
        0x52fd_2ada_85a1_a59a,
        0xad55_1add_81bc_3f6e,
        0xd7b3_6b33_3db6_2928,
        0x1b4f_480f_2414_ee3b,
        0x8e22_123d_2f8d_2e27,
        0x1d15_aa7d_9f99_3acd,
        0x310e_dfa4_8fe2_27aa,
        0x00fb_d047_42ed_703e,
        0x5664_eea0_07c7_0304,
        0x60e8_d3c2_ef7e_e8ab,
        0x62ef_b964_5d42_d813,
        0x49ed_2405_0f8d_0ddc,
    ];

    #[test]
    fn shipped_migrations_are_never_edited() {
        assert!(
            MIGRATIONS.len() >= SHIPPED.len(),
            "a shipped migration was removed"
        );
        for (index, (sql, hash)) in MIGRATIONS.iter().zip(SHIPPED).enumerate() {
            assert_eq!(
                fnv1a64(sql.as_bytes()),
                *hash,
                "migration {} was edited after shipping; append a new migration instead",
                index + 1
            );
        }
    }

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn pending_migrations_are_applied_in_order_and_counted() {
        let conn = Connection::open_in_memory().unwrap();
        let path = Path::new(":memory:");
        let first = ["CREATE TABLE one (x INTEGER);"];
        migrate(&conn, path, &first).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 1);
        let app_id: i32 = conn
            .query_row("PRAGMA application_id", [], |row| row.get(0))
            .unwrap();
        assert_eq!(app_id, APPLICATION_ID);

        // A newer build appends two migrations; only those two run.
        let later = [
            "CREATE TABLE one (x INTEGER);",
            "CREATE TABLE two (y INTEGER);",
            "ALTER TABLE two ADD COLUMN z TEXT;",
        ];
        migrate(&conn, path, &later).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 3);
        assert_eq!(tables(&conn), ["one", "two"]);
        conn.execute("INSERT INTO two (y, z) VALUES (1, 'z')", [])
            .unwrap();

        // Running again is a no-op.
        migrate(&conn, path, &later).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 3);
    }

    #[test]
    fn migration_12_keeps_the_suppression_list_and_allows_the_bounce_reasons() {
        let conn = Connection::open_in_memory().unwrap();
        let path = Path::new(":memory:");
        migrate(&conn, path, &MIGRATIONS[..11]).unwrap();
        let hash = "a".repeat(64);
        conn.execute(
            "INSERT INTO suppressions (address_hash, reason, source, created_at) \
             VALUES (?1, 'hard_bounce', 'outbox:1', 5)",
            [&hash],
        )
        .unwrap();
        assert!(
            conn.execute(
                "INSERT INTO suppressions (address_hash, reason, source, created_at) \
                 VALUES (?1, 'complaint', 'x', 5)",
                [&"b".repeat(64)],
            )
            .is_err(),
            "version 11 refuses the new reasons"
        );
        migrate(&conn, path, MIGRATIONS).unwrap();
        let kept: (String, String, i64) = conn
            .query_row(
                "SELECT address_hash, reason, created_at FROM suppressions",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        assert_eq!(kept, (hash, "hard_bounce".to_owned(), 5));
        for (n, reason) in ["soft_bounces", "complaint"].iter().enumerate() {
            conn.execute(
                "INSERT INTO suppressions (address_hash, reason, source, created_at) \
                 VALUES (?1, ?2, 'x', 6)",
                [&n.to_string().repeat(64), &(*reason).to_owned()],
            )
            .unwrap();
        }
    }

    #[test]
    fn a_failing_migration_leaves_the_previous_version() {
        let conn = Connection::open_in_memory().unwrap();
        let path = Path::new(":memory:");
        let broken = ["CREATE TABLE one (x INTEGER);", "CREATE TABLE one (x);"];
        let err = migrate(&conn, path, &broken).unwrap_err();
        assert!(matches!(err, StoreError::Sqlite(_)), "{err:?}");
        assert_eq!(user_version(&conn).unwrap(), 1);
        assert_eq!(tables(&conn), ["one"]);
    }

    #[test]
    fn a_database_from_a_newer_build_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        let newer = supported_version() + 1;
        conn.pragma_update(None, "user_version", newer).unwrap();
        let err = migrate(&conn, Path::new(":memory:"), MIGRATIONS).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::TooNew {
                    found,
                    supported,
                    ..
                } if found == newer && supported == supported_version()
            ),
            "{err:?}"
        );
    }
}
