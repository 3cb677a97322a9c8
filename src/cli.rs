//! The command line: every command, flag and its help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Exit codes:
  0  success (`run`: stopped by SIGTERM or SIGINT, or --once done)
  1  the data or rules had problems: import rows rejected (the rest was imported), rule errors
     (check), failing rule tests (test), rules that failed for some customers (assess, plan,
     followups record), emails that failed or whose outcome is unknown (send), addresses
     skipped (unsubscribe), a `run --once` pass that met errors (logged and shown by `status`)
  2  nothing was done: bad usage, a missing or unreadable file, an invalid mapping, workspace or
     rule set, a locked or foreign database, a --strict import that met a bad row, an unknown
     or already done task (tasks done, tasks snooze), an unknown customer, a template that does
     not exist or fails for the customer (preview); for send, unusable mail settings; for run,
     another daemon already runs on the database, or invalid rules or mail settings at start-up;
     a damaged database (every command that writes refuses it and writes nothing; run
     `tiercare doctor`); `doctor` exits 1 when the database is not healthy
  75 inbound: the message could not be handled now (busy database, unusable settings); the
     mail system keeps it and tries again (inbound exits only 0 or 75)

Environment:
  TIERCARE_HOME   the workspace, when --workspace is not given (default: the current directory)
  TIERCARE_SMTP_PASSWORD, TIERCARE_UNSUBSCRIBE_SECRET
                  the SMTP password and the unsubscribe-link secret (the variables' names are
                  set in tiercare.toml: [mail.smtp] password_env, [mail] unsubscribe_secret_env)
  TIERCARE_LOG    log filter for diagnostics on stderr, e.g. `info` or `tiercare=debug`
  NO_COLOR        set to disable colour

Start with `tiercare demo` for a workspace full of synthetic data, or `tiercare init` and
`tiercare import` for your own; then `tiercare check`, `tiercare test` and `tiercare assess`.";

/// tiercare: rule-driven customer tiering and care automation.
///
/// Keep customer data in an embedded SQLite database, sort customers into value tiers with YAML
/// rules and small Rhai scripts, and automate the follow-ups each tier deserves.
#[derive(Debug, Parser)]
#[command(name = "tiercare", version, about, long_about, after_long_help = AFTER_HELP)]
pub struct Cli {
    /// The workspace to use (a folder with tiercare.toml).
    #[arg(
        long,
        short = 'w',
        global = true,
        env = "TIERCARE_HOME",
        value_name = "DIR"
    )]
    pub workspace: Option<PathBuf>,

    /// When to colour output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// How diagnostics on stderr are written: `human` lines or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, value_name = "FORMAT")]
    pub log_format: LogFormat,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines.
    Human,
    /// One JSON object per line, for log collectors (journald, Loki, ...).
    Json,
}

/// When to use colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a workspace: tiercare.toml, the default rules, templates/ and the database.
    ///
    /// The folder is created if needed. A folder that already holds a workspace is left as it is.
    Init(InitArgs),
    /// Import customers, orders, interactions, complaints, feedback or managers from a file.
    ///
    /// Reads CSV (`.csv`, `.tsv`) or JSON Lines (`.jsonl`, `.ndjson`), optionally gzip-compressed
    /// (`.gz`). Without --mapping the file uses tiercare's own column names (see
    /// examples/README.md); with --mapping a YAML file renames columns, parses dates, derives
    /// columns with Rhai expressions, skips rows and groups order lines (orders are written as
    /// their lines end; lines of one order scattered over the file make it read the file twice).
    ///
    /// The import is one transaction: it is written whole or not at all. Re-importing the same
    /// file changes nothing (records are matched by their ids). Rows with problems are rejected
    /// and listed with their line, column and reason (every problem of a row at once); --strict
    /// refuses the whole file instead. An order with a rejected line is rejected whole, each of
    /// its lines listed. A negative amount is rejected unless the mapping says `refunds: true`
    /// (then it is a refund: it lowers revenue and is not an order). With `[points]` in
    /// tiercare.toml each imported order earns points once, in the same transaction (an order
    /// imported again with another amount has its points adjusted).
    Import(ImportArgs),
    /// Create a workspace filled with realistic synthetic data, for trying tiercare.
    ///
    /// Generates managers, customers (with a Pareto spread of spending), two years of orders,
    /// interactions, complaints and feedback as CSV files in DIR/data/, imports them, and
    /// assesses every customer with the workspace's rules as of --end. Then it runs the daemon
    /// (`tiercare run`) for --days days in simulated time, so the folder holds a month of
    /// follow-ups, tasks and care emails (DIR/mail/*.eml). The same --seed and --end give the
    /// same data, and so does the same day without --end: running it again on the same folder
    /// that day re-imports, changes nothing and sends nothing. On a later day the history ends
    /// later: the customers' data moves on under the same ids and the daemon catches up on the
    /// days in between (mail already sent is never sent again).
    Demo(DemoArgs),
    /// Validate every rule file, script and email template: all errors at once, as
    /// path:line:col with a caret.
    ///
    /// Reads the workspace's rules/ folder (or --rules DIR): `*.yaml` rule files and `*.rhai`
    /// function libraries; and its templates/ (or --templates DIR): every variable a template
    /// uses is checked against what templates can use, every template is rendered for a sample
    /// customer, and every template a follow-up rule names must exist. For the workspace's own
    /// rules, the managers (`manager:ID`) and roles (`role:NAME`) that follow-up tasks and the
    /// owner `assignment` name are also checked against the workspace's managers, once it has
    /// some. In a workspace with a database, the rules also run on a sample of its real
    /// customers (`[rules] sample`, spread over the tiers) under the time budget: a rule that
    /// fails for one of them is an error naming the customer, a rule slower than `[rules]
    /// slow_ms` a warning with the time measured. Exits 1 when there are
    /// errors; warnings alone exit 0.
    Check(RulesArgs),
    /// Run the rule tests in rules/tests/: customers as feature values in, tier and segments out.
    ///
    /// Each failure is reported at the test's path:line:col with what was expected and what the
    /// rules decided. Exits 1 when a test fails.
    Test(RulesArgs),
    /// Assign every customer a tier and segments by the rules, and record them with their reasons.
    ///
    /// Features are computed at --at (default: now) over the rules' window. The result is
    /// recorded in one transaction with the rule-set version, and tier changes are kept as
    /// history. Prints customers and revenue per tier, the moves between tiers, and segment
    /// counts. Exits 1 when a rule failed for some customers (they are reported and keep their
    /// stored tier; the others are assessed all the same; a rule stopped by the `[rules]
    /// budget_ms` time budget counts as failed). When rules fail for more than `[rules]
    /// max_failure_share` of the customers (default 1%), nothing is recorded and it exits 2.
    ///
    /// A downgrade held by the rules' hysteresis is measured on the assessments' --at times
    /// (`downgrade_after: 30d`, or a count of at most one assessment a day), so re-running
    /// assess quickly never applies one.
    ///
    /// When rules read a growth feature (p_alive, clv_12m...), the BG/NBD and Gamma-Gamma models
    /// are fitted once on the orders up to --at; the fit is stored and printed, or a warning
    /// says why the data could not support it (the features are then none).
    Assess(AssessArgs),
    /// Show why a customer has their tier: features, every rule's verdict with the values it
    /// saw, pins, tier history, and the growth models' view (frequency, recency, age, p_alive,
    /// expected orders and value, clv_12m, growth_potential).
    Explain(ExplainArgs),
    /// Pin a customer's tier by hand (expert judgement): a pin beats the rules until it expires.
    ///
    /// The pin takes effect at the next assessment and shows in `explain`.
    Pin(PinArgs),
    /// Remove a customer's pin; the rules decide again at the next assessment.
    Unpin(UnpinArgs),
    /// Print the JSON Schema of rule files, for editors that validate and complete YAML.
    ///
    /// Save it as rules/tiercare.schema.json: the default rule files point their editors at it.
    Schema,
    /// List every feature and function a rule can use, with its type, unit and meaning.
    Functions(FunctionsArgs),
    /// Preview the follow-ups of the coming days: who is contacted when, and by whom.
    ///
    /// Computes every customer's features at --from (default: now), reads the follow-up ledger
    /// (what fired before, recent emails, tier and segment changes, complaints, feedback) and
    /// plans the follow-up rules over [--from, --from + --days). Prints, per day, the emails,
    /// tasks and other actions; per rule, how many it plans with up to 3 example customers, and
    /// what the contact policy moved (send window, minimum gap) or skipped (re-entry, consent,
    /// no address, caps, moved past the end); per tier; tasks per assignee; and rule conditions
    /// that failed. Read-only: nothing is recorded, sent or assigned. Exits 1 when a rule's
    /// condition failed for some customers.
    Plan(PlanArgs),
    /// Work with the follow-up ledger (what was planned, done or skipped, by occurrence).
    #[command(subcommand)]
    Followups(FollowupsCommand),
    /// List managers' tasks, mark them done, or snooze them.
    ///
    /// Without a subcommand, lists the tasks not done yet: overdue ones first (most overdue
    /// first), then by due time, each with its id, customer, title and due date. Follow-up rules
    /// create tasks when their follow-ups are recorded (`tiercare followups record`). An unknown
    /// id or a task already done exits 2 and changes nothing.
    Tasks(TasksArgs),
    /// List account managers with their load, or give customers without an owner one.
    ///
    /// Without a subcommand, lists the managers: role, capacity, customers owned, spare
    /// capacity and tasks not done. `owners assign` gives every assessed customer without an
    /// owner one by the `assignment` section of the rules (for example A customers to senior
    /// managers, C customers to nobody), each to the candidate with the most spare capacity;
    /// `followups record` does the same before it creates tasks.
    Owners(OwnersArgs),
    /// Coupon pools: import single-use codes, and each pool's codes by state.
    ///
    /// Pools are declared in the rules (`coupons:`): generated ones (`pattern:
    /// "WB-{AAAA}-{9999}"`) make a code when they issue one; imported ones issue the codes
    /// `coupons import` added. An e-mail rule with `coupon: POOL` issues one code per customer
    /// and pool, in the transaction that records the e-mail. Without a subcommand, shows every
    /// pool's codes: available, issued (neither redeemed nor expired), redeemed (by an imported
    /// order's `coupon_code`) and expired, warning when an imported pool runs low.
    Coupons(CouponsArgs),
    /// Manage the staff workspace's accounts (the web pages under /staff/).
    ///
    /// `users add LOGIN --role admin|manager|viewer` creates an account (a manager account is
    /// linked to a manager with --manager ID, who must exist and be active); `users list` lists
    /// them; `users disable LOGIN` stops an account from signing in and ends its sessions (`users
    /// enable LOGIN` undoes it); `users passwd LOGIN` sets a new password and ends its sessions.
    /// Passwords are asked for at the terminal (twice, not shown), or read from the first line
    /// of standard input with --password-stdin; never given as an argument. They must have at
    /// least 10 characters and are stored hashed with Argon2id (m=19456 KiB, t=2, p=1).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Managers' leave and inactivity, reassigning their work, and their daily digest.
    ///
    /// A manager on leave (`managers leave`) or inactive (`managers deactivate`) gets no new
    /// customers (owner assignment passes them over) and no new tasks (a task for them goes to
    /// an available manager of their role, or is skipped with the reason), and no digest.
    /// `managers reassign` moves their open tasks (and, with --customers, their customers) to
    /// others. `managers digest` decides and queues the digests due now, as the daemon does on
    /// every tick (the rules' `reminders:` section, rules/managers.yaml); `tiercare send`
    /// delivers them.
    #[command(subcommand)]
    Managers(ManagersCommand),
    /// The public pool (公海): customers without an owner, and the countdowns to reclaim.
    ///
    /// Without a subcommand, lists the customers without an owner in the order assignment
    /// takes them (the rules' tier order, the most valuable first) and, for every owned
    /// customer of a tier the `pool` section of the rules names, the days until they go back
    /// to the pool unless their owner follows up (soonest first; pinned and protected customers
    /// have none). `pool reclaim` warns owners and reclaims customers whose time has come, as
    /// the daemon does by itself; for cron users and for a simulated time (`--at`).
    Pool(PoolArgs),
    /// Run the daemon: reassess on the rules' schedule, record follow-ups, send due mail.
    ///
    /// Reassesses tiers when the `reassess` schedule of rules/tiers.yaml fires, and every tick
    /// (`tick` in the `[daemon]` section of tiercare.toml, default 1 minute) records the
    /// follow-ups due since the previous tick and delivers due mail. With a `pool` section in
    /// the rules, it warns owners and reclaims customers into the public pool when due (see
    /// `tiercare pool`). A reassessment missed
    /// while the daemon was down is made up once if it is at most `lateness` late (default 6h),
    /// otherwise skipped and logged; nothing runs twice, even if the clock is set back.
    ///
    /// Watches rules/ and templates/ and reloads them after a change (SIGHUP forces a reload):
    /// once per new content, after the folders have been quiet for `[daemon] settle_ms` (1 s by
    /// default) and two readings that far apart found the same files, so a save still being
    /// written never loads. The new rules become active only if all of them are valid;
    /// otherwise the previous rules stay active and every problem is logged once (at warn) and
    /// listed by `tiercare status`. Opening or touching files without changing them reloads
    /// nothing.
    ///
    /// One daemon per database: a second one exits 2 naming the first one's pid. SIGTERM or
    /// SIGINT finishes the current step and exits 0; emails claimed but not yet sent go back
    /// to the queue for the next start. With `[http]` in tiercare.toml it also serves what
    /// `tiercare serve` serves, on a thread of its own, started and stopped with it (not with
    /// --once). Logs go to stderr (info level by default;
    /// TIERCARE_LOG and --log-format change that). See examples/systemd/ for a service unit.
    Run(RunArgs),
    /// Serve the staff workspace, one-click unsubscribes, preference pages, survey answers and
    /// providers' bounce webhooks over HTTP.
    ///
    /// Answers the links care emails carry: `POST /unsubscribe?token=...` with
    /// `List-Unsubscribe=One-Click` (RFC 8058, what mailbox providers send) suppresses the
    /// address at once and answers 200, also for a token that is not valid (then nothing
    /// changes); opening the same link in a browser (GET) shows a page with an Unsubscribe
    /// button and changes nothing; `/preferences?token=...` lets the customer also stop email
    /// or SMS (their consents). Pages are English or Simplified Chinese (`[http] language`, else
    /// the browser's Accept-Language) and work without JavaScript.
    ///
    /// Survey emails (`survey:` follow-ups) carry one link per score, `/survey/<token>`: opening
    /// one (GET) shows the question with that score chosen and a comment box, and changes
    /// nothing; the page's button (POST) records the answer as the customer's feedback (a later
    /// answer replaces it) and thanks them. Survey links are honoured for 90 days. A survey by
    /// SMS (`channel: sms`) carries one link, whose page has no score chosen.
    ///
    /// Also takes the mail providers' bounce and complaint notifications at
    /// `POST /webhooks/postmark`, `/webhooks/mailgun` and `/webhooks/generic` (Standard
    /// Webhooks), authenticated with the secrets `[mail.bounces]` names (read from the
    /// environment at start); a wrong signature or password gets 401.
    ///
    /// Settings come from `[http]` in tiercare.toml: `listen` (default 127.0.0.1:8025),
    /// `public_url` (the https:// address recipients reach it at through your reverse proxy;
    /// emails' links are `<public_url>/unsubscribe?token=...`), `language`, `max_body_bytes`,
    /// `requests_per_minute` (per client) and `timeout_seconds`. Tokens are signed with the
    /// secret in the environment variable `[mail] unsubscribe_secret_env` names (default
    /// TIERCARE_UNSUBSCRIBE_SECRET), which must be set. `tiercare run` serves the same when
    /// `[http]` is present. SIGTERM or SIGINT stops it once requests under way are done.
    ///
    /// It also serves the staff workspace at `/staff/` (sign in with an account made by
    /// `tiercare users add`): the dashboard, tasks and the other staff pages, with sessions that
    /// end after `staff_idle_minutes` (default 30) without a request and `staff_session_hours`
    /// (default 12) after sign-in. `/staff/outbox` lists e-mails per state (retry and cancel
    /// as `tiercare outbox` does, held e-mails, resume), `/staff/plan` shows the coming days as
    /// `tiercare plan` does, and `/staff/rules` the rule files, the last reload's problems and
    /// what an assessment now would change.
    Serve(ServeArgs),
    /// Show whether the daemon runs and what it is doing.
    ///
    /// Reads the daemon's lock and what it records in the database, so it works from any
    /// process: running or not (and its pid), the active rule-set version and when it was
    /// loaded, every problem of the last failed reload (`reload_problems` in --json), the last
    /// and next reassessment, the last tick and its error, and the last send error; whether
    /// sending is paused by the reputation guard (why, with the figures), the sends, hard bounces
    /// and complaints of the guard's window per day and rule, and the paused receiving domains;
    /// and each webhook endpoint's queue (queued, delivered, dead, and a failing event's last
    /// error and next attempt; `webhooks` in --json).
    Status(StatusArgs),
    /// Deliver the emails due now from the outbox, once, through the configured transport.
    ///
    /// Emails are queued by `tiercare followups record` (and the daemon), in the same
    /// transaction as their follow-up; `send` plans nothing, so it can be run again at any time
    /// (after fixing the SMTP settings, say). It first recovers what a killed sender left
    /// claimed, at once: emails it never handed over go back to queued; those it handed over
    /// without recording the answer may have arrived and follow `[mail.outbox]` after_crash
    /// (resent with the same Message-ID, or held as unknown). Then it claims due emails in
    /// batches, re-checking the suppression list and consent. Each claimed email passes the
    /// delivery gate right before it is handed over, on the customer's current data: outside
    /// the contact policy (the send window in the customer's zone, the minimum gap, the caps,
    /// counted from the emails actually sent) it is held until the next allowed time (state
    /// deferred, with the reason; no attempt counted); if its follow-up no longer holds (a new
    /// order after a win-back, a downgrade after an upgrade welcome, a `when` now false) or it
    /// is past its rule's `max_delay`, it is cancelled with the reason; else it is rendered
    /// again from current data (same Message-ID) and sent with List-Unsubscribe headers and an
    /// unsubscribe line. So `send` reads `rules/` and `templates/`, and sends nothing if they
    /// have errors. 4xx answers, refused connections and connections lost before the final "."
    /// are retried later with exponential backoff and jitter; 5xx answers fail (a refused
    /// address is suppressed); no answer after the final "." is held as `unknown`. Rate limits
    /// (`[mail.limits]`, `[mail.warmup]`) leave the rest queued. With `[mail.dkim]` every email is
    /// DKIM-signed over its final bytes. Per receiving domain (`[mail.domains."gmail.com"]`,
    /// defaults for the large providers), limits and concurrency apply, and a `421` or `4.7.x`
    /// from one domain pauses that domain only (growing backoff, kept across restarts) while the
    /// others keep flowing. When hard bounces or complaints pass `[mail.reputation]`'s
    /// thresholds, sending pauses itself (`tiercare status` says why; `tiercare outbox resume`).
    /// A database locked by another process is waited
    /// for. One sender per database file (symlinks resolved): a second exits 2. Prints what
    /// happened.
    ///
    /// Then the due SMS, the same way, through `[sms]`'s provider (the `sms/` folder by default,
    /// a generic HTTP gateway, Twilio or Aliyun): `consent_sms` and the number's suppression checked in
    /// the claim, the delivery gate counting SMS apart from emails, one SMS at a time, limits
    /// from `[sms]`; `--json` reports the emails.
    ///
    /// Ctrl-C (SIGINT) or SIGTERM stops it safely: the message being handed over finishes, the
    /// emails claimed but not sent go back to queued (no attempt counted), and it exits 130
    /// saying how many were sent and how many stay queued. Run `tiercare send` again to deliver
    /// the rest, each exactly once.
    Send(SendArgs),
    /// List, show, retry or cancel outbox emails.
    ///
    /// Without a subcommand, lists the latest emails with their state. States: queued,
    /// claimed (being sent), sent, deferred (retried later, or held by the contact policy
    /// until its next allowed time), failed, unknown (handed over without an answer),
    /// cancelled (by hand, or when sent: stale or no longer true), suppressed. `show` gives
    /// each state change with its reason.
    Outbox(OutboxArgs),
    /// Sending reputation: the DNS records to publish for DKIM, SPF and DMARC.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Add addresses (or phone numbers) to the suppression list: they never get care email (or
    /// SMS) again.
    ///
    /// Give an ADDRESS or a phone number in international form (+8613812345678), a signed
    /// --token from an unsubscribe link, or a --csv file with an `email` (or `phone`) column. Addresses are stored only as hashes (keyed with the unsubscribe secret when
    /// it is set, so the list cannot be checked against candidate addresses without it). Invalid or missing addresses
    /// are skipped and reported (with their CSV row); exits 1 when some were skipped.
    Unsubscribe(UnsubscribeArgs),
    /// Read one message from stdin: a bounce (DSN), an auto-reply or an unsubscribe request.
    ///
    /// For the bounce and unsubscribe mailboxes, run by the mail system for each message
    /// (Postfix `pipe`, procmail, fetchmail's mda; see the README, "Bounces and replies"). A
    /// delivery status notification (RFC 3464) for an email tiercare sent, found through its
    /// VERP envelope sender (`[mail] bounce_address`) or the returned Message-ID, marks the
    /// email bounced: a hard bounce (status 5.x.x) suppresses the address at once, soft ones
    /// (4.x.x) after `[mail.bounces] soft_limit` within `soft_window_days`. A VERP address
    /// whose signature does not verify suppresses nobody. Auto-replies (Auto-Submitted,
    /// X-Autoreply, vacation subjects) are logged, never taken as unsubscribes. A message to
    /// `unsubscribe_mailto` saying "unsubscribe" suppresses the address its signed token
    /// names, or else its sender. Anything else is accepted and ignored.
    ///
    /// Exit codes for the mail system: 0 accepted (handled or ignored), 75 (EX_TEMPFAIL) when
    /// it cannot be handled now (a busy or damaged database, unusable settings): the mail
    /// system keeps the message and tries again. It never answers the sender.
    Inbound(InboundArgs),
    /// Outgoing webhooks: list deliveries, queue dead ones again, or send a test event.
    ///
    /// Endpoints are `[[webhooks]]` in tiercare.toml; events are queued with what they report
    /// and delivered by the daemon (`tiercare run`), signed as Standard Webhooks. Without a
    /// subcommand, lists the latest deliveries (event id, type, endpoint, state, attempts, last
    /// error). `tiercare status` shows each endpoint's queue.
    Webhooks(WebhooksArgs),
    /// Report on tiers, moves, follow-up work and e-mails: a terminal summary, an HTML page or JSON.
    ///
    /// Reads the latest assessment up to --at (default: now) and shows customers and revenue per
    /// tier, the Pareto curve with the tier boundaries, the RFM grid (recency score against
    /// frequency score), tier moves since the previous assessment and the trend per assessment,
    /// follow-up work (due, done and overdue per tier and per owner; managers' load against
    /// capacity), e-mail outcomes per follow-up rule, and the lowest tier's care programme (a
    /// plain comparison of customers who received e-mails with those who did not, not a causal
    /// claim). Revenue and the RFM scores are the features at the assessment's time over the
    /// rules' window.
    ///
    /// Without --out, prints the headline figures as tables. With --out, writes one
    /// self-contained HTML file (inline SVG charts with a data table each; no network access;
    /// readable on a phone and printable) and prints where it went. Run `tiercare assess` first:
    /// without an assessment there is nothing to report (exit 2).
    Report(ReportArgs),
    /// Render one care email for one customer and print it exactly as it would be sent.
    ///
    /// Renders the template (templates/NAME.eml.j2, or NAME.txt.j2 + NAME.html.j2) with the
    /// customer's profile, features, tier, segments, owner and product recommendations as of
    /// --at, and prints the message: headers, then the text and HTML parts (MIME, as on the
    /// wire). Sends and records nothing. A customer without a valid email address gets the parts
    /// printed and a warning (such an email is skipped when sending). templates/README.md lists
    /// what a template can use.
    ///
    /// With --sms (or when there is no e-mail template NAME), renders the text message
    /// templates/NAME.sms.j2 instead and prints its text, encoding, characters and segments; an
    /// SMS survey's link carries a sample token as long as the longest signed one.
    Preview(PreviewArgs),
    /// A customer's data: show it, export all of it as JSON, or forget the customer.
    #[command(subcommand)]
    Customer(CustomerCommand),
    /// Print a shell completion script, generated from this very command line.
    ///
    /// bash: `tiercare completions bash > ~/.local/share/bash-completion/completions/tiercare`;
    /// zsh: `tiercare completions zsh > ~/.zfunc/_tiercare` (with `~/.zfunc` in `fpath`);
    /// fish: `tiercare completions fish > ~/.config/fish/completions/tiercare.fish`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write one page per command into a folder.
    ///
    /// `tiercare man | man -l -` reads it; `tiercare man --out /usr/local/share/man/man1` installs
    /// `tiercare.1` and a `tiercare-COMMAND.1` for every command. Generated from the same
    /// definitions as `--help`, so the two always agree.
    Man(ManArgs),
    /// Copy the database to FILE: a consistent, compacted, verified copy, safe while the daemon
    /// runs.
    ///
    /// The copy is one snapshot of the database (SQLite's `VACUUM INTO`: commands and the
    /// daemon may go on writing meanwhile; their later changes are not in it). It is written
    /// under a temporary name beside FILE, checked with SQLite's `quick_check`, flushed to
    /// disk, and only then named FILE. An existing FILE is refused unless --force. Prints the
    /// copy's size and how long it took. Restore it as `tiercare doctor` explains.
    Backup(BackupArgs),
    /// Examine the database: integrity, identity, WAL, the daemon's lock, and how to restore.
    ///
    /// Runs SQLite's `quick_check` (with --full, `integrity_check`, which also checks every
    /// index against its table), reads every table to see what can still be read, and shows
    /// the application id and schema version, the file's size, the WAL (changes not yet
    /// copied into the file) and whether a daemon holds the database. When something is
    /// wrong it says what, in plain words, and how to restore a backup made with `tiercare
    /// backup` (or, as a last resort, what `sqlite3 .recover` can rescue). It never writes to
    /// the file. Exits 0 when the database is healthy, 1 when it is not.
    Doctor(DoctorArgs),
    /// List or export customers: filter by tier, segment, owner, last contact, attribute or any
    /// condition on their features; sort; page; print a table, CSV or JSON Lines.
    ///
    /// Tiers, segments and scores are those stored by the latest `tiercare assess`; features
    /// (for --where and a --sort by a feature) are computed at --at (default: now) over the
    /// rules' window, as an assessment computes them. Every filter given must hold. The table
    /// shows --limit customers (default 50) and says how many more match; --csv and --jsonl
    /// print every match unless --limit is given. --csv has a header row and the columns id,
    /// name, email, tier, segments (`set=segment;...`), owner, owner_name, orders_total,
    /// revenue_total, last_order_at, last_contact_at (RFC 4180, times in UTC), ready for a
    /// newsletter tool.
    ///
    /// Examples: `tiercare customers --tier A --csv > a.csv`;
    /// `tiercare customers --owner m004 --not-contacted-for 60`;
    /// `tiercare customers --where 'days_since_last_contact > 60 && tier == "A"' --sort -revenue_window`.
    Customers(CustomersArgs),
}

/// `tiercare completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `tiercare man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `tiercare.1` and one `tiercare-COMMAND.1` per command into this folder (created if
    /// missing) instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `tiercare backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The copy to write, such as backups/tiercare-2026-12-07.db.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,
    /// Print what was copied as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tiercare doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The database file to examine, such as a backup [default: the workspace's database].
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Run SQLite's full `integrity_check` instead of `quick_check` (slower: about twice as
    /// long; it also checks that every index matches its table).
    #[arg(long)]
    pub full: bool,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tiercare preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The template's name (`care` for templates/care.eml.j2).
    pub template: String,
    /// The customer's id (customer_id in your files).
    #[arg(long, value_name = "ID")]
    pub customer: String,
    /// Render as of this time: YYYY-MM-DD (the start of that day in the workspace's time zone)
    /// or an RFC 3339 time [default: now].
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Preview the text message templates/NAME.sms.j2 instead: its text, encoding and
    /// segments (the default when there is no e-mail template NAME).
    #[arg(long)]
    pub sms: bool,
    /// Print the subject, parts, recipient and message as JSON (with --sms: the text, its
    /// length and whether it would be sent).
    #[arg(long)]
    pub json: bool,
}

/// `tiercare customer`.
#[derive(Debug, Subcommand)]
pub enum CustomerCommand {
    /// Show a customer: profile, tier and segments, recent orders, contacts, complaints,
    /// emails, coupon codes and points balance.
    Show {
        /// The customer's id.
        id: String,
        /// Print everything as JSON (as `export`).
        #[arg(long)]
        json: bool,
    },
    /// Print everything held about a customer as one JSON document (a data-access request).
    ///
    /// Profile, orders with their lines, interactions, complaints, feedback, the current tier
    /// and tier history, segments and their history, pins, follow-ups, tasks, the emails in the
    /// outbox with their events, whether the address is suppressed, and privacy requests.
    Export {
        /// The customer's id.
        id: String,
    },
    /// Erase a customer's personal data (a deletion request), in one transaction.
    ///
    /// Erases name, email, phone, birthday, attributes and consents, and free text about them
    /// (interaction notes, complaint subjects, feedback comments, task titles and notes, pin
    /// reasons); cancels their pending emails and erases the address, subject and bodies of
    /// every email to them; adds each address they were mailed at to the suppression list (by
    /// hash only), so it is never mailed again. A later customer import leaves their personal
    /// fields and consents out, and a later interactions, complaints or feedback import their
    /// notes, subjects and comments (both counted as "kept forgotten"). Orders,
    /// amounts, tiers and the follow-up ledger stay (without personal data), and one audit row
    /// records who asked and what was done. Running it again changes nothing, except that it
    /// erases emails that were being sent the first time (it says when there are some).
    Forget {
        /// The customer's id.
        id: String,
        /// Who asks [default: $USER]: kept in the audit row.
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
        /// Print what was done as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `tiercare send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The time to send at: YYYY-MM-DD or an RFC 3339 time [default: now]. Emails due by then
    /// go out, and it is recorded as their send time.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tiercare outbox`.
#[derive(Debug, Args)]
pub struct OutboxArgs {
    /// What to do [default: list].
    #[command(subcommand)]
    pub command: Option<OutboxCommand>,
    /// Only emails in this state, when listing; with `retry` or `cancel` instead of an id,
    /// every email in this state (`unknown` or `failed`).
    #[arg(long, global = true, value_enum, value_name = "STATE")]
    pub state: Option<OutboxStateArg>,
    /// At most this many emails, newest first, when listing.
    #[arg(long, global = true, default_value_t = 50, value_name = "N")]
    pub limit: usize,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `tiercare mail` subcommands.
#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Print the DNS records to publish for the sending domain: the DKIM key's TXT record
    /// (from `[mail.dkim]`'s private key), and an SPF and a DMARC suggestion to adapt.
    ///
    /// Gmail and Yahoo require bulk senders to sign with DKIM and publish SPF and DMARC; they
    /// honour one-click unsubscribes only when the signature covers List-Unsubscribe. Reads the
    /// key as `send` does (a bad key exits 2 saying why); prints each record as a zone-file
    /// line, the TXT value split into strings of at most 255 bytes.
    Dns {
        /// Print the records as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `tiercare outbox` subcommands.
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List emails, newest first, with counts per state (the default).
    List,
    /// Show one email: headers, state, attempts, last error, its state changes and its text.
    Show {
        /// The email's id (from `tiercare outbox list`).
        id: i64,
    },
    /// Queue a failed, unknown, deferred or cancelled email again, due now, with the same
    /// Message-ID (suppression and consent are checked again when it is sent).
    ///
    /// In bulk: `--state unknown` or `--state failed` instead of an id queues every such email
    /// again (narrowed with `--rule` and `--since`) in one transaction, and prints how many.
    Retry {
        /// The email's id (or `--state` for all in a state).
        #[arg(required_unless_present = "state")]
        id: Option<i64>,
        #[command(flatten)]
        bulk: BulkArgs,
    },
    /// Cancel a queued, deferred, unknown or failed email: it will not be sent.
    ///
    /// In bulk: `--state unknown` or `--state failed` instead of an id cancels every such email
    /// (narrowed with `--rule` and `--since`) in one transaction, and prints how many.
    Cancel {
        /// The email's id (or `--state` for all in a state).
        #[arg(required_unless_present = "state")]
        id: Option<i64>,
        #[command(flatten)]
        bulk: BulkArgs,
    },
    /// Resume sending after the reputation guard paused it (too many hard bounces or
    /// complaints lately: `tiercare status` says which, with the figures).
    ///
    /// The guard then counts only the sends after now. Without this, sending resumes by itself
    /// once the sends that tripped it are older than `[mail.reputation] window_hours`. Fix the
    /// list first (`tiercare outbox list --state failed` shows the refused addresses, which are
    /// already suppressed).
    Resume,
}

/// What `tiercare outbox retry|cancel --state ...` narrows the bulk change to.
#[derive(Debug, Args)]
pub struct BulkArgs {
    /// Only the emails of this follow-up rule (with `--state`).
    #[arg(long, value_name = "RULE", requires = "state")]
    pub rule: Option<String>,
    /// Only the emails that reached their state at or after this time (with `--state`),
    /// e.g. `2026-12-07T09:00:00Z` or `2026-12-07`.
    #[arg(long, value_name = "TIME", requires = "state")]
    pub since: Option<String>,
}

/// An outbox state, on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutboxStateArg {
    /// Waiting for its due time.
    Queued,
    /// Being sent.
    Claimed,
    /// Delivered.
    Sent,
    /// To be retried, or held by the contact policy until its next allowed time.
    Deferred,
    /// Failed for good.
    Failed,
    /// Handed over without an answer.
    Unknown,
    /// Cancelled by hand, or by the delivery gate (stale, or no longer true).
    Cancelled,
    /// Not sent: suppressed address or no consent.
    Suppressed,
}

/// `tiercare webhooks`.
#[derive(Debug, Args)]
pub struct WebhooksArgs {
    /// What to do [default: list].
    #[command(subcommand)]
    pub command: Option<WebhooksCommand>,
    /// Only this endpoint (its `name` in tiercare.toml).
    #[arg(long, global = true, value_name = "NAME")]
    pub endpoint: Option<String>,
    /// Only deliveries in this state (queued, delivered or dead), when listing.
    #[arg(long, global = true, value_name = "STATE", value_parser = ["queued", "delivered", "dead"])]
    pub state: Option<String>,
    /// At most this many deliveries, newest first, when listing.
    #[arg(long, global = true, default_value_t = 50, value_name = "N")]
    pub limit: u32,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `tiercare webhooks` subcommands.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// List deliveries, newest first (the default).
    List,
    /// Queue the dead deliveries (of --endpoint, or all) again, due now, with their event ids.
    Retry,
    /// Send one signed `webhook.test` event to an endpoint now, outside the queue, and print
    /// the answer's status (the endpoint's secret must be set, as for the daemon).
    Test {
        /// The endpoint's name.
        name: String,
    },
}

/// `tiercare unsubscribe`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["address", "token", "csv"]))]
pub struct UnsubscribeArgs {
    /// The address, or phone number (`+` and the country code), to suppress.
    #[arg(value_name = "ADDRESS")]
    pub address: Option<String>,
    /// A token from an unsubscribe link (`token=...`), verified with the secret in the
    /// environment variable that `unsubscribe_secret_env` in `[mail]` names.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// A CSV file with a header and an `email` (or `address`, or `phone`) column.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tiercare inbound`.
#[derive(Debug, Args)]
pub struct InboundArgs {
    /// The address the message was delivered to, as the mail system knows it (Postfix:
    /// `${original_recipient}`) [default: the X-Original-To, Delivered-To or To header].
    #[arg(long, value_name = "ADDRESS")]
    pub recipient: Option<String>,
    /// The time to record it at: YYYY-MM-DD or an RFC 3339 time [default: now].
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Print what was done as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tiercare users` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a staff account.
    Add {
        /// The login name (letters, digits, '.', '_', '-', '@'; at most 64).
        login: String,
        /// What the account may do: admin (everything), manager (their own customers and
        /// tasks), viewer (read only).
        #[arg(long, value_parser = ["admin", "manager", "viewer"])]
        role: String,
        /// For --role manager: the manager's id (`manager_id` of the manager import).
        #[arg(long, value_name = "ID")]
        manager: Option<String>,
        /// Read the password from the first line of standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the staff accounts.
    List {
        /// Print the accounts as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop an account from signing in, and end its sessions.
    Disable {
        /// The login name.
        login: String,
    },
    /// Let a disabled account sign in again.
    Enable {
        /// The login name.
        login: String,
    },
    /// Set a new password for an account, and end its sessions.
    Passwd {
        /// The login name.
        login: String,
        /// Read the password from the first line of standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// `tiercare owners`.
#[derive(Debug, Args)]
pub struct OwnersArgs {
    /// What to do [default: list].
    #[command(subcommand)]
    pub command: Option<OwnersCommand>,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `tiercare owners` subcommands.
#[derive(Debug, Subcommand)]
pub enum OwnersCommand {
    /// List the managers with their role, capacity, customers owned and open tasks (the default).
    List,
    /// Give every assessed customer without an owner one, by the rules' `assignment` section.
    ///
    /// Per tier, the rules name candidates (`role:NAME`, `manager:ID`) or `nobody`; each
    /// customer goes to the active candidate with the most spare capacity (capacity minus
    /// customers owned; a manager without a capacity is never full). Customers whose
    /// candidates are all full stay without an owner and are counted. A customer who has an
    /// owner keeps it. Written in one transaction.
    Assign {
        /// Decide and print, but write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Make a manager the owner of a customer, by hand (the audit row says who and why).
    Set {
        /// The customer's id.
        customer: String,
        /// The manager's id (an active manager).
        manager: String,
        /// Why: kept in the owner audit.
        #[arg(long, default_value = "")]
        reason: String,
        /// Who sets it [default: $USER].
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// Put a customer back in the public pool (no owner), by hand; assignment gives them an
    /// owner again on the daemon's next tick.
    Release {
        /// The customer's id.
        customer: String,
        /// Why: kept in the owner audit.
        #[arg(long, default_value = "")]
        reason: String,
        /// Who releases them [default: $USER].
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// The owner audit of one customer: every change of owner (assignment, reclaim, import,
    /// by hand), oldest first, with who, why and when.
    History {
        /// The customer's id.
        customer: String,
    },
}

/// `tiercare pool`.
#[derive(Debug, Args)]
pub struct PoolArgs {
    /// What to do [default: list].
    #[command(subcommand)]
    pub command: Option<PoolCommand>,
    /// As of this time: YYYY-MM-DD (the start of that day in the workspace's time zone) or an
    /// RFC 3339 time [default: now].
    #[arg(long, value_name = "TIME", global = true)]
    pub at: Option<String>,
    /// How many customers to show in each list (all of them are in --json).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `tiercare pool` subcommands.
#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// List the customers without an owner (most valuable first) and the countdowns to
    /// reclaim, soonest first (the default).
    List,
    /// Warn the owners whose customers are due back in the pool soon, and reclaim the
    /// customers whose warned period is over: unowned, with an audit row (`reclaimed: no
    /// follow-up for 31 days`), in one transaction. Never a pinned or protected customer. A
    /// warning always comes first: a customer is reclaimed at the earliest `warn_before` after
    /// their warning. Run it daily from cron when no daemon runs (the daemon does it itself).
    Reclaim,
}

/// `tiercare managers` subcommands.
#[derive(Debug, Subcommand)]
pub enum ManagersCommand {
    /// Put a manager on leave from --from until --until: no new customers, tasks or digest then.
    ///
    /// Replaces any leave recorded before; without --until the leave lasts until ended (give
    /// --until equal to --from, or `managers leave ID --end`). Their open work stays theirs:
    /// move it with `managers reassign`.
    Leave {
        /// The manager's id (`manager_id` of the manager import).
        id: String,
        /// First moment of the leave: YYYY-MM-DD (start of that day in the workspace's zone) or
        /// an RFC 3339 time [default: now].
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// End of the leave (exclusive), in the same forms [default: until ended].
        #[arg(long, value_name = "TIME", conflicts_with = "end")]
        until: Option<String>,
        /// End the manager's leave now.
        #[arg(long)]
        end: bool,
        /// Print what was done as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Mark a manager inactive: no new customers, tasks or digest until `managers activate`.
    ///
    /// A manager import with an `active` column can change it again.
    Deactivate {
        /// The manager's id.
        id: String,
        /// Print what was done as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Mark a manager active again.
    Activate {
        /// The manager's id.
        id: String,
        /// Print what was done as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Move a manager's open tasks (and with --customers the customers they own) to others.
    ///
    /// With --to, everything goes to that manager (who must be active and not on leave); with
    /// --auto, each task or customer goes to the available manager of the same role with the
    /// fewest open tasks (any available manager when nobody else has the role). Written in one
    /// transaction; with nobody available nothing is written (exit 2).
    Reassign {
        /// The manager whose work moves.
        id: String,
        /// The manager who takes it all.
        #[arg(
            long,
            value_name = "ID",
            conflicts_with = "auto",
            required_unless_present = "auto"
        )]
        to: Option<String>,
        /// Spread it over the available managers of the same role.
        #[arg(long)]
        auto: bool,
        /// Move the customers they own too.
        #[arg(long)]
        customers: bool,
        /// Print what was done as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Decide and queue the managers' digests due at --at (what the daemon does every tick).
    ///
    /// A manager's digest is due on the working days of `reminders.digest` from its `at` on the
    /// manager's clock (their `timezone`, else the workspace's); it is decided once per manager
    /// per local day (kept in the database), not sent when empty, and not sent to a manager
    /// without an e-mail address (a warning). `tiercare send` delivers what was queued.
    Digest {
        /// The time to decide at: YYYY-MM-DD or an RFC 3339 time [default: now].
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Print what was decided as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `tiercare coupons`.
#[derive(Debug, Args)]
pub struct CouponsArgs {
    /// What to do [default: status].
    #[command(subcommand)]
    pub command: Option<CouponsCommand>,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `tiercare coupons` subcommands.
#[derive(Debug, Subcommand)]
pub enum CouponsCommand {
    /// Add single-use codes from FILE to POOL.
    ///
    /// FILE has one code per line, or codes in the first column of a CSV (a header `code` is
    /// skipped); blank lines and `#` comments are ignored. A code twice in the file, or already
    /// in another pool, is rejected with its row (exit 1; the other codes are added); importing
    /// the same file again adds nothing. Written in one transaction.
    Import {
        /// The pool's name (as the rules' `coupons:` section and `email: { coupon: POOL }` say).
        pool: String,
        /// The file of codes.
        file: PathBuf,
    },
    /// Every pool's codes by state (the default): available, issued, redeemed, expired.
    Status {
        /// As of this time: YYYY-MM-DD or an RFC 3339 time [default: now].
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// The same as `status`.
    List {
        /// As of this time: YYYY-MM-DD or an RFC 3339 time [default: now].
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
}

/// `tiercare report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Write the report as one HTML file here (such as report.html) instead of printing the
    /// summary.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Report as of this time: YYYY-MM-DD (the start of that day in the workspace's time zone)
    /// or an RFC 3339 time [default: now]. Uses the latest assessment up to then, and counts
    /// the work and e-mails as they stood then.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Print every figure as JSON (with --out, the file is written too).
    #[arg(long)]
    pub json: bool,
}

/// `tiercare customers`.
#[derive(Debug, Args)]
pub struct CustomersArgs {
    /// Only customers in this tier (repeat for several).
    #[arg(long, value_name = "TIER")]
    pub tier: Vec<String>,
    /// Only customers in this segment: SEGMENT (in any segment set) or SET=SEGMENT (repeat for
    /// several: a customer in any of them).
    #[arg(long, value_name = "SEGMENT")]
    pub segment: Vec<String>,
    /// Only customers owned by this manager (external id or name).
    #[arg(long, value_name = "MANAGER")]
    pub owner: Option<String>,
    /// Only customers whose id, name or e-mail address contains TEXT (ignoring ASCII case).
    /// From 3 characters on it is looked up in the search index; 1 or 2 characters read the
    /// customers one by one.
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Only customers with no interaction in the N days before --at (never contacted included).
    #[arg(long, value_name = "DAYS", conflicts_with = "contacted_within")]
    pub not_contacted_for: Option<u32>,
    /// Only customers with an interaction in the N days before --at.
    #[arg(long, value_name = "DAYS")]
    pub contacted_within: Option<u32>,
    /// Only customers whose custom attribute NAME equals VALUE (compared as text; true/false
    /// for booleans).
    #[arg(long, value_name = "NAME=VALUE")]
    pub attr: Option<String>,
    /// Only customers for whom this condition holds, in the rules' expression language: every
    /// feature (`tiercare functions`), `tier`, `segments.SET` and `scores.NAME`, e.g.
    /// `days_since_last_contact > 60 && tier == "A"`.
    #[arg(long = "where", value_name = "EXPR")]
    pub condition: Option<String>,
    /// Sort by a column (id, name, email, tier, owner, orders_total, revenue_total,
    /// last_order_at, last_contact_at), a feature or an expression; `-` before it sorts
    /// descending (`--sort -revenue_window`). Customers without a value come last. Default: id
    /// order (import order).
    #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// List at most N customers [default: 50 for the table; all for --csv and --jsonl].
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Skip the first N matching customers (for paging).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub offset: usize,
    /// Compute features at this time: YYYY-MM-DD (the start of that day in the workspace's time
    /// zone) or an RFC 3339 time [default: now]. --not-contacted-for and --contacted-within
    /// count back from it.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Print CSV (a header row, then one row per customer).
    #[arg(long, conflicts_with = "jsonl")]
    pub csv: bool,
    /// Print one JSON object per customer and line (with segments, scores and attributes).
    #[arg(long)]
    pub jsonl: bool,
}

/// `tiercare plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// How many days to plan, from --from.
    #[arg(long, default_value_t = 30, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub days: u32,
    /// Plan from this time: YYYY-MM-DD (the start of that day in the workspace's time zone) or
    /// an RFC 3339 time [default: now]. Features are computed at this time.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Print the whole summary as JSON: per day, per rule (with example customers), per tier,
    /// tasks per assignee, skipped and moved counts, rule errors.
    #[arg(long)]
    pub json: bool,
}

/// `tiercare followups`.
#[derive(Debug, Subcommand)]
pub enum FollowupsCommand {
    /// Record the follow-ups due before --until into the ledger: what the daemon does on each
    /// tick.
    ///
    /// Plans [--from, --until) as `tiercare plan` does and records every planned follow-up
    /// (emails are rendered from templates/ and queued in the outbox, for `tiercare send`; an
    /// email without a valid address or whose template fails is skipped with the reason; tasks
    /// are created and attributes set at once) and
    /// every occurrence the contact policy removed (recorded as skipped, so it is not planned
    /// again). Each occurrence has a key RULE:TIME:CUSTOMER, so recording the same range again
    /// creates nothing new. Customers without an owner first get one by the rules'
    /// `assignment` section (as `tiercare owners assign`), so tasks for `owner` reach them; a
    /// task nobody can take (still no owner, no active manager with the role) is recorded as
    /// skipped. The follow-ups are written in one transaction.
    /// Exits 1 when a rule's condition failed for some customers.
    Record(RecordArgs),
}

/// `tiercare followups record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Record what is due before this time: YYYY-MM-DD (the start of that day in the
    /// workspace's time zone) or an RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub until: String,
    /// The start of the range (the previous tick) [default: one day before --until].
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Print what was recorded as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tiercare run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// One pass (reassess if due, record due follow-ups, send due mail), then exit: for cron
    /// or a systemd timer.
    #[arg(long)]
    pub once: bool,
    /// Run on a simulated clock starting at TIME (YYYY-MM-DD or RFC 3339) instead of the real
    /// time: to watch a month of schedule go by. It really records and sends.
    #[arg(long, value_name = "TIME")]
    pub simulate_from: Option<String>,
    /// With --simulate-from: simulated seconds per real second (86400 = a day per second).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1.0,
        requires = "simulate_from"
    )]
    pub speed: f64,
}

/// `tiercare serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen on ADDR (such as 127.0.0.1:8025) instead of `[http] listen`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

/// `tiercare status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tiercare tasks`.
#[derive(Debug, Args)]
pub struct TasksArgs {
    /// What to do [default: list].
    #[command(subcommand)]
    pub command: Option<TasksCommand>,
    /// Only this manager's tasks, when listing: their manager_id or their name (any case). A
    /// manager the workspace does not have is an error, with the managers it has.
    #[arg(long, global = true, value_name = "ID|NAME")]
    pub owner: Option<String>,
    /// When listing, show at most N tasks (0: all) [default: 50 in the table, all with
    /// --json]; the heading still counts every task, and a last line says how many were left
    /// out.
    #[arg(long, global = true, value_name = "N")]
    pub limit: Option<usize>,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `tiercare tasks` subcommands.
#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// List tasks: overdue first, then by due time (the default).
    List {
        /// Which tasks: pending (open and snoozed), actionable (open now), snoozed, done, all.
        #[arg(long, value_enum, default_value_t = TaskViewArg::Pending)]
        view: TaskViewArg,
        /// Only this customer's tasks.
        #[arg(long, value_name = "ID")]
        customer: Option<String>,
    },
    /// Mark a task done.
    Done {
        /// The task's id (the first column of `tiercare tasks`).
        id: i64,
        /// What was done: added to the task's notes.
        #[arg(long)]
        note: Option<String>,
        /// Who did it [default: $USER].
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// Put a task off: it is due again at --until.
    Snooze {
        /// The task's id.
        id: i64,
        /// Until when: YYYY-MM-DD (the start of that day in the workspace's time zone) or an
        /// RFC 3339 time; must be in the future.
        #[arg(long, value_name = "TIME")]
        until: String,
    },
}

/// Which tasks `tiercare tasks list` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TaskViewArg {
    /// Open and snoozed.
    Pending,
    /// Open now (snoozes ended included).
    Actionable,
    /// Still snoozed.
    Snoozed,
    /// Done, latest first.
    Done,
    /// Every task.
    All,
}

/// `tiercare check` and `tiercare test`.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// The rule folder [default: the workspace's rules/].
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,

    /// The care-email template folder `check` checks [default: the workspace's templates/;
    /// with --rules DIR, DIR/templates when it exists].
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tiercare assess`.
#[derive(Debug, Args)]
pub struct AssessArgs {
    /// Decide and print, but write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Assess as of this time: YYYY-MM-DD (the start of that day in the workspace's time zone)
    /// or an RFC 3339 time [default: now].
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,

    /// Print the result as JSON: counts per tier and per segment, moves, rule errors.
    #[arg(long)]
    pub json: bool,
}

/// `tiercare explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The customer's id (customer_id in your files).
    pub customer: String,

    /// Explain as of this time (as for `assess --at`) [default: now].
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,

    /// Print the explanation as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tiercare pin`.
#[derive(Debug, Args)]
pub struct PinArgs {
    /// The customer's id.
    pub customer: String,

    /// The tier to pin (one of the rules' tier ids).
    pub tier: String,

    /// Why: shown in explain and kept in the history.
    #[arg(long)]
    pub reason: String,

    /// The pin expires at this time (YYYY-MM-DD or RFC 3339) [default: never].
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Who pins [default: $USER].
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

/// `tiercare unpin`.
#[derive(Debug, Args)]
pub struct UnpinArgs {
    /// The customer's id.
    pub customer: String,
}

/// `tiercare functions`.
#[derive(Debug, Args)]
pub struct FunctionsArgs {
    /// Print the catalog as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tiercare init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to create the workspace [default: --workspace, TIERCARE_HOME or the current directory].
    pub dir: Option<PathBuf>,

    /// The workspace's IANA time zone, for times in imported files that carry no offset.
    #[arg(long, default_value = "UTC", value_name = "ZONE")]
    pub timezone: String,

    /// Print what was created as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What an import file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// customer_id, name, email, phone, birthday, region, owner, timezone, consent_*; other columns become attributes.
    Customers,
    /// order_id, customer_id, ordered_at, amount (or sku, description, quantity, unit_price lines).
    Orders,
    /// interaction_id, customer_id, kind, occurred_at, by, note.
    Interactions,
    /// complaint_id, customer_id, opened_at, resolved_at, severity, subject.
    Complaints,
    /// feedback_id, customer_id, given_at, score, comment.
    Feedback,
    /// manager_id, name, email, role, capacity, active, timezone.
    Managers,
}

/// A data file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Delimited text with a header line.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// `tiercare import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// What the file holds.
    #[arg(value_enum)]
    pub kind: Kind,

    /// The data file (CSV or JSON Lines, optionally .gz).
    pub file: PathBuf,

    /// A YAML mapping for files whose columns differ from tiercare's.
    #[arg(long, short = 'm', value_name = "FILE")]
    pub mapping: Option<PathBuf>,

    /// Refuse the whole file on the first rejected row.
    #[arg(long)]
    pub strict: bool,

    /// The file's format, when its name does not say.
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `tiercare demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to create the demo workspace.
    #[arg(default_value = "tiercare-demo")]
    pub dir: PathBuf,

    /// How many customers to generate (orders: about ten each).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub customers: u64,

    /// Seed for the random generator: the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// The last day of the generated history, YYYY-MM-DD [default: the day --days + 1 days
    /// before today (UTC), so the simulated days end where today begins; the same day always
    /// gives the same data].
    #[arg(long, value_name = "DATE")]
    pub end: Option<chrono::NaiveDate>,

    /// After assessing, run the daemon for this many days after --end in simulated time (a
    /// pass every six hours): nightly reassessments, follow-ups recorded, tasks created and
    /// care emails delivered through the workspace's transport (by default one .eml file per
    /// email in DIR/mail/). 0 skips it.
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub days: u32,

    /// Only write the CSV files; do not import or assess them.
    #[arg(long)]
    pub no_import: bool,

    /// No progress display. Without it, the generation and the simulated days show their
    /// progress on stderr ("simulating … day 12/30"), and only when stderr is a terminal.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Print the import summaries and the assessment as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}
