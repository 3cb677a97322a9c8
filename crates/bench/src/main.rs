//! `tiercare-bench`: end-to-end benchmarks of the release `tiercare` binary, side by side with
//! pandas, DuckDB and polars.
//!
//! ```sh
//! cargo run --release -p tiercare-bench -- [--sizes retail,100k,1m] [--scaling 10k,100k,1m] [--runs 3]
//! ```
//!
//! It builds the release binary, generates demo data once per size, then for every run imports it
//! into a fresh workspace and assesses it, timing each command (wall time) and reading its peak
//! resident memory from `wait4`'s rusage. Figures are medians over the runs. On the Online Retail
//! file (uncompressed once, untimed) tiercare runs in alternating rounds with the lean scripts of
//! `crates/bench/python/` (pandas, DuckDB persisting to a file, polars), each checked to give
//! every customer tiercare's tier; on the demo sizes with `crates/bench/pandas/tiering.py`. The
//! Python side runs in a virtual environment the runner creates under `target/bench-venv` with
//! the pinned versions of `crates/bench/python/requirements.txt`. Scratch workspaces live in the
//! system temp folder and are deleted at the end.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use serde_json::Value;

/// The end of the demo history, fixed so every run generates the same data.
const DEMO_END: &str = "2026-11-01";
/// When demo workspaces are assessed: the start of the day after the history.
const DEMO_AT: &str = "2026-11-02";
/// When the Online Retail workspace is assessed: the day after its last invoice.
const RETAIL_AT: &str = "2011-12-10";

#[derive(Debug, Parser)]
#[command(
    about = "End-to-end benchmarks of the release tiercare binary, with pandas, DuckDB and polars side by side"
)]
struct Args {
    /// Sizes to run end to end: `retail` (the Online Retail file, when present) and demo sizes
    /// such as `10k`, `100k`, `1m` (customers; about ten orders each).
    #[arg(long, value_delimiter = ',', default_value = "retail,100k,1m")]
    sizes: Vec<String>,
    /// Demo sizes for the assessment scaling curve (sizes not run end to end are imported
    /// untimed first).
    #[arg(long, value_delimiter = ',', default_value = "10k,100k,1m")]
    scaling: Vec<String>,
    /// Runs per figure (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Run pandas on the demo orders of these sizes too (`none` to skip).
    #[arg(long, value_delimiter = ',', default_value = "1m")]
    pandas_demo: Vec<String>,
    /// The Online Retail file [default: ../shared/data/online-retail/online_retail.csv.gz
    /// beside the checkout].
    #[arg(long)]
    retail: Option<PathBuf>,
    /// Scratch folder [default: a new folder in the system temp folder].
    #[arg(long)]
    work: Option<PathBuf>,
    /// Keep the scratch folder.
    #[arg(long)]
    keep: bool,
    /// Skip pandas, DuckDB and polars (no virtual environment is made).
    #[arg(long)]
    no_pandas: bool,
    /// Time this tiercare binary instead of building and timing `target/release/tiercare`
    /// (for comparing two builds, or when the release build is already there).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Alternating rounds of the Online Retail comparison (tiercare, pandas, DuckDB, polars).
    #[arg(long, default_value_t = 7)]
    retail_runs: usize,
}

/// One command's cost.
#[derive(Debug, Clone)]
struct Sample {
    seconds: f64,
    /// User + system CPU time: what the work cost, however busy the machine was.
    cpu: f64,
    peak_kib: u64,
    stdout: String,
}

impl Sample {
    /// This process and then `next`, as one step: times added, the larger peak.
    fn then(&self, next: &Sample) -> Sample {
        Sample {
            seconds: self.seconds + next.seconds,
            cpu: self.cpu + next.cpu,
            peak_kib: self.peak_kib.max(next.peak_kib),
            stdout: String::new(),
        }
    }
}

/// What one process did, by name, over the runs.
#[derive(Debug, Default)]
struct Figures {
    samples: BTreeMap<String, Vec<Sample>>,
}

impl Figures {
    fn add(&mut self, step: &str, sample: Sample) {
        self.samples
            .entry(step.to_owned())
            .or_default()
            .push(sample);
    }

    fn median(&self, step: &str) -> f64 {
        let mut values: Vec<f64> = self.samples[step].iter().map(|s| s.seconds).collect();
        median(&mut values)
    }

    fn median_cpu(&self, step: &str) -> f64 {
        let mut values: Vec<f64> = self.samples[step].iter().map(|s| s.cpu).collect();
        median(&mut values)
    }

    fn peak_mib(&self, step: &str) -> f64 {
        self.samples[step]
            .iter()
            .map(|s| s.peak_kib)
            .max()
            .unwrap_or(0) as f64
            / 1024.0
    }

    /// A line: median wall time, a rate when `items` is given, peak memory, and the runs.
    fn line(&self, label: &str, step: &str, items: Option<(f64, &str)>) -> String {
        let seconds = self.median(step);
        let rate = items
            .map(|(n, unit)| format!("{:>12} {unit}/s", thousands(n / seconds)))
            .unwrap_or_default();
        let runs: Vec<String> = self.samples[step]
            .iter()
            .map(|s| format!("{:.2}", s.seconds))
            .collect();
        format!(
            "  {label:<34} {seconds:>8.2} s {rate:<26} cpu {:>7.2} s  peak {:>6.0} MiB  runs [{}]",
            self.median_cpu(step),
            self.peak_mib(step),
            runs.join(", ")
        )
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "?".to_owned())
}

/// Runs `command` to completion, timing it and reading its peak memory; fails unless it exits 0.
fn measure(command: &mut Command, scratch: &Path) -> Result<Sample> {
    let out_path = scratch.join("last.out");
    let err_path = scratch.join("last.err");
    command
        .stdin(Stdio::null())
        .stdout(File::create(&out_path)?)
        .stderr(File::create(&err_path)?);
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let pid = libc::pid_t::try_from(child.id())?;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain old data, zero is a valid value of it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for; the pointers are to live locals.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = started.elapsed().as_secs_f64();
    ensure!(waited == pid, "wait4 failed for {command:?}");
    let stdout = fs::read_to_string(&out_path)?;
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let stderr = fs::read_to_string(&err_path).unwrap_or_default();
        bail!("{command:?} failed ({status}):\n{stdout}\n{stderr}");
    }
    let time = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Sample {
        seconds,
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
        // Linux reports ru_maxrss in KiB.
        peak_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        stdout,
    })
}

fn json(sample: &Sample) -> Result<Value> {
    serde_json::from_str(&sample.stdout).context("the command's --json output")
}

/// Customers in a demo size: `10k`, `100k`, `1m`, or a plain number.
fn demo_customers(size: &str) -> Result<u64> {
    let lower = size.to_ascii_lowercase();
    let (digits, factor) = if let Some(d) = lower.strip_suffix('k') {
        (d, 1_000)
    } else if let Some(d) = lower.strip_suffix('m') {
        (d, 1_000_000)
    } else {
        (lower.as_str(), 1)
    };
    let n: u64 = digits
        .parse()
        .with_context(|| format!("unknown size `{size}`: use retail, 10k, 100k, 1m or a number"))?;
    Ok(n * factor)
}

struct Bench {
    root: PathBuf,
    tiercare: PathBuf,
    work: PathBuf,
    runs: usize,
    python: Option<PathBuf>,
}

impl Bench {
    fn tiercare(&self, workspace: &Path) -> Command {
        let mut command = Command::new(&self.tiercare);
        command
            .arg("--workspace")
            .arg(workspace)
            .arg("--color")
            .arg("never");
        command
    }

    fn run(&self, command: &mut Command) -> Result<Sample> {
        measure(command, &self.work)
    }

    /// `tiercare init` of a new workspace in `dir` (an old one there is removed first).
    fn fresh_workspace(&self, dir: &Path, timezone: &str) -> Result<Sample> {
        if dir.exists() {
            fs::remove_dir_all(dir)?;
        }
        self.run(
            Command::new(&self.tiercare)
                .arg("init")
                .arg(dir)
                .args(["--timezone", timezone]),
        )
    }

    /// A fresh workspace in `dir` with the Online Retail example's `rules` (file names), `orders`
    /// imported with the `mapping` (relative to the checkout), then assessed at `at`: the three
    /// samples (init, import, assess).
    fn import_and_assess(
        &self,
        dir: &Path,
        (timezone, rules): (&str, &[&str]),
        orders: &Path,
        mapping: &str,
        at: &str,
    ) -> Result<(Sample, Sample, Sample)> {
        let init = self.abc_workspace(dir, timezone, rules)?;
        let import = self.run(
            self.tiercare(dir)
                .args(["import", "orders"])
                .arg(orders)
                .arg("--mapping")
                .arg(self.root.join(mapping))
                .arg("--json"),
        )?;
        let assess = self.run(self.tiercare(dir).args(["assess", "--at", at, "--json"]))?;
        Ok((init, import, assess))
    }

    /// A new workspace with these files of the Online Retail example's rules instead of the
    /// default ones (only what the job compared needs: no growth fits for an ABC job); the
    /// sample of its `init`.
    fn abc_workspace(&self, dir: &Path, timezone: &str, files: &[&str]) -> Result<Sample> {
        let init = self.fresh_workspace(dir, timezone)?;
        let rules = dir.join("rules");
        fs::remove_dir_all(&rules)?;
        fs::create_dir(&rules)?;
        for file in files {
            fs::copy(
                self.root.join("examples/online-retail/rules").join(file),
                rules.join(file),
            )?;
        }
        Ok(init)
    }

    fn pandas(&self, format: &str, at: i64, input: &Path) -> Result<Sample> {
        let python = self.python.as_ref().context("pandas is off")?;
        self.run(
            Command::new(python)
                .arg(self.root.join("crates/bench/pandas/tiering.py"))
                .args(["--format", format, "--at", &at.to_string(), "--input"])
                .arg(input)
                .arg("--output")
                .arg(self.work.join("pandas-tiers.csv")),
        )
    }

    /// Online Retail, the comparison: tiercare (`init`, `import orders --mapping`, `assess`)
    /// against the lean pandas, DuckDB and polars scripts of `crates/bench/python/`, on the same
    /// uncompressed CSV, in alternating rounds (each round starts with the next side, so none
    /// always runs on a cache the other left warm). Every script's tiers are checked against
    /// tiercare's, customer by customer; the ratios tiercare / rival are printed.
    fn retail(&self, file: &Path, runs: usize) -> Result<()> {
        let csv = self.uncompressed(file)?;
        println!(
            "\n== Online Retail ({}, {} MB uncompressed), {runs} alternating rounds, load average {}",
            csv.display(),
            fs::metadata(&csv)?.len() / 1_000_000,
            load_average()
        );
        let mut figures = Figures::default();
        let dir = self.work.join("retail");
        let mut report = Value::Null;
        let sides = 1 + if self.python.is_some() {
            RIVALS.len()
        } else {
            0
        };
        for round in 0..runs {
            for turn in 0..sides {
                match (round + turn) % sides {
                    0 => {
                        let (init, import, assess) = self.import_and_assess(
                            &dir,
                            ("Europe/London", &["tiers.yaml"]),
                            &csv,
                            "examples/online-retail/orders.mapping.yaml",
                            RETAIL_AT,
                        )?;
                        report = json(&assess)?;
                        figures.add("tiercare", init.then(&import).then(&assess));
                        figures.add("init", init);
                        figures.add("import", import);
                        figures.add("assess", assess);
                    }
                    side => {
                        let (name, _) = RIVALS[side - 1];
                        let sample = self.rival(name, &csv)?;
                        figures.add(name, sample);
                    }
                }
            }
        }
        let rows = json(&figures.samples["import"][0])?["read"]
            .as_f64()
            .unwrap_or(0.0);
        let customers = report["customers"].as_f64().unwrap_or(0.0);
        println!("{}", figures.line("init", "init", None));
        println!(
            "{}",
            figures.line(
                "import orders (541,909 lines)",
                "import",
                Some((rows, "rows"))
            )
        );
        println!(
            "{}",
            figures.line("assess (ABC)", "assess", Some((customers, "customers")))
        );
        println!(
            "{}",
            figures.line("tiercare init + import + assess", "tiercare", None)
        );
        if self.python.is_some() {
            let ours = self.tiers_of(&dir)?;
            for (name, label) in RIVALS {
                println!("{}", figures.line(label, name, None));
            }
            for (name, _) in RIVALS {
                let checked = agree_by_customer(
                    &ours,
                    &self.work.join(format!("{name}-tiers.csv")),
                    &json(&figures.samples[name][0])?,
                )
                .with_context(|| format!("{name} and tiercare disagree"))?;
                println!(
                    "  tiercare / {name:<6} = {:.2} wall, {:.2} cpu   ({checked})",
                    figures.median("tiercare") / figures.median(name),
                    figures.median_cpu("tiercare") / figures.median_cpu(name),
                );
            }
        }
        println!("  load average after: {}", load_average());
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    /// The Online Retail CSV uncompressed in the scratch folder (untimed), or `file` itself.
    fn uncompressed(&self, file: &Path) -> Result<PathBuf> {
        if file.extension().is_none_or(|e| e != "gz") {
            return Ok(file.to_owned());
        }
        let csv = self.work.join("online_retail.csv");
        if !csv.exists() {
            let status = Command::new("gzip")
                .arg("-dc")
                .arg(file)
                .stdout(File::create(&csv)?)
                .status()
                .context("cannot run gzip")?;
            ensure!(status.success(), "gzip -dc {} failed", file.display());
        }
        Ok(csv)
    }

    /// One run of a rival script on the Online Retail CSV; its tiers go to `NAME-tiers.csv`.
    fn rival(&self, name: &str, csv: &Path) -> Result<Sample> {
        let python = self.python.as_ref().context("python is off")?;
        let mut command = Command::new(python);
        command
            .arg(self.root.join(format!("crates/bench/python/abc_{name}.py")))
            .arg("--input")
            .arg(csv)
            .args(["--at", RETAIL_AT, "--output"])
            .arg(self.work.join(format!("{name}-tiers.csv")));
        if name == "duckdb" {
            // A new database file each run, as tiercare gets a new workspace.
            let database = self.work.join("retail.duckdb");
            fs::remove_file(&database).ok();
            command.arg("--database").arg(&database);
        }
        self.run(&mut command)
    }

    /// Every customer's tier in a workspace, from `tiercare customers --csv`.
    fn tiers_of(&self, workspace: &Path) -> Result<BTreeMap<String, String>> {
        let sample = self.run(self.tiercare(workspace).args(["customers", "--csv"]))?;
        let mut reader = csv::Reader::from_reader(sample.stdout.as_bytes());
        let headers = reader.headers()?.clone();
        let column = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .with_context(|| format!("customers --csv has no `{name}` column"))
        };
        let (id, tier) = (column("id")?, column("tier")?);
        let mut tiers = BTreeMap::new();
        for record in reader.records() {
            let record = record?;
            tiers.insert(record[id].to_owned(), record[tier].to_owned());
        }
        Ok(tiers)
    }

    /// Generates a demo's CSV files once (untimed); returns the data folder.
    fn demo_data(&self, size: &str) -> Result<PathBuf> {
        let customers = demo_customers(size)?;
        let dir = self.work.join(format!("gen-{customers}"));
        if !dir.join("data/orders.csv").exists() {
            self.run(
                Command::new(&self.tiercare)
                    .arg("demo")
                    .arg(&dir)
                    .args(["--customers", &customers.to_string(), "--end", DEMO_END])
                    .arg("--no-import"),
            )?;
        }
        Ok(dir.join("data"))
    }

    /// Imports a demo into a fresh workspace, each file timed under `import <kind>`.
    fn import_demo(&self, data: &Path, dir: &Path, figures: &mut Figures) -> Result<()> {
        self.fresh_workspace(dir, "UTC")?;
        for kind in [
            "managers",
            "customers",
            "orders",
            "interactions",
            "complaints",
            "feedback",
        ] {
            let sample = self.run(
                self.tiercare(dir)
                    .args(["import", kind])
                    .arg(data.join(format!("{kind}.csv")))
                    .arg("--json"),
            )?;
            figures.add(&format!("import {kind}"), sample);
        }
        Ok(())
    }

    /// A demo size end to end: import, assess, assess again, re-import, plan.
    fn demo(&self, size: &str, figures: &mut Figures) -> Result<()> {
        let data = self.demo_data(size)?;
        println!(
            "\n== demo {size} ({} customers), load average {}",
            thousands(demo_customers(size)? as f64),
            load_average()
        );
        let dir = self.work.join(format!("demo-{size}"));
        for _ in 0..self.runs {
            self.import_demo(&data, &dir, figures)?;
            let first = self.run(
                self.tiercare(&dir)
                    .args(["assess", "--at", DEMO_AT, "--json"]),
            )?;
            figures.add("assess (first)", first);
            let again = self.run(
                self.tiercare(&dir)
                    .args(["assess", "--at", DEMO_AT, "--json"]),
            )?;
            figures.add("assess (unchanged)", again);
            let reimport = self.run(
                self.tiercare(&dir)
                    .args(["import", "orders"])
                    .arg(data.join("orders.csv"))
                    .arg("--json"),
            )?;
            figures.add("re-import orders (unchanged)", reimport);
            let plan = self.run(
                self.tiercare(&dir)
                    .args(["plan", "--days", "30", "--from", DEMO_AT, "--json"]),
            )?;
            figures.add("plan --days 30", plan);
        }
        let read = |step: &str| -> Result<f64> {
            Ok(json(&figures.samples[step][0])?["read"]
                .as_f64()
                .unwrap_or(0.0))
        };
        let customers = json(&figures.samples["assess (first)"][0])?["customers"]
            .as_f64()
            .unwrap_or(0.0);
        for kind in ["customers", "orders", "interactions"] {
            let step = format!("import {kind}");
            println!(
                "{}",
                figures.line(&step, &step, Some((read(&step)?, "rows")))
            );
        }
        let orders = read("import orders")?;
        for (step, items) in [
            ("assess (first)", Some((customers, "customers"))),
            ("assess (unchanged)", Some((customers, "customers"))),
            ("re-import orders (unchanged)", Some((orders, "rows"))),
            ("plan --days 30", Some((customers, "customers"))),
        ] {
            println!("{}", figures.line(step, step, items));
        }
        println!("  load average after: {}", load_average());
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    /// The demo's orders alone, tiered ABC + RFM by tiercare and by pandas.
    fn pandas_demo(&self, size: &str) -> Result<()> {
        let data = self.demo_data(size)?;
        let orders = data.join("orders.csv");
        println!(
            "\n== pandas vs tiercare on demo {size} orders.csv, load average {}",
            load_average()
        );
        let mut figures = Figures::default();
        let dir = self.work.join(format!("abc-{size}"));
        let mut checked = String::new();
        for _ in 0..self.runs {
            let (_, import, assess) = self.import_and_assess(
                &dir,
                ("UTC", &["tiers.yaml", "rfm.yaml"]),
                &orders,
                "crates/bench/pandas/demo-orders.mapping.yaml",
                DEMO_AT,
            )?;
            let report = json(&assess)?;
            let at = json_time(&report["at"]).context("assess --json: at")?;
            let pandas = self.pandas("demo", at, &orders)?;
            checked = agree(&report, &json(&pandas)?)?;
            figures.add("tiercare", import.then(&assess));
            figures.add("import", import);
            figures.add("assess", assess);
            figures.add("pandas", pandas);
            fs::remove_dir_all(&dir)?;
        }
        println!("{}", figures.line("tiercare import orders", "import", None));
        println!(
            "{}",
            figures.line("tiercare assess (ABC + RFM)", "assess", None)
        );
        println!(
            "{}",
            figures.line("tiercare import + assess", "tiercare", None)
        );
        println!(
            "{}",
            figures.line("pandas script (same job)", "pandas", None)
        );
        println!(
            "  pandas / tiercare = {:.2}x wall, {:.2}x cpu   ({checked})",
            figures.median("pandas") / figures.median("tiercare"),
            figures.median_cpu("pandas") / figures.median_cpu("tiercare")
        );
        println!("  load average after: {}", load_average());
        Ok(())
    }
}

/// The Online Retail rivals: the script `crates/bench/python/abc_NAME.py`, and what it is.
const RIVALS: [(&str, &str); 3] = [
    ("pandas", "pandas, lean (in memory)"),
    ("duckdb", "DuckDB (persisting to a file)"),
    ("polars", "polars, lazy CSV (in memory)"),
];

/// Checks that a rival script gave every customer the tier tiercare gave (its `output` CSV of
/// `customer,tier` against `ours`) and that its printed counts say the same; says what agreed.
fn agree_by_customer(
    ours: &BTreeMap<String, String>,
    output: &Path,
    printed: &Value,
) -> Result<String> {
    let mut reader = csv::Reader::from_path(output)?;
    let mut theirs = BTreeMap::new();
    for record in reader.records() {
        let record = record?;
        theirs.insert(record[0].to_owned(), record[1].to_owned());
    }
    ensure!(
        theirs.len() == ours.len(),
        "{} customers, tiercare has {}",
        theirs.len(),
        ours.len()
    );
    let differing: Vec<&String> = ours
        .iter()
        .filter(|(id, tier)| theirs.get(*id) != Some(tier))
        .map(|(id, _)| id)
        .take(5)
        .collect();
    ensure!(
        differing.is_empty(),
        "customers with another tier (or missing), first five: {differing:?}"
    );
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for tier in ours.values() {
        *counts.entry(tier).or_default() += 1;
    }
    for (tier, count) in &counts {
        ensure!(
            printed["tiers"][tier].as_i64() == Some(*count),
            "its printed count of tier {tier} is {}, not {count}",
            printed["tiers"][tier]
        );
    }
    Ok(format!(
        "same tier for all {} customers: {counts:?}",
        thousands(ours.len() as f64)
    ))
}

/// Checks that tiercare's assessment and the pandas script found the same customers, tiers and
/// RFM segments; says what was compared.
fn agree(tiercare: &Value, pandas: &Value) -> Result<String> {
    let mut ours = BTreeMap::new();
    for tier in tiercare["tiers"].as_array().context("tiers")? {
        let count = tier["customers"].as_i64().unwrap_or(0);
        if count > 0 {
            ours.insert(tier["tier"].as_str().unwrap_or("?").to_owned(), count);
        }
    }
    let theirs: BTreeMap<String, i64> = pandas["tiers"]
        .as_object()
        .context("pandas tiers")?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0)))
        .collect();
    ensure!(
        ours == theirs,
        "tiers differ: tiercare {ours:?}, pandas {theirs:?}"
    );
    let rfm = tiercare["segments"]
        .as_array()
        .context("segments")?
        .iter()
        .find(|set| set["set"] == "rfm")
        .context("no rfm segment set")?;
    let mut our_rfm = BTreeMap::new();
    for pair in rfm["counts"].as_array().context("rfm counts")? {
        let count = pair[1].as_i64().unwrap_or(0);
        if count > 0 {
            our_rfm.insert(pair[0].as_str().unwrap_or("?").to_owned(), count);
        }
    }
    let their_rfm: BTreeMap<String, i64> = pandas["rfm"]
        .as_object()
        .context("pandas rfm")?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0)))
        .collect();
    ensure!(
        our_rfm == their_rfm,
        "RFM segments differ: tiercare {our_rfm:?}, pandas {their_rfm:?}"
    );
    let customers = tiercare["customers"].as_i64().unwrap_or(0);
    ensure!(
        pandas["customers"].as_i64() == Some(customers),
        "customers differ: tiercare {customers}, pandas {}",
        pandas["customers"]
    );
    Ok(format!(
        "agree: {} customers, tiers {ours:?}, {} RFM segments",
        thousands(customers as f64),
        our_rfm.len()
    ))
}

/// A Python with the pinned packages of `crates/bench/python/requirements.txt` (pandas, DuckDB,
/// polars): `target/bench-venv`, created and brought to those versions with pip (a no-op when
/// they are there).
fn python_with_packages(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target/bench-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        println!("creating {}...", venv.display());
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .context("cannot run python3")?;
        ensure!(status.success(), "python3 -m venv failed");
    }
    let requirements = root.join("crates/bench/python/requirements.txt");
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements)
        .status()?;
    ensure!(
        status.success(),
        "pip install -r {} failed",
        requirements.display()
    );
    let status = Command::new(&python)
        .args(["-c", "import pandas, duckdb, polars"])
        .status()?;
    ensure!(status.success(), "pandas, duckdb or polars did not install");
    Ok(python)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()?;
    let tiercare = match &args.binary {
        Some(binary) => binary.canonicalize()?,
        None => {
            println!("tiercare-bench: building the release binary...");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args([
                    "build",
                    "--release",
                    "--quiet",
                    "-p",
                    "tiercare",
                    "--bin",
                    "tiercare",
                ])
                .current_dir(&root)
                .status()?;
            ensure!(status.success(), "cargo build --release failed");
            root.join("target/release/tiercare")
        }
    };
    let work = match &args.work {
        Some(work) => work.clone(),
        None => std::env::temp_dir().join(format!("tiercare-bench-{}", std::process::id())),
    };
    fs::create_dir_all(&work)?;
    let python = if args.no_pandas {
        None
    } else {
        Some(python_with_packages(&root)?)
    };
    let bench = Bench {
        tiercare,
        root: root.clone(),
        work: work.clone(),
        runs: args.runs.max(1),
        python,
    };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "machine: {cpus} CPUs, load average {}; {} run(s) per figure, medians; peak = max RSS",
        load_average(),
        bench.runs
    );
    let result = run_all(&bench, &args);
    if args.keep {
        println!("\nscratch kept in {}", work.display());
    } else {
        fs::remove_dir_all(&work).ok();
    }
    result
}

fn run_all(bench: &Bench, args: &Args) -> Result<()> {
    let mut curve: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for size in &args.sizes {
        if size == "retail" {
            let file = args.retail.clone().unwrap_or_else(|| {
                bench
                    .root
                    .join("../shared/data/online-retail/online_retail.csv.gz")
            });
            if file.exists() {
                bench.retail(&file, args.retail_runs.max(1))?;
            } else {
                println!(
                    "\n== Online Retail: skipped, {} is not there (pass --retail FILE)",
                    file.display()
                );
            }
            continue;
        }
        let mut figures = Figures::default();
        bench.demo(size, &mut figures)?;
        if args.scaling.contains(size) {
            let customers = demo_customers(size)?;
            curve.insert(
                customers,
                (
                    figures.median("assess (first)"),
                    figures.median("assess (unchanged)"),
                ),
            );
        }
    }
    for size in &args.scaling {
        if size == "none" {
            continue;
        }
        let customers = demo_customers(size)?;
        if curve.contains_key(&customers) {
            continue;
        }
        let data = bench.demo_data(size)?;
        let dir = bench.work.join(format!("curve-{size}"));
        let mut figures = Figures::default();
        for _ in 0..bench.runs {
            // The first assessment of a freshly imported workspace, then an unchanged one.
            bench.import_demo(&data, &dir, &mut Figures::default())?;
            let first = bench.run(
                bench
                    .tiercare(&dir)
                    .args(["assess", "--at", DEMO_AT, "--json"]),
            )?;
            figures.add("first", first);
            let again = bench.run(
                bench
                    .tiercare(&dir)
                    .args(["assess", "--at", DEMO_AT, "--json"]),
            )?;
            figures.add("again", again);
        }
        fs::remove_dir_all(&dir)?;
        curve.insert(
            customers,
            (figures.median("first"), figures.median("again")),
        );
    }
    if !curve.is_empty() {
        println!("\n== assessment scaling (median wall time; µs per customer)");
        for (customers, (first, again)) in &curve {
            println!(
                "  {:>10} customers   first {first:>7.2} s ({:>5.2} µs/customer)   unchanged {again:>7.2} s ({:>5.2} µs/customer)",
                thousands(*customers as f64),
                first * 1e6 / *customers as f64,
                again * 1e6 / *customers as f64
            );
        }
    }
    for size in &args.pandas_demo {
        if size == "none" || bench.python.is_none() {
            continue;
        }
        bench.pandas_demo(size)?;
    }
    println!("\nload average at the end: {}", load_average());
    Ok(())
}

/// A `--json` time (an RFC 3339 string, docs/json.md) as unix seconds.
fn json_time(value: &serde_json::Value) -> Option<i64> {
    value
        .as_str()
        .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
        .map(|time| time.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(id, tier)| ((*id).to_owned(), (*tier).to_owned()))
            .collect()
    }

    /// A rival's output is accepted only when every customer has tiercare's tier and its printed
    /// counts match; a swapped tier, a missing customer or a wrong count is reported.
    #[test]
    fn a_rival_agrees_only_customer_by_customer() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("tiers.csv");
        let ours = tiers(&[("12346", "A"), ("12347", "B"), ("12348", "C")]);
        let printed = serde_json::json!({"tiers": {"A": 1, "B": 1, "C": 1}});

        fs::write(&output, "customer,tier\n12348,C\n12346,A\n12347,B\n").unwrap();
        let said = agree_by_customer(&ours, &output, &printed).unwrap();
        assert!(said.contains("all 3 customers"), "{said}");

        fs::write(&output, "customer,tier\n12346,B\n12347,A\n12348,C\n").unwrap();
        let err = agree_by_customer(&ours, &output, &printed).unwrap_err();
        assert!(err.to_string().contains("12346"), "{err}");

        fs::write(&output, "customer,tier\n12346,A\n12347,B\n").unwrap();
        let err = agree_by_customer(&ours, &output, &printed).unwrap_err();
        assert!(err.to_string().contains("2 customers"), "{err}");

        fs::write(&output, "customer,tier\n12346,A\n12347,B\n12348,C\n").unwrap();
        let wrong = serde_json::json!({"tiers": {"A": 2, "B": 1, "C": 1}});
        let err = agree_by_customer(&ours, &output, &wrong).unwrap_err();
        assert!(err.to_string().contains("tier A"), "{err}");
    }
}
