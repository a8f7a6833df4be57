//! The JSON API: request and response types (documented as OpenAPI), validation with
//! field paths, and the handlers.

use crate::body::{parse_customer, parse_request, ParseError, ParsedRequest, Raw, Text};
use crate::metrics::{Metrics, Phase, StoreLookup};
use crate::registry::{HistoryEntry, Loaded, ModelChoiceError, ModelEvent, ReloadOutcome};
use crate::store::LookupSource;
use crate::{App, RequestId};
use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use churn_features::features::FeatureKind;
use churn_features::rules::{RuleResult, COMPONENTS};
use churn_model::preprocess::PrepError;
use churn_scoring::{warning_code, Cell, Options, Scored, Scorer, ROW_KEYS, RULES_UNAVAILABLE};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Reasons per customer at most.
const MAX_TOP: usize = 50;
/// Bodies larger than this are scored on the blocking pool, off the async workers.
const INLINE_BODY_BYTES: usize = 32 * 1024;

/// A client or server error as JSON.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u32>,
    /// Close the connection after answering (the body was not read to its end).
    pub close: bool,
}

/// Longest message and field path echoed back: an error never repeats a whole
/// oversized input (a 10 MB feature name gives a short answer).
const MAX_ECHO: usize = 240;

/// `s`, cut at a character boundary to at most `max` bytes, with an ellipsis when cut.
pub fn clip(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}... ({} bytes)", &s[..end], s.len()))
}

/// Every error code the API answers with, and its HTTP status (one place for both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not JSON.
    BadJson,
    /// JSON of the wrong shape, an unknown top-level field, `top` above 50.
    InvalidRequest,
    /// The body could not be read.
    BadBody,
    /// A customer without a `customer_id`.
    MissingCustomerId,
    /// Several models are served and the request named none.
    ModelRequired,
    /// A feature the model does not know.
    UnknownFeature,
    /// A value of the wrong type.
    WrongType,
    /// `NaN` or an infinity.
    NotFinite,
    /// The row gives no finite probability.
    NotScorable,
    /// A missing or wrong bearer token.
    Unauthorized,
    /// The named model is not served.
    UnknownModel,
    /// The customer is not in the feature table.
    UnknownCustomer,
    /// The server was started without `--features`.
    NoFeatureTable,
    /// No such route.
    NotFound,
    /// The route exists for another method.
    MethodNotAllowed,
    /// The body did not arrive in time.
    BodyTimeout,
    /// More customers than the batch limit.
    BatchTooLarge,
    /// A body over the size limit.
    BodyTooLarge,
    /// A POST not declared as JSON.
    UnsupportedMediaType,
    /// The feature table's row for the customer cannot be scored.
    BadStoredRow,
    /// A model version failed to load; the old one keeps serving.
    ReloadFailed,
    /// A bug: the answer names the request id to report.
    Internal,
    /// The memory budget is spent; retry after `Retry-After` seconds.
    Overloaded,
    /// The database behind `--features postgres://...` cannot answer.
    StoreUnavailable,
    /// The request took longer than the time limit.
    Timeout,
}

impl ErrorCode {
    /// The HTTP status the code is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadJson => StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::BadBody => StatusCode::BAD_REQUEST,
            ErrorCode::MissingCustomerId => StatusCode::BAD_REQUEST,
            ErrorCode::ModelRequired => StatusCode::BAD_REQUEST,
            ErrorCode::UnknownFeature => StatusCode::BAD_REQUEST,
            ErrorCode::WrongType => StatusCode::BAD_REQUEST,
            ErrorCode::NotFinite => StatusCode::BAD_REQUEST,
            ErrorCode::NotScorable => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::UnknownModel => StatusCode::NOT_FOUND,
            ErrorCode::UnknownCustomer => StatusCode::NOT_FOUND,
            ErrorCode::NoFeatureTable => StatusCode::NOT_FOUND,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::BatchTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::BadStoredRow => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ReloadFailed => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Timeout => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The code as it appears in the answer and the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::BadBody => "bad_body",
            ErrorCode::MissingCustomerId => "missing_customer_id",
            ErrorCode::ModelRequired => "model_required",
            ErrorCode::UnknownFeature => "unknown_feature",
            ErrorCode::WrongType => "wrong_type",
            ErrorCode::NotFinite => "not_finite",
            ErrorCode::NotScorable => "not_scorable",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::UnknownModel => "unknown_model",
            ErrorCode::UnknownCustomer => "unknown_customer",
            ErrorCode::NoFeatureTable => "no_feature_table",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::BodyTimeout => "body_timeout",
            ErrorCode::BatchTooLarge => "batch_too_large",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::BadStoredRow => "bad_stored_row",
            ErrorCode::ReloadFailed => "reload_failed",
            ErrorCode::Internal => "internal",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::Timeout => "timeout",
        }
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    pub message: String,
    /// The JSON field at fault, e.g. `customers[2].features.mrr`, when there is one.
    pub field: Option<String>,
}

impl ApiError {
    /// An error with its code (which sets the status) and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            field: None,
            retry_after: None,
            close: false,
        }
    }

    /// Names the field at fault.
    pub fn at(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    /// Asks the client to retry after `seconds`.
    pub fn retry_after(mut self, seconds: u32) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    /// Closes the connection after the answer.
    pub fn closing(mut self) -> ApiError {
        self.close = true;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code;
        let status = code.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: clip(&self.message, MAX_ECHO).into_owned(),
                field: self.field.map(|f| clip(&f, MAX_ECHO).into_owned()),
            },
        };
        let mut r = (status, axum::Json(body)).into_response();
        let headers = r.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(s) = self.retry_after {
            headers.insert(header::RETRY_AFTER, header::HeaderValue::from(s));
        }
        if self.close {
            headers.insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
        }
        r.extensions_mut().insert(code);
        r
    }
}

/// The longest `customer_id` a prediction request may carry (the OpenAPI schema says so).
const MAX_CUSTOMER_ID_CHARS: usize = 256;

/// `POST /v1/predict` body. Its OpenAPI schema: the body is parsed one customer at a
/// time by `body::parse_request`, so the fields are never read from this type.
#[allow(dead_code)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    /// The model to ask; optional when the server serves one model.
    pub model: Option<String>,
    /// Compute reasons (per-feature contributions); default true.
    pub explain: Option<bool>,
    /// Reasons per customer, at most 50; default 5.
    pub top: Option<usize>,
    /// The customers to score (up to the server's batch size, default 10,000).
    pub customers: Vec<CustomerRequest>,
}

/// One customer's feature row (schema only, as [`PredictRequest`]).
#[allow(dead_code)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerRequest {
    /// Echoed back. Required: here, or as `features.customer_id` (a row of the feature
    /// table as is); not blank, at most 256 characters.
    #[schema(min_length = 1, max_length = 256)]
    pub customer_id: Option<String>,
    /// Feature name -> value (number, string for categories, or null for missing). A row
    /// of the `churn-train features` table as is: `customer_id`, `as_of` and `label` are
    /// accepted and ignored; features left out are treated as missing.
    #[schema(value_type = Object)]
    pub features: Map<String, Value>,
}

/// A model name and version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModelRef {
    pub name: String,
    pub version: String,
}

/// `POST /v1/predict` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PredictResponse {
    /// The model version that answered.
    pub model: ModelRef,
    pub predictions: Vec<PredictionOut>,
}

/// One customer's prediction.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PredictionOut {
    pub customer_id: Option<String>,
    /// The feature row's date (customer look-ups only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    /// Calibrated probability of churn within the model's horizon.
    pub churn_probability: f64,
    /// `low`, `medium`, `high` or `critical` (cut-offs in `GET /v1/models`).
    pub risk_band: &'static str,
    /// Probability x MRR; null when MRR is unknown, negative or above 1e12 (not a real
    /// monthly revenue).
    pub revenue_at_risk: Option<f64>,
    /// Features pushing the probability up, largest first (empty with `explain: false`);
    /// never a missing, imputed one.
    pub reasons: Vec<ReasonOut>,
    /// The playbook's health score; null when the rules do not apply or no data.
    pub health_score: Option<HealthOut>,
    /// Early-warning signals that fired; null when the rules do not apply.
    pub signals: Option<Vec<SignalOut>>,
    pub intervention: Option<InterventionOut>,
    /// `new`, `power`, `casual` or `at_risk`.
    pub segment: Option<&'static str>,
    /// `none`, `bronze`, `silver` or `gold`.
    pub loyalty_tier: Option<&'static str>,
    /// Why the rule results are null, when they are.
    pub rules_unavailable: Option<&'static str>,
    /// What was imputed, clipped or not recognised; more than five imputed inputs are
    /// one warning with `feature` `*`.
    pub warnings: Vec<WarningOut>,
    /// Survival after 1, 3, 6, 12 and 24 months of 30 days and the median time to
    /// churn; null for a model without a survival model (a plain table's, or saved
    /// before model format 5).
    pub survival: Option<SurvivalOut>,
    /// Expected remaining lifetime in months (docs/survival.md).
    pub expected_lifetime_months: Option<f64>,
    /// Lifetime value at the row's `mrr`; null when MRR is unknown.
    pub clv: Option<f64>,
    /// `churn_probability` x `clv`.
    pub clv_at_risk: Option<f64>,
}

/// A customer's survival curve, in a few points.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SurvivalOut {
    pub points: Vec<SurvivalPoint>,
    /// The first month after which survival is at most one half; null: beyond 24.
    pub median_months: Option<u32>,
}

/// The chance of still being a customer after `months` months.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SurvivalPoint {
    pub months: u32,
    pub probability: f64,
}

/// A feature pushing the probability up.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReasonOut {
    pub feature: String,
    /// Push on the log-odds of churn.
    pub contribution: f64,
    /// The value sent: a number, a string, or null when missing and imputed.
    pub value: Value,
}

/// Health score with its components (0-100 each; null when left out for lack of data).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthOut {
    pub score: f64,
    /// `healthy`, `at_risk`, `critical` or `churning`.
    pub band: &'static str,
    pub components: Components,
    /// The weights used, renormalised over the components present.
    pub weights: Components,
}

/// One value per health component.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Components {
    pub usage: Option<f64>,
    pub adoption: Option<f64>,
    pub support: Option<f64>,
    pub payment: Option<f64>,
    pub engagement: Option<f64>,
}

/// A signal that fired.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignalOut {
    pub signal: &'static str,
    pub value: f64,
    pub threshold: f64,
}

/// The intervention level and why.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InterventionOut {
    /// `none`, `monitor`, `urgent` or `immediate`.
    pub level: &'static str,
    pub reason: &'static str,
}

/// Something the preprocessing did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WarningOut {
    pub feature: String,
    /// `imputed` or `unseen_category`.
    pub code: &'static str,
    pub message: String,
}

fn components(v: [Option<f64>; 5]) -> Components {
    debug_assert_eq!(COMPONENTS.len(), 5);
    Components {
        usage: v[0],
        adoption: v[1],
        support: v[2],
        payment: v[3],
        engagement: v[4],
    }
}

fn cell_json(c: Cell) -> Value {
    match c {
        Cell::Missing => Value::Null,
        Cell::Number(x) => serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number),
        Cell::Text(s) => Value::String(s.to_string()),
    }
}

/// Builds the JSON view of one scored customer.
pub fn prediction_out<'a>(
    scorer: &Scorer,
    s: &Scored,
    row: impl Fn(usize) -> Cell<'a>,
    customer_id: Option<String>,
    as_of: Option<String>,
) -> PredictionOut {
    let schema = scorer.schema();
    let rules: Option<&RuleResult> = s.rules.as_ref();
    PredictionOut {
        customer_id,
        as_of,
        churn_probability: s.model.probability,
        risk_band: s.model.risk_band.as_str(),
        revenue_at_risk: s.model.revenue_at_risk,
        reasons: s
            .model
            .reasons
            .iter()
            .map(|r| ReasonOut {
                feature: schema[r.feature].name.clone(),
                contribution: r.contribution,
                value: cell_json(row(r.feature)),
            })
            .collect(),
        health_score: rules.and_then(|r| r.health).map(|h| HealthOut {
            score: h.score,
            band: h.band.as_str(),
            components: components(h.components),
            weights: components(h.weights.map(Some)),
        }),
        signals: rules.map(|r| {
            r.fired()
                .map(|s| SignalOut {
                    signal: s.kind.as_str(),
                    value: s.value,
                    threshold: s.threshold,
                })
                .collect()
        }),
        intervention: rules.map(|r| InterventionOut {
            level: r.intervention.as_str(),
            reason: r.intervention_reason.describe(),
        }),
        segment: rules.map(|r| r.segment.as_str()),
        loyalty_tier: rules.map(|r| r.loyalty_tier.as_str()),
        rules_unavailable: rules.is_none().then_some(RULES_UNAVAILABLE),
        warnings: warnings_out(scorer, &s.model.warnings),
        survival: s.model.survival.as_ref().map(|v| SurvivalOut {
            points: v
                .points()
                .map(|(months, probability)| SurvivalPoint {
                    months,
                    probability,
                })
                .collect(),
            median_months: v.median_months,
        }),
        expected_lifetime_months: s.model.expected_lifetime_months(),
        clv: s.model.clv(),
        clv_at_risk: s.model.clv_at_risk(),
    }
}

/// Imputed inputs listed one by one at most; more are one warning.
const MAX_IMPUTED_WARNINGS: usize = 5;

/// The warnings of a prediction; many imputed inputs become one warning that says the
/// prediction rests on little input (and why the rules may disagree).
fn warnings_out(scorer: &Scorer, warnings: &[churn_scoring::Warning]) -> Vec<WarningOut> {
    let schema = scorer.schema();
    let imputed: Vec<&churn_scoring::Warning> = warnings
        .iter()
        .filter(|w| w.note == churn_model::preprocess::Note::Imputed)
        .collect();
    let one = |w: &churn_scoring::Warning| WarningOut {
        feature: schema[w.feature].name.clone(),
        code: warning_code(w.note),
        message: scorer.describe_warning(w),
    };
    if imputed.len() <= MAX_IMPUTED_WARNINGS {
        return warnings.iter().map(one).collect();
    }
    let inputs = scorer.model_inputs();
    let names: Vec<&str> = imputed
        .iter()
        .map(|w| schema[w.feature].name.as_str())
        .collect();
    let mut out = vec![WarningOut {
        feature: "*".into(),
        code: "imputed",
        message: format!(
            "{} of the model's {inputs} inputs are missing and were imputed with their training medians ({}); the probability rests on the {} given, and the rules, which read a missing input as no data, may disagree with it",
            names.len(),
            names.join(", "),
            inputs.saturating_sub(names.len())
        ),
    }];
    out.extend(
        warnings
            .iter()
            .filter(|w| w.note != churn_model::preprocess::Note::Imputed)
            .map(one),
    );
    out
}

/// Maps one customer's parsed features onto the model's schema, checking every value's
/// type.
pub fn row_cells<'v>(
    scorer: &Scorer,
    features: &'v [(Text<'_>, Raw<'v>)],
    at: usize,
    cells: &mut Vec<Cell<'v>>,
) -> Result<(), ApiError> {
    cells.clear();
    cells.resize(scorer.schema().len(), Cell::Missing);
    let a = scorer.artifact();
    for (name, v) in features {
        let name = name.0.as_ref();
        let field = || format!("customers[{at}].features.{}", clip(name, 120));
        let Some(pos) = scorer.position(name) else {
            if ROW_KEYS.contains(&name) {
                continue;
            }
            return Err(ApiError::new(
                ErrorCode::UnknownFeature,
                format!(
                    "`{}` is not a feature of model {} version {} (GET /v1/models lists its {} features)",
                    clip(name, 120),
                    a.name,
                    a.version,
                    scorer.schema().len()
                ),
            )
            .at(field()));
        };
        let kind = scorer.schema()[pos].kind;
        let wrong = |found: &str| {
            let expected = match kind {
                FeatureKind::Numeric => "a number or null",
                FeatureKind::Categorical => "a string or null",
            };
            ApiError::new(
                ErrorCode::WrongType,
                format!("`{}` expects {expected}, found {found}", clip(name, 120)),
            )
            .at(field())
        };
        cells[pos] = match (kind, v) {
            (_, Raw::Null) => Cell::Missing,
            (_, Raw::Number(x)) if x.is_finite() => Cell::Number(*x),
            (_, Raw::Number(x)) => {
                return Err(ApiError::new(
                    ErrorCode::NotFinite,
                    format!("`{}`: {x} is not a finite number", clip(name, 120)),
                )
                .at(field()))
            }
            // A boolean sent for a number is a mistake in the caller's row (a flag
            // column, a mixed-up field), not a 0/1 to guess.
            (FeatureKind::Numeric, Raw::Bool(b)) => return Err(wrong(&format!("the boolean {b}"))),
            (FeatureKind::Numeric, Raw::Str(s)) => {
                let t = s.trim().to_ascii_lowercase();
                let non_finite = ["nan", "inf", "+inf", "-inf", "infinity", "-infinity"];
                if non_finite.contains(&t.as_str()) {
                    return Err(ApiError::new(
                ErrorCode::NotFinite,
                        format!("`{}`: NaN and infinite values are not accepted; send null for a missing value", clip(name, 120)),
                    )
                    .at(field()));
                }
                return Err(wrong(&format!("the string {:?}", clip(s, 120))));
            }
            (FeatureKind::Categorical, Raw::Str(s)) => Cell::Text(s),
            (FeatureKind::Categorical, Raw::Bool(b)) => {
                Cell::Text(if *b { "true" } else { "false" })
            }
            (_, Raw::Array) => return Err(wrong("an array")),
            (_, Raw::Object) => return Err(wrong("an object")),
        };
    }
    Ok(())
}

fn bad_json(e: serde_json::Error) -> ApiError {
    let code = if e.is_data() {
        ErrorCode::InvalidRequest
    } else {
        ErrorCode::BadJson
    };
    ApiError::new(code, format!("request body: {e}"))
}

fn options(explain: Option<bool>, top: Option<usize>) -> Result<Options, ApiError> {
    let top = top.unwrap_or(5);
    if top > MAX_TOP {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("`top` is {top}; at most {MAX_TOP} reasons are returned"),
        )
        .at("top"));
    }
    Ok(Options {
        explain: explain.unwrap_or(true),
        top,
        warnings: true,
        survival: true,
    })
}

fn model_ref(l: &Loaded) -> ModelRef {
    ModelRef {
        name: l.name().to_string(),
        version: l.version().to_string(),
    }
}

fn json_response(app: &App, value: &impl Serialize) -> Response {
    let t = Instant::now();
    let bytes = serde_json::to_vec(value).expect("response types serialise");
    app.metrics.phase(Phase::Serialise, t.elapsed());
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

fn model_choice_error(e: ModelChoiceError) -> ApiError {
    let code = match e {
        ModelChoiceError::Unknown { .. } => ErrorCode::UnknownModel,
        ModelChoiceError::Unnamed { .. } => ErrorCode::ModelRequired,
    };
    ApiError::new(code, e.to_string()).at("model")
}

/// Scores a read body; blocking work (run inline for small bodies). Stops early, with
/// a timeout error nobody reads, once `cancelled` is set (the request timed out).
///
/// Memory stays near the body's size plus the answer's: each customer is parsed when
/// it is scored, and its prediction is written straight into the answer's bytes.
fn predict_body(app: &App, body: &[u8], cancelled: &AtomicBool) -> Result<Response, ApiError> {
    let t = Instant::now();
    let req = parse_predict(body, app.limits.max_batch)?;
    let parse = t.elapsed();
    let loaded = app
        .registry
        .get(req.model.as_ref().map(|m| m.0.as_ref()))
        .map_err(model_choice_error)?;
    let out = predict_customers(
        &loaded.scorer,
        &model_ref(&loaded),
        &req,
        Predicting {
            require_id: true,
            cancelled,
            metrics: Some(&app.metrics),
            drift: loaded.drift.as_ref(),
            parse,
            capacity: body.len() + body.len() / 2 + 256,
        },
    )?;
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}

/// Parses a `POST /v1/predict` body (its customers are parsed one at a time later).
fn parse_predict(body: &[u8], max_batch: usize) -> Result<ParsedRequest<'_>, ApiError> {
    parse_request(body, max_batch).map_err(|e| match e {
        ParseError::Json(e) => bad_json(e),
        ParseError::TooManyCustomers { limit } => ApiError::new(
            ErrorCode::BatchTooLarge,
            format!("more than {limit} customers in one request (--max-batch)"),
        )
        .at("customers"),
    })
}

/// How [`predict_customers`] is run.
struct Predicting<'a> {
    /// Refuse a customer without an id (the server: answers are matched by id).
    require_id: bool,
    /// Set when the request timed out: stop scoring.
    cancelled: &'a AtomicBool,
    /// Where the phases' times and the risk bands are counted.
    metrics: Option<&'a Metrics>,
    /// Where the inputs and scores served are binned for live drift.
    drift: Option<&'a crate::drift::LiveDrift>,
    /// The time parsing took so far.
    parse: Duration,
    /// Bytes to reserve for the answer.
    capacity: usize,
}

/// Scores every customer of a parsed request with `scorer` and returns the JSON answer
/// (`{"model": ..., "predictions": [...]}`); the first bad customer is the error.
fn predict_customers(
    scorer: &Scorer,
    model: &ModelRef,
    req: &ParsedRequest<'_>,
    how: Predicting<'_>,
) -> Result<Vec<u8>, ApiError> {
    let opts = options(req.explain, req.top)?;
    let mut scratch = churn_scoring::Scratch::default();
    let mut out = Vec::with_capacity(how.capacity);
    out.extend_from_slice(b"{\"model\":");
    serde_json::to_writer(&mut out, model).expect("in-memory writes succeed");
    out.extend_from_slice(b",\"predictions\":[");
    let mut parse = how.parse;
    let (mut validate, mut predict, mut rules, mut serialise) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    // A tile of customers goes through the model together (a gradient-boosted model
    // scores blocks of rows as comparisons of bins), as churn-score scores a file. A
    // request fails with its first bad customer's error, in customer order, as when
    // customers were taken one by one: each stage stops at its first failure, and a
    // later stage runs only on the customers before it.
    for (tile, raws) in req.customers.chunks(churn_scoring::TILE_ROWS).enumerate() {
        let first = tile * churn_scoring::TILE_ROWS;
        let (mut parsed, mut ids) = (Vec::with_capacity(raws.len()), Vec::new());
        let mut failed = None;
        for (j, raw) in raws.iter().enumerate() {
            if how.cancelled.load(Ordering::Relaxed) {
                failed = Some(ApiError::new(
                    ErrorCode::Timeout,
                    "the request timed out; its scoring was stopped",
                ));
                break;
            }
            let t0 = Instant::now();
            match parse_with_id(raw, first + j, how.require_id) {
                Ok((customer, id)) => {
                    parsed.push(customer);
                    ids.push(id);
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
            parse += t0.elapsed();
        }
        let t1 = Instant::now();
        let mut cells = Vec::with_capacity(parsed.len());
        for (j, customer) in parsed.iter().enumerate() {
            let mut row = Vec::with_capacity(scorer.schema().len());
            if let Err(e) = row_cells(scorer, &customer.features, first + j, &mut row) {
                failed = Some(e);
                break;
            }
            cells.push(row);
        }
        let t2 = Instant::now();
        validate += t2 - t1;
        let mut models = Vec::with_capacity(cells.len());
        scorer.score_models(
            cells.len(),
            |j, p| cells[j][p],
            opts,
            &mut scratch,
            |_, m| models.push(m),
        );
        predict += t2.elapsed();
        for (j, (model, id)) in models.into_iter().zip(ids).enumerate() {
            let i = first + j;
            let t3 = Instant::now();
            let model = model.map_err(|e| {
                let code = match e.0 {
                    PrepError::NonFiniteOutput { .. } => ErrorCode::NotScorable,
                    _ => ErrorCode::WrongType,
                };
                ApiError::new(code, e.to_string()).at(format!("customers[{i}].features"))
            })?;
            let row = |p: usize| cells[j][p];
            let rule_result = scorer.score_rules(row);
            let t4 = Instant::now();
            if let Some(m) = how.metrics {
                m.predicted(model.risk_band);
            }
            if let Some(d) = how.drift {
                d.observe(row, model.probability);
            }
            let scored = Scored {
                model,
                rules: rule_result,
            };
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, &prediction_out(scorer, &scored, row, id, None))
                .expect("in-memory writes succeed");
            rules += t4 - t3;
            serialise += t4.elapsed();
        }
        if let Some(e) = failed {
            return Err(e);
        }
    }
    out.extend_from_slice(b"]}");
    if let Some(m) = how.metrics {
        m.phase(Phase::Parse, parse);
        m.phase(Phase::Validate, validate);
        m.phase(Phase::Predict, predict);
        m.phase(Phase::Rules, rules);
        m.phase(Phase::Serialise, serialise);
    }
    Ok(out)
}

/// Parses customer `i` of a request and its id (beside `features`, or among them as in
/// a feature table row): refused when longer than [`MAX_CUSTOMER_ID_CHARS`], or blank or
/// absent where `require_id`.
fn parse_with_id<'de>(
    raw: &'de serde_json::value::RawValue,
    i: usize,
    require_id: bool,
) -> Result<(crate::body::ParsedCustomer<'de>, Option<String>), ApiError> {
    let c = parse_customer(raw).map_err(|e| {
        let mut err = bad_json(e);
        err.message = format!("customers[{i}]: {}", err.message);
        err.at(format!("customers[{i}]"))
    })?;
    // Without an id an answer cannot be matched to its customer by anything but
    // its position, so a request without one is refused rather than answered `null`.
    let id = c.customer_id.as_ref().map(|t| t.0.to_string()).or_else(|| {
        c.features.iter().rev().find_map(|(k, v)| match v {
            Raw::Str(s) if k.0 == "customer_id" => Some(s.to_string()),
            Raw::Number(n) if k.0 == "customer_id" => Some(n.to_string()),
            _ => None,
        })
    });
    if id
        .as_deref()
        .is_some_and(|id| id.chars().count() > MAX_CUSTOMER_ID_CHARS)
    {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "customers[{i}]: `customer_id` is longer than {MAX_CUSTOMER_ID_CHARS} characters"
            ),
        )
        .at(format!("customers[{i}].customer_id")));
    }
    let blank = match id.as_deref() {
        Some(id) => id.trim().is_empty(),
        None => require_id,
    };
    if blank {
        return Err(ApiError::new(
            ErrorCode::MissingCustomerId,
            format!(
                "customers[{i}]: `customer_id` is required (a non-blank string beside `features`, or inside them as in a feature table row), so that each prediction can be matched to its customer"
            ),
        )
        .at(format!("customers[{i}].customer_id")));
    }
    Ok((c, id))
}

/// Answers a `POST /v1/predict` body with one model in this process, as the server
/// would (the same parsing, checks and JSON), except that a customer may come without
/// an id (its prediction then has `customer_id: null`) and the body's `model` is not
/// consulted. For the Python package.
pub fn predict_in_process(scorer: &Scorer, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let req = parse_predict(body, usize::MAX)?;
    let a = scorer.artifact();
    let model = ModelRef {
        name: a.name.clone(),
        version: a.version.clone(),
    };
    let not_cancelled = AtomicBool::new(false);
    predict_customers(
        scorer,
        &model,
        &req,
        Predicting {
            require_id: false,
            cancelled: &not_cancelled,
            metrics: None,
            drift: None,
            parse: Duration::ZERO,
            capacity: body.len() * 2 + 256,
        },
    )
}

/// Sets a flag when dropped: a request future dropped by the timeout tells its scoring
/// thread to stop.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Scores customers given their feature rows.
#[utoipa::path(post, path = "/v1/predict", tag = "predictions",
    request_body(content = PredictRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "One prediction per customer, in request order", body = PredictResponse),
        (status = 400, description = "Bad JSON, missing customer_id, no model named while several are served, unknown feature, wrong type, NaN or infinite value", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time", body = ErrorBody),
        (status = 413, description = "Body or batch too large", body = ErrorBody),
        (status = 415, description = "The body is not declared as JSON", body = ErrorBody),
        (status = 503, description = "Memory budget spent (retry after the Retry-After seconds) or timed out", body = ErrorBody),
    ),
    security((), ("bearer" = [])))]
pub async fn predict(
    State(app): State<Arc<App>>,
    Extension(request): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (body, mut reservation) = crate::body::read(&app, &headers, body).await?;
    crate::body::reserve_work(&app, &mut reservation, &body)?;
    let work = async {
        let _slot = app.scoring_slot().await;
        let cancelled = Arc::new(AtomicBool::new(false));
        let _cancel = CancelOnDrop(cancelled.clone());
        if body.len() <= INLINE_BODY_BYTES {
            return predict_body(&app, &body, &cancelled);
        }
        let worker = app.clone();
        let scored = tokio::task::spawn_blocking(move || {
            let r = predict_body(&worker, &body, &cancelled);
            drop(reservation);
            r
        })
        .await;
        match scored {
            Ok(r) => r,
            Err(e) if e.is_panic() => {
                Err(app.panicked(&request, &crate::panic_message(&*e.into_panic())))
            }
            Err(e) => Err(ApiError::new(
                ErrorCode::Internal,
                format!("scoring task failed: {e}"),
            )),
        }
    };
    app.within_timeout(work).await?
}

/// Query of the customer look-up.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CustomerQuery {
    /// The model to ask; optional when the server serves one model.
    pub model: Option<String>,
    /// Compute reasons; default true.
    pub explain: Option<bool>,
    /// Reasons at most; default 5.
    pub top: Option<usize>,
}

/// Scores a customer of the feature table loaded with `--features`.
#[utoipa::path(get, path = "/v1/customers/{id}/prediction", tag = "predictions",
    params(("id" = String, Path, description = "Customer id"), CustomerQuery),
    responses(
        (status = 200, description = "The customer's prediction", body = PredictionOut),
        (status = 404, description = "Unknown customer or model, or no feature table loaded", body = ErrorBody),
        (status = 503, description = "The feature store's database cannot answer", body = ErrorBody),
    ),
    security((), ("bearer" = [])))]
pub async fn customer_prediction(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    query: Result<Query<CustomerQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.body_text()))?;
    let Some(store) = app.store.as_ref() else {
        return Err(ApiError::new(
            ErrorCode::NoFeatureTable,
            "no feature table is loaded: start churn-serve with --features FILE",
        ));
    };
    let (found, how) = store.lookup(&id).await.map_err(|e| {
        app.metrics.store_lookup(StoreLookup::Unavailable);
        ApiError::new(ErrorCode::StoreUnavailable, e.to_string())
    })?;
    app.metrics.store_lookup(match how {
        LookupSource::Database => StoreLookup::Database,
        LookupSource::File | LookupSource::Cache => StoreLookup::Memory,
    });
    let stored = found.ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnknownCustomer,
            format!(
                "customer `{}` is not in {}",
                clip(&id, 120),
                store.describe()
            ),
        )
    })?;
    let row = stored.row;
    let _slot = app.scoring_slot().await;
    let loaded = app
        .registry
        .get(q.model.as_deref())
        .map_err(model_choice_error)?;
    let opts = options(q.explain, q.top)?;
    let scorer = &loaded.scorer;
    let t0 = Instant::now();
    let columns = scorer.table_columns(&stored.table);
    let cell = |p: usize| churn_scoring::table_cell(columns[p], row);
    let t1 = Instant::now();
    let model = scorer
        .score_model(cell, opts, &mut churn_scoring::Scratch::default())
        .map_err(|e| {
            ApiError::new(
                ErrorCode::BadStoredRow,
                format!(
                    "the stored row of `{}` cannot be scored: {e}",
                    clip(&id, 120)
                ),
            )
        })?;
    let t2 = Instant::now();
    let rules = scorer.score_rules(cell);
    let t3 = Instant::now();
    app.metrics.phase(Phase::Validate, t1 - t0);
    app.metrics.phase(Phase::Predict, t2 - t1);
    app.metrics.phase(Phase::Rules, t3 - t2);
    app.metrics.predicted(model.risk_band);
    if let Some(d) = &loaded.drift {
        d.observe(cell, model.probability);
    }
    let scored = Scored { model, rules };
    let out = prediction_out(scorer, &scored, cell, Some(id), stored.as_of());
    Ok(json_response(&app, &out))
}

/// A feature of a model's schema.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FeatureOut {
    pub name: String,
    /// `numeric` or `categorical`.
    pub kind: &'static str,
    pub description: String,
    /// False for features kept for reports only (e.g. `signup_cohort`).
    pub model_input: bool,
}

/// Risk band cut-offs on the probability.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CutoffsOut {
    pub medium: f64,
    pub high: f64,
    pub critical: f64,
}

/// A model being served.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModelOut {
    pub name: String,
    pub version: String,
    pub path: String,
    pub loaded_at: String,
    /// `logistic`, `forest`, `gbm` or `blend`.
    pub estimator: &'static str,
    pub horizon_days: i32,
    pub threshold: f64,
    pub risk_cutoffs: CutoffsOut,
    pub rules_apply: bool,
    pub features: Vec<FeatureOut>,
    /// The windows (in days) the features were computed with; windowed feature names end
    /// with them (`logins_per_week_28d`).
    #[schema(value_type = Object)]
    pub feature_settings: churn_features::features::FeatureConfig,
    /// Backtest metrics from the model's report.json, when present: `chosen`,
    /// `validation` and the pooled `overall` figures.
    #[schema(value_type = Option<Object>)]
    pub metrics: Option<churn_model::train::ReportHeadline>,
}

/// `GET /v1/models` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModelsResponse {
    pub models: Vec<ModelOut>,
    /// Every load, swap and failure since start, oldest first.
    pub history: Vec<HistoryEntry>,
}

/// The models served, their schemas and metrics, and the load history.
#[utoipa::path(get, path = "/v1/models", tag = "models",
    responses((status = 200, body = ModelsResponse)),
    security((), ("bearer" = [])))]
pub async fn models(State(app): State<Arc<App>>) -> Response {
    let mut out = Vec::new();
    for slot in app.registry.slots().values() {
        let l = slot.current();
        let a = l.scorer.artifact();
        let c = l.scorer.cutoffs();
        out.push(ModelOut {
            name: a.name.clone(),
            version: a.version.clone(),
            path: app.registry.relative(&l.dir),
            loaded_at: l.loaded_at.to_rfc3339(),
            estimator: a.model.estimator.kind().as_str(),
            horizon_days: a.horizon_days,
            threshold: a.model.threshold,
            risk_cutoffs: CutoffsOut {
                medium: c.medium,
                high: c.high,
                critical: c.critical,
            },
            rules_apply: a.rules_apply,
            features: a
                .features
                .iter()
                .enumerate()
                .map(|(i, f)| FeatureOut {
                    name: f.name.clone(),
                    kind: match f.kind {
                        FeatureKind::Numeric => "numeric",
                        FeatureKind::Categorical => "categorical",
                    },
                    description: f.description.clone(),
                    model_input: l.scorer.is_model_input(i),
                })
                .collect(),
            feature_settings: a.feature_config.clone(),
            metrics: l.metrics.clone(),
        });
    }
    let body = ModelsResponse {
        models: out,
        history: app.registry.history(),
    };
    axum::Json(body).into_response()
}

/// `POST /v1/models/reload` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReloadResponse {
    /// False when a version failed to load (its model keeps serving the old one).
    pub ok: bool,
    pub models: Vec<ReloadOutcome>,
}

/// Loads every model whose `LATEST` changed, checks it and swaps it in.
#[utoipa::path(post, path = "/v1/models/reload", tag = "models",
    responses(
        (status = 200, description = "Every model loaded or unchanged", body = ReloadResponse),
        (status = 415, description = "Not declared as JSON: send `Content-Type: application/json` (an empty body is fine)", body = ErrorBody),
        (status = 422, description = "A version failed to load; the old one keeps serving", body = ReloadResponse),
        (status = 500, description = "The reload stopped with an internal error; the models serving before keep serving", body = ErrorBody),
    ),
    security((), ("bearer" = [])))]
pub async fn reload(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(e) = crate::body::require_json(&headers) {
        return e.into_response();
    }
    let app2 = app.clone();
    let outcomes = match tokio::task::spawn_blocking(move || {
        app2.registry.reload(true, |ok| app2.metrics.reload(ok))
    })
    .await
    {
        Ok(outcomes) => outcomes,
        // A reload that panicked is a failure to report, not an empty success.
        Err(e) => {
            tracing::error!(error = %e, "the reload panicked");
            return ApiError::new(
                ErrorCode::Internal,
                "the reload stopped with an internal error; the models serving before keep serving",
            )
            .into_response();
        }
    };
    let ok = outcomes.iter().all(|o| o.outcome != ModelEvent::Failed);
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut r = (
        status,
        axum::Json(ReloadResponse {
            ok,
            models: outcomes,
        }),
    )
        .into_response();
    if !ok {
        r.extensions_mut().insert(ErrorCode::ReloadFailed);
    }
    r
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive")))]
pub async fn healthz() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

/// Readiness: a model is loaded and the server is not shutting down.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready"), (status = 503, description = "Shutting down, or requests keep failing with internal errors")))]
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let ready =
        app.ready.load(Ordering::Relaxed) && !app.registry.slots().is_empty() && !app.failing();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(serde_json::json!({
            "ready": ready,
            "models": app.registry.slots().len(),
            "failing": app.failing(),
        })),
    )
        .into_response()
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "OpenMetrics text exposition format (Prometheus scrapes it)", content_type = "application/openmetrics-text")))]
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    let memory = crate::metrics::Memory {
        reserved_bytes: app.budget.reserved_bytes(),
        budget_bytes: app.budget.total_bytes(),
    };
    let served: Vec<_> = app
        .registry
        .slots()
        .values()
        .map(|s| {
            let l = s.current();
            crate::metrics::ServedModel {
                name: l.name().to_string(),
                version: l.version().to_string(),
                loaded_at_unix: l.loaded_at.timestamp_millis() as f64 / 1000.0,
                drift: l.drift.as_ref().map(|d| d.snapshot()),
            }
        })
        .collect();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(&served, memory),
    )
        .into_response()
}

/// The OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "churn-serve", description = "Churn probabilities and retention playbook rules"),
    paths(predict, customer_prediction, models, reload, healthz, readyz, metrics),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /openapi.json`.
pub async fn openapi() -> Response {
    use utoipa::OpenApi;
    axum::Json(ApiDoc::openapi()).into_response()
}

/// The JSON error for a route asked with the wrong method (`GET /v1/predict`).
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not take that method; see /openapi.json",
    )
}

/// The JSON error for routes that do not exist.
pub async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route; see /openapi.json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::OpenApi;

    /// The documented request schema and the hand-written parser accept the same fields.
    #[test]
    fn the_request_schema_names_the_fields_the_parser_reads() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let fields = |schema: &str| -> Vec<String> {
            let mut f: Vec<String> = doc["components"]["schemas"][schema]["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("no {schema} schema"))
                .keys()
                .cloned()
                .collect();
            f.sort();
            f
        };
        let sorted = |names: &[&str]| {
            let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            v.sort();
            v
        };
        assert_eq!(
            fields("PredictRequest"),
            sorted(crate::body::REQUEST_FIELDS)
        );
        assert_eq!(
            fields("CustomerRequest"),
            sorted(crate::body::CUSTOMER_FIELDS)
        );
    }
}
