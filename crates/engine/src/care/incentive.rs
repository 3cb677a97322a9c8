//! Coupon pools as the rules declare them (`coupons:`), validated: where an e-mail's coupon
//! comes from. [`crate::load`] builds them; the store issues the codes.
//!
//! ```yaml
//! coupons:
//!   winback:                          # the pool's name, as `email: { coupon: winback }` says
//!     pattern: "WB-{AAAA}-{9999}"     # generated codes; without it: imported codes only
//!     value: "10%"                    # shown as {{ coupon.value }}
//!     description: 10% off your next order
//!     expires: 30d                    # after issue; {{ coupon.expires }}
//!     warn_below: 100                 # `check`/`status` warn when fewer codes are left
//! ```

use serde::Serialize;

use crate::text::location::Location;

/// How many codes an imported pool keeps before `check` and `status` warn, unless the pool says
/// (`warn_below`).
pub const DEFAULT_WARN_BELOW: u64 = 50;

/// One coupon pool, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CouponPool {
    /// The pool's name.
    pub name: String,
    /// The pattern of generated codes (`WB-{AAAA}-{9999}`, checked); `None`: the pool's codes
    /// are imported (`tiercare coupons import`).
    pub pattern: Option<String>,
    /// What a coupon is worth, as shown to the customer.
    pub value: Option<String>,
    /// What it is for.
    pub description: Option<String>,
    /// Days from issue to expiry; `None`: never.
    pub expires_after_days: Option<u32>,
    /// An imported pool with fewer codes available than this is reported as running low.
    pub warn_below: u64,
    /// Where the pool is declared.
    #[serde(skip)]
    pub location: Location,
}
