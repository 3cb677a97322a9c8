//! Care-email templates of a workspace: read from `templates/`, checked by the engine, and
//! rendered for one customer with a context built from the store.
//!
//! [`read_templates`] reads the folder (the engine does no IO); [`EmailRenderer`] builds each
//! customer's [`TemplateContext`] (profile, features, tier and segments, owner, product
//! recommendations) and renders a template for them. It implements the outbox's
//! [`RenderEmail`], so emails recorded by `followups record` are rendered from templates.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::TimeZone;
use chrono_tz::Tz;
use tiercare_engine::sms::SMS_TEMPLATE_SUFFIX;
use tiercare_engine::template::TEMPLATE_SUFFIXES;
use tiercare_engine::template::TextTemplates;
use tiercare_engine::{
    CustomerContext, FeatureValue, LoadedTemplates, OwnerContext, RecommendationContext,
    RenderError as TemplateRenderError, RenderedTemplate, RuleSet, SenderContext, Snapshot,
    SurveyContext, TemplateContext, TemplateFile, Templates, TierContext, features, load_templates,
};
use tiercare_engine::{LoadedSmsTemplates, SmsTemplates, load_sms_templates_for};
use tiercare_store::{
    CustomerFeatures, EmailRecipient, FeatureTable, IssuedCoupon, Manager, OutboxEmail,
    OutboxState, RecipientKind, Recommender, Store, StoreError, Survey, Window,
};

use crate::mail::build_with;
use crate::outbox::{RenderEmail, RenderError, RenderedEmail};
use crate::outbox::{SendSettings, compose, outgoing};
use crate::snapshot::fill_snapshot;
use crate::workspace::{Workspace, WorkspaceError};

/// The code `tiercare preview` shows for `coupon.code`: a preview issues nothing.
pub const PREVIEW_COUPON_CODE: &str = "PREVIEW-CODE";

/// How many products `recommendations` holds at most.
pub const RECOMMENDATIONS: usize = 3;

/// Why templates could not be read or a context built.
#[derive(Debug, thiserror::Error)]
pub enum TemplatesError {
    /// The template folder or a file in it could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// No customer has this id.
    #[error("no customer with id '{0}': check the id in your customers file")]
    UnknownCustomer(String),
    /// The template could not be rendered (unknown, or failed for this customer).
    #[error(transparent)]
    Render(#[from] TemplateRenderError),
    /// The database refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The workspace's database could not be opened.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// A survey e-mail, but no address where its links are answered.
    #[error(
        "survey e-mails need `[http] public_url` in tiercare.toml: their links are answered by \
         `tiercare serve` (or `tiercare run` with `[http]`) at <public_url>/survey/..."
    )]
    NoSurveyUrl,
}

/// Reads the template files of `dir` (`*.eml.j2`, `*.txt.j2`, `*.html.j2`), sorted, naming each
/// `label/<file name>` in diagnostics. A missing folder has no templates.
pub fn read_templates(dir: &Path, label: &Path) -> Result<Vec<TemplateFile>, TemplatesError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let files = crate::workspace::read_folder(dir, label, |name| {
        TEMPLATE_SUFFIXES
            .iter()
            .any(|suffix| name.ends_with(suffix))
    })
    .map_err(|(path, source)| TemplatesError::Io { path, source })?;
    Ok(files
        .into_iter()
        .map(|(path, text)| TemplateFile::new(path, text))
        .collect())
}

/// Reads and checks a workspace's SMS templates (`templates/NAME.sms.j2`) with its
/// `[sms] max_segments`: the usable ones, each sample's length, and every problem.
pub fn load_workspace_sms_templates(
    workspace: &Workspace,
) -> Result<LoadedSmsTemplates, TemplatesError> {
    let files = read_sms_templates(&workspace.templates_dir(), Path::new("templates"))?;
    Ok(load_sms_templates_for(
        &files,
        workspace.config().sms.max_segments,
        workspace
            .config()
            .http
            .as_ref()
            .and_then(crate::http_config::HttpConfig::survey_url)
            .as_deref(),
    ))
}

/// Reads the SMS template files of `dir` (`*.sms.j2`), sorted, naming each `label/<file name>`
/// in diagnostics. A missing folder has none.
pub fn read_sms_templates(dir: &Path, label: &Path) -> Result<Vec<TemplateFile>, TemplatesError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let files =
        crate::workspace::read_folder(dir, label, |name| name.ends_with(SMS_TEMPLATE_SUFFIX))
            .map_err(|(path, source)| TemplatesError::Io { path, source })?;
    Ok(files
        .into_iter()
        .map(|(path, text)| TemplateFile::new(path, text))
        .collect())
}

/// The names of the SMS templates in `files` (usable or not), for `check_references`.
pub fn sms_template_names(files: &[TemplateFile]) -> Vec<String> {
    let mut names: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let file_name = file.path.rsplit(['/', '\\']).next()?;
            file_name
                .strip_suffix(SMS_TEMPLATE_SUFFIX)
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Reads and checks a workspace's templates (named `templates/…` in diagnostics).
pub fn load_workspace_templates(workspace: &Workspace) -> Result<LoadedTemplates, TemplatesError> {
    let files = read_templates(&workspace.templates_dir(), Path::new("templates"))?;
    Ok(load_templates(&files))
}

/// The names of the templates in `files` (usable or not), for `check_references`.
pub fn template_names(files: &[TemplateFile]) -> Vec<String> {
    let mut names: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let file_name = file.path.rsplit(['/', '\\']).next()?;
            TEMPLATE_SUFFIXES
                .iter()
                .find_map(|suffix| file_name.strip_suffix(suffix))
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Renders templates for customers: builds each customer's context from its own connection to
/// the database (so it can run while another connection holds a write transaction).
///
/// Make one per batch (a `followups record`, a daemon tick): it reads the purchase history for
/// recommendations and the managers once, at its first rendering, and every customer's
/// features once per rendering time (one pass), then each customer's from that table.
pub struct EmailRenderer {
    templates: Templates,
    store: Store,
    window: Window,
    tier_labels: Vec<(String, String)>,
    timezone: Tz,
    sender: SenderContext,
    /// The purchase history, read once at the first rendering (as of its time).
    recommender: OnceLock<Recommender>,
    /// Managers, read once.
    managers: OnceLock<Vec<Manager>>,
    /// Every customer's features at the time of the renderings, computed once (one pass) at the
    /// second rendering at that time and read customer by customer, so a batch costs one pass;
    /// the first rendering at a time (all that `preview` does) reads its customer's alone.
    features: Mutex<FeatureCache>,
    /// The rules' text fields (task titles), each compiled at its first rendering.
    texts: Mutex<TextTemplates>,
    /// The sender's domain, for Message-IDs.
    message_id_domain: Option<String>,
    /// The base of survey links (`<public_url>/survey`), when `[http] public_url` is set.
    survey_url: Option<String>,
    /// The workspace's usable SMS templates (`NAME.sms.j2`).
    sms: SmsTemplates,
    /// With `[sms] provider = "aliyun"`: each SMS template's Aliyun parameters, rendered
    /// beside its text.
    sms_params: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

/// What an [`EmailRenderer`] keeps of the features between renderings.
#[derive(Debug)]
enum FeatureCache {
    /// Nothing rendered yet.
    Empty,
    /// One rendering at this time, which read its customer's features alone.
    Once(i64),
    /// Every customer's features at the table's time.
    Table(Arc<FeatureTable>),
}

impl std::fmt::Debug for EmailRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailRenderer")
            .field("templates", &self.templates)
            .finish_non_exhaustive()
    }
}

impl EmailRenderer {
    /// A renderer for `workspace` with its (checked) `templates`; `rules` give the feature
    /// window and the tiers' labels.
    ///
    /// The SMS templates are read from `templates/` now; the daemon, which renders only the
    /// set its last good reload checked, uses [`EmailRenderer::with_sms`].
    pub fn new(
        workspace: &Workspace,
        templates: Templates,
        rules: &RuleSet,
    ) -> Result<EmailRenderer, TemplatesError> {
        let sms = load_workspace_sms_templates(workspace)?.templates;
        EmailRenderer::with_sms(workspace, templates, sms, rules)
    }

    /// [`EmailRenderer::new`] with the SMS templates `sms` (already loaded and checked)
    /// instead of those on disk.
    pub fn with_sms(
        workspace: &Workspace,
        templates: Templates,
        sms: SmsTemplates,
        rules: &RuleSet,
    ) -> Result<EmailRenderer, TemplatesError> {
        let store = workspace.open_store()?;
        let window = rules.window();
        let tier_labels = rules
            .tiers()
            .map(|tier| {
                (
                    tier.id.clone(),
                    tier.label.clone().unwrap_or_else(|| tier.id.clone()),
                )
            })
            .collect();
        Ok(EmailRenderer {
            templates,
            store,
            window,
            tier_labels,
            timezone: workspace.config().timezone,
            sender: sender(&workspace.config().mail.from),
            recommender: OnceLock::new(),
            managers: OnceLock::new(),
            features: Mutex::new(FeatureCache::Empty),
            texts: Mutex::new(TextTemplates::default()),
            message_id_domain: crate::outbox::sender_domain(&workspace.config().mail),
            survey_url: workspace
                .config()
                .http
                .as_ref()
                .and_then(crate::http_config::HttpConfig::survey_url),
            sms,
            sms_params: workspace.config().sms.provider_params(),
        })
    }

    /// The SMS templates it renders.
    pub fn sms_templates(&self) -> &SmsTemplates {
        &self.sms
    }

    /// Renders SMS template `name` for the customer with `customer_id` at `at`: the text.
    pub fn render_sms(
        &self,
        name: &str,
        customer_id: &str,
        at: i64,
    ) -> Result<String, TemplatesError> {
        let context = self.context(customer_id, at)?;
        Ok(self.sms.render(name, &context)?)
    }

    /// Renders the SMS survey template `name` for the customer: the context's `survey` holds
    /// the question and `survey.link`, `<public_url>/survey/<marker>`, whose marker the send
    /// loop replaces with a signed token that carries no score ([`crate::mail::survey`]).
    pub fn render_sms_survey(
        &self,
        name: &str,
        customer_id: &str,
        at: i64,
        survey: &Survey,
    ) -> Result<String, TemplatesError> {
        let base = self
            .survey_url
            .as_deref()
            .ok_or(TemplatesError::NoSurveyUrl)?;
        let mut context = self.context(customer_id, at)?;
        context.survey = Some(
            SurveyContext::new(survey, |score| {
                format!("{base}/{}", crate::mail::survey::link_marker(score))
            })
            .with_link(format!(
                "{base}/{}",
                crate::mail::survey::SINGLE_LINK_MARKER
            )),
        );
        Ok(self.sms.render(name, &context)?)
    }

    /// Renders the provider's parameters of SMS template `name` (Aliyun's `TemplateParam`)
    /// for the customer at `at`: a JSON object of strings, or `None` when the provider takes
    /// the text alone.
    pub fn render_sms_params(
        &self,
        name: &str,
        customer_id: &str,
        at: i64,
    ) -> Result<Option<String>, TemplatesError> {
        let Some(params) = self.sms_params.get(name) else {
            return Ok(None);
        };
        let context = self.context(customer_id, at)?;
        let mut values = serde_json::Map::new();
        for (key, source) in params {
            let value = self.sms.render_inline(source, &context)?;
            values.insert(key.clone(), serde_json::Value::String(value));
        }
        Ok(Some(serde_json::Value::Object(values).to_string()))
    }

    /// The templates it renders.
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// The context of the customer with `customer_id` at `at` (unix seconds).
    pub fn context(&self, customer_id: &str, at: i64) -> Result<TemplateContext, TemplatesError> {
        self.context_for(customer_id, at, Needs::ALL)
    }

    /// The context of the customer, with `features` and `recommendations` left empty when
    /// `needs` says the text rendered cannot read them (the costly parts: a features pass, the
    /// purchase history).
    fn context_for(
        &self,
        customer_id: &str,
        at: i64,
        needs: Needs,
    ) -> Result<TemplateContext, TemplatesError> {
        let store = &self.store;
        let unknown = || TemplatesError::UnknownCustomer(customer_id.to_owned());
        let customer = store.customer(customer_id)?.ok_or_else(unknown)?;
        let features = if needs.features {
            let stored_features = self
                .customer_features(customer_id, at)?
                .ok_or_else(unknown)?;
            let mut snapshot = Snapshot::new();
            fill_snapshot(&mut snapshot, &stored_features);
            features()
                .iter()
                .map(|spec| {
                    let value = match snapshot.get(spec.feature) {
                        FeatureValue::None => serde_json::Value::Null,
                        FeatureValue::Bool(b) => b.into(),
                        FeatureValue::Int(i) => i.into(),
                        FeatureValue::Float(f) => f.into(),
                        FeatureValue::Text(t) => t.into(),
                        FeatureValue::Map(m) => m.into(),
                    };
                    (spec.name.to_owned(), value)
                })
                .collect()
        } else {
            BTreeMap::new()
        };
        let zone: Tz = customer
            .timezone
            .as_deref()
            .and_then(|zone| zone.parse().ok())
            .unwrap_or(self.timezone);
        let date = |unix: i64| {
            zone.timestamp_opt(unix, 0)
                .single()
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default()
        };
        let tier = match store.current_tier(customer_id)?.filter(|_| needs.tier) {
            Some(current) => TierContext {
                label: self
                    .tier_labels
                    .iter()
                    .find(|(id, _)| *id == current.tier)
                    .map_or_else(|| current.tier.clone(), |(_, label)| label.clone()),
                since: date(current.since),
                id: current.tier,
            },
            None => TierContext {
                id: String::new(),
                label: String::new(),
                since: String::new(),
            },
        };
        let segments = if needs.segments {
            store
                .segments_of(customer_id)?
                .into_iter()
                .map(|segment| (segment.segment_set, segment.segment))
                .collect()
        } else {
            BTreeMap::new()
        };
        let owner = match customer.owner.as_deref().filter(|_| needs.owner) {
            Some(owner_id) => {
                let managers = match self.managers.get() {
                    Some(managers) => managers,
                    None => {
                        let read = store.managers()?;
                        self.managers.get_or_init(|| read)
                    }
                };
                let manager = managers.iter().find(|m| m.external_id == owner_id).cloned();
                OwnerContext {
                    id: owner_id.to_owned(),
                    name: manager.as_ref().map(|m| m.name.clone()).unwrap_or_default(),
                    email: manager.and_then(|m| m.email).unwrap_or_default(),
                }
            }
            None => OwnerContext {
                id: String::new(),
                name: String::new(),
                email: String::new(),
            },
        };
        let recommendations = if needs.recommendations {
            let recommender = match self.recommender.get() {
                Some(recommender) => recommender,
                None => {
                    let built = store.recommender(at)?;
                    self.recommender.get_or_init(|| built)
                }
            };
            store
                .recommend(recommender, customer.id, RECOMMENDATIONS)?
                .into_iter()
                .map(|r| RecommendationContext {
                    sku: r.sku,
                    description: r.description,
                    score: r.score,
                })
                .collect()
        } else {
            Vec::new()
        };
        let name = customer.name.clone().unwrap_or_default();
        Ok(TemplateContext {
            customer: CustomerContext {
                id: customer.external_id.clone(),
                first_name: first_name(&name),
                greeting_name: greeting_name(&name, &customer.attributes),
                name,
                email: customer.email.clone().unwrap_or_default(),
                region: customer.region.clone().unwrap_or_default(),
                owner: customer.owner.clone().unwrap_or_default(),
                timezone: customer.timezone.clone().unwrap_or_default(),
                birthday: customer
                    .birthday
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
                attributes: customer.attributes.clone(),
            },
            features,
            tier,
            segments,
            owner,
            recommendations,
            sender: self.sender.clone(),
            today: date(at),
            survey: None,
            coupon: None,
        })
    }

    /// One customer's features at `at`: the first time `at` is seen, that customer's alone
    /// (`Store::customer_features`); the second time, every customer's in one pass, kept while
    /// renderings stay at `at`. Both give the same values.
    pub(crate) fn customer_features(
        &self,
        customer_id: &str,
        at: i64,
    ) -> Result<Option<CustomerFeatures>, TemplatesError> {
        let table = {
            let mut cache = self
                .features
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match &*cache {
                FeatureCache::Table(table) if table.at() == at => Some(Arc::clone(table)),
                FeatureCache::Once(seen) if *seen == at => {
                    let table = Arc::new(self.store.feature_table(at, self.window)?);
                    *cache = FeatureCache::Table(Arc::clone(&table));
                    Some(table)
                }
                _ => {
                    *cache = FeatureCache::Once(at);
                    None
                }
            }
        };
        Ok(match table {
            Some(table) => self.store.features_from(&table, customer_id)?,
            None => self.store.customer_features(at, self.window, customer_id)?,
        })
    }

    /// Renders a rule's one-line text field (a task title, checked by `check` against the
    /// context schema) for the customer with `customer_id` at `at`, with the templates' context.
    /// A value this customer lacks (`customer.attributes.x`) prints as nothing, with a warning:
    /// the task is still created.
    pub fn render_text_for(
        &self,
        text: &str,
        customer_id: &str,
        at: i64,
    ) -> Result<String, TemplatesError> {
        let context = self.context_for(customer_id, at, Needs::of(text))?;
        let mut texts = self
            .texts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match texts.render(text, &context, false) {
            Ok(rendered) => Ok(rendered),
            Err(err) => {
                tracing::warn!(
                    customer = %customer_id,
                    error = %err,
                    "a value of a task title is missing for this customer: it prints as nothing"
                );
                Ok(texts.render(text, &context, true)?)
            }
        }
    }

    /// Renders template `name` for the customer with `customer_id` at `at`.
    pub fn render_for(
        &self,
        name: &str,
        customer_id: &str,
        at: i64,
    ) -> Result<RenderedTemplate, TemplatesError> {
        self.render_for_coupon(name, customer_id, at, None)
    }

    /// Renders template `name` for the customer with `customer_id` at `at`, with `coupon` (the
    /// code the e-mail carries) as `coupon` in the context; without one, a template that reads
    /// `coupon.code` fails, so no e-mail goes out with an empty code.
    pub fn render_for_coupon(
        &self,
        name: &str,
        customer_id: &str,
        at: i64,
        coupon: Option<&IssuedCoupon>,
    ) -> Result<RenderedTemplate, TemplatesError> {
        if !self.templates.contains(name) {
            return Err(TemplateRenderError::UnknownTemplate {
                name: name.to_owned(),
                known: self.templates.names().map(str::to_owned).collect(),
            }
            .into());
        }
        let mut context = self.context(customer_id, at)?;
        if let Some(coupon) = coupon {
            let zone: Tz = context.customer.timezone.parse().unwrap_or(self.timezone);
            context.coupon = Some(crate::incentives::coupon_context(coupon, zone));
        }
        Ok(self.templates.render(name, &context)?)
    }

    /// Renders the survey e-mail template `name` for the customer: the context's `survey`
    /// holds the question and one link per score, `<public_url>/survey/<marker>`, whose
    /// marker the send loop replaces with the signed token ([`crate::mail::survey`]).
    pub fn render_survey_for(
        &self,
        name: &str,
        customer_id: &str,
        at: i64,
        survey: &Survey,
    ) -> Result<RenderedTemplate, TemplatesError> {
        if !self.templates.contains(name) {
            return Err(TemplateRenderError::UnknownTemplate {
                name: name.to_owned(),
                known: self.templates.names().map(str::to_owned).collect(),
            }
            .into());
        }
        let base = self
            .survey_url
            .as_deref()
            .ok_or(TemplatesError::NoSurveyUrl)?;
        let mut context = self.context(customer_id, at)?;
        context.survey = Some(SurveyContext::new(survey, |score| {
            format!("{base}/{}", crate::mail::survey::link_marker(score))
        }));
        Ok(self.templates.render(name, &context)?)
    }
}

impl RenderEmail for EmailRenderer {
    fn render(
        &self,
        template: &str,
        customer_external_id: &str,
        at: i64,
    ) -> Result<RenderedEmail, RenderError> {
        self.render_with_coupon(template, customer_external_id, at, None)
    }

    fn render_with_coupon(
        &self,
        template: &str,
        customer_external_id: &str,
        at: i64,
        coupon: Option<&IssuedCoupon>,
    ) -> Result<RenderedEmail, RenderError> {
        self.render_for_coupon(template, customer_external_id, at, coupon)
            .map(|rendered| RenderedEmail {
                subject: rendered.subject,
                text: rendered.text,
                html: rendered.html,
            })
            .map_err(|err| RenderError {
                template: template.to_owned(),
                message: err.to_string(),
            })
    }

    fn render_sms(
        &self,
        template: &str,
        customer_external_id: &str,
        at: i64,
    ) -> Result<String, RenderError> {
        EmailRenderer::render_sms(self, template, customer_external_id, at).map_err(|err| {
            RenderError {
                template: template.to_owned(),
                message: err.to_string(),
            }
        })
    }

    fn render_sms_survey(
        &self,
        template: &str,
        customer_external_id: &str,
        at: i64,
        survey: &Survey,
    ) -> Result<String, RenderError> {
        EmailRenderer::render_sms_survey(self, template, customer_external_id, at, survey).map_err(
            |err| RenderError {
                template: template.to_owned(),
                message: err.to_string(),
            },
        )
    }

    fn render_sms_params(
        &self,
        template: &str,
        customer_external_id: &str,
        at: i64,
    ) -> Result<Option<String>, RenderError> {
        EmailRenderer::render_sms_params(self, template, customer_external_id, at).map_err(|err| {
            RenderError {
                template: template.to_owned(),
                message: err.to_string(),
            }
        })
    }

    fn message_id_domain(&self) -> Option<&str> {
        self.message_id_domain.as_deref()
    }

    fn render_survey(
        &self,
        template: &str,
        customer_external_id: &str,
        at: i64,
        survey: &Survey,
    ) -> Result<RenderedEmail, RenderError> {
        self.render_survey_for(template, customer_external_id, at, survey)
            .map(|rendered| RenderedEmail {
                subject: rendered.subject,
                text: rendered.text,
                html: rendered.html,
            })
            .map_err(|err| RenderError {
                template: template.to_owned(),
                message: err.to_string(),
            })
    }

    fn render_text(
        &self,
        text: &str,
        customer_external_id: &str,
        at: i64,
    ) -> Result<String, RenderError> {
        self.render_text_for(text, customer_external_id, at)
            .map_err(|err| RenderError {
                template: "(task title)".to_owned(),
                message: err.to_string(),
            })
    }
}

/// Which parts of a context a rendering reads, beyond the customer's profile: each costs reads
/// (a features pass, the purchase history, a query).
#[derive(Debug, Clone, Copy)]
struct Needs {
    /// `features`.
    features: bool,
    /// `recommendations`.
    recommendations: bool,
    /// `tier`.
    tier: bool,
    /// `segments`.
    segments: bool,
    /// `owner`.
    owner: bool,
}

impl Needs {
    /// Everything (an email template).
    const ALL: Needs = Needs {
        features: true,
        recommendations: true,
        tier: true,
        segments: true,
        owner: true,
    };

    /// What a text reads: a text that never names a part of the context cannot read it, so
    /// its rendering is the same without it (left empty).
    fn of(text: &str) -> Needs {
        Needs {
            features: text.contains("features"),
            recommendations: text.contains("recommendations"),
            tier: text.contains("tier"),
            segments: text.contains("segments"),
            owner: text.contains("owner"),
        }
    }
}

/// One email as `tiercare preview` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Preview {
    /// The template.
    pub template: String,
    /// The customer's external id.
    pub customer: String,
    /// The rendered parts.
    pub rendered: RenderedTemplate,
    /// The recipient, when the customer has a valid address.
    pub to: Option<String>,
    /// The message exactly as it goes on the wire (headers, MIME parts), when it can be built.
    pub message: Option<String>,
    /// Why no message could be built (no or an invalid address: the email would be skipped).
    pub not_sendable: Option<String>,
}

impl EmailRenderer {
    /// Renders `template` for `customer_id` at `at` and builds the message exactly as `send`
    /// would send it: the outbox's composition (address check, a Message-ID) and its
    /// [`outgoing`] (From, List-Unsubscribe headers, the unsubscribe line), dated `at`. Nothing
    /// is sent or recorded; a queued email gets its own Message-ID.
    pub fn preview(
        &self,
        settings: &SendSettings,
        template: &str,
        customer_id: &str,
        at: i64,
    ) -> Result<Preview, TemplatesError> {
        self.preview_with(settings, template, customer_id, at, None)
    }

    /// [`EmailRenderer::preview`] of a survey e-mail asking `survey`: its links signed as the
    /// send loop signs them (for an e-mail without an outbox id: they answer nothing).
    pub fn preview_survey(
        &self,
        settings: &SendSettings,
        template: &str,
        customer_id: &str,
        at: i64,
        survey: &Survey,
    ) -> Result<Preview, TemplatesError> {
        self.preview_with(settings, template, customer_id, at, Some(survey))
    }

    fn preview_with(
        &self,
        settings: &SendSettings,
        template: &str,
        customer_id: &str,
        at: i64,
        survey: Option<&Survey>,
    ) -> Result<Preview, TemplatesError> {
        let rendered = match survey {
            Some(survey) => self.render_survey_for(template, customer_id, at, survey)?,
            None => {
                // Nothing is issued by a preview: a template that shows a coupon gets a placeholder.
                let placeholder = IssuedCoupon {
                    pool: "preview".to_owned(),
                    code: PREVIEW_COUPON_CODE.to_owned(),
                    value: Some("10%".to_owned()),
                    description: Some("(the pool's description)".to_owned()),
                    issued_at: at,
                    expires_at: Some(at + 30 * 86_400),
                    redeemed_at: None,
                };
                self.render_for_coupon(template, customer_id, at, Some(&placeholder))?
            }
        };
        let customer = self
            .store
            .customer(customer_id)?
            .ok_or_else(|| TemplatesError::UnknownCustomer(customer_id.to_owned()))?;
        let mut preview = Preview {
            template: template.to_owned(),
            customer: customer_id.to_owned(),
            rendered,
            to: None,
            message: None,
            not_sendable: None,
        };
        let recipient = EmailRecipient {
            kind: RecipientKind::Customer,
            customer_id: customer_id.to_owned(),
            template: template.to_owned(),
            address: customer.email.clone(),
            name: customer.name.clone(),
            survey: survey.cloned(),
            coupon: None,
        };
        let fixed = Fixed(preview.rendered.clone());
        let new = match compose(&fixed, &recipient, at) {
            Ok(new) => new,
            Err(reason) => {
                preview.not_sendable = Some(format!("{reason}: the email would be skipped"));
                return Ok(preview);
            }
        };
        let email = OutboxEmail {
            id: 0,
            followup_id: None,
            customer_id: Some(customer_id.to_owned()),
            consent_email: Some(customer.consent_email),
            rule_id: String::new(),
            template: template.to_owned(),
            recipient_kind: RecipientKind::Customer,
            to_address: new.to_address.clone(),
            to_name: customer.name.clone(),
            message_id: new.message_id,
            subject: new.subject,
            body_text: new.text,
            body_html: new.html,
            state: OutboxState::Queued,
            due_at: at,
            attempts: 0,
            last_error: None,
            created_at: at,
            claimed_at: None,
            sent_at: None,
            updated_at: at,
            recoveries: 0,
            channel: tiercare_engine::Channel::Email,
        };
        match build_with(
            &outgoing(&email, settings, at),
            &crate::outbox::list_headers(settings, email.recipient_kind),
        ) {
            Ok(built) => {
                preview.to = Some(new.to_address);
                preview.message = Some(String::from_utf8_lossy(built.raw()).into_owned());
            }
            Err(err) => {
                preview.not_sendable = Some(format!("{err}: the email would be skipped"));
            }
        }
        if !customer.consent_email {
            preview.not_sendable = Some(
                "the customer has not agreed to email: follow-ups skip them and `send` would not send it"
                    .to_owned(),
            );
        }
        Ok(preview)
    }
}

/// A renderer that returns parts already rendered (for [`compose`] in a preview).
struct Fixed(RenderedTemplate);

impl RenderEmail for Fixed {
    fn render(&self, _: &str, _: &str, _: i64) -> Result<RenderedEmail, RenderError> {
        Ok(RenderedEmail {
            subject: self.0.subject.clone(),
            text: self.0.text.clone(),
            html: self.0.html.clone(),
        })
    }
}

/// The first name in a full name: the first word, or for `Last, First` the first word after the
/// comma (`"O'Brien, Zoë"` → `Zoë`).
fn first_name(name: &str) -> String {
    let given = match name.split_once(',') {
        Some((_, rest)) if !rest.trim().is_empty() => rest,
        _ => name,
    };
    given
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The name to greet a customer by: the imported `greeting_name` (or `given_name`) attribute,
/// else the full name. Deriving a given name from the full name is wrong for names written
/// family name first ("Hu Jiahao" is not "Hu"), so it is never guessed.
fn greeting_name(name: &str, attributes: &serde_json::Map<String, serde_json::Value>) -> String {
    ["greeting_name", "given_name"]
        .iter()
        .filter_map(|key| attributes.get(*key)?.as_str())
        .map(str::trim)
        .find(|text| !text.is_empty())
        .unwrap_or(name.trim())
        .to_owned()
}

/// The sender's name and address from `[mail] from` (`Customer Care <care@example.com>`).
fn sender(from: &str) -> SenderContext {
    match from.parse::<lettre::message::Mailbox>() {
        Ok(mailbox) => SenderContext {
            name: mailbox.name.unwrap_or_default(),
            email: mailbox.email.to_string(),
        },
        Err(_) => SenderContext {
            name: String::new(),
            email: from.trim().to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sender_is_split_into_name_and_address() {
        let s = sender("Customer Care <care@example.com>");
        assert_eq!(
            (s.name.as_str(), s.email.as_str()),
            ("Customer Care", "care@example.com")
        );
        let s = sender("care@example.com");
        assert_eq!(
            (s.name.as_str(), s.email.as_str()),
            ("", "care@example.com")
        );
    }

    #[test]
    fn the_default_templates_are_clean_and_cover_the_default_rules() {
        let files: Vec<TemplateFile> = crate::workspace::DEFAULT_TEMPLATES
            .iter()
            .map(|(name, text)| TemplateFile::new(format!("templates/{name}"), *text))
            .collect();
        let loaded = load_templates(&files);
        assert!(
            loaded.diagnostics.is_empty(),
            "{}",
            tiercare_engine::render_all(&loaded.diagnostics, false)
        );
        let rules: Vec<tiercare_engine::RuleFile> = crate::workspace::DEFAULT_RULES
            .iter()
            .filter(|(name, _)| name.ends_with(".yaml") && !name.starts_with("tests/"))
            .map(|(name, text)| tiercare_engine::RuleFile::new(format!("rules/{name}"), *text))
            .collect();
        let rules = tiercare_engine::load_rules(&rules).unwrap().rules;
        let names: Vec<&str> = loaded.templates.names().collect();
        let problems = tiercare_engine::check_references(
            &rules,
            &tiercare_engine::References {
                templates: &names,
                ..Default::default()
            },
        );
        assert!(
            problems.is_empty(),
            "{}",
            tiercare_engine::render_all(&problems, false)
        );
        let email = loaded
            .templates
            .render("care", &TemplateContext::sample())
            .unwrap();
        assert_eq!(email.subject, "A quick hello from Customer Care");
        // Greeted by `greeting_name` ("Ada" in the sample), never by a guessed first name.
        assert!(email.text.starts_with("Dear Ada,\n\n"), "{}", email.text);
        assert!(
            email.text.contains("  - Sample product\n"),
            "{}",
            email.text
        );
        let html = email.html.unwrap();
        assert!(html.contains("<li>Sample product</li>"), "{html}");
    }

    #[test]
    fn greeting_names_are_imported_or_the_full_name() {
        let mut attributes = serde_json::Map::new();
        assert_eq!(greeting_name("Hu Jiahao", &attributes), "Hu Jiahao");
        attributes.insert("given_name".into(), "Jiahao".into());
        assert_eq!(greeting_name("Hu Jiahao", &attributes), "Jiahao");
        attributes.insert("greeting_name".into(), " Mr Hu ".into());
        assert_eq!(greeting_name("Hu Jiahao", &attributes), "Mr Hu");
        attributes.insert("greeting_name".into(), "".into());
        assert_eq!(greeting_name("Hu Jiahao", &attributes), "Jiahao");
    }

    #[test]
    fn first_names_come_from_either_name_order() {
        assert_eq!(first_name("Ada Lovelace"), "Ada");
        assert_eq!(first_name("O'Brien, Zoë"), "Zoë");
        assert_eq!(first_name("Li"), "Li");
        assert_eq!(first_name(""), "");
        assert_eq!(first_name("Smith,"), "Smith,");
    }

    #[test]
    fn template_names_cover_both_forms() {
        let files = [
            TemplateFile::new("templates/care.eml.j2", ""),
            TemplateFile::new("templates/offer.txt.j2", ""),
            TemplateFile::new("templates/offer.html.j2", ""),
        ];
        assert_eq!(template_names(&files), ["care", "offer"]);
    }
}
