//! Everything the CLI prints: colours, progress bars and summaries.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tiercare_scheduler::ingest::ImportReport;

use crate::cli::ColorChoice;
// The number formats, at their earlier path.
pub use crate::format::{money, thousands};

/// How many rejected rows the human summary lists.
const LISTED_REJECTIONS: usize = 20;

/// The CLI's printer.
pub struct Output {
    color_out: bool,
    color_err: bool,
    /// The workspace's zone, for the times of `--json` (UTC until known).
    timezone: std::cell::Cell<Option<chrono_tz::Tz>>,
    /// No progress bars (`demo --quiet`).
    quiet: std::cell::Cell<bool>,
}

impl Output {
    pub fn new(choice: ColorChoice) -> Output {
        let allowed = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let pick = |terminal: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => allowed && terminal,
        };
        Output {
            color_out: pick(std::io::stdout().is_terminal()),
            color_err: pick(std::io::stderr().is_terminal()),
            timezone: std::cell::Cell::new(None),
            quiet: std::cell::Cell::new(false),
        }
    }

    /// Whether diagnostics on stderr are coloured.
    pub fn color_err(&self) -> bool {
        self.color_err
    }

    fn paint(on: bool, code: &str, text: &str) -> String {
        if on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// An error that stopped the command, on stderr.
    pub fn error(&self, message: &str) {
        eprintln!(
            "{} {message}",
            Self::paint(self.color_err, "1;31", "error:")
        );
    }

    /// A warning, on stderr.
    pub fn warn(&self, message: &str) {
        eprintln!(
            "{} {message}",
            Self::paint(self.color_err, "1;33", "warning:")
        );
    }

    /// Diagnostics already rendered (they carry their own colour), on stderr.
    pub fn diagnostics(&self, rendered: &str) {
        eprint!("{rendered}");
    }

    /// A line of normal output, on stdout.
    pub fn line(&self, text: &str) {
        emit(text);
    }

    /// Text on stdout exactly as it is (no newline added): CSV with its own line ends.
    pub fn raw(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        if let Err(err) = stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
        {
            if err.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("error: cannot write to stdout: {err}");
            std::process::exit(2);
        }
    }

    /// A heading on stdout.
    pub fn heading(&self, text: &str) {
        emit(&Self::paint(self.color_out, "1", text));
    }

    /// `text` in the ANSI style `code` (such as `"1;31"`) when stdout is coloured, else as it is.
    pub fn style(&self, code: &str, text: &str) -> String {
        Self::paint(self.color_out, code, text)
    }

    /// A JSON value on stdout, in the `--json` vocabulary (docs/json.md): times as RFC 3339
    /// strings in the workspace's zone, tiers named `tier`.
    pub fn json(&self, value: &impl serde::Serialize) -> anyhow::Result<()> {
        let mut value = serde_json::to_value(value)?;
        crate::json::vocabulary(&mut value, self.timezone.get().unwrap_or(chrono_tz::UTC));
        emit(&serde_json::to_string_pretty(&value)?);
        Ok(())
    }

    /// The zone `--json` times are written in (the workspace's).
    pub fn set_timezone(&self, zone: chrono_tz::Tz) {
        self.timezone.set(Some(zone));
    }

    /// Hides every later progress bar (`--quiet`).
    pub fn set_quiet(&self) {
        self.quiet.set(true);
    }

    /// A byte-based progress bar on stderr, hidden when stderr is not a terminal or after
    /// [`Output::set_quiet`].
    pub fn progress_bar(&self, label: &str, total: u64) -> ProgressBar {
        if self.quiet.get() || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {percent:>3}% {msg} ({elapsed}, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// The human summary of one import, on stdout; rejected rows on stderr.
    pub fn import_report(&self, report: &ImportReport) {
        let seconds = report.elapsed_ms as f64 / 1000.0;
        let rate = if seconds > 0.0 {
            format!(", {} rows/s", thousands(report.read as f64 / seconds))
        } else {
            String::new()
        };
        self.heading(&format!(
            "imported {} from {} in {seconds:.1} s{rate}",
            report.kind,
            report.file.display()
        ));
        self.line(&format!(
            "  rows read     {:>12}",
            thousands(report.read as f64)
        ));
        let reasons: Vec<String> = report
            .skipped_by_reason
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(reason, n)| format!("{reason}: {}", thousands(*n as f64)))
            .collect();
        let reasons = if reasons.is_empty() {
            String::new()
        } else {
            format!("  ({})", reasons.join(", "))
        };
        self.line(&format!(
            "  skipped       {:>12}{reasons}",
            thousands(report.skipped as f64)
        ));
        self.line(&format!(
            "  rejected      {:>12}",
            thousands(report.rejected as f64)
        ));
        let lines = report
            .order_lines
            .map(|n| format!(" from {} lines", thousands(n as f64)))
            .unwrap_or_default();
        self.line(&format!(
            "  {:<13} {:>12} new, {} updated, {} unchanged{lines}",
            report.kind,
            thousands(report.imported as f64),
            thousands(report.updated as f64),
            thousands(report.unchanged as f64),
        ));
        if report.customers_created > 0 {
            self.line(&format!(
                "  customers created {:>8}",
                thousands(report.customers_created as f64)
            ));
        }
        if report.coupons.redeemed > 0 || report.coupons.unknown > 0 {
            self.line(&format!(
                "  coupons       {:>12} redeemed, {} unknown codes (issued to no one, or to another customer)",
                thousands(report.coupons.redeemed as f64),
                thousands(report.coupons.unknown as f64)
            ));
        }
        if report.kept_forgotten > 0 {
            self.line(&format!(
                "  forgotten     {:>12} kept forgotten (personal fields not imported)",
                thousands(report.kept_forgotten as f64)
            ));
        }
        for row in report.rejections.iter().take(LISTED_REJECTIONS) {
            self.warn(&format!("{}:{row}", report.file.display()));
        }
        if report.rejected as usize > LISTED_REJECTIONS {
            self.warn(&format!(
                "... and {} more rejected rows (--json lists up to {})",
                report.rejected as usize - LISTED_REJECTIONS,
                tiercare_scheduler::ingest::MAX_LISTED_REJECTIONS
            ));
        }
    }
}

/// Writes one line to stdout. When the reader has gone (`tiercare functions | head`), the
/// program ends quietly, as Unix tools do, instead of panicking.
fn emit(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = writeln!(stdout, "{text}") {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {err}");
        std::process::exit(2);
    }
}
