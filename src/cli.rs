//! The command line: every command, flag and its help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  the data had problems: rows were rejected (the rest was imported)
  2  nothing was done: bad usage, a missing or unreadable file, an invalid mapping or workspace,
     a locked or foreign database, or a --strict import that met a bad row

Environment:
  TIERCARE_HOME   the workspace, when --workspace is not given (default: the current directory)
  TIERCARE_LOG    log filter for diagnostics on stderr, e.g. `info` or `tiercare=debug`
  NO_COLOR        set to disable colour

Start with `tiercare demo` for a workspace full of synthetic data, or `tiercare init` and
`tiercare import` for your own.";

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

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
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
    /// columns with Rhai expressions, skips rows and groups order lines.
    ///
    /// The import is one transaction: it is written whole or not at all. Re-importing the same
    /// file changes nothing (records are matched by their ids). Rows with problems are rejected
    /// and listed with their line, column and reason; --strict refuses the whole file instead.
    Import(ImportArgs),
    /// Create a workspace filled with realistic synthetic data, for trying tiercare.
    ///
    /// Generates managers, customers (with a Pareto spread of spending), two years of orders,
    /// interactions, complaints and feedback as CSV files in DIR/data/, then imports them. The
    /// same --seed and --end give the same data; running it again on the same folder re-imports
    /// and changes nothing.
    Demo(DemoArgs),
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
    /// manager_id, name, email, role, capacity, active.
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

    /// The last day of the generated history, YYYY-MM-DD [default: today].
    #[arg(long, value_name = "DATE")]
    pub end: Option<chrono::NaiveDate>,

    /// Only write the CSV files; do not import them.
    #[arg(long)]
    pub no_import: bool,

    /// Print the import summaries as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}
