//! Request bodies under limits, and the prediction request parsed without a JSON tree.
//!
//! Reading: the content type must be JSON (a browser cannot send that cross-origin
//! without a CORS preflight, which this server does not answer), the size is capped
//! before and while reading, the whole body must arrive before a deadline, and every
//! byte held counts against a memory budget shared by all requests in flight, taken as
//! the bytes arrive so that a slow sender holds only what it has sent. A request that
//! would overdraw the budget is answered 503 at once, never queued.
//!
//! Parsing: the body is parsed straight into [`ParsedRequest`], borrowing keys and
//! strings from the body, with no `serde_json::Value` tree per customer; the batch
//! limit is enforced as the customers are read, so a body with two million customers is
//! refused at the first one over the limit, not after all of them were built.

use crate::api::{ApiError, ErrorCode};
use crate::metrics::Refusal;
use crate::App;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use http_body_util::BodyExt;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How much memory a request is charged per byte of body, on top of the body itself,
/// for its parsed form, its scored rows and its response (measured on 10,000-customer
/// requests of the simulator's features: parsed form about 1.3x, response about 0.5x
/// the body; see docs/serving.md).
pub const PARSE_FACTOR: usize = 2;

/// A budget of bytes shared by the requests in flight.
#[derive(Debug)]
pub struct Budget {
    permits: Arc<Semaphore>,
    /// Total, in KiB (the unit of a permit).
    total_kib: usize,
}

/// Bytes of the budget held by one request; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    permits: Arc<Semaphore>,
    held: Option<OwnedSemaphorePermit>,
}

fn kib(bytes: usize) -> usize {
    bytes.div_ceil(1024)
}

impl Budget {
    /// A budget of `bytes`.
    pub fn new(bytes: u64) -> Budget {
        let total_kib = kib(usize::try_from(bytes).unwrap_or(usize::MAX)).max(1);
        Budget {
            permits: Arc::new(Semaphore::new(total_kib.min(Semaphore::MAX_PERMITS))),
            total_kib,
        }
    }

    /// An empty reservation to grow.
    pub fn reservation(&self) -> Reservation {
        Reservation {
            permits: self.permits.clone(),
            held: None,
        }
    }

    /// Bytes held by requests now.
    pub fn reserved_bytes(&self) -> u64 {
        (self
            .total_kib
            .saturating_sub(self.permits.available_permits()) as u64)
            * 1024
    }

    /// The budget in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.total_kib as u64 * 1024
    }
}

impl Reservation {
    /// Takes `bytes` more, or returns false (and takes nothing) when the budget is spent.
    pub fn grow(&mut self, bytes: usize) -> bool {
        let want = kib(bytes);
        if want == 0 {
            return true;
        }
        let Ok(want) = u32::try_from(want) else {
            return false;
        };
        match self.permits.clone().try_acquire_many_owned(want) {
            Ok(p) => {
                match &mut self.held {
                    Some(h) => h.merge(p),
                    None => self.held = Some(p),
                }
                true
            }
            Err(_) => false,
        }
    }
}

/// The 503 of a spent memory budget.
fn overloaded(app: &App) -> ApiError {
    app.metrics.refused(Refusal::MemoryBudget);
    ApiError::new(
                ErrorCode::Overloaded,
        "the server's memory budget for requests in flight is spent (--memory-budget-mb); retry shortly or send smaller batches",
    )
    .retry_after(1)
    .closing()
}

/// Whether a content type is JSON (`application/json`, with parameters, or `+json`).
fn is_json(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5
            && essence[..essence.len() - 5]
                .to_ascii_lowercase()
                .starts_with("application/")
            && essence[essence.len() - 5..].eq_ignore_ascii_case("+json"))
}

/// Refuses a POST whose body is not declared as JSON.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json);
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with `Content-Type: application/json`",
        ))
    }
}

/// Reads a JSON body within the size limit, the body timeout and the memory budget.
/// The reservation returned holds the body's bytes.
pub async fn read(
    app: &App,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Bytes, Reservation), ApiError> {
    require_json(headers)?;
    let max = app.limits.max_body_bytes;
    let too_large = || {
        ApiError::new(
                ErrorCode::BodyTooLarge,
            format!("the request body is larger than the server's limit of {max} bytes (--max-body-bytes)"),
        )
        .closing()
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let mut reservation = app.budget.reservation();
    // Capacity for the declared length: pages are only touched (and counted) as bytes
    // arrive, and the buffer is never copied to grow.
    let mut buf = Vec::with_capacity(declared.unwrap_or(0));
    let deadline = tokio::time::Instant::now() + app.limits.body_timeout;
    let mut body = body;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                app.metrics.refused(Refusal::BodyTimeout);
                return Err(ApiError::new(
                    ErrorCode::BodyTimeout,
                    format!(
                        "the request body did not arrive within {} ms (--body-timeout-ms)",
                        app.limits.body_timeout.as_millis()
                    ),
                )
                .closing());
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(ApiError::new(
                    ErrorCode::BadBody,
                    format!("reading the request body: {e}"),
                )
                .closing())
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if buf.len() + data.len() > max {
            return Err(too_large());
        }
        if !reservation.grow(data.len()) {
            return Err(overloaded(app));
        }
        buf.extend_from_slice(&data);
    }
    Ok((Bytes::from(buf), reservation))
}

/// Charges a read body for what parsing and scoring it will hold (see [`PARSE_FACTOR`]).
pub fn reserve_work(app: &App, reservation: &mut Reservation, body: &[u8]) -> Result<(), ApiError> {
    if reservation.grow(body.len().saturating_mul(PARSE_FACTOR)) {
        Ok(())
    } else {
        Err(overloaded(app))
    }
}

/// A string borrowed from the body when it has no escapes.
#[derive(Debug, Clone, PartialEq)]
pub struct Text<'de>(pub Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A feature value as sent, before the model's schema says what it should be.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw<'de> {
    Null,
    Bool(bool),
    Number(f64),
    Str(Cow<'de, str>),
    Array,
    Object,
}

impl<'de> de::Deserialize<'de> for Raw<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Raw<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Raw<'de>, E> {
                Ok(Raw::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Raw<'de>, E> {
                Ok(Raw::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Raw<'de>, E> {
                Ok(Raw::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw<'de>, E> {
                Ok(Raw::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw<'de>, E> {
                Ok(Raw::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw<'de>, E> {
                Ok(Raw::Number(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Raw<'de>, E> {
                Ok(Raw::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw<'de>, E> {
                Ok(Raw::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Raw<'de>, E> {
                Ok(Raw::Str(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Raw::Array)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Raw::Object)
            }
        }
        d.deserialize_any(V)
    }
}

/// One customer of a prediction request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedCustomer<'de> {
    pub customer_id: Option<Text<'de>>,
    /// Feature name and value, in body order (a repeated name: the last one counts).
    pub features: Vec<(Text<'de>, Raw<'de>)>,
}

/// `POST /v1/predict`, parsed (the schema of [`crate::api::PredictRequest`]). The
/// customers stay unparsed slices of the body (checked to be JSON): each is parsed when
/// it is scored, so a request never holds more than one customer's parsed form.
#[derive(Debug, Clone, Default)]
pub struct ParsedRequest<'de> {
    pub model: Option<Text<'de>>,
    pub explain: Option<bool>,
    pub top: Option<usize>,
    pub customers: Vec<&'de serde_json::value::RawValue>,
}

/// Parses one customer of a [`ParsedRequest`].
pub fn parse_customer<'de>(
    raw: &'de serde_json::value::RawValue,
) -> Result<ParsedCustomer<'de>, serde_json::Error> {
    serde_json::from_str(raw.get())
}

pub(crate) const REQUEST_FIELDS: &[&str] = &["model", "explain", "top", "customers"];
pub(crate) const CUSTOMER_FIELDS: &[&str] = &["customer_id", "features"];

/// Why parsing stopped: the JSON was bad, or the batch limit was passed.
#[derive(Debug)]
pub enum ParseError {
    Json(serde_json::Error),
    TooManyCustomers { limit: usize },
}

/// Parses a prediction request, stopping at customer `max_batch + 1`.
pub fn parse_request(body: &[u8], max_batch: usize) -> Result<ParsedRequest<'_>, ParseError> {
    let over = Cell::new(false);
    let mut d = serde_json::Deserializer::from_slice(body);
    let parsed = RequestSeed {
        max_batch,
        over: &over,
    }
    .deserialize(&mut d)
    .and_then(|r| d.end().map(|()| r));
    match parsed {
        Ok(r) => Ok(r),
        Err(_) if over.get() => Err(ParseError::TooManyCustomers { limit: max_batch }),
        Err(e) => Err(ParseError::Json(e)),
    }
}

struct RequestSeed<'a> {
    max_batch: usize,
    over: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for RequestSeed<'_> {
    type Value = ParsedRequest<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed<'_> {
    type Value = ParsedRequest<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a prediction request object with `customers`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = ParsedRequest::default();
        let mut customers = false;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match key.0.as_ref() {
                "model" => out.model = map.next_value()?,
                "explain" => out.explain = map.next_value()?,
                "top" => out.top = map.next_value()?,
                "customers" => {
                    if customers {
                        return Err(de::Error::duplicate_field("customers"));
                    }
                    customers = true;
                    out.customers = map.next_value_seed(CustomersSeed {
                        max_batch: self.max_batch,
                        over: self.over,
                    })?;
                }
                other => return Err(de::Error::unknown_field(other, REQUEST_FIELDS)),
            }
        }
        if !customers {
            return Err(de::Error::missing_field("customers"));
        }
        Ok(out)
    }
}

struct CustomersSeed<'a> {
    max_batch: usize,
    over: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for CustomersSeed<'_> {
    type Value = Vec<&'de serde_json::value::RawValue>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for CustomersSeed<'_> {
    type Value = Vec<&'de serde_json::value::RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of customers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max_batch));
        while let Some(c) = seq.next_element::<&'de serde_json::value::RawValue>()? {
            if out.len() == self.max_batch {
                self.over.set(true);
                return Err(de::Error::custom("too many customers"));
            }
            out.push(c);
        }
        Ok(out)
    }
}

impl<'de> de::Deserialize<'de> for ParsedCustomer<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ParsedCustomer<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a customer object with `features`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = ParsedCustomer::default();
                let mut features = false;
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    match key.0.as_ref() {
                        "customer_id" => out.customer_id = map.next_value()?,
                        "features" => {
                            features = true;
                            out.features = map.next_value_seed(FeaturesSeed)?;
                        }
                        other => return Err(de::Error::unknown_field(other, CUSTOMER_FIELDS)),
                    }
                }
                if !features {
                    return Err(de::Error::missing_field("features"));
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

struct FeaturesSeed;

impl<'de> DeserializeSeed<'de> for FeaturesSeed {
    type Value = Vec<(Text<'de>, Raw<'de>)>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FeaturesSeed {
    type Value = Vec<(Text<'de>, Raw<'de>)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of feature values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(entry) = map.next_entry::<Text<'de>, Raw<'de>>()? {
            out.push(entry);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_borrowing_and_stops_at_the_batch_limit() {
        let body = br#"{"top": 2, "customers": [{"customer_id": "a", "features": {"mrr": 10, "plan": "pro", "x": null, "b": true, "l": [1, [2]], "o": {"k": 1}}}, {"features": {"esc": "a\"b"}}]}"#;
        let r = parse_request(body, 2).unwrap();
        assert_eq!(r.top, Some(2));
        assert_eq!(r.customers.len(), 2);
        let first = parse_customer(r.customers[0]).unwrap();
        let f = &first.features;
        assert_eq!(f[0], (Text("mrr".into()), Raw::Number(10.0)));
        assert!(matches!(f[1].1, Raw::Str(Cow::Borrowed("pro"))));
        assert_eq!(f[2].1, Raw::Null);
        assert_eq!(f[3].1, Raw::Bool(true));
        assert_eq!(f[4].1, Raw::Array);
        assert_eq!(f[5].1, Raw::Object);
        assert_eq!(
            parse_customer(r.customers[1]).unwrap().features[0].1,
            Raw::Str("a\"b".into())
        );
        assert!(matches!(
            parse_request(body, 1),
            Err(ParseError::TooManyCustomers { limit: 1 })
        ));
        for bad in [
            &br#"{"clients": []}"#[..],
            br#"{"customers": 3}"#,
            br#"{}"#,
            br#"{"customers": []} trailing"#,
        ] {
            assert!(
                matches!(parse_request(bad, 5), Err(ParseError::Json(e)) if e.is_data() || e.is_syntax()),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn customers_are_checked_when_parsed() {
        for bad in [
            &br#"{"customers": [{"features": {}, "extra": 1}]}"#[..],
            br#"{"customers": [{}]}"#,
            br#"{"customers": [{"features": 3}]}"#,
        ] {
            let r = parse_request(bad, 5).unwrap();
            assert!(parse_customer(r.customers[0]).is_err());
        }
    }

    #[test]
    fn json_content_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/vnd.churn+json",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
            "+json",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }

    #[test]
    fn a_budget_is_shared_and_given_back() {
        let b = Budget::new(10 * 1024);
        let mut r1 = b.reservation();
        assert!(r1.grow(6 * 1024));
        let mut r2 = b.reservation();
        assert!(!r2.grow(5 * 1024), "only 4 KiB are left");
        assert!(r2.grow(4 * 1024));
        assert_eq!(b.reserved_bytes(), 10 * 1024);
        drop(r1);
        assert_eq!(b.reserved_bytes(), 4 * 1024);
        drop(r2);
        assert_eq!(b.reserved_bytes(), 0);
    }
}
