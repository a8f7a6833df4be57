//! Turns simulated lives into table rows for the data window.

use crate::catalog::CATALOG;
use crate::life::{self, Life, Reason, Traits, CHANNELS, DAY, PLANS};
use arrow_array::builder::{
    Date32Builder, Float64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use churn_features::contract::{self, TableSpec};
use churn_features::time::{self, Day, Ts};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

/// Column builders for one table, in the contract's column order.
pub struct TableRows {
    pub spec: &'static TableSpec,
    pub columns: Vec<ColumnBuilder>,
    pub rows: usize,
}

/// A builder for one contract column type.
pub enum ColumnBuilder {
    Text(StringBuilder),
    Date(Date32Builder),
    Time(TimestampMicrosecondBuilder),
    Number(Float64Builder),
}

impl TableRows {
    pub fn new(spec: &'static TableSpec, extra_text_columns: &[&str]) -> Self {
        use churn_features::contract::ColumnType::*;
        let mut columns: Vec<ColumnBuilder> = spec
            .columns
            .iter()
            .map(|c| match c.ty {
                Text => ColumnBuilder::Text(StringBuilder::new()),
                Date => ColumnBuilder::Date(Date32Builder::new()),
                Timestamp => ColumnBuilder::Time(
                    TimestampMicrosecondBuilder::new().with_timezone(contract::TIMEZONE),
                ),
                Number => ColumnBuilder::Number(Float64Builder::new()),
            })
            .collect();
        columns.extend(
            extra_text_columns
                .iter()
                .map(|_| ColumnBuilder::Text(StringBuilder::new())),
        );
        TableRows {
            spec,
            columns,
            rows: 0,
        }
    }

    pub(crate) fn text(&mut self, i: usize, v: Option<&str>) {
        match &mut self.columns[i] {
            ColumnBuilder::Text(b) => b.append_option(v),
            _ => unreachable!("column {i} of {} is text", self.spec.name),
        }
    }
    pub(crate) fn date(&mut self, i: usize, v: Option<Day>) {
        match &mut self.columns[i] {
            ColumnBuilder::Date(b) => b.append_option(v),
            _ => unreachable!("column {i} of {} is a date", self.spec.name),
        }
    }
    pub(crate) fn time(&mut self, i: usize, v: Option<Ts>) {
        match &mut self.columns[i] {
            ColumnBuilder::Time(b) => b.append_option(v.map(|t| t * contract::MICROS_PER_SECOND)),
            _ => unreachable!("column {i} of {} is a timestamp", self.spec.name),
        }
    }
    pub(crate) fn number(&mut self, i: usize, v: Option<f64>) {
        match &mut self.columns[i] {
            ColumnBuilder::Number(b) => b.append_option(v),
            _ => unreachable!("column {i} of {} is a number", self.spec.name),
        }
    }

    /// Finishes the rows as a record batch with the given schema.
    pub fn finish(&mut self, schema: arrow_schema::SchemaRef) -> RecordBatch {
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|c| match c {
                ColumnBuilder::Text(b) => Arc::new(b.finish()) as ArrayRef,
                ColumnBuilder::Date(b) => Arc::new(b.finish()),
                ColumnBuilder::Time(b) => Arc::new(b.finish()),
                ColumnBuilder::Number(b) => Arc::new(b.finish()),
            })
            .collect();
        self.rows = 0;
        RecordBatch::try_new(schema, arrays).expect("builders match the schema")
    }
}

/// Names of the extra attribute columns of the simulated `customers` table.
pub const CUSTOMER_ATTRIBUTES: [&str; 5] = [
    "country",
    "industry",
    "acquisition_channel",
    "has_csm",
    "seats",
];

/// All rows of a chunk of customers.
pub struct Chunk {
    pub subscriptions: TableRows,
    pub customers: TableRows,
    pub events: TableRows,
    pub tickets: TableRows,
    pub payments: TableRows,
    pub surveys: TableRows,
    pub customers_written: u64,
    /// The end of the data window: an event after it (a late session spilling past
    /// midnight on the last day) is not written.
    events_before: Ts,
}

impl Default for Chunk {
    fn default() -> Self {
        Chunk {
            subscriptions: TableRows::new(&contract::SUBSCRIPTIONS, &[]),
            customers: TableRows::new(&contract::CUSTOMERS, &CUSTOMER_ATTRIBUTES),
            events: TableRows::new(&contract::EVENTS, &[]),
            tickets: TableRows::new(&contract::TICKETS, &[]),
            payments: TableRows::new(&contract::PAYMENTS, &[]),
            surveys: TableRows::new(&contract::SURVEYS, &[]),
            customers_written: 0,
            events_before: Ts::MAX,
        }
    }
}

/// The data window: rows are written for `[start, end)`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Day,
    pub end: Day,
    /// A change in the business from a date (see [`crate::Drift`]).
    pub drift: Option<crate::life::ActiveDrift>,
}

impl Chunk {
    /// Writes one customer's rows, if it is a customer during the window.
    pub fn add(&mut self, rng: &mut ChaCha8Rng, id: &str, traits: &Traits, life: &Life, w: Window) {
        let visible = life
            .subs
            .iter()
            .any(|s| s.end.is_none_or(|e| e > w.start) && s.start < w.end);
        if !visible {
            return;
        }
        self.events_before = time::day_start(w.end);
        self.customers_written += 1;
        for s in &life.subs {
            let t = &mut self.subscriptions;
            t.text(0, Some(id));
            t.date(1, Some(s.start));
            t.date(2, s.end);
            t.number(3, Some(s.mrr));
            t.text(4, Some(PLANS[s.plan].0));
            t.text(5, s.reason.map(|r| r.name()));
            t.rows += 1;
        }
        let c = &mut self.customers;
        c.text(0, Some(id));
        c.text(1, Some(traits.country));
        c.text(2, Some(traits.industry));
        c.text(3, Some(CHANNELS[traits.channel]));
        c.text(4, Some(if traits.has_csm { "true" } else { "false" }));
        c.text(5, Some(&traits.seats.to_string()));
        c.rows += 1;
        for s in &life.subs {
            let from = s.start.max(w.start);
            let to = s.end.unwrap_or(w.end).min(w.end);
            if from < to {
                self.activity(rng, id, traits, life, s.plan, from, to, w);
                self.invoices(rng, id, life, s.start, s.mrr, from, to, w.end);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn activity(
        &mut self,
        rng: &mut ChaCha8Rng,
        id: &str,
        t: &Traits,
        life: &Life,
        plan: usize,
        from: Day,
        to: Day,
        w: Window,
    ) {
        let data_end = w.end;
        let base = (0.46 * (0.5 * t.engagement).exp()).min(0.95);
        let adopted: Vec<usize> = (0..CATALOG.len()).filter(|&i| t.adopted[i]).collect();
        let value_day = life.signup + t.ttv_days.round() as Day;
        for day in from..to {
            let (factor, declining) = life::usage_factor(life, day);
            let quiet = life.dormant.iter().any(|&(s, e)| day >= s && day < e);
            let weekday = (day + 3).rem_euclid(7); // 0 = Monday
            let week = if weekday >= 5 { 0.45 } else { 1.1 };
            let tenure = day - life.signup;
            // Before reaching value, customers poke around less.
            let ramp = if day < value_day { 0.55 } else { 1.0 };
            let p = (base * factor * week * ramp * if tenure < 3 { 2.0 } else { 1.0 }).min(0.98);
            if !quiet && rng.random::<f64>() < p {
                let login = life::at_hour(rng, day);
                self.event(id, login, "login", None, None);
                let sessions =
                    u32::from(rng.random::<f64>() < 0.92) + u32::from(rng.random::<f64>() < 0.12);
                for k in 0..sessions {
                    let at = login + 60 + i64::from(k) * 3 * 3600;
                    let minutes_factor = match declining {
                        Some(Reason::Onboarding | Reason::Features) => 0.45,
                        Some(_) => 0.75,
                        None => 1.0,
                    } * factor.sqrt();
                    let drift = w
                        .drift
                        .filter(|d| d.applies(day, plan))
                        .map_or(1.0, |d| d.session_minutes);
                    let minutes = (life::lognormal(rng, 5.45, 0.65)
                        * minutes_factor
                        * (0.15 * t.engagement).exp()
                        * drift)
                        .max(0.5);
                    self.event(
                        id,
                        at,
                        "session",
                        Some((minutes * 10.0).round() / 10.0),
                        None,
                    );
                    if day >= value_day && !adopted.is_empty() {
                        let uses = 1 + u32::from(rng.random::<f64>() < 0.6 * factor);
                        for u in 0..uses {
                            let f = if day == value_day && k == 0 && u == 0 {
                                adopted[0]
                            } else {
                                adopted[rng.random_range(0..adopted.len())]
                            };
                            self.event(
                                id,
                                at + 120 + i64::from(u) * 300,
                                "feature_use",
                                None,
                                Some(CATALOG[f].0),
                            );
                        }
                    }
                    if rng.random::<f64>() < 0.08 * factor {
                        self.event(id, at + 900, "export", None, None);
                    }
                }
                if rng.random::<f64>() < 0.02 * f64::from(t.seats) {
                    self.event(id, login + 1800, "invite_sent", None, None);
                }
            }
            // Support tickets.
            let support_decline = life::in_decline(life, day, Reason::Support);
            let rate = t.ticket_rate / 30.0
                * if support_decline { 7.0 } else { 1.0 }
                * if tenure < 30 { 1.8 } else { 1.0 };
            for _ in 0..life::poisson(rng, rate) {
                let opened = life::at_hour(rng, day);
                let response_h = life::lognormal(rng, if t.has_csm { 9.0 } else { 18.0 }, 0.9)
                    * if support_decline { 2.5 } else { 1.0 };
                let resolve_h = response_h + life::lognormal(rng, 30.0, 1.0);
                let first = opened + life::hours(response_h);
                let closed = opened + life::hours(resolve_h);
                let sat = if support_decline {
                    1.0 + f64::from(rng.random_range(0..3u8))
                } else {
                    let s: f64 = 4.4 - response_h / 40.0 + life::lognormal(rng, 1.0, 0.5) - 1.0;
                    s.round().clamp(1.0, 5.0)
                };
                let end = time::day_start(data_end);
                let tk = &mut self.tickets;
                tk.text(0, Some(id));
                tk.time(1, Some(opened));
                tk.time(2, (closed < end).then_some(closed));
                tk.time(3, (first < end).then_some(first));
                let pr = ["low", "normal", "normal", "high", "urgent"][rng.random_range(0..5)];
                tk.text(4, Some(pr));
                tk.number(
                    5,
                    (closed < end && rng.random::<f64>() < 0.6).then_some(sat),
                );
                tk.rows += 1;
            }
            // Surveys: about one answer every eight months.
            if rng.random::<f64>() < 1.0 / 240.0 {
                let mood = t.engagement * 0.8
                    + if declining.is_some() { -2.0 } else { 0.6 }
                    + life::lognormal(rng, 1.0, 0.6)
                    - 1.0;
                let nps = (7.15 + 1.4 * mood).round().clamp(0.0, 10.0);
                let csat = (5.9 + 1.2 * mood).round().clamp(1.0, 10.0);
                let sv = &mut self.surveys;
                sv.text(0, Some(id));
                sv.time(1, Some(life::at_hour(rng, day)));
                sv.number(2, Some(nps));
                sv.number(3, Some(csat));
                sv.rows += 1;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn invoices(
        &mut self,
        rng: &mut ChaCha8Rng,
        id: &str,
        life: &Life,
        row_start: Day,
        mrr: f64,
        from: Day,
        to: Day,
        window_end: Day,
    ) {
        let mut k = 0;
        loop {
            let due = time::add_months(row_start, k);
            k += 1;
            if due >= to {
                return;
            }
            if due < from {
                continue;
            }
            let pricing = life::in_decline(life, due, Reason::Pricing);
            let r = rng.random::<f64>();
            let (p_fail, p_late) = if pricing { (0.35, 0.3) } else { (0.008, 0.035) };
            let (status, paid) = if r < p_fail {
                ("failed", None)
            } else if r < p_fail + p_late {
                (
                    "late",
                    Some(
                        time::day_start(due)
                            + rng.random_range(3..25) * DAY
                            + rng.random_range(0..DAY),
                    ),
                )
            } else if r < p_fail + p_late + 0.004 {
                (
                    "refunded",
                    Some(time::day_start(due) + rng.random_range(0..DAY)),
                )
            } else {
                (
                    "paid",
                    Some(time::day_start(due) + rng.random_range(0..DAY)),
                )
            };
            // At the end of the data a late invoice may still be unpaid.
            let paid = paid.filter(|&p| p < time::day_start(window_end));
            let p = &mut self.payments;
            p.text(0, Some(id));
            p.date(1, Some(due));
            p.time(2, paid);
            p.number(3, Some(mrr));
            p.text(4, Some(status));
            p.rows += 1;
        }
    }

    fn event(&mut self, id: &str, ts: Ts, kind: &str, value: Option<f64>, feature: Option<&str>) {
        if ts >= self.events_before {
            return;
        }
        let e = &mut self.events;
        e.text(0, Some(id));
        e.time(1, Some(ts));
        e.text(2, Some(kind));
        e.number(3, value);
        e.text(4, feature);
        e.rows += 1;
    }
}
