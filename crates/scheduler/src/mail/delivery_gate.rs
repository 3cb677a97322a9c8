//! The delivery gate: the last check of a claimed email right before it is handed to a
//! transport.
//!
//! The planner applies the contact policy when a follow-up is recorded, and the text is
//! rendered then; but a backlog may be sent hours later, at night in the customer's zone, after
//! other emails went out, or after the customer ordered. So for each claimed email the send loop
//! asks [`DeliveryGate::check`], which decides on the customer's **current** data:
//!
//! - **Cancel** when the email is stale (past its rule's `max_delay` after its scheduled time)
//!   or no longer true (the rule's `tiers`, `segments`, `when` or trigger no longer hold: a
//!   win-back after a new order, an upgrade welcome after a downgrade), or when the contact
//!   policy would hold it past its `max_delay`;
//! - **Defer** (emails to the customer only) when the contact policy forbids sending now: the
//!   send window in the customer's zone, the minimum gap and the caps, counted against the
//!   emails actually sent (the outbox) and those already let through in this run; it waits until
//!   the next allowed time, with the reason, and the attempt is not counted;
//! - **Send** the email rendered again from current data (same template, same Message-ID).
//!
//! Notifications to the customer's owner follow the manager's rules: no consent, window, gap or
//! caps, only the freshness checks. The pure parts are the engine's ([`tiercare_engine::delivery`]),
//! the SQL the store's (`outbox_gate.rs`); the gate reads the rules, renders through an
//! [`EmailRenderer`] (which caches the features of a send run) and writes nothing itself:
//! [`admit`] records its verdict.

use std::collections::HashMap;

use chrono_tz::Tz;
use tiercare_engine::delivery::{Current, Recheck, Verdict, next_allowed};
use tiercare_engine::{Channel, Feature, FeatureValue, RuleSet, Snapshot, Trigger};
use tiercare_store::{OutboxEmail, RecipientKind, Store};

use crate::outbox::{DeliverError, RenderEmail, SendReport};
use crate::snapshot::fill_snapshot;
use crate::templates::{EmailRenderer, TemplatesError};
use crate::time::local_time;

/// What the gate decided for one claimed email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateDecision {
    /// Hand it over: the email rendered again from current data (same Message-ID).
    Send(Box<OutboxEmail>),
    /// Hold it until `until` (unix seconds), by the contact policy.
    Defer {
        /// The next allowed time.
        until: i64,
        /// Why, naming no one (the send window and zone, the gap, the cap).
        reason: String,
    },
    /// Do not send it: stale or no longer true.
    Cancel {
        /// Why, starting with [`tiercare_store::STALE_PREFIX`] or
        /// [`tiercare_store::UNTRUE_PREFIX`].
        reason: String,
    },
    /// It cannot be rendered from current data (a permanent failure).
    Fail {
        /// Why.
        reason: String,
    },
}

/// The delivery gate of one send run: the rules, a renderer (its features cached for the run)
/// and the emails it let through so far, which count as sent for the caps and the gap.
pub struct DeliveryGate<'a> {
    rules: &'a RuleSet,
    recheck: Recheck<'a>,
    renderer: &'a EmailRenderer,
    timezone: Tz,
    passed: HashMap<(Channel, String), Vec<i64>>,
}

impl std::fmt::Debug for DeliveryGate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryGate")
            .field("timezone", &self.timezone)
            .field("passed", &self.passed.len())
            .finish_non_exhaustive()
    }
}

impl<'a> DeliveryGate<'a> {
    /// A gate checking against `rules`, rendering with `renderer`, with `timezone` for
    /// customers without a (known) zone of their own.
    pub fn new(rules: &'a RuleSet, renderer: &'a EmailRenderer, timezone: Tz) -> Self {
        DeliveryGate {
            rules,
            recheck: Recheck::new(rules),
            renderer,
            timezone,
            passed: HashMap::new(),
        }
    }

    /// Decides whether the claimed `email` goes out at `now` (see the [module](self)).
    pub fn check(
        &mut self,
        store: &Store,
        email: &OutboxEmail,
        now: i64,
    ) -> Result<GateDecision, TemplatesError> {
        let keep = || GateDecision::Send(Box::new(email.clone()));
        // An email made by hand, or whose customer was forgotten (the claim suppresses those),
        // has no follow-up to check.
        let Some(customer_id) = email.customer_id.as_deref() else {
            return Ok(keep());
        };
        let Some(times) = store.email_followup_times(email.id)? else {
            return Ok(keep());
        };
        let Some(features) = self.renderer.customer_features(customer_id, now)? else {
            return Ok(keep());
        };
        let mut snapshot = Snapshot::new();
        fill_snapshot(&mut snapshot, &features);
        let rule = self.rules.followups().find(|rule| rule.id == email.rule_id);
        let customer_tz = match snapshot.get(Feature::Timezone) {
            FeatureValue::Text(zone) => zone.trim().parse().unwrap_or(self.timezone),
            _ => self.timezone,
        };
        let tz = rule.and_then(|rule| rule.timezone).unwrap_or(customer_tz);
        let tier = store.current_tier(customer_id)?.map(|current| current.tier);
        let segments = store
            .segments_of(customer_id)?
            .into_iter()
            .map(|segment| (segment.segment_set, segment.segment))
            .collect();
        let tier_event = rule.is_some_and(|rule| {
            matches!(
                rule.trigger,
                Trigger::Event(
                    tiercare_engine::Event::TierEntered
                        | tiercare_engine::Event::TierUp
                        | tiercare_engine::Event::TierDown
                )
            )
        });
        let tier_entered = if tier_event {
            store.tier_entered_at(customer_id, times.0)?
        } else {
            None
        };
        // The contact policy holds per channel: an SMS is counted against the SMS sent.
        let mut sent = store.customer_messages_sent(customer_id, email.channel)?;
        if let Some(passed) = self.passed.get(&(email.channel, customer_id.to_owned())) {
            sent.extend(passed);
        }
        let current = Current {
            tier,
            segments,
            tier_entered,
            sent,
        };
        match self
            .recheck
            .check(&email.rule_id, times, &snapshot, &current, now, tz)
        {
            Verdict::Holds => {}
            Verdict::Stale(reason) | Verdict::NoLonger(reason) => {
                return Ok(GateDecision::Cancel { reason });
            }
        }
        if email.recipient_kind == RecipientKind::Customer {
            let policy = self
                .rules
                .contact_policy()
                .for_tier(current.tier.as_deref())
                .for_channel(email.channel);
            let allowed = next_allowed(&policy, tz, &current.sent, now);
            if !allowed.now() {
                let until = allowed.at.max(now + 1);
                let next = local_time(until, tz);
                let reasons = allowed.reasons.join("; ");
                if self
                    .recheck
                    .deadline(&email.rule_id, times.1)
                    .is_some_and(|deadline| until > deadline)
                {
                    return Ok(GateDecision::Cancel {
                        reason: format!(
                            "{} held by the contact policy ({reasons}) until {next}, past its max_delay",
                            tiercare_store::STALE_PREFIX
                        ),
                    });
                }
                return Ok(GateDecision::Defer {
                    until,
                    reason: format!("held by the contact policy: {reasons}; next at {next}"),
                });
            }
        }
        // The code recorded with the e-mail, so the re-rendering carries the same one.
        let coupon = match email.followup_id {
            Some(followup) => store.coupon_of_followup(followup)?,
            None => None,
        };
        let mut fresh = email.clone();
        let rendered = match email.channel {
            Channel::Email => match store.outbox_survey(email.id)? {
                Some(survey) => {
                    self.renderer
                        .render_survey(&email.template, customer_id, now, &survey)
                }
                None => self.renderer.render_with_coupon(
                    &email.template,
                    customer_id,
                    now,
                    coupon.as_ref(),
                ),
            }
            .map(|rendered| {
                fresh.subject = rendered.subject;
                fresh.body_text = rendered.text;
                fresh.body_html = rendered.html;
            })
            .map_err(|err| err.to_string()),
            Channel::Sms => match store.outbox_survey(email.id)? {
                // A survey by SMS: `survey.link` again, its marker signed at the hand-over.
                Some(survey) => {
                    self.renderer
                        .render_sms_survey(&email.template, customer_id, now, &survey)
                }
                None => self.renderer.render_sms(&email.template, customer_id, now),
            }
            .and_then(|text| {
                let params = self
                    .renderer
                    .render_sms_params(&email.template, customer_id, now)?;
                fresh.body_text = text;
                fresh.body_html = params;
                Ok(())
            })
            .map_err(|err| err.to_string()),
        };
        if let Err(err) = rendered {
            return Ok(GateDecision::Fail {
                reason: format!("cannot render it from current data: {err}"),
            });
        }
        if email.recipient_kind == RecipientKind::Customer {
            self.passed
                .entry((email.channel, customer_id.to_owned()))
                .or_default()
                .push(now);
        }
        Ok(GateDecision::Send(Box::new(fresh)))
    }
}

/// The send loop's one call of the gate, right before a claimed email is handed to a
/// transport: without a gate the email goes as stored; with one, its decision is recorded
/// (deferred by policy, cancelled, failed, or the fresh rendering stored) and `Some` is the
/// email to send.
pub fn admit(
    gate: Option<&mut DeliveryGate<'_>>,
    store: &mut Store,
    email: OutboxEmail,
    now: i64,
    report: &mut SendReport,
) -> Result<Option<OutboxEmail>, DeliverError> {
    let Some(gate) = gate else {
        return Ok(Some(email));
    };
    let decision = match gate.check(store, &email, now) {
        Ok(decision) => decision,
        Err(TemplatesError::Store(err)) => return Err(err.into()),
        Err(err) => GateDecision::Fail {
            reason: format!("cannot check it against current data: {err}"),
        },
    };
    let id = email.id;
    match decision {
        GateDecision::Send(fresh) => {
            store.refresh_rendering(
                id,
                now,
                &fresh.subject,
                &fresh.body_text,
                fresh.body_html.as_deref(),
            )?;
            Ok(Some(*fresh))
        }
        GateDecision::Defer { until, reason } => {
            store.defer_by_policy(id, now, until, &reason)?;
            report.held += 1;
            tracing::info!(outbox = id, until, reason = %reason, "held by the contact policy");
            Ok(None)
        }
        GateDecision::Cancel { reason } => {
            store.cancel_by_gate(id, now, &reason)?;
            if reason.starts_with(tiercare_store::STALE_PREFIX) {
                report.stale += 1;
            } else {
                report.no_longer_true += 1;
            }
            tracing::info!(outbox = id, rule = %email.rule_id, reason = %reason, "cancelled");
            Ok(None)
        }
        GateDecision::Fail { reason } => {
            store.mark_failed(id, now, &reason, false)?;
            report.failed += 1;
            tracing::warn!(outbox = id, rule = %email.rule_id, "failed: cannot render it now");
            Ok(None)
        }
    }
}
