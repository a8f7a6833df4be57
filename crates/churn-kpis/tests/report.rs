//! Every KPI of the report on a hand-made data set, against numbers worked out by hand.

use churn_features::features::FeatureConfig;
use churn_features::rules::{self, HealthBand, RuleInputs, RulesConfig};
use churn_features::time::parse_date;
use churn_features::Dataset;
use churn_kpis::goals::{Goals, Metric, Status};
use churn_kpis::report::{report, Report};
use churn_kpis::KpiOptions;

/// The window is Jan-May 2024 (payments on Jan 1 and May 31); as-of is Jun 1.
/// - A: active all along, 100.
/// - B: ends Feb 10, back Feb 14 (a 4-day lapse within the 7-day grace): never churns.
/// - C: ends Feb 20, back May 1: a churn in February, then a new active period.
/// - D: signs up Jan 15 (50), upgrades to 80 Feb 15, ends Mar 15: its cohort empties.
/// - E: ends Jan 31: churns in January.
/// - F: 60, upgrades to 90 on Apr 1: expansion, not new revenue.
/// - G: signs up Apr 10 at 70: new revenue.
const SUBSCRIPTIONS: &str = "customer_id,start_date,end_date,mrr,plan
A,2023-06-01,,100,pro
B,2023-06-01,2024-02-10,100,pro
B,2024-02-14,,100,pro
C,2023-06-01,2024-02-20,50,basic
C,2024-05-01,,50,basic
D,2024-01-15,2024-02-15,50,basic
D,2024-02-15,2024-03-15,80,pro
E,2023-09-01,2024-01-31,40,basic
F,2023-10-01,2024-04-01,60,basic
F,2024-04-01,,90,pro
G,2024-04-10,,70,basic
";

const PAYMENTS: &str = "customer_id,due_date,paid_at,amount,status
A,2024-01-01,2024-01-01T10:00:00Z,100,paid
A,2024-05-31,2024-05-31T10:00:00Z,100,paid
";

const TICKETS: &str = "customer_id,opened_at,closed_at,first_response_at,priority,satisfaction
F,2024-03-05T00:00:00Z,,2024-03-05T02:00:00Z,normal,
A,2024-05-10T10:00:00Z,,2024-05-10T14:00:00Z,normal,
B,2024-05-20T08:00:00Z,,2024-05-21T08:00:00Z,high,
C,2024-05-25T08:00:00Z,,,low,
";

const SURVEYS: &str = "customer_id,answered_at,nps,csat
A,2024-05-02T09:00:00Z,10,9
B,2024-05-03T09:00:00Z,8,7
F,2024-05-04T09:00:00Z,3,5
G,2024-05-05T09:00:00Z,9,
";

const CATALOG: &str = "feature,group
f1,core
f2,core
f3,advanced
f4,reporting
";

/// A: a session (10 min) on each of May 4-17 and uses f1 and f3; B: a session (5 min)
/// on each of May 20-26; G: first value (f2) on Apr 20, 10 days after signup; an early
/// login of A opens the event history on Jan 2.
fn events() -> String {
    let mut s = String::from("customer_id,timestamp,event_type,value,feature\n");
    s.push_str("A,2024-01-02T09:00:00Z,login,,\n");
    for d in 4..=17 {
        s.push_str(&format!("A,2024-05-{d:02}T10:00:00Z,session,10,\n"));
    }
    s.push_str("A,2024-05-05T10:05:00Z,feature_use,,f1\n");
    s.push_str("A,2024-05-06T10:05:00Z,feature_use,,f3\n");
    for d in 20..=26 {
        s.push_str(&format!("B,2024-05-{d:02}T10:00:00Z,session,5,\n"));
    }
    s.push_str("G,2024-04-20T10:00:00Z,feature_use,,f2\n");
    s
}

fn build() -> (tempfile::TempDir, Dataset, Report) {
    build_with(&Goals::default())
}

fn build_with(goals: &Goals) -> (tempfile::TempDir, Dataset, Report) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("subscriptions.csv", SUBSCRIPTIONS.to_string()),
        ("payments.csv", PAYMENTS.to_string()),
        ("tickets.csv", TICKETS.to_string()),
        ("surveys.csv", SURVEYS.to_string()),
        ("catalog.csv", CATALOG.to_string()),
        ("events.csv", events()),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let ds = Dataset::open(dir.path()).unwrap();
    let r = report(&ds, KpiOptions::default(), &RulesConfig::default(), goals).unwrap();
    (dir, ds, r)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn assert_close(a: Option<f64>, b: f64, what: &str) {
    let a = a.unwrap_or_else(|| panic!("{what}: no value"));
    assert!(close(a, b), "{what}: {a} != {b}");
}

#[test]
fn churn_monthly_quarterly_and_by_revenue() {
    let (_d, _ds, r) = build();
    let s = &r.summary;
    assert_eq!(
        (s.base.window_start.as_str(), s.base.as_of.as_str()),
        ("2024-01-01", "2024-06-01")
    );
    let view: Vec<(&str, u64, u64)> = r
        .months
        .iter()
        .map(|m| {
            (
                m.churn.month.as_str(),
                m.churn.active_at_start,
                m.churn.churned,
            )
        })
        .collect();
    // Jan: A B C E F, E ends. Feb: A B C D F, C ends (B's lapse is within grace).
    // Mar: A B D F, D ends. Apr: A B F. May: A B C F G (C is back, G is new).
    assert_eq!(
        view,
        [
            ("2024-01", 5, 1),
            ("2024-02", 5, 1),
            ("2024-03", 4, 1),
            ("2024-04", 3, 0),
            ("2024-05", 5, 0)
        ]
    );
    assert!(close(s.base.monthly_churn_pct, (20.0 + 20.0 + 25.0) / 5.0));
    assert_eq!(s.base.churn_months, 5);
    // Revenue: Jan 40 of 350 (A100 B100 C50 E40 F60); Mar D's 80 (after its upgrade)
    // of 340 (A100 B100 D80 F60).
    assert!(close(
        r.months[0].churn.revenue_churn_pct,
        100.0 * 40.0 / 350.0
    ));
    assert!(close(
        r.months[2].churn.revenue_churn_pct,
        100.0 * 80.0 / 340.0
    ));
    // Quarter Jan-Mar: of A B C E F active Jan 1, E and C churned (C's return in May
    // does not undo it): 2 of 5; revenue 90 of 350.
    assert_close(r.months[2].quarterly_churn_pct, 40.0, "Q1 churn");
    assert_close(
        r.months[2].quarterly_revenue_churn_pct,
        100.0 * 90.0 / 350.0,
        "Q1 revenue churn",
    );
    // Before three months of data there is no quarter; no year at all.
    assert_eq!(r.months[1].quarterly_churn_pct, None);
    assert_eq!(s.annual_churn_pct, None);
    // The latest quarter (Mar-May): of A B D F active Mar 1, D churned.
    assert_close(s.quarterly_churn_pct, 25.0, "latest quarter");
    assert_close(
        s.quarterly_revenue_churn_pct,
        100.0 * 80.0 / 340.0,
        "latest quarter revenue",
    );
}

#[test]
fn cohorts_revenue_nrr_and_clv() {
    let (_d, _ds, r) = build();
    // D's cohort (Jan) empties at month 2; G's (Apr) is measurable for months 0 and 1.
    let cohorts: Vec<(&str, u64, Vec<f64>)> = r
        .cohorts
        .iter()
        .map(|c| (c.cohort.as_str(), c.customers, c.retention_pct.clone()))
        .collect();
    assert_eq!(
        cohorts,
        [
            ("2024-01", 1, vec![100.0, 100.0, 0.0, 0.0, 0.0]),
            ("2024-04", 1, vec![100.0, 100.0])
        ]
    );
    let s = &r.summary;
    // May 31: A100 B100 C50 F90 G70.
    assert!(close(s.base.mrr, 410.0));
    assert_eq!(s.base.active_customers, 5);
    assert!(close(s.base.arpa, 82.0));
    assert_close(s.clv, 82.0 / 0.13, "CLV");
    // NRR over the 5 months the data allows: start 350 (A B C E F on Jan 1); F's
    // upgrade +30 is expansion; E's 40 churned; C is back at 50 (retained); G's 70 is
    // new revenue, outside NRR.
    let n = &r.nrr;
    assert_eq!(
        (n.start.as_str(), n.end.as_str(), n.months),
        ("2024-01-01", "2024-06-01", 5)
    );
    assert!(close(n.start_mrr, 350.0) && close(n.end_mrr, 410.0));
    assert!(close(n.expansion_mrr, 30.0) && close(n.contraction_mrr, 0.0));
    assert!(close(n.churned_mrr, 40.0) && close(n.new_mrr, 70.0));
    assert_close(n.nrr_pct, 100.0 * 340.0 / 350.0, "NRR");
    assert_eq!(s.nrr_months, 5);
    assert!(close(
        n.start_mrr + n.new_mrr + n.expansion_mrr - n.contraction_mrr - n.churned_mrr,
        n.end_mrr
    ));
}

#[test]
fn support_and_surveys() {
    let (_d, _ds, r) = build();
    let may = &r.months[4].voice;
    // Three tickets opened in May among 5 customers active on May 1; responses after
    // 4 h and 24 h (C's is unanswered).
    assert_eq!(may.tickets, 3);
    assert_close(may.tickets_per_100_customers, 60.0, "tickets per 100");
    assert_close(may.first_response_hours, 14.0, "first response");
    // NPS answers 10, 8, 3, 9: promoters A and G, detractor F: (2 - 1) / 4.
    assert_eq!(may.nps_answers, 4);
    assert_close(may.nps, 25.0, "NPS");
    // CSAT 9, 7, 5 (G gave none).
    assert_eq!(may.csat_answers, 3);
    assert_close(may.csat, 7.0, "CSAT");
    // The last 90 days (from Mar 3): F's March ticket too; 4 customers active Mar 3.
    let s = &r.summary;
    assert_close(
        s.voice.tickets_per_100_customers,
        100.0,
        "recent tickets per 100",
    );
    assert_close(s.voice.first_response_hours, 10.0, "recent first response");
    assert_close(s.voice.nps, 25.0, "recent NPS");
    assert_close(s.voice.csat, 7.0, "recent CSAT");
}

#[test]
fn engagement_adoption_onboarding_and_health() {
    let (_d, ds, r) = build();
    let s = &r.summary;
    // Active Jun 1: A B C F G. Active days in May 4-31: A 14, B 7, others 0.
    assert_close(
        s.engagement.dau_share_pct,
        100.0 * (14.0 / 28.0 + 7.0 / 28.0) / 5.0,
        "DAU",
    );
    assert_close(s.engagement.mau_share_pct, 40.0, "MAU");
    // Sessions per week over the five paying customers, A and B the only ones with any:
    // (14 / 4 + 7 / 4) / 5; minutes weighted by sessions.
    assert_close(
        s.engagement.sessions_per_week,
        (3.5 + 1.75) / 5.0,
        "sessions per week",
    );
    assert_close(
        s.engagement.minutes_per_session,
        (14.0 * 10.0 + 7.0 * 5.0) / 21.0,
        "minutes",
    );
    // A uses 2 of 4 catalog features (f1 core, f3 advanced) in 30 days, B none; the
    // customers without any activity in the 28 days (C, F, G) do not count.
    assert_close(
        s.engagement.feature_adoption_pct,
        100.0 * 0.5 / 2.0,
        "adoption",
    );
    assert!(close(
        s.engagement.adoption_by_group["core"],
        100.0 * 0.5 / 2.0
    ));
    assert!(close(
        s.engagement.adoption_by_group["advanced"],
        100.0 / 2.0
    ));
    assert!(close(s.engagement.adoption_by_group["reporting"], 0.0));
    // G reached value on Apr 20 10:00, 10 days 10 hours after signup (features keep two
    // decimals); the others signed up before the event history.
    assert_close(s.engagement.ttv_days, 10.42, "TTV");
    // G is the one customer 30-119 days past signup, and reached value.
    assert_close(s.engagement.onboarding_completion_pct, 100.0, "onboarding");
    // The health distribution counts each active customer's band once.
    let as_of = parse_date("2024-06-01").unwrap();
    let t = churn_features::features::features(&ds, as_of, &FeatureConfig::default()).unwrap();
    assert_eq!(t.len(), 5);
    let mut healthy = 0;
    for row in 0..t.len() {
        let res = rules::score(&RuleInputs::from_table(&t, row), &RulesConfig::default());
        healthy += usize::from(res.health.map(|h| h.band) == Some(HealthBand::Healthy));
    }
    let h = &s.engagement.health;
    assert!(close(h.healthy, 100.0 * healthy as f64 / 5.0));
    assert!(close(
        h.healthy + h.at_risk + h.critical + h.churning + h.no_data,
        100.0
    ));
    assert_eq!(
        r.months.last().unwrap().engagement.health,
        s.engagement.health
    );
}

#[test]
fn goals_sit_next_to_the_figures_and_every_summary_key_is_defined() {
    let (_d, _ds, r) = build();
    let churn = r
        .goals
        .iter()
        .find(|g| g.metric == Metric::MonthlyChurnPct)
        .unwrap();
    assert_eq!(churn.current, Some(r.summary.base.monthly_churn_pct));
    // The default baseline date, a year before as-of, lies before the data: the baseline
    // is measured at the window's start, where no month of churn has ended yet.
    assert_eq!(r.baseline.base.as_of, "2024-01-01");
    assert_eq!(churn.baseline, None);
    assert_eq!(churn.status, Status::Behind); // 13 % against a 3.5 % goal
    let nps = r.goals.iter().find(|g| g.metric == Metric::Nps).unwrap();
    assert_eq!(nps.status, Status::Behind); // 25 against a goal of 60
    let json = serde_json::to_value(&r).unwrap();
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/kpis.md"))
        .unwrap();
    for key in json["summary"].as_object().unwrap().keys() {
        assert!(
            docs.contains(&format!("`{key}`")),
            "docs/kpis.md does not define `{key}`"
        );
    }
    for key in [
        "monthly_churn_pct",
        "retention_m1_pct",
        "retention_m3_pct",
        "retention_m6_pct",
        "mrr",
        "arpa",
        "nrr_pct",
        "clv",
    ] {
        assert!(json["summary"].get(key).is_some(), "{key}");
    }
}

/// Baselines come from the data at the goals file's baseline date, or from the file.
#[test]
fn goals_are_measured_against_baselines_on_the_data() {
    let goals = Goals::from_toml(
        r#"
horizon_days = 60
baseline_date = "2024-04-01"
[[goal]]
metric = "monthly_churn_pct"
target = 3.5
[[goal]]
metric = "nps"
target = 40
baseline = 20
[[goal]]
metric = "csat"
target = 7.0
[[goal]]
metric = "mau_share_pct"
target = 90
"#,
        "test goals",
    )
    .unwrap();
    let (_d, _ds, r) = build_with(&goals);
    assert_eq!(r.goals.len(), 4);
    assert_eq!(r.goals_horizon_days, 60);
    assert_eq!(r.baseline.base.as_of, "2024-04-01");
    // Churn of the months ended by Apr 1: Jan 1 of 5, Feb 1 of 5, Mar 1 of 4.
    let churn = &r.goals[0];
    assert_close(churn.baseline, (20.0 + 20.0 + 25.0) / 3.0, "churn baseline");
    assert!(!churn.baseline_given);
    // Now 13 %: better than the baseline, short of the goal.
    assert_close(churn.current, 13.0, "churn now");
    assert_eq!(churn.status, Status::Improving);
    // The fixed baseline is used as given: NPS 25 now, a quarter of the way from 20 to 40.
    let nps = &r.goals[1];
    assert_eq!((nps.baseline, nps.baseline_given), (Some(20.0), true));
    assert_eq!(nps.status, Status::Improving);
    // CSAT (9 + 7 + 5) / 3 reaches a target of exactly 7.
    assert_close(r.goals[2].current, 7.0, "csat");
    assert_eq!(r.goals[2].status, Status::Met);
    // On Apr 1 the events of the 28 days before were none: MAU share 0 %, now 2 of 5.
    assert_close(r.goals[3].baseline, 0.0, "MAU baseline");
    assert_close(r.goals[3].current, 40.0, "MAU now");
    assert_eq!(r.goals[3].status, Status::Improving);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["goals"][0]["status"], "improving");
    assert_eq!(json["goals"][0]["metric"], "monthly_churn_pct");
    assert_eq!(json["baseline"]["as_of"], "2024-04-01");
}

#[test]
fn the_default_goals_are_the_briefs_and_name_every_metric() {
    let g = Goals::default();
    assert_eq!(g.horizon_days, 90);
    assert_eq!(g.baseline_date, None);
    let targets: Vec<(String, f64)> = g
        .goals
        .iter()
        .map(|g| (g.metric.to_string(), g.target))
        .collect();
    assert_eq!(targets.len(), 10);
    assert_eq!(targets[0], ("monthly_churn_pct".to_string(), 3.5));
    assert!(g.goals.iter().all(|g| g.baseline.is_none()));
    for m in Metric::ALL {
        // The name in files and JSON is the serde name, and the default file lists it.
        assert_eq!(serde_json::to_value(m).unwrap(), m.key());
        assert!(churn_kpis::goals::DEFAULT_TOML.contains(m.key()), "{m}");
    }
}

#[test]
fn bad_goals_files_say_what_is_wrong() {
    let err = |text: &str| {
        Goals::from_toml(text, "my-goals.toml")
            .unwrap_err()
            .to_string()
    };
    let e = err("[[goal]]\nmetric = \"churn\"\ntarget = 3\n");
    assert!(
        e.starts_with("my-goals.toml:")
            && e.contains("unknown variant `churn`")
            && e.contains("monthly_churn_pct"),
        "{e}"
    );
    let e = err("[[goal]]\nmetric = \"nps\"\ntarget = 3\n[[goal]]\nmetric = \"nps\"\ntarget = 4\n");
    assert!(
        e.contains("goal 2 (`nps`)") && e.contains("has a goal already"),
        "{e}"
    );
    let e = err("baseline_date = \"2024-13-01\"\n[[goal]]\nmetric = \"nps\"\ntarget = 3\n");
    assert!(
        e.contains("`baseline_date`: expected YYYY-MM-DD, found `2024-13-01`"),
        "{e}"
    );
    let e = err("horizon_days = 90\n");
    assert!(e.contains("no goals"), "{e}");
    let e = err("[[goal]]\nmetric = \"nps\"\ntarget = 3\ngoal = 5\n");
    assert!(e.contains("unknown field `goal`"), "{e}");
    let e = Goals::load(std::path::Path::new("/nonexistent/goals.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/nonexistent/goals.toml: "), "{e}");
}

/// A figure that barely moved is not progress: improving means a quarter of the way from
/// the baseline to the target.
#[test]
fn noise_around_the_baseline_reads_behind() {
    let status = |baseline: f64| {
        let goals = Goals::from_toml(
            &format!(
                "[[goal]]\nmetric = \"monthly_churn_pct\"\ntarget = 3.5\nbaseline = {baseline}\n"
            ),
            "t",
        )
        .unwrap();
        let (_d, _ds, r) = build_with(&goals);
        assert_close(r.goals[0].current, 13.0, "churn now");
        r.goals[0].status
    };
    // 13.0 now: 1 % of the way from 13.1 to 3.5, 14 % from 14.5, 30 % from 17.
    assert_eq!(status(13.1), Status::Behind);
    assert_eq!(status(14.5), Status::Behind);
    assert_eq!(status(17.0), Status::Improving);
    // Worse than the baseline is behind too.
    assert_eq!(status(12.0), Status::Behind);
}

/// Retention with and without a CSM, by time to value, and the churn reasons, on a year
/// of hand-made data (as-of 2024-01-01).
#[test]
fn csm_split_time_to_value_buckets_and_churn_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let subs = "customer_id,start_date,end_date,mrr,plan,cancel_reason
P,2022-01-01,,100,pro,
Q,2022-01-01,2023-06-10,100,pro,pricing
R,2022-01-01,,100,pro,
S,2022-01-01,2023-03-05,100,pro,support
T,2022-01-01,2023-09-01,100,pro,support
U,2023-02-01,2023-04-15,50,basic,
V,2023-03-01,,50,basic,
W,2023-03-01,2023-08-01,50,basic,features
X,2023-04-01,,50,basic,
Y,2023-05-01,,50,basic,
";
    let customers = "customer_id,has_csm\nP,true\nQ,true\nR,false\nS,false\nT,false\n";
    let payments = "customer_id,due_date,paid_at,amount,status
P,2023-01-01,2023-01-01T10:00:00Z,100,paid
P,2023-12-31,2023-12-31T10:00:00Z,100,paid
";
    let events = "customer_id,timestamp,event_type,value,feature
P,2023-01-02T09:00:00Z,login,,
V,2023-03-04T09:00:00Z,feature_use,,f1
W,2023-03-20T09:00:00Z,feature_use,,f1
X,2023-05-01T09:00:00Z,feature_use,,f1
Y,2023-12-01T09:00:00Z,feature_use,,f1
";
    for (name, text) in [
        ("subscriptions.csv", subs),
        ("customers.csv", customers),
        ("payments.csv", payments),
        ("events.csv", events),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let ds = Dataset::open(dir.path()).unwrap();
    let r = report(
        &ds,
        KpiOptions::default(),
        &RulesConfig::default(),
        &Goals::default(),
    )
    .unwrap();
    let s = &r.summary;
    assert_eq!(s.base.as_of, "2024-01-01");
    // Active on 2023-01-01: P, Q with a CSM (Q left); R, S, T without (S and T left).
    assert_close(s.retention_12m_csm_pct, 50.0, "with a CSM");
    assert_close(s.retention_12m_no_csm_pct, 100.0 / 3.0, "without a CSM");
    // Churns of 2023: Q pricing, S and T support, U without a reason, W features.
    assert_eq!(s.churns_with_reason, 4);
    let share = |k: &str| s.churn_reasons.get(k).copied();
    assert_eq!(share("support"), Some(50.0));
    assert_eq!(share("pricing"), Some(25.0));
    assert_eq!(share("features"), Some(25.0));
    // Signups from the event history's start (Jan 2) with six months behind them:
    // V 3 days (kept), W 19 days (gone by Sep 1), X 30 days (kept), U never (gone),
    // Y first value after its sixth month (kept).
    let buckets: Vec<(&str, u64, Option<f64>)> = s
        .retention_m6_by_ttv
        .iter()
        .map(|b| (b.bucket, b.customers, b.retention_pct))
        .collect();
    assert_eq!(
        buckets,
        [
            ("under 7 days", 1, Some(100.0)),
            ("7-21 days", 1, Some(0.0)),
            ("21-45 days", 1, Some(100.0)),
            ("45+ days", 0, None),
            ("not by month 6", 2, Some(50.0)),
        ]
    );
}

#[test]
fn the_page_labels_every_chart_and_formats_every_figure() {
    let (_dir, _ds, r) = build();
    let page = churn_kpis::html::page(&r, "hand-made <data> & more");
    assert_eq!(churn_report::audit(&page), Vec::<String>::new());
    // The source is escaped, not markup.
    assert!(page.contains("hand-made &lt;data&gt; &amp; more"));
    for heading in [
        "Goals",
        "Churn",
        "Cohorts",
        "Revenue",
        "Health and engagement",
        "Every month",
    ] {
        assert!(page.contains(&format!("<h2>{heading}")), "no {heading}");
    }
}
