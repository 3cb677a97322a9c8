//! The `--json` vocabulary (docs/json.md): every command's JSON goes through [`vocabulary`],
//! which writes times as RFC 3339 strings in the workspace's zone and names tiers `tier`.
//!
//! The crates' structures keep unix seconds (their tests and the database use them); the
//! vocabulary is applied once, here, where the CLI prints, so every command says the same
//! thing the same way.

use chrono::TimeZone;
use chrono_tz::Tz;
use serde_json::Value;

/// Whether `key` names a time (an integer there is unix seconds): `at`, `from`, `to`,
/// `until`, `since`, `due`, `last_slot`, and every `…_at`, `…_since` and `…_until`.
pub fn is_time_key(key: &str) -> bool {
    matches!(
        key,
        "at" | "from" | "to" | "until" | "since" | "due" | "last_slot"
    ) || key.ends_with("_at")
        || key.ends_with("_since")
        || key.ends_with("_until")
}

/// A unix time as RFC 3339 in `zone`, to the second (`2026-12-07T09:30:00+01:00`, `Z` when
/// the offset is zero); a time chrono cannot represent stays a number.
pub fn rfc3339(unix: i64, zone: Tz) -> Value {
    match zone.timestamp_opt(unix, 0).single() {
        Some(time) => Value::String(time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        None => Value::from(unix),
    }
}

/// Applies the vocabulary to a JSON value in place: integers under time keys become RFC 3339
/// strings in `zone`, and a `tiers` list's items that name their tier `id` also get `tier`
/// (`id` is kept for one release).
pub fn vocabulary(value: &mut Value, zone: Tz) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if is_time_key(key)
                    && let Some(unix) = item.as_i64()
                {
                    *item = rfc3339(unix, zone);
                    continue;
                }
                if key == "tiers"
                    && let Value::Array(tiers) = item
                {
                    for tier in tiers.iter_mut() {
                        if let Value::Object(fields) = tier
                            && !fields.contains_key("tier")
                            && let Some(id @ Value::String(_)) = fields.get("id").cloned()
                        {
                            fields.insert("tier".to_owned(), id);
                        }
                    }
                }
                vocabulary(item, zone);
            }
        }
        Value::Array(items) => {
            for item in items {
                vocabulary(item, zone);
            }
        }
        _ => {}
    }
}
