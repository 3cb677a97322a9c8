//! Import: reads a CSV or JSON Lines file (optionally gzip-compressed), turns each row into our
//! records through a mapping (the engine), and writes them through the store in one transaction.
//!
//! An import is all or nothing at the file level: rows with problems are rejected and reported
//! (or, with `strict`, the whole file is refused), and nothing is written unless the whole file was
//! read. The store's upserts make a re-import of the same file change nothing.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use serde::Serialize;
use tiercare_engine::mapping::{
    BindError, BoundMapping, Cell, Mapping, RowOutcome, TypedRow, Value,
};
use tiercare_engine::{Diagnostic, RecordKind};
use tiercare_store::{
    ComplaintRecord, CustomerRecord, FeedbackRecord, ImportAudit, ImportOptions, ImportSession,
    InteractionRecord, ManagerRecord, OrderItem, OrderRecord, Outcome, RowError, Store, StoreError,
};

/// How many rejected rows a report lists (all are counted).
pub const MAX_LISTED_REJECTIONS: usize = 1000;

/// The file formats `import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// Comma-separated values with a header line (delimiter set by the mapping; `.tsv` means tab).
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl FileFormat {
    /// Guesses the format from the file name (`.jsonl`/`.ndjson` → JSON Lines, else CSV), looking
    /// through a `.gz` suffix.
    pub fn from_path(path: &Path) -> FileFormat {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
            FileFormat::Jsonl
        } else {
            FileFormat::Csv
        }
    }
}

/// One import to run.
#[derive(Debug, Clone)]
pub struct ImportRequest<'a> {
    /// What the file holds.
    pub kind: RecordKind,
    /// The data file.
    pub file: &'a Path,
    /// The text and path of a mapping file, when the file's columns are not ours.
    pub mapping: Option<(&'a Path, &'a str)>,
    /// Refuse the whole file on the first rejected row.
    pub strict: bool,
    /// The format, when the file name does not tell.
    pub format: Option<FileFormat>,
    /// The time zone for times without an offset (the workspace's).
    pub timezone: chrono_tz::Tz,
    /// The region (ISO 3166 alpha-2) of customers' phone numbers written without a country
    /// code, when the customer's own `region` is not a known one (`[import] default_region`).
    pub default_region: Option<&'a str>,
}

/// A row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectedRow {
    /// The line in the file where the row starts (1-based, the header is line 1 in CSV).
    pub line: u64,
    /// The column (or mapping key) at fault.
    pub column: String,
    /// The offending value, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for RejectedRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.reason
        )?;
        if let Some(value) = &self.value {
            write!(f, " (value {value:?})")?;
        }
        Ok(())
    }
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// What was imported.
    pub kind: String,
    /// The data file.
    pub file: PathBuf,
    /// Data rows read (lines of an order count one each).
    pub read: u64,
    /// Records newly written (orders, not lines, when lines are grouped).
    pub imported: u64,
    /// Records that existed and changed.
    pub updated: u64,
    /// Records that existed and were already the same.
    pub unchanged: u64,
    /// Rows left out by the mapping's `skip` rules.
    pub skipped: u64,
    /// Skipped rows per reason, in the mapping's order.
    pub skipped_by_reason: Vec<(String, u64)>,
    /// Rows rejected for a problem.
    pub rejected: u64,
    /// Order lines written, when lines were grouped into orders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_lines: Option<u64>,
    /// Customers created from orders (`create_customers: true`).
    pub customers_created: u64,
    /// Coupon codes the orders redeemed (`coupon_code`), and codes no customer was issued.
    pub coupons: tiercare_store::RedemptionTally,
    /// Customer rows for forgotten customers (`tiercare customer forget`), whose personal
    /// fields were left out so they stay forgotten.
    pub kept_forgotten: u64,
    /// The first [`MAX_LISTED_REJECTIONS`] rejected rows.
    pub rejections: Vec<RejectedRow>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u128,
}

/// Why an import wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The mapping file is invalid (or refers to columns the file does not have).
    #[error("{}", tiercare_engine::render_all(diagnostics, false))]
    Mapping {
        /// Every problem found, with positions.
        diagnostics: Vec<Diagnostic>,
    },
    /// The header lacks columns the import needs.
    #[error("{}: {message}", path.display())]
    Columns {
        /// The data file.
        path: PathBuf,
        /// Which columns are missing and which were found.
        message: String,
    },
    /// The file is not UTF-8.
    #[error(
        "{}:{line}: the file is not UTF-8 text ({detail}); it may be GBK/GB18030 or Latin-1: convert it first, e.g. `iconv -f GBK -t UTF-8 in.csv > out.csv`",
        path.display()
    )]
    Encoding {
        /// The data file.
        path: PathBuf,
        /// The line with the first invalid byte.
        line: u64,
        /// Where in the line.
        detail: String,
    },
    /// The file is not well-formed CSV or JSON Lines.
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        /// The data file.
        path: PathBuf,
        /// The line.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The file has no header line or no data.
    #[error("{}: the file is empty: expected a header line", path.display())]
    Empty {
        /// The data file.
        path: PathBuf,
    },
    /// `--strict` and a row was rejected.
    #[error("{}: {row}\nnothing was imported (--strict refuses the whole file on the first bad row)", path.display())]
    Strict {
        /// The data file.
        path: PathBuf,
        /// The first bad row.
        row: RejectedRow,
    },
    /// The database refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Progress of an import, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Bytes of the file read so far (compressed bytes for `.gz`).
    pub bytes: u64,
    /// The file's size in bytes.
    pub total: u64,
    /// Rows read so far.
    pub rows: u64,
}

/// Imports one file into `store`.
///
/// Order lines grouped into orders (`group_by`) are written order by order while the file is
/// still being read, as long as each order's lines come one after the other: an order is written
/// when a line of another order arrives. A line for an order already written (an order whose
/// lines are scattered over the file) undoes that pass (back to a savepoint taken before the
/// first order) and reads the file again holding every order until the end, so the outcome is
/// always that of holding every order: the same rows, counts and rejections. A file that cannot
/// be read twice (not a regular file, e.g. a pipe) is held from the start.
pub fn import_file(
    store: &mut Store,
    request: &ImportRequest<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportReport, ImportError> {
    import_file_at(store, request, crate::time::now(), None, progress)
}

/// [`import_file`] as if it were `at` (unix seconds UTC), each order earning the points
/// `earning` says (`[points]`, see [`crate::points_settings`]) in the import's transaction:
/// once per order, adjusted when the order comes again with another amount. The rows it
/// inserts or changes get `at` as their `created_at`/`updated_at` (and so the owner audit's
/// time), whatever the wall clock says: the demo imports as of the end of its history, so a
/// run gives the same rows any time of the day.
///
/// # Errors
/// As [`import_file`].
pub fn import_file_at(
    store: &mut Store,
    request: &ImportRequest<'_>,
    at: i64,
    earning: Option<tiercare_store::OrderPoints>,
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let mapping = match request.mapping {
        Some((mapping_path, text)) => {
            Mapping::parse(&mapping_path.to_string_lossy(), text, request.kind)
                .map_err(|diagnostics| ImportError::Mapping { diagnostics })?
        }
        None => Mapping::native(request.kind),
    };
    let format = request
        .format
        .unwrap_or_else(|| FileFormat::from_path(request.file));
    let opened = open_source(request, &mapping, format)?;
    let grouping = mapping.group_by().is_some()
        || (request.kind == RecordKind::Orders
            && request.mapping.is_none()
            && ["sku", "quantity", "unit_price"]
                .iter()
                .any(|c| opened.source.header().iter().any(|h| h == c)));
    let mut mode = match (grouping, opened.rereadable) {
        (false, _) => WriterMode::Direct,
        (true, true) => WriterMode::Streaming,
        (true, false) => WriterMode::Buffered,
    };

    let mut session = store.import_at(
        request.kind,
        ImportOptions {
            create_missing_customers: mapping.create_customers(),
            source: request.file.to_string_lossy().into_owned(),
        },
        at,
    )?;
    // Orders earn points as `[points]` says, in the import's transaction.
    session.earn_points_per_order(earning);
    let mut savepoint = match mode {
        WriterMode::Streaming => Some(session.savepoint()?),
        WriterMode::Direct | WriterMode::Buffered => None,
    };
    let mut opened = Some(opened);
    let mut run = loop {
        let source = match opened.take() {
            Some(source) => source,
            None => open_source(request, &mapping, format)?,
        };
        match import_pass(&mut session, request, &mapping, source, mode, progress)? {
            Pass::Done(run) => break run,
            Pass::Scattered { line } => {
                tracing::info!(
                    line,
                    "an order's lines are not contiguous: reading the file again, holding every order until the end"
                );
                if let Some(savepoint) = savepoint.take() {
                    session.rollback_to(savepoint)?;
                }
                mode = WriterMode::Buffered;
            }
        }
    };
    run.report.customers_created = session.customers_created();
    run.report.coupons = session.redemptions();
    run.report.kept_forgotten = session.kept_forgotten();
    let report = &run.report;
    session.commit(&ImportAudit {
        rows_read: report.read,
        imported: report.imported,
        updated: report.updated,
        unchanged: report.unchanged,
        skipped: report.skipped,
        rejected: report.rejected,
    })?;
    run.report.elapsed_ms = started.elapsed().as_millis();
    Ok(run.report)
}

/// A data file opened for reading, its header read.
struct OpenedSource {
    source: Box<dyn RowSource + Send>,
    /// Bytes read from the file so far.
    counter: Arc<AtomicU64>,
    /// The file's size.
    total: u64,
    /// Whether the file can be read again from the start (a regular file).
    rereadable: bool,
}

/// Opens the data file (through gzip when it is compressed) and reads its header.
fn open_source(
    request: &ImportRequest<'_>,
    mapping: &Mapping,
    format: FileFormat,
) -> Result<OpenedSource, ImportError> {
    let path = request.file;
    let file = File::open(path).map_err(|source| ImportError::Io {
        path: path.to_owned(),
        source,
    })?;
    let metadata = file.metadata().ok();
    let total = metadata.as_ref().map_or(0, std::fs::Metadata::len);
    let rereadable = metadata.as_ref().is_some_and(std::fs::Metadata::is_file);
    let counter = Arc::new(AtomicU64::new(0));
    let counted = CountingReader {
        inner: file,
        count: Arc::clone(&counter),
    };
    let is_gzip = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("gz"));
    let reader: Box<dyn Read + Send> = if is_gzip {
        Box::new(InflatingReader::new(flate2::read::MultiGzDecoder::new(
            BufReader::with_capacity(1 << 16, counted),
        )))
    } else {
        Box::new(counted)
    };
    let source: Box<dyn RowSource + Send> = match format {
        FileFormat::Csv => {
            let default_delimiter = if path.to_string_lossy().to_ascii_lowercase().contains(".tsv")
            {
                b'\t'
            } else {
                b','
            };
            Box::new(CsvSource::new(
                path,
                reader,
                mapping.delimiter().unwrap_or(default_delimiter),
            )?)
        }
        FileFormat::Jsonl => Box::new(JsonlSource::new(path, reader)?),
    };
    Ok(OpenedSource {
        source,
        counter,
        total,
        rereadable,
    })
}

/// How one pass over the file ended.
enum Pass<'a> {
    /// Every row was read and written.
    Done(Box<Run<'a>>),
    /// A line (this one) belongs to an order written earlier in the pass: the pass must be
    /// undone and the file read again holding every order.
    Scattered { line: u64 },
}

/// Reads the whole file once and writes its records through `session`.
fn import_pass<'a>(
    session: &mut ImportSession<'_>,
    request: &ImportRequest<'a>,
    mapping: &Mapping,
    opened: OpenedSource,
    mode: WriterMode,
    progress: &mut dyn FnMut(Progress),
) -> Result<Pass<'a>, ImportError> {
    let path = request.file;
    let OpenedSource {
        source,
        counter,
        total,
        ..
    } = opened;
    let header_names = source.header().to_vec();
    let header: Vec<&str> = header_names.iter().map(String::as_str).collect();
    let mut bound = mapping
        .bind(&header, request.timezone)
        .map_err(|err| bind_error(path, err))?;
    // A mapping's scripts get the default rule budget per row: a slow one rejects its rows.
    bound.set_budget(Some(crate::config::RulesConfig::default().budget()));
    let mut run = Run {
        path,
        strict: request.strict,
        late_rejections: Vec::new(),
        deferred: None,
        report: ImportReport {
            kind: request.kind.to_string(),
            file: path.to_owned(),
            read: 0,
            imported: 0,
            updated: 0,
            unchanged: 0,
            skipped: 0,
            skipped_by_reason: mapping
                .skip_reasons()
                .iter()
                .map(|r| (r.clone(), 0))
                .collect(),
            rejected: 0,
            order_lines: (mode != WriterMode::Direct).then_some(0),
            customers_created: 0,
            coupons: tiercare_store::RedemptionTally::default(),
            kept_forgotten: 0,
            rejections: Vec::new(),
            elapsed_ms: 0,
        },
    };
    let grouping = Grouping::new(mode);
    let mut columns = Columns::new(request.kind, &bound);
    columns.default_region = request.default_region.and_then(crate::phone::region);
    let record_kind = request.kind;
    let header_len = header.len();
    // Two threads: this one writes to the database while a second reads the file, applies the
    // mapping (CSV, parsing and mapping scripts) and groups order lines, handing over batches of
    // rows and orders (a `.gz` file is decompressed by a third, see `InflatingReader`). The order of rows, and so every outcome, is the same as
    // reading in one thread.
    let scattered = std::thread::scope(|scope| -> Result<Option<u64>, ImportError> {
        let (sender, receiver) = mpsc::sync_channel::<Result<Vec<Mapped>, ImportError>>(4);
        scope.spawn(move || {
            read_and_map(
                source,
                bound,
                &columns,
                record_kind,
                header_len,
                grouping,
                &sender,
            );
        });
        for batch in receiver {
            for mapped in batch? {
                match mapped {
                    Mapped::Order(line, order) => {
                        run.write_order(session, line, &order);
                        continue;
                    }
                    Mapped::Scattered(line) => return Ok(Some(line)),
                    Mapped::RejectedOrders(rows) => {
                        for row in rows {
                            run.reject(row)?;
                        }
                        continue;
                    }
                    _ => {}
                }
                run.report.read += 1;
                if run.report.read.is_multiple_of(8192) {
                    progress(Progress {
                        bytes: counter.load(Ordering::Relaxed),
                        total,
                        rows: run.report.read,
                    });
                }
                match mapped {
                    Mapped::Record(line, record) => match write_record(session, line, record) {
                        Ok(outcome) => run.count(outcome),
                        Err(WriteError::Rejected(row)) => run.reject(row)?,
                        Err(WriteError::Store(err)) => return Err(err.into()),
                    },
                    Mapped::Line
                    | Mapped::Order(..)
                    | Mapped::Scattered(_)
                    | Mapped::RejectedOrders(_) => {}
                    Mapped::Invalid(row) => run.reject(row)?,
                    Mapped::Skip(reason) => {
                        run.report.skipped += 1;
                        if let Some(slot) = run.report.skipped_by_reason.get_mut(reason) {
                            slot.1 += 1;
                        }
                    }
                    Mapped::Width(line, fields) => {
                        run.reject(RejectedRow {
                            line,
                            column: "(row)".to_owned(),
                            value: None,
                            reason: format!(
                                "the row has {fields} fields but the header has {header_len}: a stray delimiter or quote?",
                            ),
                        })?;
                    }
                }
            }
        }
        Ok(None)
    })?;
    if let Some(line) = scattered {
        return Ok(Pass::Scattered { line });
    }
    if let Some(err) = run.deferred.take() {
        return Err(err);
    }
    let late = std::mem::take(&mut run.late_rejections);
    run.report.rejections.extend(late);
    run.report.rejections.truncate(MAX_LISTED_REJECTIONS);
    progress(Progress {
        bytes: counter.load(Ordering::Relaxed),
        total,
        rows: run.report.read,
    });
    Ok(Pass::Done(Box::new(run)))
}

/// Rows handed from the reading thread to the writing one at a time.
const BATCH_ROWS: usize = 1024;

/// A data row as the reading thread hands it over, or a grouped order.
enum Mapped {
    /// The row's line and its record, to write as it is.
    Record(u64, Record),
    /// A row that is a line of an order, held by the reading thread for its order.
    Line,
    /// A complete grouped order with the line it started on: not a row of its own.
    Order(u64, OrderRecord),
    /// Left out by the mapping's `skip:` reason of this index.
    Skip(usize),
    /// Refused by the mapping, for a missing value, or for naming another customer than the
    /// earlier lines of its order.
    Invalid(RejectedRow),
    /// The row's line and its number of fields, which is not the header's.
    Width(u64, usize),
    /// The row on this line is a line of an order handed over already; nothing follows.
    Scattered(u64),
    /// The lines of orders rejected whole (an order with a rejected line is not imported):
    /// each line that was held, not a row of its own (its row was counted when read).
    RejectedOrders(Vec<RejectedRow>),
}

/// Reads every row of `source` and applies the mapping, grouping order lines into orders as
/// `grouping` says, and sends batches to `sender`; a read error is sent as the last message.
/// Stops early when the receiver is gone (the import failed).
fn read_and_map(
    mut source: Box<dyn RowSource + Send>,
    mut bound: BoundMapping<'_>,
    columns: &Columns,
    kind: RecordKind,
    header_len: usize,
    mut grouping: Grouping,
    sender: &mpsc::SyncSender<Result<Vec<Mapped>, ImportError>>,
) {
    let mut batch = Vec::with_capacity(BATCH_ROWS + 1);
    loop {
        let line = match source.advance() {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(err) => {
                if !batch.is_empty() && sender.send(Ok(std::mem::take(&mut batch))).is_err() {
                    return;
                }
                let _ = sender.send(Err(err));
                return;
            }
        };
        let cells = source.cells();
        let mapped = if cells.len() != header_len {
            Mapped::Width(line, cells.len())
        } else {
            match bound.apply(&cells) {
                RowOutcome::Row(typed) => match columns.record(kind, line, typed) {
                    Ok(Record::Order(order)) => {
                        let mapped = grouping.add(line, order, &mut batch);
                        if matches!(batch.last(), Some(Mapped::Scattered(_))) {
                            let _ = sender.send(Ok(batch));
                            return;
                        }
                        mapped
                    }
                    Ok(record) => Mapped::Record(line, record),
                    Err(row) => Mapped::Invalid(row),
                },
                RowOutcome::Skip(reason) => Mapped::Skip(reason),
                RowOutcome::Reject(rejection) => Mapped::Invalid(RejectedRow {
                    line,
                    column: rejection.column,
                    value: rejection.value,
                    reason: rejection.reason,
                }),
            }
        };
        // A rejected line of a grouped order rejects its whole order.
        if let Mapped::Invalid(_) = mapped
            && kind == RecordKind::Orders
            && let Some(order_id) = bound.column_text("order_id", &cells)
        {
            grouping.reject_line(&order_id, line, &mut batch);
            if matches!(batch.last(), Some(Mapped::Scattered(_))) {
                let _ = sender.send(Ok(batch));
                return;
            }
        }
        batch.push(mapped);
        if batch.len() >= BATCH_ROWS {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS + 1));
            if sender.send(Ok(full)).is_err() {
                return;
            }
        }
    }
    for order in grouping.finish() {
        batch.push(order);
        if batch.len() >= BATCH_ROWS {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
            if sender.send(Ok(full)).is_err() {
                return;
            }
        }
    }
    if !batch.is_empty() {
        let _ = sender.send(Ok(batch));
    }
}

fn bind_error(path: &Path, err: BindError) -> ImportError {
    match err {
        BindError::Script { diagnostics } => ImportError::Mapping { diagnostics },
        other => ImportError::Columns {
            path: path.to_owned(),
            message: other.to_string(),
        },
    }
}

/// The tally of one pass over the file.
struct Run<'a> {
    path: &'a Path,
    strict: bool,
    /// Rejections of grouped orders by the store, listed after the rows' own (as when every order
    /// is written at the end), whenever the orders were written.
    late_rejections: Vec<RejectedRow>,
    /// The error a grouped order met while the file was still being read; returned once the file
    /// was read to the end, as a problem found in reading it comes first.
    deferred: Option<ImportError>,
    report: ImportReport,
}

impl Run<'_> {
    fn reject(&mut self, row: RejectedRow) -> Result<(), ImportError> {
        if self.strict {
            return Err(ImportError::Strict {
                path: self.path.to_owned(),
                row,
            });
        }
        self.report.rejected += 1;
        if self.report.rejections.len() < MAX_LISTED_REJECTIONS {
            self.report.rejections.push(row);
        }
        Ok(())
    }

    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Inserted => self.report.imported += 1,
            Outcome::Updated => self.report.updated += 1,
            Outcome::Unchanged => self.report.unchanged += 1,
        }
    }

    /// Writes a grouped order whose first line is `line`. After an error (kept in `deferred`)
    /// nothing more is written.
    fn write_order(&mut self, session: &mut ImportSession<'_>, line: u64, order: &OrderRecord) {
        if self.deferred.is_some() {
            return;
        }
        if let Some(lines) = self.report.order_lines.as_mut() {
            *lines += order.items.len() as u64;
        }
        match written(line, session.order(line, order)) {
            Ok(outcome) => self.count(outcome),
            Err(WriteError::Rejected(row)) if self.strict => {
                self.deferred = Some(ImportError::Strict {
                    path: self.path.to_owned(),
                    row,
                });
            }
            Err(WriteError::Rejected(row)) => {
                self.report.rejected += 1;
                if self.late_rejections.len() < MAX_LISTED_REJECTIONS {
                    self.late_rejections.push(row);
                }
            }
            Err(WriteError::Store(err)) => self.deferred = Some(err.into()),
        }
    }
}

/// Counts the bytes read from the underlying file, for progress.
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Bytes decompressed per chunk handed over by [`InflatingReader`]'s thread.
const INFLATED_CHUNK: usize = 1 << 18;

/// Reads what another thread decompresses (gzip): decompressing takes as long as parsing the CSV,
/// so the two run side by side. Bytes and errors come in the order the decoder gave them; the
/// thread ends at the end of the data, after an error, or when this reader is dropped.
struct InflatingReader {
    chunks: mpsc::Receiver<io::Result<Vec<u8>>>,
    /// Read chunks go back to the thread to be filled again (fresh memory costs page faults).
    spent: mpsc::Sender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl InflatingReader {
    fn new(mut decoder: impl Read + Send + 'static) -> InflatingReader {
        let (sender, chunks) = mpsc::sync_channel(4);
        let (spent, recycled) = mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            loop {
                let mut chunk = recycled.try_recv().unwrap_or_default();
                chunk.resize(INFLATED_CHUNK, 0);
                let mut filled = 0;
                let result = loop {
                    match decoder.read(&mut chunk[filled..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            filled += n;
                            if filled == chunk.len() {
                                break Ok(());
                            }
                        }
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                        Err(err) => break Err(err),
                    }
                };
                let end = filled < chunk.len();
                chunk.truncate(filled);
                if filled > 0 && sender.send(Ok(chunk)).is_err() {
                    return;
                }
                if let Err(err) = result {
                    let _ = sender.send(Err(err));
                    return;
                }
                if end {
                    return;
                }
            }
        });
        InflatingReader {
            chunks,
            spent,
            chunk: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for InflatingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.chunk.len() {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => {
                    let spent = std::mem::replace(&mut self.chunk, chunk);
                    // The thread may have ended; then the chunk is simply dropped.
                    let _ = self.spent.send(spent);
                    self.pos = 0;
                }
                Ok(Err(err)) => return Err(err),
                // The decoder's thread is done: the end of the data.
                Err(mpsc::RecvError) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A file read row by row: `advance` moves to the next data row and returns its line; `cells`
/// borrows that row's fields without copying them.
trait RowSource {
    fn header(&self) -> &[String];
    fn advance(&mut self) -> Result<Option<u64>, ImportError>;
    fn cells(&self) -> Vec<Cell<'_>>;
}

struct CsvSource {
    path: PathBuf,
    reader: csv::Reader<Box<dyn Read + Send>>,
    header: Vec<String>,
    record: csv::StringRecord,
}

fn utf8<'b>(path: &Path, line: u64, bytes: &'b [u8]) -> Result<&'b str, ImportError> {
    std::str::from_utf8(bytes).map_err(|err| ImportError::Encoding {
        path: path.to_owned(),
        line,
        detail: format!("invalid byte 0x{:02X} in a field", bytes[err.valid_up_to()]),
    })
}

fn csv_error(path: &Path, err: csv::Error) -> ImportError {
    let line = err.position().map_or(0, csv::Position::line);
    match err.into_kind() {
        csv::ErrorKind::Io(source) => ImportError::Io {
            path: path.to_owned(),
            source,
        },
        csv::ErrorKind::Utf8 { pos, err } => ImportError::Encoding {
            path: path.to_owned(),
            line: pos.map_or(line, |p| p.line()),
            detail: format!("field {} is not valid UTF-8", err.field() + 1),
        },
        other => ImportError::Syntax {
            path: path.to_owned(),
            line,
            message: format!("{other:?}"),
        },
    }
}

impl CsvSource {
    fn new(
        path: &Path,
        reader: Box<dyn Read + Send>,
        delimiter: u8,
    ) -> Result<CsvSource, ImportError> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(true)
            .buffer_capacity(1 << 16)
            .from_reader(reader);
        let raw = reader
            .byte_headers()
            .map_err(|err| csv_error(path, err))?
            .clone();
        if raw.is_empty() || (raw.len() == 1 && raw[0].is_empty()) {
            return Err(ImportError::Empty {
                path: path.to_owned(),
            });
        }
        let mut header = Vec::with_capacity(raw.len());
        for (i, name) in raw.iter().enumerate() {
            let name = utf8(path, 1, name)?;
            let name = if i == 0 {
                name.strip_prefix('\u{feff}').unwrap_or(name)
            } else {
                name
            };
            header.push(name.trim().to_owned());
        }
        Ok(CsvSource {
            path: path.to_owned(),
            reader,
            header,
            record: csv::StringRecord::new(),
        })
    }
}

impl RowSource for CsvSource {
    fn header(&self) -> &[String] {
        &self.header
    }

    fn advance(&mut self) -> Result<Option<u64>, ImportError> {
        loop {
            let more = self
                .reader
                .read_record(&mut self.record)
                .map_err(|err| csv_error(&self.path, err))?;
            if !more {
                return Ok(None);
            }
            // A blank line reads as one empty field: not a row.
            if !(self.record.len() == 1 && self.record[0].is_empty()) {
                return Ok(Some(self.record.position().map_or(0, csv::Position::line)));
            }
        }
    }

    fn cells(&self) -> Vec<Cell<'_>> {
        self.record.iter().map(Cell::Str).collect()
    }
}

/// One JSON Lines field.
enum Field {
    Text(String),
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Field {
    fn as_cell(&self) -> Cell<'_> {
        match self {
            Field::Text(text) => Cell::Str(text),
            Field::Null => Cell::Null,
            Field::Int(v) => Cell::Int(*v),
            Field::Float(v) => Cell::Float(*v),
            Field::Bool(v) => Cell::Bool(*v),
        }
    }
}

/// One line of a JSON Lines file.
type JsonObject = serde_json::Map<String, serde_json::Value>;

struct JsonlSource {
    path: PathBuf,
    lines: io::Lines<BufReader<Box<dyn Read + Send>>>,
    line: u64,
    header: Vec<String>,
    index: HashMap<String, usize>,
    pending: Option<(u64, JsonObject)>,
    fields: Vec<Field>,
}

impl JsonlSource {
    /// Reads the first object to learn the keys; later objects may omit keys (null) but a key
    /// the first line lacks is reported on its row.
    fn new(path: &Path, reader: Box<dyn Read + Send>) -> Result<JsonlSource, ImportError> {
        let mut source = JsonlSource {
            path: path.to_owned(),
            lines: BufReader::with_capacity(1 << 16, reader).lines(),
            line: 0,
            header: Vec::new(),
            index: HashMap::new(),
            pending: None,
            fields: Vec::new(),
        };
        let Some((line, first)) = source.next_object()? else {
            return Err(ImportError::Empty {
                path: path.to_owned(),
            });
        };
        for key in first.keys() {
            source.index.insert(key.clone(), source.header.len());
            source.header.push(key.clone());
        }
        source.pending = Some((line, first));
        Ok(source)
    }

    fn next_object(&mut self) -> Result<Option<(u64, JsonObject)>, ImportError> {
        for text in self.lines.by_ref() {
            self.line += 1;
            let text = text.map_err(|source| {
                if source.kind() == io::ErrorKind::InvalidData {
                    ImportError::Encoding {
                        path: self.path.clone(),
                        line: self.line,
                        detail: "invalid UTF-8".to_owned(),
                    }
                } else {
                    ImportError::Io {
                        path: self.path.clone(),
                        source,
                    }
                }
            })?;
            let text = if self.line == 1 {
                text.strip_prefix('\u{feff}').unwrap_or(&text).to_owned()
            } else {
                text
            };
            if text.trim().is_empty() {
                continue;
            }
            return match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(serde_json::Value::Object(map)) => Ok(Some((self.line, map))),
                Ok(_) => Err(ImportError::Syntax {
                    path: self.path.clone(),
                    line: self.line,
                    message: "expected a JSON object on each line".to_owned(),
                }),
                Err(err) => Err(ImportError::Syntax {
                    path: self.path.clone(),
                    line: self.line,
                    message: format!("invalid JSON at column {}: {err}", err.column()),
                }),
            };
        }
        Ok(None)
    }
}

impl RowSource for JsonlSource {
    fn header(&self) -> &[String] {
        &self.header
    }

    fn advance(&mut self) -> Result<Option<u64>, ImportError> {
        let next = match self.pending.take() {
            Some(pending) => Some(pending),
            None => self.next_object()?,
        };
        let Some((line, object)) = next else {
            return Ok(None);
        };
        self.fields.clear();
        self.fields.resize_with(self.header.len(), || Field::Null);
        for (key, value) in object {
            let Some(&i) = self.index.get(&key) else {
                // Reported as a row problem by a short field list.
                return Err(ImportError::Syntax {
                    path: self.path.clone(),
                    line,
                    message: format!(
                        "key `{key}` is not in the first line's object; every key must appear on the first line (use null there)"
                    ),
                });
            };
            self.fields[i] = match value {
                serde_json::Value::Null => Field::Null,
                serde_json::Value::Bool(b) => Field::Bool(b),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => Field::Int(i),
                    None => Field::Float(n.as_f64().unwrap_or(f64::NAN)),
                },
                serde_json::Value::String(s) => Field::Text(s),
                nested => Field::Text(nested.to_string()),
            };
        }
        Ok(Some(line))
    }

    fn cells(&self) -> Vec<Cell<'_>> {
        self.fields.iter().map(Field::as_cell).collect()
    }
}

enum WriteError {
    Rejected(RejectedRow),
    Store(StoreError),
}

/// Field positions of one kind, looked up once. A handful of names, so a linear scan of short
/// strings beats hashing them for every field of every row.
#[derive(Clone)]
struct Columns {
    idx: Vec<(&'static str, usize)>,
    /// The region of national phone numbers, when the customer's is not known.
    default_region: Option<&'static crate::phone::Region>,
}

impl Columns {
    fn new(kind: RecordKind, bound: &BoundMapping<'_>) -> Columns {
        let idx = tiercare_engine::fields(kind)
            .iter()
            .filter_map(|spec| bound.field_index(spec.name).map(|i| (spec.name, i)))
            .collect();
        Columns {
            idx,
            default_region: None,
        }
    }

    /// The customer's phone in E.164 form (see [`crate::phone`]): read in the region of
    /// the customer's `region` when it is a known ISO code, else `[import] default_region`. A
    /// number that cannot be read rejects the row: a phone kept as written would be one no
    /// SMS can reach, found only when a message is skipped for it.
    fn phone(
        &self,
        line: u64,
        phone: Option<String>,
        region: Option<&str>,
    ) -> Result<Option<String>, RejectedRow> {
        let Some(raw) = phone.filter(|p| !p.trim().is_empty()) else {
            return Ok(None);
        };
        let region = region
            .and_then(crate::phone::region)
            .or(self.default_region);
        crate::phone::to_e164(&raw, region)
            .map(Some)
            .map_err(|err| RejectedRow {
                line,
                column: "phone".to_owned(),
                value: Some(raw),
                reason: err.to_string(),
            })
    }

    fn take(&self, row: &mut TypedRow, name: &str) -> Option<Value> {
        let i = self.idx.iter().find(|(n, _)| *n == name)?.1;
        row.values.get_mut(i)?.take()
    }

    fn text(&self, row: &mut TypedRow, name: &str) -> Option<String> {
        match self.take(row, name)? {
            Value::Text(s) => Some(s),
            Value::Int(v) => Some(v.to_string()),
            Value::Float(v) => Some(v.to_string()),
            Value::Bool(v) => Some(v.to_string()),
            Value::Time(v) => Some(v.to_string()),
            Value::Date(d) => Some(d.to_string()),
        }
    }

    fn float(&self, row: &mut TypedRow, name: &str) -> Option<f64> {
        match self.take(row, name)? {
            Value::Float(v) => Some(v),
            Value::Int(v) => Some(v as f64),
            _ => None,
        }
    }

    fn int(&self, row: &mut TypedRow, name: &str) -> Option<i64> {
        match self.take(row, name)? {
            Value::Int(v) => Some(v),
            Value::Float(v) => Some(v as i64),
            _ => None,
        }
    }

    fn time(&self, row: &mut TypedRow, name: &str) -> Option<i64> {
        match self.take(row, name)? {
            Value::Time(v) | Value::Int(v) => Some(v),
            _ => None,
        }
    }

    fn date(&self, row: &mut TypedRow, name: &str) -> Option<chrono::NaiveDate> {
        match self.take(row, name)? {
            Value::Date(d) => Some(d),
            _ => None,
        }
    }

    fn required_text(
        &self,
        row: &mut TypedRow,
        line: u64,
        name: &str,
    ) -> Result<String, RejectedRow> {
        self.text(row, name).ok_or_else(|| missing(line, name))
    }

    fn required_time(&self, row: &mut TypedRow, line: u64, name: &str) -> Result<i64, RejectedRow> {
        self.time(row, name).ok_or_else(|| missing(line, name))
    }

    fn required_float(
        &self,
        row: &mut TypedRow,
        line: u64,
        name: &str,
    ) -> Result<f64, RejectedRow> {
        self.float(row, name).ok_or_else(|| missing(line, name))
    }

    fn boolean(&self, row: &mut TypedRow, name: &str) -> Option<bool> {
        match self.take(row, name)? {
            Value::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// Turns a typed row of `kind` into the store's record (an order with at most one line).
    fn record(
        &self,
        kind: RecordKind,
        line: u64,
        mut row: TypedRow,
    ) -> Result<Record, RejectedRow> {
        let c = self;
        let r = &mut row;
        Ok(match kind {
            RecordKind::Customers => {
                let region = c.text(r, "region");
                let phone = c.text(r, "phone");
                let phone = c.phone(line, phone, region.as_deref())?;
                Record::Customer(CustomerRecord {
                    external_id: c.required_text(r, line, "customer_id")?,
                    name: c.text(r, "name"),
                    email: c.text(r, "email"),
                    phone,
                    birthday: c.date(r, "birthday"),
                    region,
                    owner: c.text(r, "owner"),
                    timezone: c.text(r, "timezone"),
                    consent_email: c.boolean(r, "consent_email"),
                    consent_sms: c.boolean(r, "consent_sms"),
                    consent_phone: c.boolean(r, "consent_phone"),
                    attributes: std::mem::take(&mut r.attributes).into_iter().collect(),
                })
            }
            RecordKind::Orders => Record::Order(c.order(line, r)?),
            RecordKind::Interactions => Record::Interaction(InteractionRecord {
                external_id: c.text(r, "interaction_id"),
                customer_external_id: c.required_text(r, line, "customer_id")?,
                kind: c.required_text(r, line, "kind")?,
                occurred_at: c.required_time(r, line, "occurred_at")?,
                by: c.text(r, "by"),
                note: c.text(r, "note"),
            }),
            RecordKind::Complaints => Record::Complaint(ComplaintRecord {
                external_id: c.text(r, "complaint_id"),
                customer_external_id: c.required_text(r, line, "customer_id")?,
                opened_at: c.required_time(r, line, "opened_at")?,
                resolved_at: c.time(r, "resolved_at"),
                severity: c.int(r, "severity").map_or(2, |s| s.clamp(1, 4) as u8),
                subject: c.text(r, "subject"),
            }),
            RecordKind::Feedback => Record::Feedback(FeedbackRecord {
                external_id: c.text(r, "feedback_id"),
                customer_external_id: c.required_text(r, line, "customer_id")?,
                given_at: c.required_time(r, line, "given_at")?,
                score: c.required_float(r, line, "score")?,
                comment: c.text(r, "comment"),
            }),
            RecordKind::Managers => Record::Manager(ManagerRecord {
                external_id: c.required_text(r, line, "manager_id")?,
                name: c.required_text(r, line, "name")?,
                email: c.text(r, "email"),
                role: c.text(r, "role"),
                capacity: c.int(r, "capacity"),
                active: c.boolean(r, "active"),
                timezone: c.text(r, "timezone"),
            }),
        })
    }

    /// An order row: the order with its one line, if the row describes a line.
    fn order(&self, line: u64, r: &mut TypedRow) -> Result<OrderRecord, RejectedRow> {
        let c = self;
        let external_id = c.required_text(r, line, "order_id")?;
        let customer = c.required_text(r, line, "customer_id")?;
        let ordered_at = c.required_time(r, line, "ordered_at")?;
        let quantity = c.float(r, "quantity");
        let unit_price = c.float(r, "unit_price");
        let amount = match (c.float(r, "amount"), quantity, unit_price) {
            (Some(amount), _, _) => amount,
            (None, Some(q), Some(p)) => q * p,
            _ => return Err(missing(line, "amount")),
        };
        let sku = c.text(r, "sku");
        let description = c.text(r, "description");
        let customer_name = c.text(r, "customer_name");
        let customer_region = c.text(r, "customer_region");
        let coupon_code = c.text(r, "coupon_code");
        let points_spent = c.float(r, "points_spent");
        let item = (sku.is_some() || quantity.is_some() || unit_price.is_some()).then(|| {
            let quantity = quantity.unwrap_or(1.0);
            OrderItem {
                sku,
                description,
                quantity,
                unit_price: unit_price.unwrap_or(if quantity == 0.0 {
                    0.0
                } else {
                    amount / quantity
                }),
                amount,
            }
        });
        Ok(OrderRecord {
            external_id,
            customer_external_id: customer,
            ordered_at,
            amount,
            items: item.into_iter().collect(),
            customer_name,
            customer_region,
            coupon_code,
            points_spent,
        })
    }
}

/// A row as the store's record, made by the reading thread.
enum Record {
    Customer(CustomerRecord),
    Order(OrderRecord),
    Interaction(InteractionRecord),
    Complaint(ComplaintRecord),
    Feedback(FeedbackRecord),
    Manager(ManagerRecord),
}

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriterMode {
    /// Each record as it comes.
    Direct,
    /// Order lines grouped into orders, every order held until the whole file was read.
    Buffered,
    /// Order lines grouped into orders, each order handed over when a line of another one comes;
    /// a line of an order handed over before ends the pass ([`Mapped::Scattered`]).
    Streaming,
}

/// Groups order lines into orders, in the reading thread.
///
/// An order with a rejected line is rejected whole: its other lines are listed as rejected
/// ([`Mapped::RejectedOrders`]) after the rows' own rejections, in the order the orders' first
/// lines came, in both modes.
enum Grouping {
    None,
    Buffered {
        orders: Vec<(u64, OrderRecord)>,
        order_index: HashMap<String, usize>,
        /// The lines held for each order of `orders`.
        lines: Vec<Vec<u64>>,
        /// Orders with rejected lines: their lines.
        bad: HashMap<String, Vec<u64>>,
    },
    Streaming {
        /// The order whose lines are coming, with its first line.
        open: Option<(u64, OrderRecord)>,
        /// The lines held for the open order.
        open_lines: Vec<u64>,
        /// The ids of the orders handed over before it.
        closed: HashSet<String>,
        /// Orders with rejected lines: their lines.
        bad: HashMap<String, Vec<u64>>,
        /// The held lines of orders rejected whole, listed at the end.
        rejected: Vec<RejectedRow>,
    },
}

/// The rejections of the held lines of order `id`, rejected whole for its `bad` lines.
fn whole_order_rejections(id: &str, held: &[u64], bad: &[u64]) -> Vec<RejectedRow> {
    let mut bad = bad.to_vec();
    bad.sort_unstable();
    bad.dedup();
    let bad = bad.as_slice();
    let mut all: Vec<u64> = held.iter().chain(bad).copied().collect();
    all.sort_unstable();
    all.dedup();
    let list = |lines: &[u64]| {
        lines
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let reason = format!(
        "order '{id}' is rejected whole: its line{} {} {} rejected (its lines: {}); fix {} and \
         import the file again",
        if bad.len() == 1 { "" } else { "s" },
        list(bad),
        if bad.len() == 1 { "was" } else { "were" },
        list(&all),
        if bad.len() == 1 {
            "that line"
        } else {
            "those lines"
        },
    );
    held.iter()
        .map(|&line| RejectedRow {
            line,
            column: "order_id".to_owned(),
            value: Some(id.to_owned()),
            reason: reason.clone(),
        })
        .collect()
}

fn missing(line: u64, column: &str) -> RejectedRow {
    RejectedRow {
        line,
        column: column.to_owned(),
        value: None,
        reason: format!("`{column}` is required"),
    }
}

impl Grouping {
    fn new(mode: WriterMode) -> Grouping {
        match mode {
            WriterMode::Direct => Grouping::None,
            WriterMode::Buffered => Grouping::Buffered {
                orders: Vec::new(),
                order_index: HashMap::new(),
                lines: Vec::new(),
                bad: HashMap::new(),
            },
            WriterMode::Streaming => Grouping::Streaming {
                open: None,
                open_lines: Vec::new(),
                closed: HashSet::new(),
                bad: HashMap::new(),
                rejected: Vec::new(),
            },
        }
    }

    /// Takes an order row: returns what becomes of the row itself (as it is when orders are not
    /// grouped; else held as a line of its order, or rejected for naming another customer), and
    /// pushes to `out` what must come first: an order the row completes, or
    /// [`Mapped::Scattered`].
    fn add(&mut self, line: u64, row: OrderRecord, out: &mut Vec<Mapped>) -> Mapped {
        let added = match self {
            Grouping::None => return Mapped::Record(line, Record::Order(row)),
            Grouping::Buffered {
                orders,
                order_index,
                lines,
                bad,
            } => match order_index.get(&row.external_id) {
                Some(&i) => {
                    let (first_line, order) = &mut orders[i];
                    let added = add_line(*first_line, order, line, row);
                    match added {
                        Ok(()) => lines[i].push(line),
                        Err(_) => bad.entry(order.external_id.clone()).or_default().push(line),
                    }
                    added
                }
                None => {
                    order_index.insert(row.external_id.clone(), orders.len());
                    orders.push((line, row));
                    lines.push(vec![line]);
                    Ok(())
                }
            },
            Grouping::Streaming {
                open,
                open_lines,
                closed,
                bad,
                rejected,
            } => match open.as_mut() {
                Some((first_line, order)) if order.external_id == row.external_id => {
                    let added = add_line(*first_line, order, line, row);
                    match added {
                        Ok(()) => open_lines.push(line),
                        Err(_) => bad.entry(order.external_id.clone()).or_default().push(line),
                    }
                    added
                }
                _ if closed.contains(&row.external_id) => {
                    out.push(Mapped::Scattered(line));
                    Ok(())
                }
                _ => {
                    let held = std::mem::replace(open_lines, vec![line]);
                    if let Some((first_line, order)) = open.replace((line, row)) {
                        closed.insert(order.external_id.clone());
                        match bad.get(&order.external_id) {
                            Some(bad) => rejected.extend(whole_order_rejections(
                                &order.external_id,
                                &held,
                                bad,
                            )),
                            None => out.push(Mapped::Order(first_line, order)),
                        }
                    }
                    Ok(())
                }
            },
        };
        match added {
            Ok(()) => Mapped::Line,
            Err(rejected) => Mapped::Invalid(rejected),
        }
    }

    /// Takes a rejected line of order `id`: the order will be rejected whole. Pushes
    /// [`Mapped::Scattered`] to `out` when the order was handed over already.
    fn reject_line(&mut self, id: &str, line: u64, out: &mut Vec<Mapped>) {
        match self {
            Grouping::None => {}
            Grouping::Buffered { bad, .. } => bad.entry(id.to_owned()).or_default().push(line),
            Grouping::Streaming { closed, bad, .. } => {
                if closed.contains(id) {
                    out.push(Mapped::Scattered(line));
                } else {
                    bad.entry(id.to_owned()).or_default().push(line);
                }
            }
        }
    }

    /// The orders not handed over yet, in the order their first line appeared, then the lines
    /// of the orders rejected whole.
    fn finish(self) -> Vec<Mapped> {
        let mut out = Vec::new();
        let mut rejected = Vec::new();
        match self {
            Grouping::None => {}
            Grouping::Buffered {
                orders, lines, bad, ..
            } => {
                for ((line, order), held) in orders.into_iter().zip(lines) {
                    match bad.get(&order.external_id) {
                        Some(bad) => {
                            rejected.extend(whole_order_rejections(&order.external_id, &held, bad));
                        }
                        None => out.push(Mapped::Order(line, order)),
                    }
                }
            }
            Grouping::Streaming {
                open,
                open_lines,
                bad,
                rejected: before,
                ..
            } => {
                rejected = before;
                if let Some((line, order)) = open {
                    match bad.get(&order.external_id) {
                        Some(bad) => rejected.extend(whole_order_rejections(
                            &order.external_id,
                            &open_lines,
                            bad,
                        )),
                        None => out.push(Mapped::Order(line, order)),
                    }
                }
            }
        }
        if !rejected.is_empty() {
            out.push(Mapped::RejectedOrders(rejected));
        }
        out
    }
}

/// Writes one record as it is.
fn write_record(
    session: &mut ImportSession<'_>,
    line: u64,
    record: Record,
) -> Result<Outcome, WriteError> {
    let result = match record {
        Record::Customer(rec) => session.customer(line, &rec),
        Record::Order(rec) => session.order(line, &rec),
        Record::Interaction(rec) => session.interaction(line, &rec),
        Record::Complaint(rec) => session.complaint(line, &rec),
        Record::Feedback(rec) => session.feedback(line, &rec),
        Record::Manager(rec) => session.manager(line, &rec),
    };
    written(line, result)
}

/// Adds the line `row` (from `line`) to `order`, which started on `first_line`; a line naming
/// another customer is rejected.
fn add_line(
    first_line: u64,
    order: &mut OrderRecord,
    line: u64,
    row: OrderRecord,
) -> Result<(), RejectedRow> {
    if order.customer_external_id != row.customer_external_id {
        return Err(RejectedRow {
            line,
            column: "customer_id".to_owned(),
            value: Some(row.customer_external_id),
            reason: format!(
                "order '{}' belongs to customer '{}' on line {first_line}",
                order.external_id, order.customer_external_id
            ),
        });
    }
    order.amount += row.amount;
    order.ordered_at = order.ordered_at.min(row.ordered_at);
    order.items.extend(row.items);
    Ok(())
}

fn written(line: u64, result: Result<Outcome, RowError>) -> Result<Outcome, WriteError> {
    result.map_err(|err| match err {
        RowError::Rejected(rejection) => WriteError::Rejected(RejectedRow {
            line,
            column: rejection.column.unwrap_or("(row)").to_owned(),
            value: None,
            reason: rejection.reason,
        }),
        RowError::Fatal(err) => WriteError::Store(err),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives `data`, a few bytes at a time, then fails.
    struct Failing {
        data: Vec<u8>,
        pos: usize,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.data.len() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "corrupt"));
            }
            let n = buf.len().min(7).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn line(order: &str, customer: &str, amount: f64) -> OrderRecord {
        OrderRecord {
            external_id: order.to_owned(),
            customer_external_id: customer.to_owned(),
            ordered_at: 0,
            amount,
            items: Vec::new(),
            customer_name: None,
            customer_region: None,
            ..OrderRecord::default()
        }
    }

    /// What `Grouping::add` gave for each line, as text: the row's fate, after what came first.
    fn feed(grouping: &mut Grouping, lines: &[(&str, &str, f64)]) -> Vec<String> {
        let mut seen = Vec::new();
        for (i, (order, customer, amount)) in lines.iter().enumerate() {
            let mut out = Vec::new();
            let row = grouping.add(i as u64 + 2, line(order, customer, *amount), &mut out);
            out.push(row);
            for mapped in out {
                seen.push(match mapped {
                    Mapped::Order(first, order) => {
                        format!(
                            "order {} from line {first}: {}",
                            order.external_id, order.amount
                        )
                    }
                    Mapped::Line => "line".to_owned(),
                    Mapped::Invalid(row) => format!("rejected line {}", row.line),
                    Mapped::Scattered(line) => format!("scattered at {line}"),
                    Mapped::RejectedOrders(rows) => {
                        let lines: Vec<String> = rows.iter().map(|r| r.line.to_string()).collect();
                        format!("rejected whole: lines {}", lines.join(", "))
                    }
                    Mapped::Record(..) | Mapped::Skip(_) | Mapped::Width(..) => "other".to_owned(),
                });
            }
        }
        seen
    }

    #[test]
    fn streaming_hands_over_each_order_when_a_line_of_the_next_one_comes() {
        let mut grouping = Grouping::new(WriterMode::Streaming);
        let seen = feed(
            &mut grouping,
            &[
                ("A", "C1", 1.0),
                ("A", "C1", 2.0),
                ("B", "C2", 4.0),
                ("B", "C9", 8.0),
                ("C", "C1", 16.0),
            ],
        );
        assert_eq!(
            seen,
            [
                "line",
                "line",
                "order A from line 2: 3",
                "line",
                "rejected line 5",
                "line",
            ]
        );
        // B had a rejected line: it is rejected whole, its other line listed at the end.
        let rest: Vec<String> = grouping
            .finish()
            .into_iter()
            .map(|mapped| match mapped {
                Mapped::Order(first, _) => format!("order from line {first}"),
                Mapped::RejectedOrders(rows) => format!(
                    "rejected whole: {:?}",
                    rows.iter().map(|r| r.line).collect::<Vec<_>>()
                ),
                _ => "other".to_owned(),
            })
            .collect();
        assert_eq!(rest, ["order from line 6", "rejected whole: [4]"]);

        let mut grouping = Grouping::new(WriterMode::Streaming);
        let seen = feed(
            &mut grouping,
            &[("A", "C1", 1.0), ("B", "C1", 2.0), ("A", "C1", 4.0)],
        );
        assert_eq!(
            seen,
            [
                "line",
                "order A from line 2: 1",
                "line",
                "scattered at 4",
                "line"
            ]
        );

        // Held to the end, the same lines make two orders, A with both its lines.
        let mut grouping = Grouping::new(WriterMode::Buffered);
        let seen = feed(
            &mut grouping,
            &[("A", "C1", 1.0), ("B", "C1", 2.0), ("A", "C1", 4.0)],
        );
        assert_eq!(seen, ["line", "line", "line"]);
        let orders: Vec<(u64, f64)> = grouping
            .finish()
            .into_iter()
            .map(|mapped| match mapped {
                Mapped::Order(first, order) => (first, order.amount),
                _ => (0, 0.0),
            })
            .collect();
        assert_eq!(orders, [(2, 5.0), (3, 2.0)]);
    }

    #[test]
    fn the_inflating_reader_hands_over_every_byte_in_order_then_the_error() {
        let data: Vec<u8> = (0..INFLATED_CHUNK * 2 + 1000)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut whole = Vec::new();
        let mut reader = InflatingReader::new(io::Cursor::new(data.clone()));
        reader.read_to_end(&mut whole).unwrap();
        assert_eq!(whole, data);

        let mut reader = InflatingReader::new(Failing {
            data: data.clone(),
            pos: 0,
        });
        let mut read = Vec::new();
        let err = reader.read_to_end(&mut read).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(read, data);
    }
}
