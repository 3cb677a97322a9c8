//! One customer's feature values, as the rules see them, plus an active manual pin.
//!
//! The scheduler fills a [`Snapshot`] per customer from what the store computed (one reusable
//! snapshot per thread: [`Snapshot::reset`] between customers) and hands it to an
//! [`Evaluator`](crate::Evaluator). Setting a value is an index and a store; only the features
//! [`RuleSet::features_used`](crate::RuleSet::features_used) lists are read.
//!
//! A feature that is not set keeps its **neutral** value, the value of a customer with no data:
//! `0` and `0.0`, `""`, `false`, none for optional features, an empty `attr`, and
//! [`NEVER_DAYS`] (36500, "never") for `days_since_last_order` and
//! `days_since_last_contact`. Rule tests start from the same values.

use std::sync::OnceLock;

use rhai::{Array, Dynamic, ImmutableString, Map};
use serde::Serialize;
use tiercare_growth::BgNbd;

use crate::customer::feature::{Feature, FeatureType, NEVER_DAYS};

/// A manual tier pin (expert judgement): it beats the rules while it is active. The scheduler
/// passes only pins that are active at the assessment time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pin {
    /// The pinned tier's id.
    pub tier: String,
    /// Who pinned it.
    pub by: String,
    /// Why.
    pub reason: String,
    /// When the pin ends, as the user wrote it (`2026-03-01`), if it ends.
    pub until: Option<String>,
}

impl Pin {
    /// `pinned by alice until 2026-03-01: strategic account`.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut text = String::from("pinned");
        if !self.by.is_empty() {
            text.push_str(" by ");
            text.push_str(&self.by);
        }
        if let Some(until) = &self.until {
            text.push_str(" until ");
            text.push_str(until);
        }
        if !self.reason.is_empty() {
            text.push_str(": ");
            text.push_str(&self.reason);
        }
        text
    }
}

/// A feature value, for reading a snapshot back and for checked setting.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FeatureValue {
    /// None (`()`).
    None,
    /// A bool.
    Bool(bool),
    /// An int, or a time in unix seconds.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text.
    Text(String),
    /// The custom attributes.
    Map(serde_json::Map<String, serde_json::Value>),
}

/// A value that does not fit a feature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{feature}` is {expected}, not {found}")]
pub struct FeatureTypeError {
    /// The feature.
    pub feature: &'static str,
    /// Its type (`int`, `float or none`...).
    pub expected: String,
    /// What was given.
    pub found: &'static str,
}

/// One customer's feature values (indexed by [`Feature`]), custom attributes and active pin.
#[derive(Debug, Clone)]
pub struct Snapshot {
    values: Vec<Dynamic>,
    pin: Option<Pin>,
    times: AssessmentTimes,
    growth_model: Option<BgNbd>,
}

/// The times hysteresis measures on (see [`crate::tiering::hysteresis`]): not features, like the pin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AssessmentTimes {
    /// The assessment's time (`at`), unix seconds; None when unknown (rule tests).
    pub at: Option<i64>,
    /// When the stored pending downgrade was first asked for, if one is pending and its start
    /// is known.
    pub pending_since: Option<i64>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot::new()
    }
}

fn neutral_values() -> &'static [Dynamic] {
    static NEUTRAL: OnceLock<Vec<Dynamic>> = OnceLock::new();
    NEUTRAL.get_or_init(|| {
        Feature::all()
            .map(|feature| {
                let spec = feature.spec();
                if spec.optional {
                    return Dynamic::UNIT;
                }
                match (feature, spec.ty) {
                    (Feature::DaysSinceLastOrder | Feature::DaysSinceLastContact, _) => {
                        Dynamic::from_int(NEVER_DAYS)
                    }
                    (_, FeatureType::Text) => Dynamic::from(ImmutableString::new()),
                    (_, FeatureType::Bool) => Dynamic::FALSE,
                    (_, FeatureType::Int | FeatureType::Time) => Dynamic::from_int(0),
                    (_, FeatureType::Float) => Dynamic::from_float(0.0),
                    (_, FeatureType::Map) => Dynamic::from_map(Map::new()),
                }
            })
            .collect()
    })
}

impl Snapshot {
    /// A snapshot of a customer with no data: every feature neutral, no attributes, no pin.
    #[must_use]
    pub fn new() -> Self {
        Snapshot {
            values: neutral_values().to_vec(),
            pin: None,
            times: AssessmentTimes::default(),
            growth_model: None,
        }
    }

    /// Makes every feature neutral again and removes the pin (reusing the allocation).
    pub fn reset(&mut self) {
        self.values.clone_from_slice(neutral_values());
        self.pin = None;
        self.times = AssessmentTimes::default();
        self.growth_model = None;
    }

    /// Sets the BG/NBD parameters the assessment fitted (none: not fitted), which
    /// `expected_orders(days)` combines with the customer's `repeat_purchase_days`,
    /// `repeat_recency_days` and `purchase_age_days`. Not a feature, like the pin.
    pub fn set_growth_model(&mut self, model: Option<BgNbd>) {
        self.growth_model = model;
    }

    /// The BG/NBD parameters set by [`Snapshot::set_growth_model`].
    #[must_use]
    pub fn growth_model(&self) -> Option<&BgNbd> {
        self.growth_model.as_ref()
    }

    fn check(feature: Feature, ok: bool, setter: &str) {
        assert!(
            ok,
            "Snapshot::{setter} on `{feature}`, which is {}",
            feature.spec().type_text()
        );
    }

    /// Sets a text feature.
    ///
    /// # Panics
    /// If `feature` is not text (a bug in the caller).
    pub fn set_text(&mut self, feature: Feature, value: &str) {
        Self::check(feature, feature.ty() == FeatureType::Text, "set_text");
        self.values[feature.index()] = Dynamic::from(ImmutableString::from(value));
    }

    /// Sets an int feature (or a float feature, converting).
    ///
    /// # Panics
    /// If `feature` is not an int or float (a bug in the caller).
    pub fn set_int(&mut self, feature: Feature, value: i64) {
        match feature.ty() {
            FeatureType::Int => self.values[feature.index()] = Dynamic::from_int(value),
            #[expect(clippy::cast_precision_loss, reason = "counts and amounts fit a float")]
            FeatureType::Float => self.values[feature.index()] = Dynamic::from_float(value as f64),
            _ => Self::check(feature, false, "set_int"),
        }
    }

    /// Sets a float feature.
    ///
    /// # Panics
    /// If `feature` is not a float (a bug in the caller).
    pub fn set_float(&mut self, feature: Feature, value: f64) {
        Self::check(feature, feature.ty() == FeatureType::Float, "set_float");
        self.values[feature.index()] = Dynamic::from_float(value);
    }

    /// Sets an optional float feature (`satisfaction_avg`, `satisfaction_last`).
    ///
    /// # Panics
    /// If `feature` is not an optional float (a bug in the caller).
    pub fn set_optional_float(&mut self, feature: Feature, value: Option<f64>) {
        let spec = feature.spec();
        Self::check(
            feature,
            spec.ty == FeatureType::Float && spec.optional,
            "set_optional_float",
        );
        self.values[feature.index()] = value.map_or(Dynamic::UNIT, Dynamic::from_float);
    }

    /// Sets a bool feature.
    ///
    /// # Panics
    /// If `feature` is not a bool (a bug in the caller).
    pub fn set_bool(&mut self, feature: Feature, value: bool) {
        Self::check(feature, feature.ty() == FeatureType::Bool, "set_bool");
        self.values[feature.index()] = Dynamic::from_bool(value);
    }

    /// Sets a time feature (unix seconds, or none).
    ///
    /// # Panics
    /// If `feature` is not a time (a bug in the caller).
    pub fn set_time(&mut self, feature: Feature, value: Option<i64>) {
        Self::check(feature, feature.ty() == FeatureType::Time, "set_time");
        self.values[feature.index()] = value.map_or(Dynamic::UNIT, Dynamic::from_int);
    }

    /// Sets the custom attributes (`attr`) from a JSON object, replacing any there were.
    pub fn set_attributes(&mut self, attributes: &serde_json::Map<String, serde_json::Value>) {
        let map: Map = attributes
            .iter()
            .map(|(name, value)| (name.as_str().into(), json_to_dynamic(value)))
            .collect();
        self.values[Feature::Attr.index()] = Dynamic::from_map(map);
    }

    /// Sets one custom attribute.
    pub fn set_attribute(&mut self, name: &str, value: &serde_json::Value) {
        let slot = &mut self.values[Feature::Attr.index()];
        if let Some(mut map) = slot.write_lock::<Map>() {
            map.insert(name.into(), json_to_dynamic(value));
        }
    }

    /// Sets a feature from a [`FeatureValue`], checking its type (ints are accepted for floats;
    /// none only for optional features).
    ///
    /// # Errors
    /// When the value does not fit the feature.
    pub fn set(&mut self, feature: Feature, value: FeatureValue) -> Result<(), FeatureTypeError> {
        let spec = feature.spec();
        let found = match &value {
            FeatureValue::None => "none",
            FeatureValue::Bool(_) => "a bool",
            FeatureValue::Int(_) => "an int",
            FeatureValue::Float(_) => "a float",
            FeatureValue::Text(_) => "text",
            FeatureValue::Map(_) => "a map",
        };
        let dynamic = match (spec.ty, value) {
            (_, FeatureValue::None) if spec.optional => Dynamic::UNIT,
            (FeatureType::Text, FeatureValue::Text(text)) => {
                Dynamic::from(ImmutableString::from(text))
            }
            (FeatureType::Bool, FeatureValue::Bool(b)) => Dynamic::from_bool(b),
            (FeatureType::Int | FeatureType::Time, FeatureValue::Int(i)) => Dynamic::from_int(i),
            #[expect(clippy::cast_precision_loss, reason = "test values fit a float")]
            (FeatureType::Float, FeatureValue::Int(i)) => Dynamic::from_float(i as f64),
            (FeatureType::Float, FeatureValue::Float(f)) => Dynamic::from_float(f),
            (FeatureType::Map, FeatureValue::Map(map)) => {
                self.set_attributes(&map);
                return Ok(());
            }
            _ => {
                return Err(FeatureTypeError {
                    feature: spec.name,
                    expected: spec.type_text(),
                    found,
                });
            }
        };
        self.values[feature.index()] = dynamic;
        Ok(())
    }

    /// The value of a feature.
    #[must_use]
    pub fn get(&self, feature: Feature) -> FeatureValue {
        let value = &self.values[feature.index()];
        match dynamic_to_json(value) {
            serde_json::Value::Null => FeatureValue::None,
            serde_json::Value::Bool(b) => FeatureValue::Bool(b),
            serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) if value.is_int() => FeatureValue::Int(i),
                (_, Some(f)) => FeatureValue::Float(f),
                _ => FeatureValue::None,
            },
            serde_json::Value::String(s) => FeatureValue::Text(s),
            serde_json::Value::Object(map) => FeatureValue::Map(map),
            serde_json::Value::Array(_) => FeatureValue::None,
        }
    }

    /// The value of an int or time feature, without conversion; `None` when it is none (or the
    /// feature is not an int). The cheap way for Rust code to read a number.
    #[must_use]
    pub fn int(&self, feature: Feature) -> Option<i64> {
        let value = &self.values[feature.index()];
        if value.is_int() {
            value.as_int().ok()
        } else {
            None
        }
    }

    /// The value of a float feature, without conversion; `None` when it is none (or the feature
    /// is not a float).
    #[must_use]
    pub fn float(&self, feature: Feature) -> Option<f64> {
        let value = &self.values[feature.index()];
        if value.is_float() {
            value.as_float().ok()
        } else {
            None
        }
    }

    /// The customer's external id (`customer_id`).
    #[must_use]
    pub fn customer_id(&self) -> String {
        self.values[Feature::CustomerId.index()].to_string()
    }

    /// Sets or removes the active pin.
    pub fn set_pin(&mut self, pin: Option<Pin>) {
        self.pin = pin;
    }

    /// The active pin, if any.
    #[must_use]
    pub fn pin(&self) -> Option<&Pin> {
        self.pin.as_ref()
    }

    /// Sets the assessment's time and the pending downgrade's start, for hysteresis.
    pub fn set_times(&mut self, times: AssessmentTimes) {
        self.times = times;
    }

    /// The assessment's time and the pending downgrade's start, as set.
    #[must_use]
    pub fn times(&self) -> AssessmentTimes {
        self.times
    }

    /// The Rhai value of a feature.
    pub(crate) fn dynamic(&self, feature: Feature) -> &Dynamic {
        &self.values[feature.index()]
    }
}

/// A JSON value as a Rhai value: null is `()`, integers are ints, other numbers floats.
pub(crate) fn json_to_dynamic(value: &serde_json::Value) -> Dynamic {
    match value {
        serde_json::Value::Null => Dynamic::UNIT,
        serde_json::Value::Bool(b) => Dynamic::from_bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Dynamic::from(ImmutableString::from(s.as_str())),
        serde_json::Value::Array(items) => {
            Dynamic::from_array(items.iter().map(json_to_dynamic).collect::<Array>())
        }
        serde_json::Value::Object(map) => Dynamic::from_map(
            map.iter()
                .map(|(name, value)| (name.as_str().into(), json_to_dynamic(value)))
                .collect::<Map>(),
        ),
    }
}

/// A Rhai value as JSON (for explanations): `()` is null, non-finite floats are null.
pub(crate) fn dynamic_to_json(value: &Dynamic) -> serde_json::Value {
    if value.is_unit() {
        serde_json::Value::Null
    } else if let Ok(b) = value.as_bool() {
        serde_json::Value::Bool(b)
    } else if let Ok(i) = value.as_int() {
        serde_json::Value::from(i)
    } else if let Ok(f) = value.as_float() {
        serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)
    } else if value.is_string() {
        serde_json::Value::String(value.to_string())
    } else if let Some(array) = value.read_lock::<Array>() {
        serde_json::Value::Array(array.iter().map(dynamic_to_json).collect())
    } else if let Some(map) = value.read_lock::<Map>() {
        serde_json::Value::Object(
            map.iter()
                .map(|(name, value)| (name.to_string(), dynamic_to_json(value)))
                .collect(),
        )
    } else {
        serde_json::Value::String(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn neutral_customer() {
        let snapshot = Snapshot::new();
        assert_eq!(snapshot.get(Feature::OrdersTotal), FeatureValue::Int(0));
        assert_eq!(
            snapshot.get(Feature::RevenueWindow),
            FeatureValue::Float(0.0)
        );
        assert_eq!(
            snapshot.get(Feature::Region),
            FeatureValue::Text(String::new())
        );
        assert_eq!(snapshot.get(Feature::HasEmail), FeatureValue::Bool(false));
        assert_eq!(snapshot.get(Feature::LastOrderAt), FeatureValue::None);
        assert_eq!(snapshot.get(Feature::SatisfactionAvg), FeatureValue::None);
        assert_eq!(
            snapshot.get(Feature::DaysSinceLastOrder),
            FeatureValue::Int(NEVER_DAYS)
        );
        assert_eq!(
            snapshot.get(Feature::Attr),
            FeatureValue::Map(serde_json::Map::new())
        );
    }

    #[test]
    fn setters_and_reset() {
        let mut snapshot = Snapshot::new();
        snapshot.set_text(Feature::CustomerId, "C-1");
        snapshot.set_int(Feature::OrdersWindow, 3);
        snapshot.set_int(Feature::RevenueWindow, 120);
        snapshot.set_time(Feature::LastOrderAt, Some(1_700_000_000));
        snapshot.set_optional_float(Feature::SatisfactionAvg, Some(4.5));
        snapshot.set_attribute("potential", &json!(80));
        assert_eq!(snapshot.customer_id(), "C-1");
        assert_eq!(
            snapshot.get(Feature::RevenueWindow),
            FeatureValue::Float(120.0)
        );
        assert_eq!(
            snapshot.get(Feature::LastOrderAt),
            FeatureValue::Int(1_700_000_000)
        );
        let FeatureValue::Map(attr) = snapshot.get(Feature::Attr) else {
            panic!("attr is a map");
        };
        assert_eq!(attr["potential"], json!(80));
        snapshot.reset();
        assert_eq!(snapshot.get(Feature::OrdersWindow), FeatureValue::Int(0));
        assert_eq!(
            snapshot.get(Feature::Attr),
            FeatureValue::Map(serde_json::Map::new())
        );
    }

    #[test]
    fn checked_set_refuses_wrong_types() {
        let mut snapshot = Snapshot::new();
        let err = snapshot
            .set(Feature::OrdersTotal, FeatureValue::Text("3".into()))
            .unwrap_err();
        assert_eq!(err.to_string(), "`orders_total` is int, not text");
        let err = snapshot
            .set(Feature::RevenueWindow, FeatureValue::None)
            .unwrap_err();
        assert_eq!(err.to_string(), "`revenue_window` is float, not none");
        snapshot
            .set(Feature::SatisfactionLast, FeatureValue::None)
            .unwrap();
        snapshot
            .set(Feature::RevenueWindow, FeatureValue::Int(5))
            .unwrap();
    }

    #[test]
    #[should_panic(expected = "Snapshot::set_float on `orders_total`, which is int")]
    fn typed_setter_panics_on_a_caller_bug() {
        Snapshot::new().set_float(Feature::OrdersTotal, 1.0);
    }

    #[test]
    fn pins_describe_themselves() {
        let pin = Pin {
            tier: "A".into(),
            by: "alice".into(),
            reason: "strategic account".into(),
            until: Some("2026-03-01".into()),
        };
        assert_eq!(
            pin.describe(),
            "pinned by alice until 2026-03-01: strategic account"
        );
    }
}
