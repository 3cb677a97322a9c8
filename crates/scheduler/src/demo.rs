//! Synthetic demo data: `tiercare demo DIR`.
//!
//! [`write_demo`] writes a realistic, deterministic data set as CSV files in tiercare's native import
//! format (managers, customers, orders, interactions, complaints, feedback), for trying tiercare and
//! for benchmarks. The same [`DemoSpec`] always gives byte-identical files: every random choice comes
//! from one `ChaCha8Rng` seeded with [`DemoSpec::seed`], and nothing reads the clock.
//!
//! Generation is streamed customer by customer, so memory stays bounded whatever the size: a
//! customer's orders, interactions, complaints and feedback are drawn and written before the next
//! customer is started, and only the manager table is held in memory.
//!
//! # The model
//! - Each customer has a latent value `v` drawn from a Pareto distribution with shape
//!   [`PARETO_SHAPE`] (≈ 1.16, the "80/20" shape), capped so that no single customer can dominate a
//!   large data set. Its quantile `u = P(V > v)` decides how the business treats the customer:
//!   the top 2% mostly have a senior account manager as owner, the top 20% mostly a junior one, and
//!   most of the rest have none.
//! - A lifecycle: most customers were already customers when the window starts, a quarter join
//!   during it, and some churn (their last order is their churn date). The share of the window a
//!   customer is active for is `a`.
//! - Orders: a Poisson count with mean proportional to `min(v, cap)^0.5 · a`, scaled so the overall
//!   mean is [`DemoSpec::orders_per_customer`]; amounts are lognormal around `v / min(v, cap)^0.5`, so
//!   that a customer's expected revenue is proportional to `v · a`. Bigger customers order both more
//!   often and more per order.
//! - Times are local business hours (mostly weekdays, 09:00–18:00) in the customer's time zone,
//!   written in UTC as RFC 3339 `YYYY-MM-DDTHH:MM:SSZ`, always inside `[end − years, end]`.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Months, NaiveDate, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Normal, Poisson};
use tiercare_engine::RecordKind;

/// The largest number of customers [`write_demo`] accepts.
pub const MAX_CUSTOMERS: u64 = 100_000_000;

/// Shape of the Pareto distribution of customer value; 1.16 puts ~80% of value in the top 20%.
pub const PARETO_SHAPE: f64 = 1.16;

/// The end of the data when none is given: 2026-01-01T00:00:00Z.
const DEFAULT_END_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2026, 1, 1) {
    Some(date) => date,
    None => panic!("2026-01-01 is a valid date"),
};

/// What [`write_demo`] should generate.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoSpec {
    /// Number of customers, 1 to [`MAX_CUSTOMERS`].
    pub customers: u64,
    /// Seed of the random generator; the same spec always gives the same bytes.
    pub seed: u64,
    /// The data ends here: no time in any file is later.
    pub end: DateTime<Utc>,
    /// Length of the history before `end`, in years (1 to 50).
    pub years: u32,
    /// Mean number of orders per customer over the whole history (0 to 1,000).
    pub orders_per_customer: f64,
}

impl Default for DemoSpec {
    /// 1,000 customers, seed 42, two years of history ending 2026-01-01T00:00:00Z, 10 orders each
    /// on average. The CLI replaces `end` with the current time.
    fn default() -> Self {
        DemoSpec {
            customers: 1000,
            seed: 42,
            end: DEFAULT_END_DATE.and_time(NaiveTime::MIN).and_utc(),
            years: 2,
            orders_per_customer: 10.0,
        }
    }
}

/// The files [`write_demo`] wrote, in the order they should be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoFiles {
    /// `managers.csv`: `manager_id,name,email,role,capacity,active,timezone`.
    pub managers: PathBuf,
    /// `customers.csv`: `customer_id,name,email,phone,birthday,region,owner,timezone,
    /// consent_email,consent_sms,industry,potential,relationship`.
    pub customers: PathBuf,
    /// `orders.csv`: `order_id,customer_id,ordered_at,amount`.
    pub orders: PathBuf,
    /// `interactions.csv`: `interaction_id,customer_id,kind,occurred_at,by,note`.
    pub interactions: PathBuf,
    /// `complaints.csv`: `complaint_id,customer_id,opened_at,resolved_at,severity,subject`.
    pub complaints: PathBuf,
    /// `feedback.csv`: `feedback_id,customer_id,given_at,score,comment`.
    pub feedback: PathBuf,
}

impl DemoFiles {
    /// Every file with the kind of record it holds, in the order they import: managers and
    /// customers before the facts that refer to them.
    pub fn in_import_order(&self) -> [(RecordKind, &Path); 6] {
        [
            (RecordKind::Managers, &self.managers),
            (RecordKind::Customers, &self.customers),
            (RecordKind::Orders, &self.orders),
            (RecordKind::Interactions, &self.interactions),
            (RecordKind::Complaints, &self.complaints),
            (RecordKind::Feedback, &self.feedback),
        ]
    }
}

/// How much [`write_demo`] wrote: data rows per file (headers not counted) and total revenue.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoStats {
    /// Rows in `managers.csv`.
    pub managers: u64,
    /// Rows in `customers.csv`.
    pub customers: u64,
    /// Rows in `orders.csv`.
    pub orders: u64,
    /// Rows in `interactions.csv`.
    pub interactions: u64,
    /// Rows in `complaints.csv`.
    pub complaints: u64,
    /// Rows in `feedback.csv`.
    pub feedback: u64,
    /// Sum of all order amounts (exact to the cent before conversion to `f64`).
    pub revenue: f64,
}

/// Why [`write_demo`] failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A directory or file could not be created or written.
    #[error("cannot write {}", path.display())]
    Io {
        /// The directory or file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The spec asks for something the generator cannot produce.
    #[error("invalid demo spec: {0}")]
    InvalidSpec(String),
}

/// Writes a demo data set into `dir` (created if missing) and returns the files and row counts.
///
/// `progress` is called with the number of customers done so far, every few thousand customers and
/// once at the end. Existing files of the same names are overwritten.
///
/// # Errors
/// [`DemoError::InvalidSpec`] when `customers` is 0 or above [`MAX_CUSTOMERS`], `years` is not in
/// 1–50, `orders_per_customer` is not in 0–1,000, or the window does not fit in years 1900–9999;
/// [`DemoError::Io`] when a file cannot be written.
pub fn write_demo(
    dir: &Path,
    spec: &DemoSpec,
    progress: &mut dyn FnMut(u64),
) -> Result<(DemoFiles, DemoStats), DemoError> {
    let window = Window::new(spec)?;
    fs::create_dir_all(dir).map_err(|source| DemoError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let files = DemoFiles {
        managers: dir.join("managers.csv"),
        customers: dir.join("customers.csv"),
        orders: dir.join("orders.csv"),
        interactions: dir.join("interactions.csv"),
        complaints: dir.join("complaints.csv"),
        feedback: dir.join("feedback.csv"),
    };
    let mut generator = Generator::new(spec, window, &files)?;
    for number in 1..=spec.customers {
        generator.customer(number)?;
        if number % PROGRESS_EVERY == 0 && number != spec.customers {
            progress(number);
        }
    }
    let stats = generator.finish()?;
    progress(spec.customers);
    Ok((files, stats))
}

/// How often (in customers) `progress` is called.
const PROGRESS_EVERY: u64 = 8192;
/// Seconds in a day.
const DAY: i64 = 86_400;
/// Size of each file's write buffer.
const WRITE_BUFFER: usize = 1 << 20;

/// One manager per this many customers (at least [`MIN_MANAGERS`], at most [`MAX_MANAGERS`]):
/// enough people for the default programme (a monthly review of every A customer by their
/// owner, a revisit of every B customer every two months), so `plan` on a demo warns of nothing.
const CUSTOMERS_PER_MANAGER: u64 = 500;
/// Fewest managers in a data set.
const MIN_MANAGERS: u64 = 4;
/// Most managers in a data set.
const MAX_MANAGERS: u64 = 500;
/// Every second manager (m001, m003, …) is a senior one: seniors own the A customers, about
/// a third of them.
const SENIOR_EVERY: u64 = 2;

/// The managers' zones: the demo workspace's, and (every third manager) Shanghai's.
const MANAGER_ZONES: [&str; 2] = ["Europe/London", "Asia/Shanghai"];

/// The value cap is this share of the number of customers (in units of the Pareto scale), so the
/// largest customer stays around half a percent of revenue at large sizes.
const VALUE_CAP_PER_CUSTOMER: f64 = 0.02;
/// The value cap is never below this.
const MIN_VALUE_CAP: f64 = 50.0;
/// Order frequency grows as `min(v, FREQUENCY_VALUE_CAP)^FREQUENCY_EXPONENT`.
const FREQUENCY_EXPONENT: f64 = 0.5;
/// Above this value customers order bigger, not more often (at most √400 = 20× the base rate).
const FREQUENCY_VALUE_CAP: f64 = 400.0;
/// Mean order amount of a customer of the lowest value.
const BASE_ORDER_AMOUNT: f64 = 40.0;
/// σ of the lognormal noise on each order amount (mean 1).
const ORDER_AMOUNT_SIGMA: f64 = 0.6;
/// Share of customers who were already customers when the window starts; the rest join in it.
const JOINED_BEFORE_WINDOW: f64 = 0.75;
/// Share of customers who churn at a uniform time between joining and `end`.
const CHURN_SHARE: f64 = 0.15;
/// Customers who joined within this many days of `end` have relationship `new` (earlier joiners
/// in the window: 40% of them).
const NEW_RELATIONSHIP_DAYS: i64 = 180;

/// Share of customers without an email address.
const NO_EMAIL_SHARE: f64 = 0.03;
/// Share of customers (with an email address) who consent to email.
const CONSENT_EMAIL_SHARE: f64 = 0.876;
/// Share of customers who consent to SMS.
const CONSENT_SMS_SHARE: f64 = 0.4;
/// Share of customers without a phone number.
const NO_PHONE_SHARE: f64 = 0.05;
/// Share of customers without a birthday.
const NO_BIRTHDAY_SHARE: f64 = 0.04;
/// Share of customers given a 29 February birthday on purpose (on top of the natural ~0.07%).
const LEAP_BIRTHDAY_SHARE: f64 = 0.002;

/// Chance of a complaint for a customer with orders (without: a fifth of it).
const COMPLAINT_SHARE: f64 = 0.052;
/// Share of complaints still open.
const OPEN_COMPLAINT_SHARE: f64 = 0.2;
/// Mean days to resolve a complaint.
const RESOLUTION_DAYS: f64 = 4.0;
/// Chance of feedback from a customer with orders and no complaint.
const FEEDBACK_SHARE: f64 = 0.18;
/// Chance of feedback from a customer with a complaint.
const FEEDBACK_SHARE_COMPLAINED: f64 = 0.5;

/// Names of one culture.
struct Culture {
    /// Given names.
    given: &'static [&'static str],
    /// Family names.
    family: &'static [&'static str],
    /// Whether the family name comes first ("Wang Fang").
    family_first: bool,
}

/// Name lists; index 0 English, 1 Chinese (pinyin), 2 German, 3 Irish and French, 4 Spanish,
/// 5 Indian.
const CULTURES: [Culture; 6] = [
    Culture {
        given: &[
            "Oliver",
            "Amelia",
            "George",
            "Isla",
            "Harry",
            "Olivia",
            "Jack",
            "Emily",
            "James",
            "Sophie",
            "William",
            "Grace",
            "Thomas",
            "Charlotte",
            "Daniel",
            "Hannah",
            "Michael",
            "Jessica",
            "Samuel",
            "Lucy",
        ],
        family: &[
            "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
            "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green",
            "Hall", "Wood", "Jackson", "Clarke",
        ],
        family_first: false,
    },
    Culture {
        given: &[
            "Fang", "Wei", "Min", "Jing", "Lei", "Yan", "Jun", "Tao", "Ming", "Hui", "Xiaoming",
            "Jiahao", "Yuxuan", "Zihan", "Haoran", "Xinyi", "Yichen", "Mingyu", "Shuang", "Qiang",
        ],
        family: &[
            "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu",
            "Sun", "Ma", "Zhu", "Hu", "Guo", "He", "Lin", "Gao", "Luo",
        ],
        family_first: true,
    },
    Culture {
        given: &[
            "Lukas",
            "Jonas",
            "Leon",
            "Felix",
            "Maximilian",
            "Paul",
            "Emma",
            "Mia",
            "Lena",
            "Jürgen",
            "Jörg",
            "Björn",
            "Günter",
            "Käthe",
            "Anke",
            "Sabine",
        ],
        family: &[
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Meyer",
            "Wagner",
            "Becker",
            "Schulz",
            "Hoffmann",
            "Schäfer",
            "Koch",
            "Bauer",
            "Richter",
            "Klein",
            "Wolf",
            "Schröder",
            "Neumann",
            "Zimmermann",
            "Krüger",
            "Strauß",
        ],
        family_first: false,
    },
    Culture {
        given: &[
            "Zoë",
            "Chloé",
            "Renée",
            "Noël",
            "Siobhán",
            "Seán",
            "Aoife",
            "Niamh",
            "Ciarán",
            "Éamon",
            "Hélène",
            "François",
            "Amélie",
            "Léa",
            "Jérôme",
        ],
        family: &[
            "O'Brien",
            "O'Neill",
            "O'Connor",
            "O'Sullivan",
            "D'Arcy",
            "Dubois",
            "Lefèvre",
            "Moreau",
            "Girard",
            "Fournier",
            "Murphy",
            "Kelly",
            "Byrne",
            "Ryan",
            "Doyle",
        ],
        family_first: false,
    },
    Culture {
        given: &[
            "José",
            "María",
            "Lucía",
            "Sofía",
            "Martín",
            "Mateo",
            "Valentina",
            "Camila",
            "Andrés",
            "Javier",
            "Inés",
            "Raúl",
        ],
        family: &[
            "García",
            "Rodríguez",
            "Martínez",
            "López",
            "González",
            "Hernández",
            "Pérez",
            "Sánchez",
            "Ramírez",
            "Núñez",
            "Peña",
            "Ibáñez",
        ],
        family_first: false,
    },
    Culture {
        given: &[
            "Aarav", "Priya", "Rohan", "Ananya", "Vikram", "Isha", "Arjun", "Kavya", "Rahul",
            "Neha", "Sanjay", "Deepa",
        ],
        family: &[
            "Patel", "Sharma", "Singh", "Kumar", "Gupta", "Reddy", "Iyer", "Nair", "Mehta", "Shah",
            "Joshi", "Desai",
        ],
        family_first: false,
    },
];

/// Chance that a customer's name comes from their region's culture rather than any culture.
const LOCAL_CULTURE_SHARE: f64 = 0.65;

/// A region a customer lives in.
struct Region {
    /// Name written to `region`.
    name: &'static str,
    /// Time zone, written to `timezone` and used for business hours.
    zone: Tz,
    /// Index into [`CULTURES`] of the usual names there.
    culture: usize,
    /// Fictional phone number prefix; [`Region::phone_digits`] random digits follow.
    phone_prefix: &'static str,
    /// Number of random digits after the prefix.
    phone_digits: usize,
    /// Relative share of customers.
    weight: u32,
}

/// The regions customers live in.
const REGIONS: [Region; 7] = [
    Region {
        name: "London",
        zone: chrono_tz::Europe::London,
        culture: 0,
        phone_prefix: "+44 20 7946 0",
        phone_digits: 3,
        weight: 22,
    },
    Region {
        name: "Manchester",
        zone: chrono_tz::Europe::London,
        culture: 0,
        phone_prefix: "+44 161 496 0",
        phone_digits: 3,
        weight: 8,
    },
    Region {
        name: "Shanghai",
        zone: chrono_tz::Asia::Shanghai,
        culture: 1,
        phone_prefix: "+86 21 5555 ",
        phone_digits: 4,
        weight: 18,
    },
    Region {
        name: "Beijing",
        zone: chrono_tz::Asia::Shanghai,
        culture: 1,
        phone_prefix: "+86 10 5555 ",
        phone_digits: 4,
        weight: 12,
    },
    Region {
        name: "New York",
        zone: chrono_tz::America::New_York,
        culture: 0,
        phone_prefix: "+1 212 555 01",
        phone_digits: 2,
        weight: 18,
    },
    Region {
        name: "Berlin",
        zone: chrono_tz::Europe::Berlin,
        culture: 2,
        phone_prefix: "+49 30 5555 ",
        phone_digits: 4,
        weight: 12,
    },
    Region {
        name: "Sydney",
        zone: chrono_tz::Australia::Sydney,
        culture: 0,
        phone_prefix: "+61 2 5550 ",
        phone_digits: 4,
        weight: 10,
    },
];

/// Values of `industry`.
const INDUSTRIES: [&str; 9] = [
    "retail",
    "manufacturing",
    "hospitality",
    "healthcare",
    "software",
    "logistics",
    "education",
    "construction",
    "finance",
];

/// Values of `kind` in `interactions.csv`.
const INTERACTION_KINDS: [&str; 4] = ["call", "visit", "email", "meeting"];
/// Weights of [`INTERACTION_KINDS`] for customers of a senior manager, a junior one, and none.
const INTERACTION_KIND_WEIGHTS: [[u32; 4]; 3] = [[30, 30, 10, 30], [45, 20, 30, 5], [30, 0, 70, 0]];
/// Interactions per active month for customers of a senior manager, a junior one, and none.
const INTERACTIONS_PER_MONTH: [f64; 3] = [1.0, 0.35, 0.04];
/// Notes per interaction kind, in the order of [`INTERACTION_KINDS`].
const INTERACTION_NOTES: [&[&str]; 4] = [
    &[
        "Follow-up call",
        "Checked in after delivery",
        "Asked about reorder timing",
        "Left voicemail, will retry",
        "Discussed the \"premium\" plan",
    ],
    &[
        "Site visit",
        "Visited the warehouse, met the buyer",
        "Product demo on site",
        "Training session for new staff",
    ],
    &[
        "Sent product catalogue",
        "Sent quote",
        "Newsletter reply",
        "Shared pricing, awaiting answer",
    ],
    &[
        "Quarterly review, renewal discussed",
        "Planning meeting",
        "Executive briefing",
        "Annual contract review",
        "Agreed next steps: pilot in Q3",
    ],
];

/// Values of `severity` and their weights.
const SEVERITIES: [(&str, u32); 4] = [("low", 40), ("medium", 35), ("high", 18), ("critical", 7)];
/// Weights of [`SEVERITIES`].
const SEVERITY_WEIGHTS: [u32; 4] = [
    SEVERITIES[0].1,
    SEVERITIES[1].1,
    SEVERITIES[2].1,
    SEVERITIES[3].1,
];
/// Values of `subject` in `complaints.csv`.
const COMPLAINT_SUBJECTS: [&str; 9] = [
    "Late delivery",
    "Damaged goods",
    "Wrong item shipped",
    "Billing error, charged twice",
    "Refund not received",
    "Product not as described",
    "Unhelpful support",
    "Website \"checkout\" failed",
    "Missing parts",
];

/// Weights of scores 1–5 from customers without and with a complaint.
const SCORE_WEIGHTS: [[u32; 5]; 2] = [[2, 4, 10, 34, 50], [30, 25, 20, 15, 10]];
/// Comments for scores 1–2, 3, 4 and 5.
const FEEDBACK_COMMENTS: [&[&str]; 4] = [
    &[
        "Very disappointed",
        "Took weeks to resolve, not happy",
        "Support said \"we'll call back\" and never did",
        "Will look elsewhere",
    ],
    &["Okay", "Average, could be better", "Delivery was slow"],
    &[
        "Good overall",
        "Good value, delivery a bit slow",
        "Friendly staff",
    ],
    &[
        "Excellent service",
        "Fast delivery, great quality",
        "Always \"spot on\" – thank you!",
        "Très bien, merci",
        "非常满意",
    ],
];

/// A manager's role, and which customers they own.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Service {
    /// Owned by a senior manager (key accounts).
    Senior = 0,
    /// Owned by a junior manager.
    Junior = 1,
    /// No owner.
    Unowned = 2,
}

/// The time window of the data and the local UTC offsets needed for business hours.
struct Window {
    /// First second of the window (Unix time).
    start: i64,
    /// Last second of the window (Unix time, `end` rounded down).
    end: i64,
    /// Day number (days since 1970-01-01) of the first entry in `offsets`.
    first_day: i64,
    /// Days covered per region in `offsets`.
    days: usize,
    /// UTC offset in seconds at local noon, per region then per day.
    offsets: Vec<i32>,
}

impl Window {
    /// Checks the spec and works out the window.
    fn new(spec: &DemoSpec) -> Result<Self, DemoError> {
        if spec.customers == 0 || spec.customers > MAX_CUSTOMERS {
            return Err(DemoError::InvalidSpec(format!(
                "customers must be between 1 and {MAX_CUSTOMERS}, not {}",
                spec.customers
            )));
        }
        if !(1..=50).contains(&spec.years) {
            return Err(DemoError::InvalidSpec(format!(
                "years must be between 1 and 50, not {}",
                spec.years
            )));
        }
        if !(0.0..=1000.0).contains(&spec.orders_per_customer) {
            return Err(DemoError::InvalidSpec(format!(
                "orders per customer must be between 0 and 1000, not {}",
                spec.orders_per_customer
            )));
        }
        let start = spec
            .end
            .checked_sub_months(Months::new(spec.years * 12))
            .filter(|start| start.timestamp() >= FIRST_YEAR_SECONDS)
            .filter(|_| spec.end.timestamp() < LAST_YEAR_END_SECONDS)
            .ok_or_else(|| {
                DemoError::InvalidSpec(format!(
                    "{} years before {} do not fit in the years 1900 to 9999",
                    spec.years, spec.end
                ))
            })?;
        let (start, end) = (start.timestamp(), spec.end.timestamp());
        // Two spare days before the start: weekend orders move back to Friday before clamping.
        let first_day = start.div_euclid(DAY) - 3;
        let days = usize::try_from(end.div_euclid(DAY) + 2 - first_day).unwrap_or(0);
        let mut offsets = Vec::with_capacity(days * REGIONS.len());
        for region in &REGIONS {
            for day in (first_day..).take(days) {
                let noon = DateTime::from_timestamp(day * DAY + DAY / 2, 0).unwrap_or_default();
                let offset = region.zone.offset_from_utc_datetime(&noon.naive_utc());
                offsets.push(offset.fix().local_minus_utc());
            }
        }
        Ok(Window {
            start,
            end,
            first_day,
            days,
            offsets,
        })
    }

    /// A time in local business hours of `region`, in `[from, to]`.
    fn business_time(&self, rng: &mut ChaCha8Rng, region: usize, from: i64, to: i64) -> i64 {
        let mut day = rng.random_range(from.div_euclid(DAY)..=to.div_euclid(DAY));
        let weekday = (day + 3).rem_euclid(7); // 0 is Monday: 1970-01-01 was a Thursday.
        if weekday >= 5 && rng.random_bool(0.75) {
            day -= weekday - 4;
        }
        let local = if rng.random_bool(0.85) {
            rng.random_range(9 * 3600..18 * 3600)
        } else {
            rng.random_range(7 * 3600..23 * 3600)
        };
        let index = usize::try_from(day - self.first_day)
            .unwrap_or(0)
            .min(self.days - 1);
        let offset = i64::from(self.offsets[region * self.days + index]);
        (day * DAY + local - offset).clamp(from, to)
    }
}

/// 1900-01-01T00:00:00Z in Unix time.
const FIRST_YEAR_SECONDS: i64 = -2_208_988_800;
/// 10000-01-01T00:00:00Z in Unix time.
const LAST_YEAR_END_SECONDS: i64 = 253_402_300_800;

/// One CSV file being written, row by row, through a large buffer.
struct CsvFile {
    /// Where it is written, for errors.
    path: PathBuf,
    /// The buffered file.
    out: BufWriter<File>,
    /// The row being built.
    row: Vec<u8>,
    /// Fields in the row so far.
    fields: usize,
    /// Data rows written (header not counted).
    rows: u64,
}

impl CsvFile {
    /// Creates the file and writes its header.
    fn create(path: &Path, header: &[&str]) -> Result<Self, DemoError> {
        let file = File::create(path).map_err(|source| DemoError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut csv = CsvFile {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(WRITE_BUFFER, file),
            row: Vec::with_capacity(256),
            fields: 0,
            rows: 0,
        };
        for name in header {
            csv.text(name);
        }
        csv.end_row()?;
        csv.rows = 0;
        Ok(csv)
    }

    /// Starts a field.
    fn separator(&mut self) {
        if self.fields > 0 {
            self.row.push(b',');
        }
        self.fields += 1;
    }

    /// An empty field.
    fn empty(&mut self) {
        self.separator();
    }

    /// A text field, quoted when it contains a comma, quote or line break.
    fn text(&mut self, text: &str) {
        self.separator();
        push_text(&mut self.row, text);
    }

    /// A person's name: two parts separated by a space, quoted as one field if needed.
    fn name(&mut self, first: &str, second: &str) {
        self.separator();
        if needs_quotes(first) || needs_quotes(second) {
            self.row.push(b'"');
            push_escaped(&mut self.row, first);
            self.row.push(b' ');
            push_escaped(&mut self.row, second);
            self.row.push(b'"');
        } else {
            self.row.extend_from_slice(first.as_bytes());
            self.row.push(b' ');
            self.row.extend_from_slice(second.as_bytes());
        }
    }

    /// `prefix` followed by `number` zero-padded to at least `width` digits (ids, phone numbers).
    fn id(&mut self, prefix: &str, number: u64, width: usize) {
        self.separator();
        self.row.extend_from_slice(prefix.as_bytes());
        push_number(&mut self.row, number, width);
    }

    /// An unsigned integer.
    fn number(&mut self, number: u64) {
        self.id("", number, 1);
    }

    /// `true` or `false`.
    fn boolean(&mut self, value: bool) {
        self.separator();
        self.row
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    /// An amount in cents as `units.cc`.
    fn money(&mut self, cents: u64) {
        self.separator();
        push_number(&mut self.row, cents / 100, 1);
        self.row.push(b'.');
        push_number(&mut self.row, cents % 100, 2);
    }

    /// A date (days since 1970-01-01) as `YYYY-MM-DD`.
    fn date(&mut self, day: i64) {
        self.separator();
        push_date(&mut self.row, day);
    }

    /// A Unix time in RFC 3339 as `YYYY-MM-DDTHH:MM:SSZ`: explicit UTC, so the import reads the
    /// same instant whatever the workspace's time zone.
    fn time(&mut self, seconds: i64) {
        self.separator();
        push_date(&mut self.row, seconds.div_euclid(DAY));
        let second_of_day = seconds.rem_euclid(DAY).unsigned_abs();
        self.row.push(b'T');
        push_number(&mut self.row, second_of_day / 3600, 2);
        self.row.push(b':');
        push_number(&mut self.row, second_of_day / 60 % 60, 2);
        self.row.push(b':');
        push_number(&mut self.row, second_of_day % 60, 2);
        self.row.push(b'Z');
    }

    /// Ends the row and hands it to the buffer.
    fn end_row(&mut self) -> Result<(), DemoError> {
        self.row.push(b'\n');
        let written = self.out.write_all(&self.row);
        self.row.clear();
        self.fields = 0;
        self.rows += 1;
        written.map_err(|source| DemoError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Flushes the file and returns the number of data rows.
    fn finish(mut self) -> Result<u64, DemoError> {
        self.out.flush().map_err(|source| DemoError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(self.rows)
    }
}

/// Whether a field must be quoted.
fn needs_quotes(text: &str) -> bool {
    text.bytes()
        .any(|byte| matches!(byte, b',' | b'"' | b'\n' | b'\r'))
}

/// Appends `text` with quotes doubled (no surrounding quotes).
fn push_escaped(row: &mut Vec<u8>, text: &str) {
    for byte in text.bytes() {
        if byte == b'"' {
            row.push(b'"');
        }
        row.push(byte);
    }
}

/// Appends `text` as a CSV field, quoted when needed.
fn push_text(row: &mut Vec<u8>, text: &str) {
    if needs_quotes(text) {
        row.push(b'"');
        push_escaped(row, text);
        row.push(b'"');
    } else {
        row.extend_from_slice(text.as_bytes());
    }
}

/// Appends `number` in decimal, zero-padded to at least `width` digits.
fn push_number(row: &mut Vec<u8>, mut number: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    loop {
        // `number % 10` is below 10, so the cast keeps it whole.
        digits[len] = b'0' + (number % 10) as u8;
        len += 1;
        number /= 10;
        if number == 0 {
            break;
        }
    }
    row.extend(std::iter::repeat_n(b'0', width.saturating_sub(len)));
    row.extend(digits[..len].iter().rev());
}

/// Appends the date of `day` (days since 1970-01-01, years 0–9999) as `YYYY-MM-DD`.
fn push_date(row: &mut Vec<u8>, day: i64) {
    let (year, month, day) = civil_from_days(day);
    push_number(row, year.unsigned_abs(), 4);
    row.push(b'-');
    push_number(row, u64::from(month), 2);
    row.push(b'-');
    push_number(row, u64::from(day), 2);
}

/// The proleptic Gregorian date of a day number (days since 1970-01-01); Howard Hinnant's
/// `civil_from_days`.
fn civil_from_days(day: i64) -> (i64, u32, u32) {
    let shifted = day + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // March is 0.
    let day_of_month = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Month is 1–12 and day 1–31, so both fit.
    (year, month as u32, day_of_month as u32)
}

/// The day number (days since 1970-01-01) of a proleptic Gregorian date; Howard Hinnant's
/// `days_from_civil`.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// An index drawn with the given relative weights.
fn weighted_index(rng: &mut ChaCha8Rng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut pick = rng.random_range(0..total);
    for (index, &weight) in weights.iter().enumerate() {
        if pick < weight {
            return index;
        }
        pick -= weight;
    }
    weights.len() - 1
}

/// One element of a non-empty list, uniformly.
fn choose<'a>(rng: &mut ChaCha8Rng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// The lower-case ASCII form of a name for an email address: accents dropped, apostrophes and
/// spaces removed ("Zoë O'Brien" → "zoe", "obrien").
fn ascii_slug(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for ch in name.chars().flat_map(char::to_lowercase) {
        let plain = match ch {
            'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' => "a",
            'ç' => "c",
            'è' | 'é' | 'ê' | 'ë' => "e",
            'ì' | 'í' | 'î' | 'ï' => "i",
            'ñ' => "n",
            'ò' | 'ó' | 'ô' | 'ö' | 'õ' => "o",
            'ù' | 'ú' | 'û' | 'ü' => "u",
            'ß' => "ss",
            _ if ch.is_ascii_alphanumeric() => {
                slug.push(ch);
                continue;
            }
            _ => continue,
        };
        slug.push_str(plain);
    }
    slug
}

/// A name drawn for a person.
struct Name {
    /// Index into [`CULTURES`].
    culture: usize,
    /// Index of the given name.
    given: usize,
    /// Index of the family name.
    family: usize,
}

/// Email-safe forms of every name in [`CULTURES`], computed once.
struct Slugs {
    /// Per culture, the slugs of the given names.
    given: Vec<Vec<String>>,
    /// Per culture, the slugs of the family names.
    family: Vec<Vec<String>>,
}

impl Slugs {
    /// Computes the slugs.
    fn new() -> Self {
        let slugs = |names: &[&str]| names.iter().map(|name| ascii_slug(name)).collect();
        Slugs {
            given: CULTURES.iter().map(|c| slugs(c.given)).collect(),
            family: CULTURES.iter().map(|c| slugs(c.family)).collect(),
        }
    }
}

/// The state of one generation run: random generator, distributions, managers and open files.
struct Generator {
    /// The one source of randomness.
    rng: ChaCha8Rng,
    /// Time window and business-hour offsets.
    window: Window,
    /// Email-safe name forms.
    slugs: Slugs,
    /// Region weights, in the order of [`REGIONS`].
    region_weights: Vec<u32>,
    /// Manager numbers (1-based) of seniors.
    seniors: Vec<u64>,
    /// Manager numbers (1-based) of juniors.
    juniors: Vec<u64>,
    /// Largest customer value.
    value_cap: f64,
    /// Expected orders per unit of `min(v, cap)^0.5 · a`.
    order_rate: f64,
    /// Noise on order amounts, mean 1.
    amount_noise: LogNormal<f64>,
    /// Base distribution of `potential`.
    potential: Normal<f64>,
    /// Years in the window.
    years: u32,
    /// Manager rows written.
    managers_written: u64,
    /// Sum of all order amounts in cents.
    revenue_cents: u64,
    /// Reused buffer of times.
    times: Vec<i64>,
    /// `customers.csv`.
    customers: CsvFile,
    /// `orders.csv`.
    orders: CsvFile,
    /// `interactions.csv`.
    interactions: CsvFile,
    /// `complaints.csv`.
    complaints: CsvFile,
    /// `feedback.csv`.
    feedback: CsvFile,
}

impl Generator {
    /// Opens the files and writes the managers.
    fn new(spec: &DemoSpec, window: Window, files: &DemoFiles) -> Result<Self, DemoError> {
        let invalid = |what: &str| DemoError::InvalidSpec(format!("cannot build {what}"));
        let value_cap = (spec.customers as f64 * VALUE_CAP_PER_CUSTOMER).max(MIN_VALUE_CAP);
        let frequency_cap = value_cap.min(FREQUENCY_VALUE_CAP);
        let activity =
            (JOINED_BEFORE_WINDOW + (1.0 - JOINED_BEFORE_WINDOW) / 2.0) * (1.0 - CHURN_SHARE / 2.0);
        let order_rate = spec.orders_per_customer / (mean_frequency(frequency_cap) * activity);
        let sigma = ORDER_AMOUNT_SIGMA;
        let mut generator = Generator {
            rng: ChaCha8Rng::seed_from_u64(spec.seed),
            window,
            slugs: Slugs::new(),
            region_weights: REGIONS.iter().map(|region| region.weight).collect(),
            seniors: Vec::new(),
            juniors: Vec::new(),
            value_cap,
            order_rate,
            amount_noise: LogNormal::new(-sigma * sigma / 2.0, sigma)
                .map_err(|_| invalid("the order amount distribution"))?,
            potential: Normal::new(45.0, 18.0)
                .map_err(|_| invalid("the potential distribution"))?,
            years: spec.years,
            managers_written: 0,
            revenue_cents: 0,
            times: Vec::new(),
            customers: CsvFile::create(
                &files.customers,
                &[
                    "customer_id",
                    "name",
                    "email",
                    "phone",
                    "birthday",
                    "region",
                    "owner",
                    "timezone",
                    "consent_email",
                    "consent_sms",
                    "industry",
                    "potential",
                    "relationship",
                ],
            )?,
            orders: CsvFile::create(
                &files.orders,
                &["order_id", "customer_id", "ordered_at", "amount"],
            )?,
            interactions: CsvFile::create(
                &files.interactions,
                &[
                    "interaction_id",
                    "customer_id",
                    "kind",
                    "occurred_at",
                    "by",
                    "note",
                ],
            )?,
            complaints: CsvFile::create(
                &files.complaints,
                &[
                    "complaint_id",
                    "customer_id",
                    "opened_at",
                    "resolved_at",
                    "severity",
                    "subject",
                ],
            )?,
            feedback: CsvFile::create(
                &files.feedback,
                &["feedback_id", "customer_id", "given_at", "score", "comment"],
            )?,
        };
        generator.write_managers(&files.managers, spec.customers)?;
        Ok(generator)
    }

    /// Draws a name, preferring the culture of `region`.
    fn draw_name(&mut self, region: usize) -> Name {
        let culture = if self.rng.random_bool(LOCAL_CULTURE_SHARE) {
            REGIONS[region].culture
        } else {
            self.rng.random_range(0..CULTURES.len())
        };
        Name {
            culture,
            given: self.rng.random_range(0..CULTURES[culture].given.len()),
            family: self.rng.random_range(0..CULTURES[culture].family.len()),
        }
    }

    /// Writes `managers.csv`.
    fn write_managers(&mut self, path: &Path, customers: u64) -> Result<(), DemoError> {
        let count = customers
            .div_ceil(CUSTOMERS_PER_MANAGER)
            .clamp(MIN_MANAGERS, MAX_MANAGERS);
        let mut csv = CsvFile::create(
            path,
            &[
                "manager_id",
                "name",
                "email",
                "role",
                "capacity",
                "active",
                "timezone",
            ],
        )?;
        for number in 1..=count {
            let senior = (number - 1) % SENIOR_EVERY == 0;
            let region = weighted_index(&mut self.rng, &self.region_weights);
            let name = self.draw_name(region);
            let capacity = if senior {
                self.rng.random_range(15..=30) * 10
            } else {
                self.rng.random_range(20..=60) * 25
            };
            csv.id("m", number, 3);
            write_name(&mut csv, &name);
            csv.separator();
            push_email_local(&mut csv.row, &self.slugs, &name);
            csv.row.extend_from_slice(b".m");
            push_number(&mut csv.row, number, 3);
            csv.row.extend_from_slice(b"@example.com");
            csv.text(if senior { "senior" } else { "junior" });
            csv.number(capacity);
            csv.boolean(true);
            // Every third manager works from Shanghai: their digest comes on their own clock.
            csv.text(MANAGER_ZONES[usize::from(number % 3 == 0)]);
            csv.end_row()?;
            if senior {
                self.seniors.push(number);
            } else {
                self.juniors.push(number);
            }
        }
        self.managers_written = csv.finish()?;
        Ok(())
    }

    /// Generates and writes one customer with all their records.
    fn customer(&mut self, number: u64) -> Result<(), DemoError> {
        let (start, end) = (self.window.start, self.window.end);
        // Value: u is the share of customers worth more (0 is the most valuable).
        let quantile = 1.0 - self.rng.random::<f64>();
        let value = quantile.powf(-1.0 / PARETO_SHAPE).min(self.value_cap);
        let frequency = value.min(FREQUENCY_VALUE_CAP).powf(FREQUENCY_EXPONENT);

        // Lifecycle: joined before or during the window, maybe churned.
        let joined_in_window = !self.rng.random_bool(JOINED_BEFORE_WINDOW);
        let first = if joined_in_window {
            self.rng.random_range(start..=end)
        } else {
            start
        };
        let churned = self.rng.random_bool(CHURN_SHARE);
        let last = if churned {
            self.rng.random_range(first..=end)
        } else {
            end
        };
        let active = (last - first) as f64 / (end - start).max(1) as f64;

        // Owner by value.
        let service = self.draw_service(quantile);
        let owner = match service {
            Service::Senior => Some(self.seniors[self.rng.random_range(0..self.seniors.len())]),
            Service::Junior => Some(self.juniors[self.rng.random_range(0..self.juniors.len())]),
            Service::Unowned => None,
        };

        let region = weighted_index(&mut self.rng, &self.region_weights);
        self.write_customer_row(
            number,
            region,
            owner,
            quantile,
            joined_in_window.then_some(first),
            churned,
        )?;

        let orders = self.write_orders(number, region, value, frequency, active, first, last)?;
        self.write_interactions(number, region, service, owner, active, first, last)?;
        let complained = self.write_complaints(number, region, orders, first, last)?;
        self.write_feedback(number, region, orders, complained, first, last)
    }

    /// Who serves a customer whose value quantile is `quantile`.
    fn draw_service(&mut self, quantile: f64) -> Service {
        let (senior, junior) = match quantile {
            q if q < 0.02 => (0.95, 1.0),
            q if q < 0.20 => (0.0, 0.85),
            q if q < 0.50 => (0.0, 0.30),
            _ => (0.0, 0.05),
        };
        let draw: f64 = self.rng.random();
        if draw < senior {
            Service::Senior
        } else if draw < junior {
            Service::Junior
        } else {
            Service::Unowned
        }
    }

    /// Writes the customer's row in `customers.csv`.
    fn write_customer_row(
        &mut self,
        number: u64,
        region: usize,
        owner: Option<u64>,
        quantile: f64,
        joined: Option<i64>,
        churned: bool,
    ) -> Result<(), DemoError> {
        let name = self.draw_name(region);
        let has_email = !self.rng.random_bool(NO_EMAIL_SHARE);
        let consent_email = has_email && self.rng.random_bool(CONSENT_EMAIL_SHARE);
        let consent_sms = self.rng.random_bool(CONSENT_SMS_SHARE);
        let phone = (!self.rng.random_bool(NO_PHONE_SHARE)).then(|| {
            let digits = REGIONS[region].phone_digits;
            // At most 4 digits, so the exponent is small.
            self.rng.random_range(0..10u64.pow(digits as u32))
        });
        let birthday = self.draw_birthday();
        let industry = choose(&mut self.rng, &INDUSTRIES);
        let recent = joined.is_some_and(|t| t > self.window.end - NEW_RELATIONSHIP_DAYS * DAY);
        let relationship = if recent || (joined.is_some() && self.rng.random_bool(0.4)) {
            "new"
        } else if quantile < 0.05 {
            if self.rng.random_bool(0.85) {
                "strategic"
            } else {
                "developing"
            }
        } else if quantile < 0.20 {
            if self.rng.random_bool(0.35) {
                "strategic"
            } else {
                "developing"
            }
        } else {
            "developing"
        };
        let mut potential = self.potential.sample(&mut self.rng);
        if joined.is_some() {
            potential += 15.0;
        }
        if (0.05..0.40).contains(&quantile) {
            potential += 10.0;
        }
        if churned {
            potential -= 20.0;
        }
        // Clamped to 0–100 first, so the cast is exact.
        let potential = potential.round().clamp(0.0, 100.0) as u64;

        let csv = &mut self.customers;
        csv.id("C", number, 7);
        write_name(csv, &name);
        csv.separator();
        if has_email {
            push_email_local(&mut csv.row, &self.slugs, &name);
            csv.row.push(b'.');
            push_number(&mut csv.row, number, 1);
            csv.row.extend_from_slice(b"@example.com");
        }
        match phone {
            Some(phone) => csv.id(
                REGIONS[region].phone_prefix,
                phone,
                REGIONS[region].phone_digits,
            ),
            None => csv.empty(),
        }
        match birthday {
            Some(day) => csv.date(day),
            None => csv.empty(),
        }
        csv.text(REGIONS[region].name);
        match owner {
            Some(owner) => csv.id("m", owner, 3),
            None => csv.empty(),
        }
        csv.text(REGIONS[region].zone.name());
        csv.boolean(consent_email);
        csv.boolean(consent_sms);
        csv.text(industry);
        csv.number(potential);
        csv.text(relationship);
        csv.end_row()
    }

    /// A birthday (day number) between 1950 and 2005, or none.
    fn draw_birthday(&mut self) -> Option<i64> {
        if self.rng.random_bool(NO_BIRTHDAY_SHARE) {
            return None;
        }
        if self.rng.random_bool(LEAP_BIRTHDAY_SHARE) {
            let year = 1952 + 4 * self.rng.random_range(0..14); // 1952–2004
            return Some(days_from_civil(year, 2, 29));
        }
        let first = days_from_civil(1950, 1, 1);
        let last = days_from_civil(2005, 12, 31);
        Some(self.rng.random_range(first..=last))
    }

    /// Writes the customer's orders and returns how many.
    #[expect(
        clippy::too_many_arguments,
        reason = "the customer's drawn traits, passed once"
    )]
    fn write_orders(
        &mut self,
        customer: u64,
        region: usize,
        value: f64,
        frequency: f64,
        active: f64,
        first: i64,
        last: i64,
    ) -> Result<u64, DemoError> {
        let count = self.poisson(self.order_rate * frequency * active);
        self.draw_times(count, region, first, last);
        let mean_amount = BASE_ORDER_AMOUNT * value / frequency;
        for &time in &self.times {
            let amount = mean_amount * self.amount_noise.sample(&mut self.rng);
            // At least 1.00; amounts are far below u64::MAX cents.
            let cents = (amount * 100.0).round().max(100.0) as u64;
            self.revenue_cents += cents;
            let csv = &mut self.orders;
            csv.id("O", csv.rows + 1, 9);
            csv.id("C", customer, 7);
            csv.time(time);
            csv.money(cents);
            csv.end_row()?;
        }
        Ok(count)
    }

    /// Writes the customer's interactions with the business.
    #[expect(
        clippy::too_many_arguments,
        reason = "the customer's drawn traits, passed once"
    )]
    fn write_interactions(
        &mut self,
        customer: u64,
        region: usize,
        service: Service,
        owner: Option<u64>,
        active: f64,
        first: i64,
        last: i64,
    ) -> Result<(), DemoError> {
        let months = active * f64::from(self.years) * 12.0;
        let count = self.poisson(INTERACTIONS_PER_MONTH[service as usize] * months);
        self.draw_times(count, region, first, last);
        for &time in &self.times {
            let kind = weighted_index(&mut self.rng, &INTERACTION_KIND_WEIGHTS[service as usize]);
            let note = if self.rng.random_bool(0.2) {
                ""
            } else {
                choose(&mut self.rng, INTERACTION_NOTES[kind])
            };
            let csv = &mut self.interactions;
            csv.id("I", csv.rows + 1, 9);
            csv.id("C", customer, 7);
            csv.text(INTERACTION_KINDS[kind]);
            csv.time(time);
            match owner {
                Some(owner) => csv.id("m", owner, 3),
                None => csv.empty(),
            }
            csv.text(note);
            csv.end_row()?;
        }
        Ok(())
    }

    /// Fills `self.times` with `count` business-hour times in `[first, last]` of the region,
    /// sorted: the times of one customer's orders, interactions, complaints or feedback.
    fn draw_times(&mut self, count: u64, region: usize, first: i64, last: i64) {
        self.times.clear();
        for _ in 0..count {
            let time = self
                .window
                .business_time(&mut self.rng, region, first, last);
            self.times.push(time);
        }
        self.times.sort_unstable();
    }

    /// Writes the customer's complaints, if any, and returns whether there were some.
    fn write_complaints(
        &mut self,
        customer: u64,
        region: usize,
        orders: u64,
        first: i64,
        last: i64,
    ) -> Result<bool, DemoError> {
        let chance = if orders > 0 {
            COMPLAINT_SHARE
        } else {
            COMPLAINT_SHARE / 5.0
        };
        if !self.rng.random_bool(chance) {
            return Ok(false);
        }
        let mut count = 1;
        while count < 4 && self.rng.random_bool(0.25) {
            count += 1;
        }
        self.draw_times(count, region, first, last);
        for &opened in &self.times {
            let resolved = if self.rng.random_bool(OPEN_COMPLAINT_SHARE) {
                None
            } else {
                let days = -(1.0 - self.rng.random::<f64>()).ln() * RESOLUTION_DAYS;
                // Far below i64::MAX seconds.
                let resolved = opened + 3600 + (days * DAY as f64) as i64;
                (resolved <= self.window.end).then_some(resolved)
            };
            let severity = SEVERITIES[weighted_index(&mut self.rng, &SEVERITY_WEIGHTS)].0;
            let subject = choose(&mut self.rng, &COMPLAINT_SUBJECTS);
            let csv = &mut self.complaints;
            csv.id("CP", csv.rows + 1, 7);
            csv.id("C", customer, 7);
            csv.time(opened);
            match resolved {
                Some(resolved) => csv.time(resolved),
                None => csv.empty(),
            }
            csv.text(severity);
            csv.text(subject);
            csv.end_row()?;
        }
        Ok(true)
    }

    /// Writes the customer's feedback, if any.
    fn write_feedback(
        &mut self,
        customer: u64,
        region: usize,
        orders: u64,
        complained: bool,
        first: i64,
        last: i64,
    ) -> Result<(), DemoError> {
        let chance = match (orders, complained) {
            (_, true) => FEEDBACK_SHARE_COMPLAINED,
            (0, false) => FEEDBACK_SHARE / 10.0,
            _ => FEEDBACK_SHARE,
        };
        if !self.rng.random_bool(chance) {
            return Ok(());
        }
        let count = if self.rng.random_bool(0.15) { 2 } else { 1 };
        self.draw_times(count, region, first, last);
        for &given in &self.times {
            let score = weighted_index(&mut self.rng, &SCORE_WEIGHTS[usize::from(complained)]) + 1;
            let comment = if self.rng.random_bool(0.4) {
                ""
            } else {
                choose(&mut self.rng, FEEDBACK_COMMENTS[score.saturating_sub(2)])
            };
            let csv = &mut self.feedback;
            csv.id("F", csv.rows + 1, 8);
            csv.id("C", customer, 7);
            csv.time(given);
            csv.number(score as u64);
            csv.text(comment);
            csv.end_row()?;
        }
        Ok(())
    }

    /// A Poisson count with mean `mean` (0 when the mean is not positive).
    fn poisson(&mut self, mean: f64) -> u64 {
        match Poisson::new(mean) {
            // A Poisson sample is a non-negative whole number.
            Ok(poisson) => poisson.sample(&mut self.rng) as u64,
            Err(_) => 0,
        }
    }

    /// Flushes every file and returns the counts.
    fn finish(self) -> Result<DemoStats, DemoError> {
        Ok(DemoStats {
            managers: self.managers_written,
            customers: self.customers.finish()?,
            orders: self.orders.finish()?,
            interactions: self.interactions.finish()?,
            complaints: self.complaints.finish()?,
            feedback: self.feedback.finish()?,
            revenue: self.revenue_cents as f64 / 100.0,
        })
    }
}

/// Writes a name field in the culture's order.
fn write_name(csv: &mut CsvFile, name: &Name) {
    let culture = &CULTURES[name.culture];
    let (given, family) = (culture.given[name.given], culture.family[name.family]);
    if culture.family_first {
        csv.name(family, given);
    } else {
        csv.name(given, family);
    }
}

/// Appends `given.family` in email-safe form.
fn push_email_local(row: &mut Vec<u8>, slugs: &Slugs, name: &Name) {
    row.extend_from_slice(slugs.given[name.culture][name.given].as_bytes());
    row.push(b'.');
    row.extend_from_slice(slugs.family[name.culture][name.family].as_bytes());
}

/// `E[min(V, cap)^β]` for `V` Pareto with scale 1 and shape [`PARETO_SHAPE`]: the mean order
/// frequency factor, used to scale order counts to the requested mean.
fn mean_frequency(cap: f64) -> f64 {
    // min(V, cap)^β is Pareto with shape γ = α/β, capped at cap^β: E = 1 + (K^(1−γ) − 1)/(1 − γ).
    let gamma = PARETO_SHAPE / FREQUENCY_EXPONENT;
    let top = cap.powf(FREQUENCY_EXPONENT);
    1.0 + (top.powf(1.0 - gamma) - 1.0) / (1.0 - gamma)
}
