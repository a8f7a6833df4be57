//! The KPI report as one self-contained HTML page: inline SVG charts, no scripts, no
//! network.

use crate::goals::Metric;
use crate::report::Report;
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.decimals$}"))
}

/// A whole number with thousands separators (`-0` printed as `0`).
fn thousands(v: f64) -> String {
    let rounded = v.round();
    let digits = format!("{:.0}", rounded.abs());
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if rounded < 0.0 {
        out.push('-');
    }
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Dollars with thousands separators, the sign before the currency (`-$2,594`).
fn money(v: f64) -> String {
    let text = thousands(v);
    match text.strip_prefix('-') {
        Some(abs) => format!("-${abs}"),
        None => format!("${text}"),
    }
}

/// Every how many x positions a label fits: labels of `chars` characters at font size
/// 10 (about 6 px each plus a gap) across `width` pixels.
fn label_step(count: usize, chars: usize, width: f64) -> usize {
    let fit = (width / (chars as f64 * 6.2 + 12.0)).floor().max(1.0) as usize;
    count.div_ceil(fit).max(1)
}

const COLORS: [&str; 8] = [
    "#3b6ea8", "#e0803a", "#4c9a5b", "#b0413e", "#7d5ba6", "#8c6d31", "#d36ba6", "#6b6b6b",
];

/// A line chart over labelled x positions; `None` values leave gaps. `references` are
/// horizontal dashed lines (goal, baseline).
fn line_chart(
    title: &str,
    y_label: &str,
    x: &[String],
    series: &[(String, &str, Vec<Option<f64>>)],
    references: &[(&str, f64, &str)],
) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 280.0, 48.0, 150.0, 16.0, 40.0);
    let max = series
        .iter()
        .flat_map(|s| s.2.iter().flatten().copied())
        .chain(references.iter().map(|r| r.1))
        .fold(1e-9, f64::max)
        * 1.1;
    let n = x.len().max(2) as f64;
    let sx = |i: usize| left + (w - left - right) * i as f64 / (n - 1.0);
    let sy = |v: f64| h - bottom - (h - top - bottom) * v / max;
    let mut s = format!(
        r#"<figure><svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = esc(title)
    );
    let _ = write!(
        s,
        r##"<rect x="{left}" y="{top}" width="{}" height="{}" fill="#fafafa" stroke="#ccc"/>"##,
        w - left - right,
        h - top - bottom
    );
    for k in 0..=4 {
        let v = max * k as f64 / 4.0;
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" font-size="10" text-anchor="end">{}</text><line x1="{left}" x2="{}" y1="{y}" y2="{y}" stroke="#eee"/>"##,
            left - 4.0,
            sy(v) + 3.0,
            if max < 10.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.0}")
            },
            w - right,
            y = sy(v)
        );
    }
    let longest = x.iter().map(|l| l.chars().count()).max().unwrap_or(1);
    let step = label_step(x.len(), longest, w - left - right);
    for (i, label) in x.iter().enumerate().step_by(step) {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>"#,
            sx(i),
            h - bottom + 14.0,
            esc(label)
        );
    }
    for (name, value, color) in references {
        let _ = write!(
            s,
            r#"<line x1="{left}" x2="{}" y1="{y}" y2="{y}" stroke="{color}" stroke-dasharray="5 4"><title>{} {value}</title></line><text x="{}" y="{}" font-size="10" fill="{color}">{} {value}</text>"#,
            w - right,
            esc(name),
            w - right + 4.0,
            sy(*value) + 3.0,
            esc(name),
            y = sy(*value)
        );
    }
    for (k, (name, color, values)) in series.iter().enumerate() {
        let mut segment: Vec<String> = Vec::new();
        let flush = |segment: &mut Vec<String>, s: &mut String| {
            if segment.len() > 1 {
                let _ = write!(
                    s,
                    r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"><title>{}</title></polyline>"#,
                    segment.join(" "),
                    esc(name)
                );
            } else if let Some(p) = segment.first() {
                let (cx, cy) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(s, r#"<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>"#);
            }
            segment.clear();
        };
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(v) => segment.push(format!("{:.1},{:.1}", sx(i), sy(*v))),
                None => flush(&mut segment, &mut s),
            }
        }
        flush(&mut segment, &mut s);
        if series.len() > 1 {
            let y = top + 12.0 + 14.0 * k as f64;
            let _ = write!(
                s,
                r#"<rect x="{}" y="{}" width="10" height="3" fill="{color}"/><text x="{}" y="{y}" font-size="10">{}</text>"#,
                w - right + 4.0,
                y - 4.0,
                w - right + 18.0,
                esc(name)
            );
        }
    }
    let _ = write!(
        s,
        r#"<text x="12" y="{}" font-size="11" text-anchor="middle" transform="rotate(-90 12 {})">{}</text>"#,
        h / 2.0,
        h / 2.0,
        esc(y_label)
    );
    let _ = write!(s, "</svg><figcaption>{}</figcaption></figure>", esc(title));
    s
}

/// Cohort retention heat map: a row per signup month, a column per month since signup.
fn heat_map(r: &Report) -> String {
    let rows = &r.cohorts;
    let cols = rows
        .iter()
        .map(|c| c.retention_pct.len())
        .max()
        .unwrap_or(0);
    let (cell_w, cell_h, left, top) = (34.0, 18.0, 110.0, 22.0);
    let w = left + cell_w * cols as f64 + 10.0;
    let h = top + cell_h * rows.len() as f64 + 10.0;
    let title = "Signup-cohort retention (% active k months after signup)";
    let mut s = format!(
        r#"<figure><svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{title}"><title>{title}</title>"#
    );
    for k in 0..cols {
        let _ = write!(
            s,
            r#"<text x="{}" y="14" font-size="10" text-anchor="middle">{k}</text>"#,
            left + cell_w * (k as f64 + 0.5)
        );
    }
    for (i, c) in rows.iter().enumerate() {
        let y = top + cell_h * i as f64;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" font-size="10" text-anchor="end">{} (n={})</text>"#,
            left - 4.0,
            y + 13.0,
            esc(&c.cohort),
            c.customers
        );
        for (k, v) in c.retention_pct.iter().enumerate() {
            // White at 0 %, deep blue at 100 %.
            let t = (v / 100.0).clamp(0.0, 1.0);
            let (r0, g0, b0) = (255.0 - 196.0 * t, 255.0 - 145.0 * t, 255.0 - 87.0 * t);
            let ink = if t > 0.55 { "#fff" } else { "#222" };
            let _ = write!(
                s,
                r##"<rect x="{}" y="{y}" width="{cell_w}" height="{cell_h}" fill="rgb({r0:.0},{g0:.0},{b0:.0})" stroke="#fff"><title>{} month {k}: {v:.1} %</title></rect><text x="{}" y="{}" font-size="9" text-anchor="middle" fill="{ink}">{v:.0}</text>"##,
                left + cell_w * k as f64,
                esc(&c.cohort),
                left + cell_w * (k as f64 + 0.5),
                y + 12.5
            );
        }
    }
    let _ = write!(s, "</svg><figcaption>{title}</figcaption></figure>");
    s
}

/// The MRR bridge over the NRR window: start, + new, + expansion, - contraction,
/// - churned, end.
fn bridge(r: &Report) -> String {
    let n = &r.nrr;
    let steps = [
        ("start MRR", n.start_mrr, 0.0, "#6b6b6b"),
        ("+ new & reactivated", n.new_mrr, n.start_mrr, "#4c9a5b"),
        (
            "+ expansion",
            n.expansion_mrr,
            n.start_mrr + n.new_mrr,
            "#4c9a5b",
        ),
        (
            "- contraction",
            -n.contraction_mrr,
            n.start_mrr + n.new_mrr + n.expansion_mrr,
            "#e0803a",
        ),
        (
            "- churned",
            -n.churned_mrr,
            n.start_mrr + n.new_mrr + n.expansion_mrr - n.contraction_mrr,
            "#b0413e",
        ),
        ("end MRR", n.end_mrr, 0.0, "#3b6ea8"),
    ];
    let max = steps
        .iter()
        .map(|(_, v, base, _)| (base + v).max(*base))
        .fold(1e-9, f64::max)
        * 1.1;
    let (w, h, left, bottom, top) = (640.0, 260.0, 60.0, 40.0, 14.0);
    let bw = (w - left - 20.0) / steps.len() as f64;
    let sy = |v: f64| h - bottom - (h - top - bottom) * v / max;
    let title = format!(
        "MRR bridge {} to {} ({} months): NRR {} %",
        n.start,
        n.end,
        n.months,
        num(n.nrr_pct, 1)
    );
    let mut s = format!(
        r#"<figure><svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = esc(&title)
    );
    for (i, (label, v, base, color)) in steps.iter().enumerate() {
        let (lo, hi) = if *v >= 0.0 {
            (*base, base + v)
        } else {
            (base + v, *base)
        };
        let x = left + bw * i as f64 + 6.0;
        let value = money(*v);
        let _ = write!(
            s,
            r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>{label}: {value}</title></rect><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{value}</text><text x="{:.1}" y="{}" font-size="10" text-anchor="middle">{}</text>"#,
            sy(hi),
            bw - 12.0,
            (sy(lo) - sy(hi)).max(1.0),
            x + (bw - 12.0) / 2.0,
            sy(hi) - 4.0,
            x + (bw - 12.0) / 2.0,
            h - bottom + 14.0,
            esc(label)
        );
    }
    let _ = write!(s, "</svg><figcaption>{}</figcaption></figure>", esc(&title));
    s
}

/// Health band shares per month, stacked.
fn health_bars(r: &Report) -> String {
    let months = &r.months;
    let (w, h, left, bottom, top, right) = (640.0, 240.0, 40.0, 40.0, 12.0, 110.0);
    let bw = (w - left - right) / months.len().max(1) as f64;
    let sy = |v: f64| h - bottom - (h - top - bottom) * v / 100.0;
    let title = "Health distribution at each month end (% of active customers)";
    let bands: [(&str, &str); 5] = [
        ("healthy", "#4c9a5b"),
        ("at risk", "#e3c04d"),
        ("critical", "#e0803a"),
        ("churning", "#b0413e"),
        ("no data", "#bbbbbb"),
    ];
    let mut s = format!(
        r#"<figure><svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{title}"><title>{title}</title>"#
    );
    let step = label_step(months.len(), 7, w - left - right);
    for (i, m) in months.iter().enumerate() {
        let hs = &m.engagement.health;
        let shares = [hs.healthy, hs.at_risk, hs.critical, hs.churning, hs.no_data];
        let mut acc = 0.0;
        let x = left + bw * i as f64;
        for ((name, color), v) in bands.iter().zip(shares) {
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>{} {name}: {v:.1} %</title></rect>"#,
                sy(acc + v),
                (bw - 2.0).max(1.0),
                sy(acc) - sy(acc + v),
                esc(&m.churn.month)
            );
            acc += v;
        }
        if i % step == 0 {
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle">{}</text>"#,
                x + bw / 2.0,
                h - bottom + 14.0,
                esc(&m.churn.month)
            );
        }
    }
    for (k, (name, color)) in bands.iter().enumerate() {
        let y = top + 12.0 + 14.0 * k as f64;
        let _ = write!(
            s,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{color}"/><text x="{}" y="{y}" font-size="10">{name}</text>"#,
            w - right + 8.0,
            y - 9.0,
            w - right + 22.0
        );
    }
    let _ = write!(s, "</svg><figcaption>{title}</figcaption></figure>");
    s
}

/// The whole page.
pub fn page(r: &Report, source: &str) -> String {
    let s = &r.summary;
    let months: Vec<String> = r.months.iter().map(|m| m.churn.month.clone()).collect();
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Retention KPIs</title><style>
body{{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}}
h1{{margin-bottom:4px}} .sub{{color:#666;margin-top:0}}
.tiles{{display:flex;flex-wrap:wrap;gap:10px}} .tile{{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:150px}}
.tile b{{font-size:20px;display:block}} .tile span{{color:#666;font-size:12px}}
table{{border-collapse:collapse;font-size:12px;margin:8px 0}} td,th{{border:1px solid #ddd;padding:3px 6px;text-align:right}} th{{background:#f3f3f3}} td:first-child,th:first-child{{text-align:left}}
.met{{color:#2e7d32;font-weight:bold}} .improving{{color:#8a6d00;font-weight:bold}} .behind{{color:#b0413e;font-weight:bold}}
figure{{margin:12px 0}} figcaption{{font-size:12px;color:#555}} .grid{{display:flex;flex-wrap:wrap;gap:12px}}
</style></head><body><h1>Retention KPIs</h1><p class="sub">{} &middot; window {} to {} (as-of, exclusive) &middot; {} active customers</p>"#,
        esc(source),
        esc(&s.base.window_start),
        esc(&s.base.as_of),
        s.base.active_customers
    );
    let tiles: [(&str, String); 10] = [
        (
            "monthly churn (mean of last 12 months)",
            format!("{:.2} %", s.base.monthly_churn_pct),
        ),
        (
            "quarterly / annual churn",
            format!(
                "{} / {} %",
                num(s.quarterly_churn_pct, 1),
                num(s.annual_churn_pct, 1)
            ),
        ),
        (
            "retention m1 / m3 / m6",
            format!(
                "{} / {} / {} %",
                num(s.base.retention_m1_pct, 0),
                num(s.base.retention_m3_pct, 0),
                num(s.base.retention_m6_pct, 0)
            ),
        ),
        ("MRR", money(s.base.mrr)),
        ("ARPA", format!("${:.2}", s.base.arpa)),
        (
            "NRR",
            format!("{} % ({} months)", num(s.nrr_pct, 1), s.nrr_months),
        ),
        (
            "CLV (ARPA / monthly churn)",
            s.clv.map_or("n/a".into(), money),
        ),
        (
            "DAU / MAU share",
            format!(
                "{} / {} %",
                num(s.engagement.dau_share_pct, 0),
                num(s.engagement.mau_share_pct, 0)
            ),
        ),
        (
            "NPS / CSAT (last 90 days)",
            format!("{} / {}", num(s.voice.nps, 0), num(s.voice.csat, 1)),
        ),
        (
            "first response (last 90 days)",
            format!("{} h", num(s.voice.first_response_hours, 1)),
        ),
    ];
    out.push_str(r#"<div class="tiles">"#);
    for (label, value) in tiles {
        let _ = write!(
            out,
            r#"<div class="tile"><b>{}</b><span>{}</span></div>"#,
            esc(&value),
            esc(label)
        );
    }
    let _ = write!(
        out,
        "</div><h2>Goals ({} days)</h2><p class=\"sub\">Baselines measured on this data as of {} unless marked <i>given</i> (from the goals file).</p><table><tr><th>metric</th><th>baseline</th><th>now</th><th>goal</th><th>status</th></tr>",
        r.goals_horizon_days,
        esc(&r.baseline.base.as_of)
    );
    for g in &r.goals {
        let decimals = match g.metric {
            Metric::Clv | Metric::Arpa => 0,
            _ => 1,
        };
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td class="{}">{}</td></tr>"#,
            esc(g.label),
            num(g.baseline, decimals),
            if g.baseline_given {
                " <i>given</i>"
            } else {
                ""
            },
            num(g.current, decimals),
            num(Some(g.target), decimals),
            g.status.as_str().replace(' ', "-"),
            g.status.as_str()
        );
    }
    out.push_str("</table>");
    let churn_goal = r.goals.iter().find(|g| g.metric == Metric::MonthlyChurnPct);
    let mut references: Vec<(&str, f64, &str)> = Vec::new();
    if let Some(g) = churn_goal {
        references.push(("goal", g.target, "#2e7d32"));
        if let Some(b) = g.baseline {
            references.push(("baseline", (b * 100.0).round() / 100.0, "#999"));
        }
    }
    out.push_str("<h2>Churn</h2>");
    out.push_str(&line_chart(
        "Monthly churn (% of customers active at month start), customers and revenue",
        "% per month",
        &months,
        &[
            (
                "customers".into(),
                COLORS[0],
                r.months.iter().map(|m| Some(m.churn.churn_pct)).collect(),
            ),
            (
                "revenue (gross)".into(),
                COLORS[1],
                r.months
                    .iter()
                    .map(|m| Some(m.churn.revenue_churn_pct))
                    .collect(),
            ),
        ],
        &references,
    ));
    out.push_str("<h2>Cohorts</h2><div class=\"grid\">");
    out.push_str(&heat_map(r));
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
    let series: Vec<(String, &str, Vec<Option<f64>>)> = recent
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut v: Vec<Option<f64>> = c.retention_pct.iter().map(|x| Some(*x)).collect();
            v.resize(width, None);
            (c.cohort.clone(), COLORS[i % COLORS.len()], v)
        })
        .collect();
    out.push_str(&line_chart(
        "Retention curves of the most recent cohorts (% active by months since signup)",
        "% active",
        &(0..width).map(|k| k.to_string()).collect::<Vec<_>>(),
        &series,
        &[],
    ));
    out.push_str("</div>");
    if s.retention_m6_by_ttv.iter().any(|b| b.customers > 0) {
        out.push_str("<h3>Month-6 retention by time to value</h3><table><tr><th>first value</th><th>signups</th><th>retained at month 6 (%)</th></tr>");
        for b in &s.retention_m6_by_ttv {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(b.bucket),
                b.customers,
                num(b.retention_pct, 1)
            );
        }
        out.push_str("</table>");
    }
    if s.retention_12m_csm_pct.is_some() || s.retention_12m_no_csm_pct.is_some() {
        let _ = write!(
            out,
            "<h3>12-month retention by CSM coverage</h3><table><tr><th>customers</th><th>retained (%)</th></tr><tr><td>with a CSM</td><td>{}</td></tr><tr><td>without</td><td>{}</td></tr></table>",
            num(s.retention_12m_csm_pct, 1),
            num(s.retention_12m_no_csm_pct, 1)
        );
    }
    if !s.churn_reasons.is_empty() {
        let _ = write!(
            out,
            "<h3>Why customers left (last 12 months, {} churns with a reason)</h3><table><tr><th>reason</th><th>share (%)</th></tr>",
            s.churns_with_reason
        );
        let mut reasons: Vec<(&String, &f64)> = s.churn_reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.total_cmp(a.1));
        for (reason, share) in reasons {
            let _ = write!(out, "<tr><td>{}</td><td>{share:.1}</td></tr>", esc(reason));
        }
        out.push_str("</table>");
    }
    out.push_str("<h2>Revenue</h2>");
    out.push_str(&bridge(r));
    out.push_str(&line_chart(
        "MRR at month start",
        "$",
        &months,
        &[(
            "MRR".into(),
            COLORS[0],
            r.months
                .iter()
                .map(|m| Some(m.churn.mrr_at_start))
                .collect(),
        )],
        &[],
    ));
    out.push_str("<h2>Health and engagement</h2>");
    out.push_str(&health_bars(r));
    out.push_str(&line_chart(
        "Engagement at each month end",
        "%",
        &months,
        &[
            (
                "DAU share".into(),
                COLORS[0],
                r.months
                    .iter()
                    .map(|m| m.engagement.dau_share_pct)
                    .collect(),
            ),
            (
                "MAU share".into(),
                COLORS[1],
                r.months
                    .iter()
                    .map(|m| m.engagement.mau_share_pct)
                    .collect(),
            ),
            (
                "feature adoption".into(),
                COLORS[2],
                r.months
                    .iter()
                    .map(|m| m.engagement.feature_adoption_pct)
                    .collect(),
            ),
        ],
        &[],
    ));
    out.push_str("<h2>Every month</h2><table><tr><th>month</th><th>active at start</th><th>churned</th><th>churn %</th><th>revenue churn %</th><th>quarterly %</th><th>annual %</th><th>MRR</th><th>ARPA</th><th>DAU %</th><th>MAU %</th><th>sessions/wk</th><th>min/session</th><th>adoption %</th><th>TTV days</th><th>tickets</th><th>first resp. h</th><th>NPS</th><th>CSAT</th><th>healthy %</th></tr>");
    for m in &r.months {
        let e = &m.engagement;
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td></tr>",
            esc(&m.churn.month),
            m.churn.active_at_start,
            m.churn.churned,
            m.churn.churn_pct,
            m.churn.revenue_churn_pct,
            num(m.quarterly_churn_pct, 1),
            num(m.annual_churn_pct, 1),
            thousands(m.churn.mrr_at_start),
            num(m.arpa, 2),
            num(e.dau_share_pct, 0),
            num(e.mau_share_pct, 0),
            num(e.sessions_per_week, 2),
            num(e.minutes_per_session, 1),
            num(e.feature_adoption_pct, 0),
            num(e.ttv_days, 0),
            m.voice.tickets,
            num(m.voice.first_response_hours, 1),
            num(m.voice.nps, 0),
            num(m.voice.csat, 1),
            e.health.healthy
        );
    }
    out.push_str("</table>");
    if !s.engagement.adoption_by_group.is_empty() {
        out.push_str("<h2>Feature adoption by group (latest)</h2><table><tr><th>group</th><th>adoption %</th></tr>");
        for (g, v) in &s.engagement.adoption_by_group {
            let _ = write!(out, "<tr><td>{}</td><td>{v:.1}</td></tr>", esc(g));
        }
        out.push_str("</table>");
    }
    out.push_str("<p class=\"sub\">Definitions of every figure: docs/kpis.md in the churn repository. Generated by churn-train kpis.</p></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits_and_never_prints_minus_zero() {
        assert_eq!(thousands(264640.4), "264,640");
        assert_eq!(thousands(-1234567.0), "-1,234,567");
        assert_eq!(thousands(999.5), "1,000");
        assert_eq!(thousands(-0.0), "0");
        assert_eq!(thousands(-0.4), "0");
        assert_eq!(thousands(12.0), "12");
        assert_eq!(money(-2594.2), "-$2,594");
        assert_eq!(money(-0.2), "$0");
        assert_eq!(money(264640.0), "$264,640");
    }

    #[test]
    fn month_labels_never_overlap() {
        // 24 and 60 monthly labels of 7 characters across the line chart's plot.
        for count in [6, 12, 24, 60] {
            let step = label_step(count, 7, 442.0);
            let shown = count.div_ceil(step);
            let spacing = 442.0 / (count as f64 - 1.0) * step as f64;
            assert!(
                spacing >= 7.0 * 6.2,
                "{count} labels: every {step}, {spacing} px apart"
            );
            assert!(shown >= 2, "{count} labels: only {shown} shown");
        }
        assert_eq!(label_step(5, 2, 442.0), 1);
    }
}
