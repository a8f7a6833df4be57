//! A checker for finished pages, used by the tests of every page: each chart is labelled
//! for screen readers and has axis titles, numbers are formatted, nothing is fetched.

/// What is wrong with a page, one line per problem (empty when nothing is).
pub fn audit(page: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, svg) in page.split("<svg").skip(1).enumerate() {
        let svg = svg.split("</svg>").next().unwrap_or("");
        let open = svg.split('>').next().unwrap_or("");
        let title = svg
            .split_once("<title>")
            .and_then(|(_, rest)| rest.split_once("</title>"))
            .map(|(t, _)| t.trim());
        if !open.contains("aria-label=\"") || !open.contains("role=\"img\"") {
            problems.push(format!("chart {i} has no role=\"img\" aria-label"));
        }
        if title.is_none_or(str::is_empty) {
            problems.push(format!("chart {i} has no <title>"));
        }
        if !svg.contains("class=\"axis-title\"") {
            problems.push(format!(
                "chart {i} ({}) has no axis title",
                title.unwrap_or("untitled")
            ));
        }
    }
    // Inline SVG needs no namespace; any address in the page is a fetch or a link out.
    for needle in ["<script", "http://", "https://", "@import"] {
        if page.contains(needle) {
            problems.push(format!("the page is not self-contained: it has `{needle}`"));
        }
    }
    // Figures in the body: headings and the head name versions and dates as they are.
    let body = page.split("</h1>").nth(1).unwrap_or(page);
    for text in text_nodes(body) {
        // Words with letters are names, versions and ids, not figures.
        let words = text
            .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '/' | '=' | ':' | ';'))
            .filter(|w| !w.chars().any(|c| c.is_ascii_alphabetic()));
        for token in words
            .flat_map(|w| w.split(|c: char| !(c.is_ascii_digit() || matches!(c, ',' | '.' | '$'))))
        {
            let token = token.trim_matches(|c| c == '.' || c == ',');
            if let Some(problem) = unformatted(token) {
                problems.push(format!("`{token}` in \"{}\": {problem}", text.trim()));
            }
        }
    }
    problems
}

/// The text between tags.
fn text_nodes(html: &str) -> impl Iterator<Item = &str> {
    html.split('<')
        .filter_map(|part| part.split_once('>').map(|(_, text)| text))
        .filter(|text| !text.trim().is_empty())
}

/// Why a numeric token is badly formatted: a long whole part without separators, or
/// more decimals than anyone reads.
fn unformatted(token: &str) -> Option<&'static str> {
    let digits = token.trim_start_matches('$');
    if digits.is_empty()
        || !digits
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b',' || b == b'.')
    {
        return None;
    }
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if !whole.contains(',') && whole.len() >= 5 {
        return Some("no thousands separator");
    }
    if fraction.len() > 4 {
        return Some("more than four decimals");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{html, page, LineChart, Unit};

    #[test]
    fn the_audit_finds_what_it_is_for() {
        let good = page(
            "t",
            html! { "20261205T101740Z" },
            html! {
                (LineChart::new("c").categories(vec!["2024-01".into()], "month").y("MRR", Unit::Money).series("s", [Some(264640.0)]))
                p { "$264,640 and 0.1234 and 2024-01-01" }
            },
        );
        assert_eq!(audit(&good), Vec::<String>::new());
        let bad =
            "<h1>x</h1><svg viewBox=\"0 0 1 1\"></svg><p>MRR $264640, AUC 0.123456</p><script>";
        let problems = audit(bad);
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert!(problems.iter().any(|p| p.contains("`$264640`")));
        assert!(problems.iter().any(|p| p.contains("`0.123456`")));
    }
}
