//! tiercare's shared vocabulary: the domain types that the engine (which decides) and the store
//! (which keeps) both speak, defined once so that neither keeps a copy and nobody translates
//! between copies by hand.
//!
//! # What this crate must never do
//!
//! - **No behaviour** beyond trivial methods (names, parsing a name, a length in seconds): rules
//!   live in the engine, SQL in the store.
//! - **No dependencies** but what serde needs. It is the bottom of the workspace: every other
//!   crate may depend on it, it depends on none of them.

mod channel;
mod coupon;
mod record;
mod survey;
mod window;

pub use channel::Channel;
pub use coupon::{CodePart, CodePattern, MIN_CODE_BITS};
pub use record::{RecordKind, UnknownRecordKind};
pub use survey::{Survey, SurveyKind};
pub use window::Window;

/// The value of `days_since_last_order` and `days_since_last_contact` for a customer who never
/// ordered (was never contacted): 100 years, so `days_since_last_order > 365` treats them as
/// inactive. The store computes it and rules compare with it.
pub const NEVER_DAYS: i64 = 36_500;
