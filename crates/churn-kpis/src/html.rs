//! The KPI report as one self-contained HTML page, built from the report kit.

use crate::clv::{ClvGroup, ModelClv};
use crate::goals::{Metric, Status};
use crate::report::Report;
use churn_report::format::{grouped, money, money_with, opt, opt_percent, percent, thousands};
use churn_report::palette;
use churn_report::{
    cells, html, Bars, HeatMap, LineChart, Markup, StackedBars, Table, Unit, Waterfall,
};

/// The width of a chart that shares a row with another on a 1,120 px page.
const HALF: f64 = 550.0;

/// The headline tiles: where the business stands as of the report's date.
fn headline(r: &Report) -> Markup {
    let s = &r.summary;
    let model_clv = r
        .model_clv
        .as_ref()
        .map(|v| ("CLV, model (mean remaining)", money(v.base.mean_clv)));
    churn_report::tiles(
        [
            (
                "monthly churn (mean of last 12 months)",
                percent(s.base.monthly_churn_pct, 2),
            ),
            (
                "quarterly / annual churn",
                format!(
                    "{} / {}",
                    opt(s.quarterly_churn_pct, 1),
                    opt_percent(s.annual_churn_pct, 1)
                ),
            ),
            (
                "retention m1 / m3 / m6",
                format!(
                    "{} / {} / {}",
                    opt(s.base.retention_m1_pct, 0),
                    opt(s.base.retention_m3_pct, 0),
                    opt_percent(s.base.retention_m6_pct, 0)
                ),
            ),
            ("MRR", money(s.base.mrr)),
            ("ARPA", money_with(s.base.arpa, 2)),
            (
                "NRR",
                format!("{} ({} months)", opt_percent(s.nrr_pct, 1), s.nrr_months),
            ),
            (
                "CLV (ARPA / monthly churn)",
                s.clv.map_or("n/a".into(), money),
            ),
            (
                "DAU / MAU share",
                format!(
                    "{} / {}",
                    opt(s.engagement.dau_share_pct, 0),
                    opt_percent(s.engagement.mau_share_pct, 0)
                ),
            ),
            (
                "NPS / CSAT (last 90 days)",
                format!("{} / {}", opt(s.voice.nps, 0), opt(s.voice.csat, 1)),
            ),
            (
                "first response (last 90 days)",
                format!("{} h", opt(s.voice.first_response_hours, 1)),
            ),
        ]
        .into_iter()
        .chain(model_clv),
    )
}

fn goals_section(r: &Report) -> Markup {
    let class = |status: Status| match status {
        Status::Met => "good",
        Status::Improving => "watch",
        Status::Behind => "bad",
        Status::NoData => "",
    };
    let table =
        Table::new(["metric", "baseline", "now", "goal", "status"]).rows(r.goals.iter().map(|g| {
            let decimals = match g.metric {
                Metric::Clv | Metric::Arpa => 0,
                _ => 1,
            };
            cells![
                g.label,
                html! { (opt(g.baseline, decimals)) @if g.baseline_given { " " i { "given" } } },
                opt(g.current, decimals),
                grouped(g.target, decimals),
                html! { span class=(class(g.status)) { (g.status.as_str()) } }
            ]
        }));
    html! {
        h2 { "Goals (" (r.goals_horizon_days) " days)" }
        p class="sub" { "Baselines measured on this data as of " (r.baseline.base.as_of) " unless marked " i { "given" } " (from the goals file)." }
        (table)
    }
}

fn churn_section(r: &Report, months: &[String]) -> Markup {
    let mut chart = LineChart::new(
        "Monthly churn (% of customers active at month start), customers and revenue",
    )
    .categories(months.to_vec(), "month")
    .y("churn per month", Unit::Percent)
    .series(
        "customers",
        r.months.iter().map(|m| Some(m.churn.churn_pct)),
    )
    .series(
        "revenue (gross)",
        r.months.iter().map(|m| Some(m.churn.revenue_churn_pct)),
    );
    if let Some(g) = r.goals.iter().find(|g| g.metric == Metric::MonthlyChurnPct) {
        chart = chart.reference("goal", g.target);
        if let Some(b) = g.baseline {
            chart = chart.reference("baseline", b);
        }
    }
    html! { h2 { "Churn" } (chart) }
}

fn cohort_section(r: &Report) -> Markup {
    let s = &r.summary;
    let columns = r
        .cohorts
        .iter()
        .map(|c| c.retention_pct.len())
        .max()
        .unwrap_or(0);
    let heat = r.cohorts.iter().fold(
        HeatMap::new(
            "Signup-cohort retention (% active k months after signup)",
            (0..columns).map(|k| k.to_string()).collect(),
            "months since signup",
        )
        .values("signup cohort", Unit::Percent, (0.0, 100.0)),
        |map, c| {
            map.row(
                format!("{} (n={})", c.cohort, thousands(c.customers as f64)),
                c.retention_pct.iter().map(|v| Some(*v)).collect(),
            )
        },
    );
    let recent: Vec<_> = r
        .cohorts
        .iter()
        .rev()
        .filter(|c| c.retention_pct.len() > 1)
        .take(8)
        .collect();
    let width = recent
        .iter()
        .map(|c| c.retention_pct.len())
        .max()
        .unwrap_or(0);
    let curves = recent.iter().fold(
        LineChart::new(
            "Retention curves of the most recent cohorts (% active by months since signup)",
        )
        .categories(
            (0..width).map(|k| k.to_string()).collect(),
            "months since signup",
        )
        .y("active", Unit::Percent),
        |chart, c| chart.series(c.cohort.clone(), c.retention_pct.iter().map(|v| Some(*v))),
    );
    let ttv = Table::new(["first value", "signups", "retained at month 6"]).rows(
        s.retention_m6_by_ttv.iter().map(|b| {
            cells![
                b.bucket,
                thousands(b.customers as f64),
                opt_percent(b.retention_pct, 1)
            ]
        }),
    );
    let mut reasons: Vec<(&String, &f64)> = s.churn_reasons.iter().collect();
    reasons.sort_by(|a, b| b.1.total_cmp(a.1));
    let reasons = reasons.into_iter().fold(
        Bars::new(format!(
            "Why customers left (last 12 months, {} churns with a reason)",
            thousands(s.churns_with_reason as f64)
        ))
        .values("share of churns with a reason", Unit::Percent, 1),
        |bars, (reason, share)| bars.row(reason.clone(), vec![*share]),
    );
    html! {
        h2 { "Cohorts" }
        div class="grid" { (heat) (curves) }
        @if s.retention_m6_by_ttv.iter().any(|b| b.customers > 0) {
            h3 { "Month-6 retention by time to value" }
            (ttv)
        }
        @if s.retention_12m_csm_pct.is_some() || s.retention_12m_no_csm_pct.is_some() {
            h3 { "12-month retention by CSM coverage" }
            (Table::new(["customers", "retained"])
                .row(cells!["with a CSM", opt_percent(s.retention_12m_csm_pct, 1)])
                .row(cells!["without", opt_percent(s.retention_12m_no_csm_pct, 1)]))
        }
        @if !s.churn_reasons.is_empty() { (reasons) }
    }
}

/// The survival model's lifetime value next to the formula's, per cohort, segment and
/// plan, against the goal.
fn clv_section(v: &ModelClv) -> Markup {
    let b = &v.base;
    let goal = v.goal.map_or("no goal".to_string(), money);
    let tiles = churn_report::tiles([
        ("customers valued", thousands(b.customers as f64)),
        (
            "remaining value of the base",
            money(b.mean_clv * b.customers as f64),
        ),
        (
            "model CLV: mean / median",
            format!("{} / {}", money(b.mean_clv), money(b.median_clv)),
        ),
        (
            "formula CLV (ARPA / churn)",
            b.formula_clv.map_or("n/a".into(), money),
        ),
        ("CLV goal", goal),
        (
            "expected remaining lifetime",
            format!("{:.1} months", b.mean_lifetime_months),
        ),
    ]);
    let table = |title: &str, groups: &[ClvGroup]| {
        let rows = Table::new([
            title,
            "customers",
            "ARPA",
            "monthly churn",
            "formula CLV",
            "model CLV mean",
            "median",
            "lifetime (months)",
            "share of value",
            "mean vs goal",
        ])
        .rows(groups.iter().chain([b]).map(|g| {
            let vs_goal = v.goal.map_or(html! { "" }, |goal| {
                let class = if g.mean_clv >= goal { "good" } else { "bad" };
                html! { span class=(class) { (format!("{:+.0} %", 100.0 * (g.mean_clv / goal - 1.0))) } }
            });
            cells![
                g.group,
                thousands(g.customers as f64),
                money_with(g.arpa, 2),
                opt_percent(g.monthly_churn_pct, 2),
                g.formula_clv.map_or("n/a".into(), money),
                money(g.mean_clv),
                money(g.median_clv),
                format!("{:.1}", g.mean_lifetime_months),
                percent(g.share_of_value_pct, 1),
                vs_goal
            ]
        }));
        html! { h3 { "By " (title) } (rows) }
    };
    let mut bars =
        Bars::new("Mean CLV by signup cohort: the model's remaining value and the formula's")
            .values("CLV", Unit::Money, 0)
            .series_names(&["model", "formula"]);
    for g in &v.by_cohort {
        bars = bars.row(
            g.group.clone(),
            vec![g.mean_clv, g.formula_clv.unwrap_or(0.0)],
        );
    }
    html! {
        h2 { "Lifetime value (survival model)" }
        p class="sub" {
            "Model " (v.model) ", as of " (v.as_of) ": each active customer's remaining value, the sum over the months ahead of the chance they are still a customer x MRR"
            @if v.gross_margin < 1.0 { " x gross margin " (percent(100.0 * v.gross_margin, 0)) }
            @if v.annual_discount > 0.0 { ", discounted at " (percent(100.0 * v.annual_discount, 1)) " a year" }
            " (churn-score's clv). The formula's CLV is the whole lifetime of a customer at the group's churn; the model's is what today's customers will still pay, so an old cohort's is lower than its formula."
            @if v.not_valued > 0 { " " (thousands(v.not_valued as f64)) " active customers without a known MRR are not valued." }
        }
        (tiles)
        @if !v.by_cohort.is_empty() { (bars) }
        (table("signup year", &v.by_cohort))
        (table("segment", &v.by_segment))
        (table("plan", &v.by_plan))
    }
}

fn revenue_section(r: &Report, months: &[String]) -> Markup {
    let n = &r.nrr;
    let bridge = Waterfall::new(
        format!(
            "MRR bridge {} to {} ({} months): NRR {}",
            n.start,
            n.end,
            n.months,
            opt_percent(n.nrr_pct, 1)
        ),
        "MRR",
        Unit::Money,
    )
    .total("start MRR", n.start_mrr)
    .step("+ new & reactivated", n.new_mrr)
    .step("+ expansion", n.expansion_mrr)
    .step("- contraction", -n.contraction_mrr)
    .step("- churned", -n.churned_mrr)
    .total("end MRR", n.end_mrr)
    .width(HALF);
    let mrr = LineChart::new("MRR at month start")
        .width(HALF)
        .categories(months.to_vec(), "month")
        .y("MRR", Unit::Money)
        .series("MRR", r.months.iter().map(|m| Some(m.churn.mrr_at_start)));
    html! { h2 { "Revenue" } div class="grid" { (bridge) (mrr) } }
}

fn engagement_section(r: &Report, months: &[String]) -> Markup {
    let band = |f: fn(&crate::report::HealthShares) -> f64| {
        r.months.iter().map(|m| f(&m.engagement.health)).collect()
    };
    let health = StackedBars::new(
        "Health distribution at each month end (% of active customers)",
        months.to_vec(),
        "month",
    )
    .y("active customers", Unit::Percent)
    .width(HALF)
    .layer("healthy", palette::GREEN, band(|h| h.healthy))
    .layer("at risk", palette::YELLOW, band(|h| h.at_risk))
    .layer("critical", palette::ORANGE, band(|h| h.critical))
    .layer("churning", palette::VERMILLION, band(|h| h.churning))
    .layer("no data", "#cccccc", band(|h| h.no_data));
    let engagement = LineChart::new("Engagement at each month end")
        .width(HALF)
        .categories(months.to_vec(), "month")
        .y("share of customers", Unit::Percent)
        .series(
            "DAU share",
            r.months.iter().map(|m| m.engagement.dau_share_pct),
        )
        .series(
            "MAU share",
            r.months.iter().map(|m| m.engagement.mau_share_pct),
        )
        .series(
            "feature adoption",
            r.months.iter().map(|m| m.engagement.feature_adoption_pct),
        );
    html! { h2 { "Health and engagement" } div class="grid" { (health) (engagement) } }
}

fn months_table(r: &Report) -> Markup {
    let table = Table::new([
        "month",
        "active at start",
        "churned",
        "churn %",
        "revenue churn %",
        "quarterly %",
        "annual %",
        "MRR",
        "ARPA",
        "DAU %",
        "MAU %",
        "sessions/wk",
        "min/session",
        "adoption %",
        "TTV days",
        "tickets",
        "first resp. h",
        "NPS",
        "CSAT",
        "healthy %",
    ])
    .rows(r.months.iter().map(|m| {
        let e = &m.engagement;
        cells![
            m.churn.month,
            thousands(m.churn.active_at_start as f64),
            thousands(m.churn.churned as f64),
            grouped(m.churn.churn_pct, 2),
            grouped(m.churn.revenue_churn_pct, 2),
            opt(m.quarterly_churn_pct, 1),
            opt(m.annual_churn_pct, 1),
            money(m.churn.mrr_at_start),
            m.arpa.map_or("n/a".into(), |v| money_with(v, 2)),
            opt(e.dau_share_pct, 0),
            opt(e.mau_share_pct, 0),
            opt(e.sessions_per_week, 2),
            opt(e.minutes_per_session, 1),
            opt(e.feature_adoption_pct, 0),
            opt(e.ttv_days, 0),
            thousands(m.voice.tickets as f64),
            opt(m.voice.first_response_hours, 1),
            opt(m.voice.nps, 0),
            opt(m.voice.csat, 1),
            grouped(e.health.healthy, 0)
        ]
    }));
    let adoption = Table::new(["group", "adoption"]).rows(
        r.summary
            .engagement
            .adoption_by_group
            .iter()
            .map(|(g, v)| cells![g, percent(*v, 1)]),
    );
    html! {
        h2 { "Every month" }
        (table)
        @if !r.summary.engagement.adoption_by_group.is_empty() {
            h2 { "Feature adoption by group (latest)" }
            (adoption)
        }
    }
}

/// The whole page.
pub fn page(r: &Report, source: &str) -> String {
    let base = &r.summary.base;
    let months: Vec<String> = r.months.iter().map(|m| m.churn.month.clone()).collect();
    churn_report::page(
        "Retention KPIs",
        html! {
            (source) " · window " (base.window_start) " to " (base.as_of) " (as-of, exclusive) · "
            (thousands(base.active_customers as f64)) " active customers"
        },
        html! {
            (headline(r))
            (goals_section(r))
            (churn_section(r, &months))
            (cohort_section(r))
            (revenue_section(r, &months))
            @if let Some(v) = &r.model_clv { (clv_section(v)) }
            (engagement_section(r, &months))
            (months_table(r))
            footer { "Definitions of every figure: docs/kpis.md in the churn repository. Generated by churn-train kpis." }
        },
    )
}
