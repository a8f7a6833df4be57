//! Property tests of the point-in-time guarantee, through real CSV files:
//! - appending events, tickets, payments, surveys or subscriptions at or after `as_of`
//!   (and moving subscription ends that lie beyond it) never changes features as of it;
//! - shuffling the rows of every input file never changes them;
//! - labels depend only on subscriptions, never on the activity tables.

use churn_features::dataset::Values;
use churn_features::features::{self, FeatureConfig, FeatureTable};
use churn_features::labels;
use churn_features::time::{self, Day};
use churn_features::Dataset;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write;

const BASE: &str = "2024-01-01";
const MINUTES_PER_DAY: i64 = 1440;

fn base() -> Day {
    time::parse_date(BASE).unwrap()
}

#[derive(Debug, Clone)]
struct Sub {
    customer: u8,
    start: i32,
    len: Option<i32>,
    mrr: u16,
    plan: u8,
}

#[derive(Debug, Clone)]
struct Event {
    customer: u8,
    minute: i64,
    kind: u8,
    value: Option<u16>,
    feature: Option<u8>,
}

#[derive(Debug, Clone)]
struct Ticket {
    customer: u8,
    minute: i64,
    closed_after: Option<i64>,
    response_after: Option<i64>,
    satisfaction: Option<u8>,
}

#[derive(Debug, Clone)]
struct Payment {
    customer: u8,
    due: i32,
    paid_after_minutes: Option<i64>,
    status: u8,
}

#[derive(Debug, Clone)]
struct Survey {
    customer: u8,
    minute: i64,
    nps: Option<u8>,
    csat: Option<u8>,
}

#[derive(Debug, Clone, Default)]
struct World {
    subs: Vec<Sub>,
    events: Vec<Event>,
    tickets: Vec<Ticket>,
    payments: Vec<Payment>,
    surveys: Vec<Survey>,
}

const CUSTOMERS: u8 = 6;

fn sub(days: std::ops::Range<i32>) -> impl Strategy<Value = Sub> {
    (
        0..CUSTOMERS,
        days,
        proptest::option::of(1..150i32),
        0..500u16,
        0..3u8,
    )
        .prop_map(|(customer, start, len, mrr, plan)| Sub {
            customer,
            start,
            len,
            mrr,
            plan,
        })
}

fn event(minutes: std::ops::Range<i64>) -> impl Strategy<Value = Event> {
    (
        0..CUSTOMERS,
        minutes,
        0..5u8,
        proptest::option::of(1..120u16),
        proptest::option::of(0..5u8),
    )
        .prop_map(|(customer, minute, kind, value, feature)| Event {
            customer,
            minute,
            kind,
            value,
            feature,
        })
}

fn ticket(minutes: std::ops::Range<i64>) -> impl Strategy<Value = Ticket> {
    (
        0..CUSTOMERS,
        minutes,
        proptest::option::of(0..20_000i64),
        proptest::option::of(0..5_000i64),
        proptest::option::of(1..=5u8),
    )
        .prop_map(
            |(customer, minute, closed_after, response_after, satisfaction)| Ticket {
                customer,
                minute,
                closed_after,
                response_after,
                satisfaction,
            },
        )
}

fn payment(days: std::ops::Range<i32>) -> impl Strategy<Value = Payment> {
    (
        0..CUSTOMERS,
        days,
        proptest::option::of(0..40_000i64),
        0..4u8,
    )
        .prop_map(|(customer, due, paid_after_minutes, status)| Payment {
            customer,
            due,
            paid_after_minutes,
            status,
        })
}

fn survey(minutes: std::ops::Range<i64>) -> impl Strategy<Value = Survey> {
    (
        0..CUSTOMERS,
        minutes,
        proptest::option::of(0..=10u8),
        proptest::option::of(1..=10u8),
    )
        .prop_map(|(customer, minute, nps, csat)| Survey {
            customer,
            minute,
            nps,
            csat,
        })
}

/// Rows over days [0, 240) relative to 2024-01-01, some customers with no data at all.
fn world(days: std::ops::Range<i32>, max_rows: usize) -> impl Strategy<Value = World> {
    let minutes = i64::from(days.start) * MINUTES_PER_DAY..i64::from(days.end) * MINUTES_PER_DAY;
    (
        proptest::collection::vec(sub(days.clone()), 0..max_rows.min(10)),
        proptest::collection::vec(event(minutes.clone()), 0..max_rows * 4),
        proptest::collection::vec(ticket(minutes.clone()), 0..max_rows),
        proptest::collection::vec(payment(days), 0..max_rows),
        proptest::collection::vec(survey(minutes), 0..max_rows),
    )
        .prop_map(|(subs, events, tickets, payments, surveys)| World {
            subs,
            events,
            tickets,
            payments,
            surveys,
        })
}

fn id(c: u8) -> String {
    format!("cust-{c}")
}

fn date(offset: i32) -> String {
    time::format_date(base() + offset)
}

fn stamp(minute: i64) -> String {
    time::format_timestamp(time::day_start(base()) + minute * 60)
}

const KINDS: [&str; 5] = ["login", "session", "feature_use", "export", "Report Viewed"];
const FEATURES: [&str; 5] = ["dashboard", "projects", "reports", "api", "not_in_catalog"];
const STATUSES: [&str; 4] = ["paid", "late", "failed", "refunded"];

impl World {
    /// Every customer gets a first subscription well before any as-of, so each
    /// generated data set has a population.
    fn with_base(mut self) -> World {
        for c in 0..CUSTOMERS {
            self.subs.insert(
                0,
                Sub {
                    customer: c,
                    start: i32::from(c) * 3,
                    len: None,
                    mrr: 100,
                    plan: 0,
                },
            );
        }
        self
    }

    fn append(&mut self, other: World) {
        self.subs.extend(other.subs);
        self.events.extend(other.events);
        self.tickets.extend(other.tickets);
        self.payments.extend(other.payments);
        self.surveys.extend(other.surveys);
    }

    fn files(&self) -> Vec<(&'static str, Vec<String>, &'static str)> {
        let subs = self
            .subs
            .iter()
            .map(|s| {
                let end = s.len.map(|l| date(s.start + l)).unwrap_or_default();
                format!(
                    "{},{},{end},{},{}",
                    id(s.customer),
                    date(s.start),
                    s.mrr,
                    ["basic", "pro", "team"][s.plan as usize]
                )
            })
            .collect();
        let events = self
            .events
            .iter()
            .map(|e| {
                let value = e
                    .value
                    .map(|v| (f64::from(v) / 10.0).to_string())
                    .unwrap_or_default();
                let feature = e.feature.map(|f| FEATURES[f as usize]).unwrap_or_default();
                format!(
                    "{},{},{},{value},{feature}",
                    id(e.customer),
                    stamp(e.minute),
                    KINDS[e.kind as usize]
                )
            })
            .collect();
        let tickets = self
            .tickets
            .iter()
            .map(|t| {
                let closed = t
                    .closed_after
                    .map(|d| stamp(t.minute + d))
                    .unwrap_or_default();
                let resp = t
                    .response_after
                    .map(|d| stamp(t.minute + d))
                    .unwrap_or_default();
                let sat = t.satisfaction.map(|s| s.to_string()).unwrap_or_default();
                format!(
                    "{},{},{closed},{resp},normal,{sat}",
                    id(t.customer),
                    stamp(t.minute)
                )
            })
            .collect();
        let payments = self
            .payments
            .iter()
            .map(|p| {
                let paid = p
                    .paid_after_minutes
                    .map(|m| stamp(i64::from(p.due) * MINUTES_PER_DAY + m))
                    .unwrap_or_default();
                format!(
                    "{},{},{paid},10,{}",
                    id(p.customer),
                    date(p.due),
                    STATUSES[p.status as usize]
                )
            })
            .collect();
        let surveys = self
            .surveys
            .iter()
            .map(|s| {
                let nps = s.nps.map(|v| v.to_string()).unwrap_or_default();
                let csat = s.csat.map(|v| v.to_string()).unwrap_or_default();
                format!("{},{},{nps},{csat}", id(s.customer), stamp(s.minute))
            })
            .collect();
        vec![
            (
                "subscriptions.csv",
                subs,
                "customer_id,start_date,end_date,mrr,plan",
            ),
            (
                "events.csv",
                events,
                "customer_id,timestamp,event_type,value,feature",
            ),
            (
                "tickets.csv",
                tickets,
                "customer_id,opened_at,closed_at,first_response_at,priority,satisfaction",
            ),
            (
                "payments.csv",
                payments,
                "customer_id,due_date,paid_at,amount,status",
            ),
            ("surveys.csv", surveys, "customer_id,answered_at,nps,csat"),
        ]
    }

    /// Writes the world to a temp dir, rows permuted by `shuffle_seed` when given.
    fn write(&self, shuffle_seed: Option<u64>, activity: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, mut rows, header) in self.files() {
            if !activity && name != "subscriptions.csv" {
                continue;
            }
            if let Some(seed) = shuffle_seed {
                shuffle(&mut rows, seed);
            }
            let mut text = String::from(header);
            for r in rows {
                write!(text, "\n{r}").unwrap();
            }
            text.push('\n');
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        std::fs::write(
            dir.path().join("catalog.csv"),
            "feature,group\ndashboard,core\nprojects,core\nreports,reporting\napi,advanced\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("customers.csv"),
            "customer_id,segment\ncust-0,smb\ncust-3,enterprise\n",
        )
        .unwrap();
        dir
    }
}

/// Fisher-Yates with a small LCG: deterministic per seed, no extra dependency.
fn shuffle<T>(rows: &mut [T], mut seed: u64) {
    for i in (1..rows.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (seed >> 33) as usize % (i + 1);
        rows.swap(i, j);
    }
}

type Snapshot = BTreeMap<String, Vec<(String, String)>>;

/// Features keyed by customer id, values as exact bits, so row order does not matter.
fn snapshot(t: &FeatureTable) -> Snapshot {
    let mut out = Snapshot::new();
    for r in 0..t.len() {
        let cells = t
            .info
            .iter()
            .zip(&t.columns)
            .map(|(i, col)| {
                let v = match col {
                    Values::Numeric(v) => format!("{:?}", v[r].map(f64::to_bits)),
                    Values::Categorical(v) => format!("{:?}", v[r]),
                };
                (i.name.clone(), v)
            })
            .collect();
        out.insert(t.customer_ids[r].clone(), cells);
    }
    out
}

fn features_of(dir: &tempfile::TempDir, as_of: Day) -> FeatureTable {
    let ds = Dataset::open(dir.path()).unwrap();
    features::features(&ds, as_of, &FeatureConfig::default()).unwrap()
}

fn future(as_of: i32) -> impl Strategy<Value = World> {
    world(as_of..as_of + 120, 8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn appending_at_or_after_as_of_changes_nothing(
        (past, as_of, later) in (world(0..240, 10), 20..240i32).prop_flat_map(|(w, a)| (Just(w), Just(a), future(a)))
    ) {
        let past = past.with_base();
        let before = features_of(&past.write(None, true), base() + as_of);
        let mut more = past.clone();
        more.append(later);
        // Subscription ends beyond as-of are not known yet: moving them changes nothing.
        for s in &mut more.subs {
            if let Some(len) = s.len {
                if s.start + len > as_of {
                    s.len = Some(len + 17);
                }
            }
        }
        let after = features_of(&more.write(None, true), base() + as_of);
        prop_assert!(!before.is_empty());
        prop_assert_eq!(snapshot(&before), snapshot(&after));
    }

    #[test]
    fn input_row_order_changes_nothing(w in world(0..240, 12), as_of in 20..240i32, seed in any::<u64>()) {
        let w = w.with_base();
        let ordered = features_of(&w.write(None, true), base() + as_of);
        let shuffled = features_of(&w.write(Some(seed), true), base() + as_of);
        prop_assert_eq!(snapshot(&ordered), snapshot(&shuffled));
    }

    #[test]
    fn labels_use_subscriptions_only(w in world(0..240, 10), as_of in 20..200i32) {
        let w = w.with_base();
        let (dir_with, dir_without) = (w.write(None, true), w.write(None, false));
        let with = Dataset::open(dir_with.path()).unwrap();
        let without = Dataset::open(dir_without.path()).unwrap();
        let cfg = FeatureConfig::default();
        let dates = [base() + as_of];
        let a = labels::examples(&with, &dates, 30, &cfg, &|_| {}).unwrap();
        let b = labels::examples(&without, &dates, 30, &cfg, &|_| {}).unwrap();
        let key = |e: &labels::Examples| -> BTreeMap<String, u8> {
            e.features.customer_ids.iter().cloned().zip(e.labels.iter().copied()).collect()
        };
        prop_assert_eq!(key(&a), key(&b));
    }

    #[test]
    fn one_pass_over_many_dates_equals_one_date_at_a_time(w in world(0..240, 10), dates in proptest::collection::vec(20..240i32, 1..5)) {
        let w = w.with_base();
        let dir = w.write(None, true);
        let ds = Dataset::open(dir.path()).unwrap();
        let days: Vec<Day> = dates.iter().map(|d| base() + d).collect();
        let all = features::build(&ds, &days, &FeatureConfig::default()).unwrap();
        for &d in &days {
            let one = features::features(&ds, d, &FeatureConfig::default()).unwrap();
            let rows: Vec<usize> = (0..all.len()).filter(|&r| all.as_of[r] == Some(d)).collect();
            prop_assert_eq!(rows.len(), one.len());
            for (k, info) in one.info.iter().enumerate() {
                let col = all.column(&info.name).expect("same features");
                for (i, &r) in rows.iter().enumerate() {
                    let (a, b) = match (&one.columns[k], col) {
                        (Values::Numeric(a), Values::Numeric(b)) => (format!("{:?}", a[i].map(f64::to_bits)), format!("{:?}", b[r].map(f64::to_bits))),
                        (Values::Categorical(a), Values::Categorical(b)) => (format!("{:?}", a[i]), format!("{:?}", b[r])),
                        _ => panic!("kinds differ for {}", info.name),
                    };
                    prop_assert_eq!(a, b, "{} of {} at {}", info.name, one.customer_ids[i], time::format_date(d));
                }
            }
        }
    }
}
