//! The report as one self-contained HTML page: inline CSS and SVG, no network access (a
//! Content-Security-Policy forbids it), readable on a phone, printable, with a title, a
//! description and a data table behind every chart. Every text that comes from the database
//! (tier ids and labels, rule ids, manager names) is HTML-escaped.
//!
//! The page carries one small inline script and needs no other: it records script errors and
//! blocked resources, and after loading writes what it found, with each chart's drawn size and
//! number of marks, and whether the page fits the window's width, into `data-errors`,
//! `data-charts` and `data-fits` on the `<html>` element. Nothing on the page depends on it; it
//! is how the browser test reads a headless Chromium's verdict.

use std::fmt::Write as _;

use tiercare_store::OwnerWork;

use super::figures::{Figures, ManagerLoad, MoveMatrix, Pareto, RfmGrid, TierFigure};
use crate::html::escape;
use crate::time::format_time;

/// How many rows a bar chart of owners or managers shows at most (the tables list all).
const CHART_ROWS: usize = 25;

/// Fill colours of the tiers, best tier first; more tiers reuse the last.
const TIER_COLOURS: &[&str] = &[
    "#3654d1", "#1a9c9c", "#e0a21f", "#8a63d2", "#d2557a", "#6b7280",
];

/// Renders `figures` as the report page.
pub fn render(figures: &Figures) -> String {
    let mut page = String::with_capacity(64 * 1024);
    head(&mut page, figures);
    summary(&mut page, figures);
    tiers_section(&mut page, figures);
    pareto_section(&mut page, &figures.pareto, &figures.tiers);
    rfm_section(&mut page, &figures.rfm);
    moves_section(&mut page, figures);
    work_section(&mut page, figures);
    email_section(&mut page, figures);
    care_section(&mut page, figures);
    survey_section(&mut page, figures);
    coupons_section(&mut page, figures);
    growth_section(&mut page, figures);
    page.push_str(FOOT);
    page
}

/// A count with thousands separators: `1,234,567`.
pub fn count(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Money without cents, with thousands separators: `12,345`.
pub fn money(value: f64) -> String {
    let rounded = value.round();
    let sign = if rounded < 0.0 { "-" } else { "" };
    format!("{sign}{}", count(rounded.abs() as u64))
}

/// A number short enough for a chart cell: `950`, `12.3k`, `4.5M`, `1.2B`.
pub fn compact(value: f64) -> String {
    let magnitude = value.abs();
    let (scaled, suffix) = if magnitude >= 1e9 {
        (value / 1e9, "B")
    } else if magnitude >= 1e6 {
        (value / 1e6, "M")
    } else if magnitude >= 1e4 {
        (value / 1e3, "k")
    } else {
        return money(value);
    };
    if scaled.abs() >= 100.0 {
        format!("{scaled:.0}{suffix}")
    } else {
        format!("{scaled:.1}{suffix}")
    }
}

/// A share 0..1 as a percentage with one decimal: `80.0%`.
pub fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

fn tier_colour(index: usize) -> &'static str {
    TIER_COLOURS[index.min(TIER_COLOURS.len() - 1)]
}

fn tier_name(tier: &TierFigure) -> String {
    match &tier.label {
        Some(label) => format!("{} · {}", tier.id, label),
        None => tier.id.clone(),
    }
}

fn date(unix: i64) -> String {
    format_time(unix)
}

const STYLE: &str = r#"
:root{--ink:#1b1f2a;--muted:#5b6475;--line:#e3e6ee;--bg:#f5f6fa;--card:#fff;--accent:#3654d1;
--good:#2e9e5b;--bad:#d0453a;--warn:#e0a21f}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;
color:var(--ink);background:var(--bg)}
header{background:linear-gradient(135deg,#223a9e,#3654d1 60%,#1a9c9c);color:#fff;padding:28px 20px 60px}
header .wrap{max-width:1120px;margin:0 auto}
header h1{margin:0 0 4px;font-size:28px;letter-spacing:-.01em}
header p{margin:0;opacity:.9}
main{max-width:1120px;margin:-44px auto 40px;padding:0 16px}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px;margin-bottom:16px}
.kpi{background:var(--card);border-radius:12px;padding:14px 16px;box-shadow:0 1px 3px rgba(20,30,60,.08)}
.kpi b{display:block;font-size:24px;font-variant-numeric:tabular-nums}
.kpi span{color:var(--muted);font-size:13px}
section{background:var(--card);border-radius:14px;padding:20px 22px;margin:16px 0;
box-shadow:0 1px 3px rgba(20,30,60,.08)}
h2{margin:0 0 2px;font-size:20px}
h3{margin:18px 0 6px;font-size:16px}
.lead{color:var(--muted);margin:0 0 12px}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:18px}
figure{margin:0}
figcaption{color:var(--muted);font-size:13px;margin-top:4px}
svg.chart{display:block;width:100%;max-width:760px;height:auto;max-height:520px}
.grid2 svg.chart{max-width:520px;margin:0 auto}
svg text{font-family:inherit;fill:var(--ink)}
svg .axis{stroke:#9aa3b5;stroke-width:1}
svg .gridline{stroke:var(--line);stroke-width:1}
svg .small{font-size:11px;fill:var(--muted)}
.table-wrap{overflow-x:auto;margin-top:10px}
table{border-collapse:collapse;width:100%;font-size:13.5px;font-variant-numeric:tabular-nums}
caption{text-align:left;color:var(--muted);font-size:12.5px;padding-bottom:4px}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
thead th{color:var(--muted);font-weight:600;border-bottom:2px solid var(--line)}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:0}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:13px;color:var(--muted);margin:6px 0}
.note{background:#fff7e6;border-left:4px solid var(--warn);padding:8px 12px;border-radius:6px;font-size:14px}
.empty{color:var(--muted);font-style:italic}
.over{color:var(--bad);font-weight:600}
footer{max-width:1120px;margin:0 auto 30px;padding:0 20px;color:var(--muted);font-size:12.5px}
@media (max-width:600px){header{padding:20px 14px 54px}header h1{font-size:22px}
section{padding:16px 14px}.kpi b{font-size:20px}th,td{padding:4px 5px;font-size:12.5px}
svg .small{font-size:13px}}
@media print{body{background:#fff;font-size:11pt}header{background:none;color:var(--ink);padding:0 0 8px}
main{margin:0;max-width:none;padding:0}section,.kpi{box-shadow:none;border:1px solid var(--line);
break-inside:avoid;page-break-inside:avoid}svg.chart{max-height:none}.table-wrap{overflow:visible}
details::details-content{content-visibility:visible;display:block}summary{list-style:none}}
"#;

/// Records errors as early as possible; the check at the end of the page reports them.
const ERROR_TRAP: &str = "<script>(function(){var e=window.__tcErrors=[];\
window.addEventListener('error',function(x){e.push(String(x.message||('failed to load '+((x.target&&(x.target.src||x.target.href))||'a resource'))))},true);\
window.addEventListener('unhandledrejection',function(x){e.push('unhandled rejection: '+String(x.reason))});\
document.addEventListener('securitypolicyviolation',function(x){e.push('blocked by the page policy: '+x.blockedURI)});\
var c=console.error;console.error=function(){e.push(Array.prototype.join.call(arguments,' '));return c.apply(console,arguments)}})();</script>";

const FOOT: &str = "</main>\n<footer>Made by tiercare from the workspace database. Revenue is over the \
rules' window at the assessment's time. Charts have a data table beside them.</footer>\n\
<script>window.addEventListener('load',function(){var s=document.querySelectorAll('svg.chart'),r=[];\
for(var i=0;i<s.length;i++){var b=s[i].getBoundingClientRect(),v=s[i].viewBox.baseVal,\
k=v&&v.width?Math.min(b.width/v.width,b.height/v.height):1,t=s[i].querySelectorAll('text'),f=99,c=[];\
for(var j=0;j<t.length;j++){var x=t[j].getBoundingClientRect();\
f=Math.min(f,parseFloat(getComputedStyle(t[j]).fontSize)*k);\
if(x.left<b.left-.5||x.right>b.right+.5||x.top<b.top-.5||x.bottom>b.bottom+.5)c.push(t[j].textContent)}\
r.push({id:s[i].id,width:Math.round(b.width),height:Math.round(b.height),marks:s[i].querySelectorAll('.mark').length,\
font:Math.round(f*10)/10,cut:c})}\
document.documentElement.setAttribute('data-charts',JSON.stringify(r));\
document.documentElement.setAttribute('data-fits',String(document.documentElement.scrollWidth<=window.innerWidth));\
document.documentElement.setAttribute('data-errors',JSON.stringify(window.__tcErrors||[]))});</script>\n\
</body>\n</html>\n";

fn head(page: &mut String, figures: &Figures) {
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n\
         <title>tiercare report · {}</title>\n{ERROR_TRAP}\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header><div class=\"wrap\"><h1>Customer tiers report</h1>\
         <p>Assessment of {} · rules {} · revenue over {} · made {}</p></div></header>\n<main>\n",
        escape(&date(figures.assessment.at)),
        escape(&date(figures.assessment.at)),
        escape(&figures.assessment.ruleset_version),
        escape(&figures.window),
        escape(&date(figures.generated_at)),
    );
}

fn summary(page: &mut String, figures: &Figures) {
    let top = figures.tiers.first();
    let moved: u64 = figures
        .trend
        .last()
        .map_or(0, |point| point.up + point.down);
    let overdue: u64 = figures.work_by_owner.iter().map(|w| w.overdue).sum();
    let sent: u64 = figures.emails.iter().map(|r| r.sent).sum();
    page.push_str("<div class=\"kpis\" role=\"list\">");
    let mut kpi = |value: String, label: String| {
        let _ = write!(
            page,
            "<div class=\"kpi\" role=\"listitem\"><b>{}</b><span>{}</span></div>",
            escape(&value),
            escape(&label)
        );
    };
    kpi(count(figures.customers), "customers with a tier".into());
    kpi(
        money(figures.revenue),
        format!("revenue over {}", figures.window),
    );
    if let Some(top) = top {
        kpi(
            percent(top.revenue_share),
            format!(
                "of revenue from tier {} ({} of customers)",
                top.id,
                percent(top.customer_share)
            ),
        );
    }
    kpi(count(moved), "changed tier in the latest assessment".into());
    kpi(count(overdue), "overdue tasks".into());
    kpi(count(sent), "e-mails sent".into());
    page.push_str("</div>\n");
}

/// Opens an `<svg>` chart with an inline style (a `max-width` for a narrow chart).
fn svg_open_styled(
    page: &mut String,
    id: &str,
    width: u32,
    height: u32,
    style: &str,
    title: &str,
    desc: &str,
) {
    let mut opened = String::new();
    svg_open(&mut opened, id, width, height, title, desc);
    page.push_str(&opened.replacen(
        "class=\"chart\" ",
        &format!("class=\"chart\" style=\"{style}\" "),
        1,
    ));
}

/// Opens an `<svg>` chart with its accessible title and description.
fn svg_open(page: &mut String, id: &str, width: u32, height: u32, title: &str, desc: &str) {
    let _ = write!(
        page,
        "<svg class=\"chart\" id=\"{id}\" viewBox=\"0 0 {width} {height}\" role=\"img\" \
         aria-labelledby=\"{id}-title {id}-desc\" preserveAspectRatio=\"xMidYMid meet\">\
         <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>",
        escape(title),
        escape(desc)
    );
}

fn legend(page: &mut String, items: &[(String, &str)]) {
    page.push_str("<div class=\"legend\">");
    for (label, colour) in items {
        let _ = write!(
            page,
            "<span><i class=\"swatch\" style=\"background:{colour}\"></i>{}</span>",
            escape(label)
        );
    }
    page.push_str("</div>");
}

/// A data table: `header` cells, then rows of cells (already escaped). A table longer than
/// [`CHART_ROWS`] is folded away behind a summary that says how many rows it has.
fn table(page: &mut String, caption: &str, header: &[&str], rows: &[Vec<String>]) {
    if rows.len() > CHART_ROWS {
        let _ = write!(
            page,
            "<details><summary>{} ({} rows)</summary>",
            escape(caption),
            count(rows.len() as u64)
        );
        table_body(page, caption, header, rows);
        page.push_str("</details>");
    } else {
        table_body(page, caption, header, rows);
    }
}

fn table_body(page: &mut String, caption: &str, header: &[&str], rows: &[Vec<String>]) {
    let _ = write!(
        page,
        "<div class=\"table-wrap\"><table><caption>{}</caption><thead><tr>",
        escape(caption)
    );
    for cell in header {
        let _ = write!(page, "<th scope=\"col\">{}</th>", escape(cell));
    }
    page.push_str("</tr></thead><tbody>");
    for row in rows {
        page.push_str("<tr>");
        for (index, cell) in row.iter().enumerate() {
            if index == 0 {
                let _ = write!(page, "<th scope=\"row\">{cell}</th>");
            } else {
                let _ = write!(page, "<td>{cell}</td>");
            }
        }
        page.push_str("</tr>");
    }
    page.push_str("</tbody></table></div>");
}

fn tiers_section(page: &mut String, figures: &Figures) {
    page.push_str(
        "<section id=\"tiers\"><h2>Customers and revenue per tier</h2>\
         <p class=\"lead\">How the customers and the revenue split between the tiers.</p>",
    );
    let width = 640.0;
    let (left, right) = (90.0, 10.0);
    let bar = width - left - right;
    svg_open(
        page,
        "chart-tiers",
        640,
        130,
        "Customers and revenue per tier",
        "Two stacked bars, each 100%: the share of customers and the share of revenue of each tier.",
    );
    for (row, (label, shares)) in [
        (
            "Customers",
            figures
                .tiers
                .iter()
                .map(|t| t.customer_share)
                .collect::<Vec<_>>(),
        ),
        (
            "Revenue",
            figures.tiers.iter().map(|t| t.revenue_share).collect(),
        ),
    ]
    .iter()
    .enumerate()
    {
        let y = 14.0 + row as f64 * 56.0;
        let _ = write!(
            page,
            "<text x=\"0\" y=\"{:.1}\" dominant-baseline=\"middle\">{label}</text>",
            y + 18.0
        );
        let mut x = left;
        for (index, share) in shares.iter().enumerate() {
            let w = share * bar;
            if w <= 0.0 {
                continue;
            }
            let tier = &figures.tiers[index];
            let _ = write!(
                page,
                "<rect class=\"mark\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"36\" \
                 fill=\"{}\"><title>{}: {}</title></rect>",
                tier_colour(index),
                escape(&tier.id),
                percent(*share)
            );
            if w > 54.0 {
                let _ = write!(
                    page,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" dominant-baseline=\"middle\" \
                     style=\"fill:#fff;font-weight:600\">{} {}</text>",
                    x + w / 2.0,
                    y + 18.0,
                    escape(&tier.id),
                    percent(*share)
                );
            }
            x += w;
        }
    }
    page.push_str("</svg>");
    let items: Vec<(String, &str)> = figures
        .tiers
        .iter()
        .enumerate()
        .map(|(i, t)| (tier_name(t), tier_colour(i)))
        .collect();
    legend(page, &items);
    let mut rows: Vec<Vec<String>> = figures
        .tiers
        .iter()
        .map(|t| {
            vec![
                escape(&tier_name(t)),
                count(t.customers),
                percent(t.customer_share),
                money(t.revenue),
                percent(t.revenue_share),
            ]
        })
        .collect();
    rows.push(vec![
        "All".into(),
        count(figures.customers),
        percent(if figures.customers > 0 { 1.0 } else { 0.0 }),
        money(figures.revenue),
        percent(if figures.revenue > 0.0 { 1.0 } else { 0.0 }),
    ]);
    table(
        page,
        "Customers and revenue per tier",
        &["Tier", "Customers", "Share", "Revenue", "Share"],
        &rows,
    );
    page.push_str("</section>\n");
}

fn pareto_section(page: &mut String, pareto: &Pareto, tiers: &[TierFigure]) {
    page.push_str(
        "<section id=\"pareto\"><h2>Pareto curve</h2>\
         <p class=\"lead\">Customers ranked by revenue, best first: the share of all revenue \
         brought by the top share of customers, with the tier boundaries.</p><figure>",
    );
    let (w, h) = (640.0, 380.0);
    let (l, r, t, b) = (52.0, 16.0, 14.0, 44.0);
    let (pw, ph) = (w - l - r, h - t - b);
    let px = |x: f64| l + x * pw;
    let py = |y: f64| t + (1.0 - y) * ph;
    svg_open(
        page,
        "chart-pareto",
        640,
        380,
        "Pareto curve: cumulative revenue share against cumulative customer share",
        "A rising curve from the origin to the top right; the steeper it starts, the more \
         revenue is concentrated in a few customers. Dashed vertical lines mark where each tier ends.",
    );
    for step in 0..=4 {
        let v = f64::from(step) / 4.0;
        let _ = write!(
            page,
            "<line class=\"gridline\" x1=\"{l}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"small\" x=\"{:.1}\" y=\"{y:.1}\" text-anchor=\"end\" dominant-baseline=\"middle\">{:.0}%</text>\
             <text class=\"small\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{:.0}%</text>",
            l + pw,
            l - 6.0,
            v * 100.0,
            h - b + 16.0,
            v * 100.0,
            y = py(v),
            x = px(v),
        );
    }
    let _ = write!(
        page,
        "<line class=\"axis\" x1=\"{l}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>\
         <line class=\"axis\" x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{:.1}\"/>\
         <line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#b8bfcc\" stroke-dasharray=\"3 4\"/>\
         <text class=\"small\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">customers, ranked by revenue</text>\
         <text class=\"small\" transform=\"translate(12 {:.1}) rotate(-90)\" text-anchor=\"middle\">share of revenue</text>",
        py(0.0),
        px(1.0),
        py(0.0),
        py(0.0),
        px(0.0),
        py(0.0),
        px(1.0),
        py(1.0),
        l + pw / 2.0,
        h - 6.0,
        t + ph / 2.0,
    );
    // The boundaries, behind the curve.
    for (index, boundary) in pareto.boundaries.iter().enumerate() {
        let x = px(boundary.customer_share);
        let y = py(boundary.revenue_share);
        let colour = tier_colour(index);
        let anchor = if boundary.customer_share > 0.45 {
            "end"
        } else {
            "start"
        };
        let dx = if anchor == "end" { -6.0 } else { 6.0 };
        let _ = write!(
            page,
            "<line class=\"mark\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{t}\" stroke=\"{colour}\" \
             stroke-width=\"1.5\" stroke-dasharray=\"5 4\"/>\
             <circle class=\"mark\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"{colour}\" stroke=\"#fff\" stroke-width=\"2\">\
             <title>end of {}: {} of customers, {} of revenue</title></circle>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" style=\"font-size:15px;font-weight:600;fill:{colour}\">{}: {} → {}</text>",
            py(0.0),
            escape(&boundary.tier),
            percent(boundary.customer_share),
            percent(boundary.revenue_share),
            x + dx,
            (y + 22.0 + index as f64 * 18.0).min(py(0.0) - 8.0),
            escape(&boundary.tier),
            percent(boundary.customer_share),
            percent(boundary.revenue_share),
        );
    }
    let mut path = String::new();
    for (index, (x, y)) in pareto.points.iter().enumerate() {
        let _ = write!(
            path,
            "{}{:.1},{:.1}",
            if index == 0 { "M" } else { " L" },
            px(*x),
            py(*y)
        );
    }
    let mut area = path.clone();
    let _ = write!(area, " L{:.1},{:.1} Z", px(1.0), py(0.0));
    let _ = write!(
        page,
        "<path d=\"{area}\" fill=\"#3654d1\" fill-opacity=\"0.08\"/>\
         <path class=\"mark\" d=\"{path}\" fill=\"none\" stroke=\"#3654d1\" stroke-width=\"2.5\" \
         stroke-linejoin=\"round\"/></svg>"
    );
    page.push_str(
        "<figcaption>The dotted diagonal is an even split (every customer brings the same). \
         A boundary is where a tier's customers end, best tiers first, labelled with the \
         share of customers → the share of revenue up to it.</figcaption></figure>",
    );
    let rows: Vec<Vec<String>> = pareto
        .boundaries
        .iter()
        .map(|b| {
            vec![
                format!("end of {}", escape(&b.tier)),
                percent(b.customer_share),
                percent(b.revenue_share),
            ]
        })
        .collect();
    let _ = tiers;
    table(
        page,
        "Tier boundaries on the curve",
        &["Boundary", "Customers (cumulative)", "Revenue (cumulative)"],
        &rows,
    );
    page.push_str("</section>\n");
}

/// A 5×5 heat map of `value` per cell, with the cell's text.
fn heatmap(page: &mut String, grid: &RfmGrid, id: &str, title: &str, by_revenue: bool) {
    let value = |cell: &super::figures::RfmCell| {
        if by_revenue {
            cell.revenue
        } else {
            cell.customers as f64
        }
    };
    let max = grid.cells.iter().map(value).fold(0.0_f64, f64::max);
    let (l, t, size) = (40.0, 8.0, 58.0);
    svg_open(
        page,
        id,
        340,
        360,
        title,
        "A 5 by 5 grid: recency score 1 to 5 from left to right, frequency score 1 to 5 from \
         bottom to top; darker cells hold more.",
    );
    let (hue, text_dark) = if by_revenue {
        ("54,84,209", "#fff")
    } else {
        ("26,156,156", "#fff")
    };
    for cell in &grid.cells {
        let x = l + f64::from(cell.r - 1) * size;
        let y = t + f64::from(5 - cell.f) * size;
        let v = value(cell);
        let strength = if max > 0.0 { v / max } else { 0.0 };
        let alpha = 0.06 + 0.94 * strength;
        let label = if by_revenue {
            compact(cell.revenue)
        } else {
            compact(cell.customers as f64)
        };
        let colour = if strength > 0.5 { text_dark } else { "#1b1f2a" };
        let _ = write!(
            page,
            "<rect class=\"mark\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"4\" \
             fill=\"rgba({hue},{alpha:.3})\"><title>R {} F {}: {} customers, revenue {}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" dominant-baseline=\"middle\" \
             style=\"font-size:11px;fill:{colour}\">{label}</text>",
            size - 3.0,
            size - 3.0,
            cell.r,
            cell.f,
            count(cell.customers),
            money(cell.revenue),
            x + (size - 3.0) / 2.0,
            y + (size - 3.0) / 2.0,
        );
    }
    for score in 1..=5_u8 {
        let _ = write!(
            page,
            "<text class=\"small\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{score}</text>\
             <text class=\"small\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" dominant-baseline=\"middle\">{score}</text>",
            l + f64::from(score - 1) * size + size / 2.0,
            t + 5.0 * size + 14.0,
            l - 8.0,
            t + f64::from(5 - score) * size + size / 2.0,
        );
    }
    let _ = write!(
        page,
        "<text class=\"small\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">recency score (5 = most recent) →</text>\
         <text class=\"small\" transform=\"translate(12 {:.1}) rotate(-90)\" text-anchor=\"middle\">frequency score →</text></svg>",
        l + 2.5 * size,
        t + 5.0 * size + 34.0,
        t + 2.5 * size,
    );
}

fn rfm_section(page: &mut String, grid: &RfmGrid) {
    page.push_str(
        "<section id=\"rfm\"><h2>RFM grid</h2>\
         <p class=\"lead\">Recency score against frequency score (quintiles among customers who \
         ordered, 5 best), coloured by revenue and by number of customers.</p><div class=\"grid2\">",
    );
    page.push_str("<figure>");
    heatmap(page, grid, "chart-rfm-revenue", "RFM grid by revenue", true);
    page.push_str("<figcaption>Revenue per cell</figcaption></figure><figure>");
    heatmap(
        page,
        grid,
        "chart-rfm-customers",
        "RFM grid by customers",
        false,
    );
    let _ = write!(
        page,
        "<figcaption>Customers per cell; {} never ordered and are not in the grid.</figcaption></figure></div>",
        count(grid.never_ordered)
    );
    let rows: Vec<Vec<String>> = grid
        .cells
        .iter()
        .filter(|c| c.customers > 0)
        .map(|c| {
            vec![
                format!("R {} · F {}", c.r, c.f),
                count(c.customers),
                money(c.revenue),
            ]
        })
        .collect();
    page.push_str("<details><summary>RFM cells as a table</summary>");
    table(
        page,
        "Customers and revenue per RFM cell (empty cells left out)",
        &["Cell", "Customers", "Revenue"],
        &rows,
    );
    page.push_str("</details></section>\n");
}

fn moves_section(page: &mut String, figures: &Figures) {
    let moves: &MoveMatrix = &figures.moves;
    page.push_str("<section id=\"moves\"><h2>Tier moves</h2>");
    match &moves.previous {
        Some(previous) => {
            let _ = write!(
                page,
                "<p class=\"lead\">From the assessment of {} to the one of {}: rows are the tier \
                 before, columns the tier after. Green cells moved up, red moved down.</p>",
                escape(&date(previous.at)),
                escape(&date(figures.assessment.at))
            );
        }
        None => page.push_str(
            "<p class=\"lead\">This is the first assessment: every customer got a first tier.</p>",
        ),
    }
    let cols = moves.to.len();
    let rows = moves.from.len();
    let cell = 64.0;
    let (l, t) = (60.0, 34.0);
    let width = (l + cols as f64 * cell + 8.0).ceil() as u32;
    let height = (t + rows as f64 * cell + 8.0).ceil() as u32;
    let max = moves
        .counts
        .iter()
        .flatten()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    page.push_str("<div class=\"grid2\"><figure>");
    svg_open(
        page,
        "chart-moves",
        width,
        height,
        "Tier moves since the previous assessment",
        "A matrix of customers by tier before (rows) and tier after (columns).",
    );
    for (c, to) in moves.to.iter().enumerate() {
        let _ = write!(
            page,
            "<text class=\"small\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">→ {}</text>",
            l + c as f64 * cell + cell / 2.0,
            t - 10.0,
            escape(to)
        );
    }
    for (r, from) in moves.from.iter().enumerate() {
        let _ = write!(
            page,
            "<text class=\"small\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>",
            l - 8.0,
            t + r as f64 * cell + cell / 2.0,
            escape(from)
        );
        for c in 0..cols {
            let n = moves.counts[r][c];
            // Row 0 is "new"; row r > 0 is tier r - 1.
            let colour = if r == 0 {
                "54,84,209"
            } else if r - 1 == c {
                "120,130,150"
            } else if c < r - 1 {
                "46,158,91"
            } else {
                "208,69,58"
            };
            let alpha = if n == 0 {
                0.04
            } else {
                0.15 + 0.85 * (n as f64 / max as f64).sqrt()
            };
            let x = l + c as f64 * cell;
            let y = t + r as f64 * cell;
            let ink = if alpha > 0.55 { "#fff" } else { "#1b1f2a" };
            let _ = write!(
                page,
                "<rect class=\"mark\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"4\" \
                 fill=\"rgba({colour},{alpha:.3})\"><title>{} → {}: {}</title></rect>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" dominant-baseline=\"middle\" \
                 style=\"font-size:12px;fill:{ink}\">{}</text>",
                cell - 3.0,
                cell - 3.0,
                escape(from),
                escape(&moves.to[c]),
                count(n),
                x + (cell - 3.0) / 2.0,
                y + (cell - 3.0) / 2.0,
                count(n)
            );
        }
    }
    page.push_str("</svg><figcaption>Customers by tier before and after</figcaption></figure>");
    trend_chart(page, figures);
    page.push_str("</div>");
    let mut header = vec!["Before \\ after"];
    header.extend(moves.to.iter().map(String::as_str));
    let table_rows: Vec<Vec<String>> = moves
        .from
        .iter()
        .zip(&moves.counts)
        .map(|(from, counts)| {
            let mut row = vec![escape(from)];
            row.extend(counts.iter().map(|n| count(*n)));
            row
        })
        .collect();
    table(
        page,
        "Tier moves: customers by tier before and after",
        &header,
        &table_rows,
    );
    let tiers: Vec<&str> = figures.tiers.iter().map(|t| t.id.as_str()).collect();
    let mut trend_header = vec!["Assessment"];
    trend_header.extend(tiers.iter().copied());
    trend_header.extend(["Up", "Down", "New"]);
    let trend_rows: Vec<Vec<String>> = figures
        .trend
        .iter()
        .map(|p| {
            let mut row = vec![escape(&date(p.assessment.at))];
            row.extend(p.sizes.iter().map(|n| count(*n)));
            row.extend([count(p.up), count(p.down), count(p.new)]);
            row
        })
        .collect();

    table(
        page,
        "Tier sizes after each assessment, and moves",
        &trend_header,
        &trend_rows,
    );
    page.push_str("</section>\n");
}

fn trend_chart(page: &mut String, figures: &Figures) {
    let points = &figures.trend;
    let (w, h) = (420.0, 300.0);
    let (l, r, t, b) = (54.0, 10.0, 12.0, 40.0);
    let (pw, ph) = (w - l - r, h - t - b);
    let max = points
        .iter()
        .map(|p| p.sizes.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    page.push_str("<figure>");
    svg_open(
        page,
        "chart-trend",
        420,
        300,
        "Tier sizes per assessment",
        "Stacked columns, one per assessment, oldest left: customers per tier after each assessment.",
    );
    let slot = pw / points.len().max(1) as f64;
    let bar = (slot * 0.7).clamp(2.0, 48.0);
    for step in 0..=4 {
        let v = f64::from(step) / 4.0;
        let y = t + (1.0 - v) * ph;
        let _ = write!(
            page,
            "<line class=\"gridline\" x1=\"{l}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"small\" x=\"{:.1}\" y=\"{y:.1}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>",
            l + pw,
            l - 6.0,
            count((max * v).round() as u64)
        );
    }
    for (index, point) in points.iter().enumerate() {
        let x = l + index as f64 * slot + (slot - bar) / 2.0;
        let mut y = t + ph;
        for (tier, size) in point.sizes.iter().enumerate() {
            let height = *size as f64 / max * ph;
            if height <= 0.0 {
                continue;
            }
            y -= height;
            let _ = write!(
                page,
                "<rect class=\"mark\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{height:.1}\" \
                 fill=\"{}\"><title>{}: {} in {}</title></rect>",
                tier_colour(tier),
                escape(&date(point.assessment.at)),
                count(*size),
                escape(figures.tiers.get(tier).map_or("?", |t| t.id.as_str()))
            );
        }
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            page,
            "<text class=\"small\" x=\"{l}\" y=\"{:.1}\">{}</text>\
             <text class=\"small\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            h - 14.0,
            escape(&date(first.assessment.at)[..10.min(date(first.assessment.at).len())]),
            l + pw,
            h - 14.0,
            escape(&date(last.assessment.at)[..10.min(date(last.assessment.at).len())]),
        );
    }
    page.push_str("</svg>");
    let items: Vec<(String, &str)> = figures
        .tiers
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.clone(), tier_colour(i)))
        .collect();
    legend(page, &items);
    page.push_str(
        "<figcaption>Tier sizes after each assessment (the latest 60)</figcaption></figure>",
    );
}

/// Horizontal stacked bars: one row per label, segments `(value, colour, name)`.
fn stacked_bars(
    page: &mut String,
    id: &str,
    title: &str,
    desc: &str,
    rows: &[(String, Vec<u64>)],
    series: &[(&str, &str)],
) {
    let row_h = 30.0;
    let (l, r, t) = (130.0, 60.0, 6.0);
    let w = 640.0;
    let h = t + rows.len() as f64 * row_h + 6.0;
    let max = rows
        .iter()
        .map(|(_, values)| values.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    svg_open(page, id, 640, h.ceil() as u32, title, desc);
    for (index, (label, values)) in rows.iter().enumerate() {
        let y = t + index as f64 * row_h;
        let shown: String = label.chars().take(18).collect();
        let _ = write!(
            page,
            "<text x=\"0\" y=\"{:.1}\" dominant-baseline=\"middle\" style=\"font-size:12.5px\">{}</text>",
            y + row_h / 2.0 - 2.0,
            escape(&shown)
        );
        let mut x = l;
        for (value, (name, colour)) in values.iter().zip(series) {
            let width = *value as f64 / max * (w - l - r);
            if width <= 0.0 {
                continue;
            }
            let _ = write!(
                page,
                "<rect class=\"mark\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{:.1}\" \
                 fill=\"{colour}\"><title>{}: {} {}</title></rect>",
                y + 3.0,
                row_h - 10.0,
                escape(label),
                count(*value),
                escape(name)
            );
            x += width;
        }
        let _ = write!(
            page,
            "<text class=\"small\" x=\"{:.1}\" y=\"{:.1}\" dominant-baseline=\"middle\">{}</text>",
            x + 6.0,
            y + row_h / 2.0 - 2.0,
            count(values.iter().sum())
        );
    }
    page.push_str("</svg>");
    let items: Vec<(String, &str)> = series
        .iter()
        .map(|(name, colour)| ((*name).to_owned(), *colour))
        .collect();
    legend(page, &items);
}

fn work_section(page: &mut String, figures: &Figures) {
    page.push_str(
        "<section id=\"work\"><h2>Follow-up work</h2>\
         <p class=\"lead\">What the follow-up rules decided and the managers' tasks, as of the \
         report time.</p>",
    );
    let tier_label = |tier: &Option<String>| tier.clone().unwrap_or_else(|| "no tier".into());
    if figures.work_by_tier.is_empty() {
        page.push_str(
            "<p class=\"empty\">No follow-ups recorded yet (`tiercare followups record`, or the \
             daemon, records them).</p>",
        );
    } else {
        page.push_str("<h3>Per tier</h3><figure>");
        let rows: Vec<(String, Vec<u64>)> = figures
            .work_by_tier
            .iter()
            .map(|w| {
                (
                    tier_label(&w.tier),
                    vec![w.done, w.due, w.tasks_overdue, w.upcoming],
                )
            })
            .collect();
        stacked_bars(
            page,
            "chart-work-tiers",
            "Follow-up work per tier",
            "Stacked bars per tier: follow-ups done, follow-ups due, tasks overdue and follow-ups \
             planned for later.",
            &rows,
            &[
                ("done", "#2e9e5b"),
                ("due", "#3654d1"),
                ("tasks overdue", "#d0453a"),
                ("upcoming", "#b8bfcc"),
            ],
        );
        page.push_str("</figure>");
        let rows: Vec<Vec<String>> = figures
            .work_by_tier
            .iter()
            .map(|w| {
                vec![
                    escape(&tier_label(&w.tier)),
                    count(w.done),
                    count(w.due),
                    count(w.upcoming),
                    count(w.skipped),
                    count(w.tasks_open),
                    overdue_cell(w.tasks_overdue),
                    count(w.tasks_done),
                ]
            })
            .collect();
        table(
            page,
            "Follow-ups (done, due, upcoming, skipped) and tasks (open, overdue, done) per tier",
            &[
                "Tier",
                "Done",
                "Due",
                "Upcoming",
                "Skipped",
                "Tasks open",
                "Tasks overdue",
                "Tasks done",
            ],
            &rows,
        );
    }
    if !figures.work_by_owner.is_empty() {
        page.push_str("<h3>Per owner</h3><figure>");
        // The chart shows the owners with the most overdue (then open) tasks; the table all.
        let mut ranked: Vec<&OwnerWork> = figures.work_by_owner.iter().collect();
        ranked.sort_by_key(|w| (std::cmp::Reverse((w.overdue, w.open)), &w.assignee));
        ranked.truncate(CHART_ROWS);
        let rows: Vec<(String, Vec<u64>)> = ranked
            .iter()
            .map(|w| (w.assignee.clone(), vec![w.done, w.open, w.overdue]))
            .collect();
        stacked_bars(
            page,
            "chart-work-owners",
            "Tasks per owner",
            "Stacked bars per assignee: tasks done, open and overdue.",
            &rows,
            &[
                ("done", "#2e9e5b"),
                ("open", "#3654d1"),
                ("overdue", "#d0453a"),
            ],
        );
        if figures.work_by_owner.len() > CHART_ROWS {
            let _ = write!(
                page,
                "<figcaption>The {CHART_ROWS} owners with the most overdue tasks, of {}; the \
                 table lists everyone.</figcaption>",
                count(figures.work_by_owner.len() as u64)
            );
        }
        page.push_str("</figure>");
        let rows: Vec<Vec<String>> = figures
            .work_by_owner
            .iter()
            .map(|w| {
                vec![
                    escape(&w.assignee),
                    count(w.open),
                    overdue_cell(w.overdue),
                    count(w.done),
                ]
            })
            .collect();
        table(
            page,
            "Tasks per assignee",
            &["Assignee", "Open", "Overdue", "Done"],
            &rows,
        );
    }
    if !figures.managers.is_empty() {
        page.push_str("<h3>Workload against capacity</h3><figure>");
        workload_chart(page, figures);
        let shown = if figures.managers.len() > CHART_ROWS {
            format!(
                " The {CHART_ROWS} most loaded of {} managers; the table lists everyone.",
                count(figures.managers.len() as u64)
            )
        } else {
            String::new()
        };
        let _ = write!(
            page,
            "<figcaption>Customers owned; the dark mark is the manager's capacity.{shown}</figcaption></figure>"
        );
        let rows: Vec<Vec<String>> = figures
            .managers
            .iter()
            .map(|m| {
                let load = m
                    .capacity
                    .filter(|c| *c > 0)
                    .map_or("–".to_owned(), |c| percent(m.customers as f64 / c as f64));
                let load = if m.capacity.is_some_and(|c| m.customers > c) {
                    format!("<span class=\"over\">{load}</span>")
                } else {
                    load
                };
                vec![
                    format!(
                        "{}{}",
                        escape(&m.name),
                        if m.active { "" } else { " (inactive)" }
                    ),
                    count(m.customers),
                    m.capacity.map_or("no limit".to_owned(), count),
                    load,
                    count(m.open_tasks),
                ]
            })
            .collect();
        table(
            page,
            "Managers: customers owned against capacity, and tasks not done",
            &["Manager", "Customers", "Capacity", "Load", "Open tasks"],
            &rows,
        );
    }
    page.push_str("</section>\n");
}

fn overdue_cell(n: u64) -> String {
    if n > 0 {
        format!("<span class=\"over\">{}</span>", count(n))
    } else {
        count(n)
    }
}

fn workload_chart(page: &mut String, figures: &Figures) {
    // The most loaded first: customers against capacity (no capacity: by customers, after).
    let load = |m: &&ManagerLoad| match m.capacity {
        Some(capacity) if capacity > 0 => m.customers as f64 / capacity as f64,
        Some(_) => f64::INFINITY,
        None => -1.0 / (1.0 + m.customers as f64),
    };
    let mut managers: Vec<&ManagerLoad> = figures.managers.iter().collect();
    if managers.len() > CHART_ROWS {
        managers.sort_by(|a, b| load(b).total_cmp(&load(a)));
        managers.truncate(CHART_ROWS);
    }
    // Narrow, so that on a 360-pixel phone the text stays at least 11 pixels (the chart is
    // scaled to the width): each manager's name and figures on a line, their bar below it,
    // across the whole width, so no label is cut whatever the figures.
    let row_h = 40.0;
    let (label_h, bar_h, t) = (16.0, 12.0, 4.0);
    let w = WORKLOAD_WIDTH;
    let h = t + managers.len() as f64 * row_h;
    let max = managers
        .iter()
        .map(|m| m.customers.max(m.capacity.unwrap_or(0)))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    // Room for the capacity mark's stroke at the right end.
    let scale = (w - 3.0) / max;
    svg_open_styled(
        page,
        "chart-workload",
        WORKLOAD_WIDTH as u32,
        h.ceil() as u32,
        "max-width:520px",
        "Manager workload against capacity",
        "One bar per manager: customers owned; a vertical mark shows the capacity. Red bars are over capacity.",
    );
    for (index, m) in managers.iter().enumerate() {
        let y = t + index as f64 * row_h;
        let over = m.capacity.is_some_and(|c| m.customers > c);
        let name: String = m.name.chars().take(22).collect();
        let _ = write!(
            page,
            "<text x=\"2\" y=\"{:.1}\" style=\"font-size:13px\">{}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" style=\"font-size:13px;fill:#5b6475\">{} / {}</text>\
             <rect class=\"mark\" x=\"0\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bar_h:.1}\" rx=\"3\" fill=\"{}\">\
             <title>{}: {} customers, capacity {}</title></rect>",
            y + label_h - 3.0,
            escape(&name),
            w - 2.0,
            y + label_h - 3.0,
            count(m.customers),
            m.capacity.map_or("–".to_owned(), count),
            y + label_h + 2.0,
            (m.customers as f64 * scale).max(1.0),
            if over { "#d0453a" } else { "#1a9c9c" },
            escape(&m.name),
            count(m.customers),
            m.capacity.map_or("none".to_owned(), count),
        );
        if let Some(capacity) = m.capacity {
            let x = capacity as f64 * scale + 1.0;
            let _ = write!(
                page,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#1b1f2a\" stroke-width=\"2.5\"/>",
                y + label_h,
                y + label_h + bar_h + 4.0
            );
        }
    }
    page.push_str("</svg>");
}

/// The workload chart's width in SVG units: about a phone's, so its text is not scaled down
/// there.
const WORKLOAD_WIDTH: f64 = 340.0;

fn email_section(page: &mut String, figures: &Figures) {
    page.push_str(
        "<section id=\"emails\"><h2>E-mail outcomes</h2>\
         <p class=\"lead\">E-mails per follow-up rule by what became of them.</p>",
    );
    let rules = &figures.emails;
    if rules.is_empty() {
        page.push_str("<p class=\"empty\">No e-mails were queued yet.</p>");
    } else {
        let series = [
            ("sent", "#2e9e5b"),
            ("deferred", "#e0a21f"),
            ("failed", "#d0453a"),
            ("suppressed", "#8a63d2"),
            ("unknown", "#6b7280"),
            ("waiting", "#b8bfcc"),
            ("cancelled", "#dfe3ea"),
        ];
        let rows: Vec<(String, Vec<u64>)> = rules
            .iter()
            .map(|r| (r.rule_id.clone(), r.by_outcome().to_vec()))
            .collect();
        page.push_str("<figure>");
        stacked_bars(
            page,
            "chart-emails",
            "E-mail outcomes per rule",
            "Stacked bars per follow-up rule: e-mails sent, deferred, failed, suppressed, \
                 unknown, waiting and cancelled.",
            &rows,
            &series,
        );
        page.push_str("</figure>");
        let table_rows: Vec<Vec<String>> = rules
            .iter()
            .map(|r| {
                let mut row = vec![escape(&r.rule_id)];
                row.extend(r.by_outcome().into_iter().map(count));
                row
            })
            .collect();
        table(
            page,
            "E-mails per rule and outcome",
            &[
                "Rule",
                "Sent",
                "Deferred",
                "Failed",
                "Suppressed",
                "Unknown",
                "Waiting",
                "Cancelled",
            ],
            &table_rows,
        );
        let stale: u64 = rules.iter().map(|r| r.stale).sum();
        let untrue: u64 = rules.iter().map(|r| r.no_longer_true).sum();
        if stale + untrue > 0 {
            let _ = write!(
                page,
                "<p>Cancelled when they were to be sent: <b>{}</b> stale (past their rule's \
                 <code>max_delay</code>), <b>{}</b> no longer true (the follow-up's trigger or \
                 condition no longer held).</p>",
                count(stale),
                count(untrue)
            );
        }
    }
    let _ = write!(
        page,
        "<p>Unsubscribed addresses: <b>{}</b> (the suppression list keeps only a hash of \
         each address, so unsubscribes are counted in total, not per rule).</p>",
        count(figures.unsubscribes)
    );
    reputation_table(page, figures);
    sms_table(page, figures);
    page.push_str("</section>\n");
}

/// SMS per follow-up rule by outcome: a table of their own (not in the e-mails' figures).
fn sms_table(page: &mut String, figures: &Figures) {
    if figures.sms.is_empty() {
        return;
    }
    page.push_str("<h3>SMS</h3>");
    let rows: Vec<Vec<String>> = figures
        .sms
        .iter()
        .map(|r| {
            let mut row = vec![escape(&r.rule_id)];
            row.extend(r.by_outcome().into_iter().map(count));
            row
        })
        .collect();
    table(
        page,
        "SMS per rule and outcome",
        &[
            "Rule",
            "Sent",
            "Deferred",
            "Failed",
            "Suppressed",
            "Unknown",
            "Waiting",
            "Cancelled",
        ],
        &rows,
    );
}

/// The growth models' check: BG/NBD fitted without the last 90 days, its expectation for each
/// calibration frequency against what those customers did in the 90 days (a table).
fn growth_section(page: &mut String, figures: &Figures) {
    use crate::growth::HoldoutOutcome;
    let Some(outcome) = &figures.growth_holdout else {
        return;
    };
    page.push_str("<section id=\"growth\"><h2>Growth model: predicted against actual</h2>");
    match outcome {
        HoldoutOutcome::Unavailable(reason) => {
            let _ = write!(
                page,
                "<p class=\"note\">No check: {}.</p></section>",
                escape(reason)
            );
        }
        HoldoutOutcome::Checked(check) => {
            let _ = write!(
                page,
                "<p class=\"lead\">BG/NBD fitted on the orders up to {} only (r {:.3}, \
                 alpha {:.2} days, a {:.3}, b {:.3}; {} customers), then asked how many purchase \
                 days each customer would make in the {} days after: the mean per group of \
                 customers by their repeat purchase days before, against what they did.</p>",
                escape(&format_time(check.calibration_end)),
                check.bgnbd.r,
                check.bgnbd.alpha,
                check.bgnbd.a,
                check.bgnbd.b,
                count(check.quality.customers),
                check.days
            );
            let rows: Vec<Vec<String>> = check
                .rows
                .iter()
                .map(|row| {
                    vec![
                        format!("{}{}", row.frequency, if row.or_more { "+" } else { "" }),
                        count(row.customers),
                        format!("{:.2}", row.actual),
                        format!("{:.2}", row.predicted),
                    ]
                })
                .collect();
            table(
                page,
                "Purchase days in the holdout, per customer: actual and predicted",
                &[
                    "repeat purchase days before",
                    "customers",
                    "actual",
                    "predicted",
                ],
                &rows,
            );
            tracking_chart(page, check);
            page.push_str("</section>");
        }
    }
}

/// A day number (days since 1970-01-01) as `YYYY-MM-DD`.
fn format_day(day: i64) -> String {
    i32::try_from(day)
        .ok()
        .and_then(chrono::NaiveDate::from_epoch_days)
        .map_or_else(|| day.to_string(), |date| date.to_string())
}

/// The paper's tracking chart (its Figure 4): the calibration's customers' cumulative repeat
/// purchase days week by week, actual against BG/NBD's expectation, over the calibration and
/// the holdout; then the same as a table.
fn tracking_chart(page: &mut String, check: &crate::growth::HoldoutCheck) {
    let weeks = &check.tracking;
    let Some(last) = weeks.last() else {
        return;
    };
    page.push_str(
        "<h3>Cumulative repeat purchases, week by week</h3>\
         <p class=\"lead\">The same customers from their first purchases on: the purchase days \
         after each one's first, added up week by week, against the sum of what the model \
         expects of each customer for their own time since their first purchase. Left of the \
         dashed line the model saw the orders; right of it, it predicts.</p><figure>",
    );
    let (w, h) = (640.0, 340.0);
    let (l, r, t, b) = (64.0, 16.0, 14.0, 44.0);
    let (pw, ph) = (w - l - r, h - t - b);
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let top = weeks
        .iter()
        .map(|week| week.expected.max(week.actual as f64))
        .fold(1.0_f64, f64::max);
    let n = f64::from(last.week);
    let px = |week: f64| l + week / n * pw;
    let py = |v: f64| t + (1.0 - v / top) * ph;
    svg_open(
        page,
        "chart-growth-tracking",
        640,
        340,
        "Cumulative repeat purchases per week: actual and expected by the growth model",
        "Two rising lines over the weeks since the customers' first purchases: the actual \
         cumulative repeat purchase days (solid) and the model's expectation (dashed). A dashed \
         vertical line marks the end of the calibration period.",
    );
    for step in 0..=4 {
        let v = top * f64::from(step) / 4.0;
        let _ = write!(
            page,
            "<line class=\"gridline\" x1=\"{l}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"small\" x=\"{:.1}\" y=\"{y:.1}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>",
            l + pw,
            l - 6.0,
            count(v.round() as u64),
            y = py(v),
        );
    }
    let ticks = last.week.div_ceil(6).max(1);
    for week in (0..=last.week).step_by(ticks as usize) {
        let _ = write!(
            page,
            "<text class=\"small\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{week}</text>",
            px(f64::from(week)),
            h - b + 16.0,
        );
    }
    let split = px(f64::from(check.calibration_weeks));
    let _ = write!(
        page,
        "<line class=\"axis\" x1=\"{l}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>\
         <line class=\"axis\" x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{:.1}\"/>\
         <line x1=\"{split:.1}\" x2=\"{split:.1}\" y1=\"{t}\" y2=\"{:.1}\" stroke=\"#8a93a6\" stroke-dasharray=\"4 4\"/>\
         <text class=\"small\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">calibration | holdout</text>\
         <text class=\"small\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">weeks since the first customer's first purchase</text>\
         <text class=\"small\" transform=\"translate(12 {:.1}) rotate(-90)\" text-anchor=\"middle\">repeat purchase days</text>",
        py(0.0),
        px(n),
        py(0.0),
        py(0.0),
        py(0.0),
        split + 40.0,
        t + 12.0,
        l + pw / 2.0,
        h - 6.0,
        t + ph / 2.0,
    );
    let line = |value: &dyn Fn(&tiercare_growth::TrackingWeek) -> f64| {
        let mut path = format!("M{:.1},{:.1}", px(0.0), py(0.0));
        for week in weeks {
            let _ = write!(
                path,
                " L{:.1},{:.1}",
                px(f64::from(week.week)),
                py(value(week))
            );
        }
        path
    };
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let actual = line(&|week| week.actual as f64);
    let expected = line(&|week| week.expected);
    let _ = write!(
        page,
        "<path class=\"mark\" id=\"tracking-actual\" d=\"{actual}\" fill=\"none\" stroke=\"#1b1f2a\" stroke-width=\"2.5\" stroke-linejoin=\"round\"/>\
         <path class=\"mark\" id=\"tracking-expected\" d=\"{expected}\" fill=\"none\" stroke=\"#d1495b\" stroke-width=\"2.5\" stroke-dasharray=\"7 4\" stroke-linejoin=\"round\"/></svg>"
    );
    legend(
        page,
        &[
            ("actual".to_owned(), "#1b1f2a"),
            ("expected by BG/NBD".to_owned(), "#d1495b"),
        ],
    );
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let gap = (last.expected - last.actual as f64) / (last.actual as f64).max(1.0);
    let _ = write!(
        page,
        "<figcaption>By week {}: {} repeat purchase days, {} expected ({:+.1}%).</figcaption></figure>",
        last.week,
        count(last.actual),
        count(last.expected.round() as u64),
        gap * 100.0
    );
    let rows: Vec<Vec<String>> = weeks
        .iter()
        .map(|week| {
            vec![
                week.week.to_string(),
                escape(&format_day(week.end_day)),
                count(week.actual),
                format!("{:.1}", week.expected),
            ]
        })
        .collect();
    table(
        page,
        "Cumulative repeat purchase days per week: actual and expected",
        &["week", "last day", "actual", "expected"],
        &rows,
    );
}

/// Sends, hard bounces and complaints per rule over the report's last 30 days: what the
/// reputation guard judges (`[mail.reputation]`).
fn reputation_table(page: &mut String, figures: &Figures) {
    if figures.reputation.is_empty() {
        return;
    }
    let mut by_rule: std::collections::BTreeMap<&str, (u64, u64, u64)> = Default::default();
    for row in &figures.reputation {
        let entry = by_rule.entry(row.rule_id.as_str()).or_default();
        entry.0 += row.sends;
        entry.1 += row.hard_bounces;
        entry.2 += row.complaints;
    }
    let rate = |part: u64, sends: u64| {
        if sends == 0 {
            "–".to_owned()
        } else {
            #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
            let share = part as f64 * 100.0 / sends as f64;
            format!("{share:.1}%")
        }
    };
    let rows: Vec<Vec<String>> = by_rule
        .iter()
        .map(|(rule, (sends, bounces, complaints))| {
            vec![
                escape(rule),
                count(*sends),
                rate(*bounces, *sends),
                rate(*complaints, *sends),
            ]
        })
        .collect();
    table(
        page,
        "Sending reputation per rule, last 30 days",
        &["Rule", "Sends", "Hard bounces", "Complaints"],
        &rows,
    );
}

/// Survey response rates and scores per survey and tier: a table (the figures are few).
fn survey_section(page: &mut String, figures: &Figures) {
    if figures.surveys.is_empty() {
        return;
    }
    page.push_str(
        "<section id=\"surveys\"><h2>Satisfaction surveys</h2>\
         <p class=\"lead\">Survey e-mails sent by the report time and the answers given to \
         them, per survey and tier. NPS is the share of promoters (9&ndash;10) minus the share \
         of detractors (0&ndash;6) among the answers, from &minus;100 to 100; CSAT is the mean \
         answer from 1 to 5.</p>",
    );
    let rows: Vec<Vec<String>> = figures
        .surveys
        .iter()
        .map(|s| {
            let score = match (s.nps(), s.csat_mean()) {
                (Some(nps), _) => format!("NPS {nps:+.0}"),
                (_, Some(mean)) => format!("CSAT {mean:.2}"),
                _ => "-".to_owned(),
            };
            vec![
                s.survey.clone(),
                s.tier.clone().unwrap_or_else(|| "(no tier)".to_owned()),
                count(s.sent),
                count(s.answered),
                s.response_rate().map_or_else(|| "-".to_owned(), percent),
                score,
                if s.kind == "nps" {
                    format!("{} / {} / {}", s.promoters, s.passives, s.detractors)
                } else {
                    "-".to_owned()
                },
            ]
        })
        .collect();
    table(
        page,
        "Survey responses and scores per tier",
        &[
            "Survey",
            "Tier",
            "Sent",
            "Answered",
            "Response rate",
            "Score",
            "Promoters / passives / detractors",
        ],
        &rows,
    );
    page.push_str("</section>");
}

/// Coupons issued and redeemed per rule and tier, with the redeemers' revenue around issue.
fn coupons_section(page: &mut String, figures: &Figures) {
    if figures.coupons.is_empty() {
        return;
    }
    let days = crate::report::figures::COUPON_REVENUE_DAYS;
    let _ = write!(
        page,
        "<section id=\"coupons\"><h2>Coupons</h2>\
         <p class=\"lead\">Codes issued by each follow-up rule, per tier (the customer's tier at \
         issue), how many were redeemed by an imported order, and what the redeemers spent in \
         the {days} days before and after their code was issued.</p>\
         <p class=\"note\"><b>A plain comparison, not a causal claim.</b> Redeemers chose to \
         buy; what they would have spent without the coupon is not known.</p>"
    );
    let rows: Vec<Vec<String>> = figures
        .coupons
        .iter()
        .map(|row| {
            let dash = |text: &str| {
                if text.is_empty() {
                    "-".to_owned()
                } else {
                    escape(text)
                }
            };
            let rate = if row.issued > 0 {
                format!("{:.1}%", row.redeemed as f64 * 100.0 / row.issued as f64)
            } else {
                "-".to_owned()
            };
            vec![
                dash(&row.rule_id),
                dash(&row.tier),
                count(row.issued),
                count(row.redeemed),
                rate,
                money(row.redeemers_revenue_before),
                money(row.redeemers_revenue_after),
            ]
        })
        .collect();
    table(
        page,
        "Coupons per rule and tier",
        &[
            "rule",
            "tier",
            "issued",
            "redeemed",
            "rate",
            &format!("redeemers' revenue, {days} days before"),
            &format!("{days} days after"),
        ],
        &rows,
    );
    page.push_str("</section>");
}

fn care_section(page: &mut String, figures: &Figures) {
    let Some(care) = &figures.care else {
        return;
    };
    let _ = write!(
        page,
        "<section id=\"care\"><h2>The {tier} care programme</h2>\
         <p class=\"lead\">Customers who were ever in tier {tier}: those who received e-mails \
         after entering it against those who did not, and how many of each moved up to a \
         higher tier.</p>\
         <p class=\"note\"><b>A plain comparison, not a causal claim.</b> The groups differ in \
         more than the e-mails (consent, an address, how long they have been in {tier}), so a \
         difference between them does not show what the e-mails did.</p><figure>",
        tier = escape(&care.tier)
    );
    let groups = [
        ("received e-mails", care.emailed, care.emailed_moved_up),
        ("no e-mails", care.not_emailed, care.not_emailed_moved_up),
    ];
    svg_open(
        page,
        "chart-care",
        640,
        120,
        "Share of each group that moved up",
        "Two bars: the share of customers who moved up, among those who received care e-mails \
         and among those who did not.",
    );
    let (l, bar) = (150.0, 320.0);
    for (index, (label, total, up)) in groups.iter().enumerate() {
        let y = 10.0 + index as f64 * 52.0;
        let share = if *total > 0 {
            *up as f64 / *total as f64
        } else {
            0.0
        };
        let _ = write!(
            page,
            "<text x=\"0\" y=\"{:.1}\" dominant-baseline=\"middle\" style=\"font-size:14px\">{label}</text>\
             <rect x=\"{l}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"34\" rx=\"4\" fill=\"#eef0f5\"/>\
             <rect class=\"mark\" x=\"{l}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"34\" rx=\"4\" fill=\"{}\">\
             <title>{label}: {} of {} moved up</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" style=\"font-size:15px;font-weight:600\">{} moved up</text>\
             <text class=\"small\" x=\"{:.1}\" y=\"{:.1}\">{} of {} customers</text>",
            y + 17.0,
            (share * bar).max(1.0),
            if index == 0 { "#2e9e5b" } else { "#9aa3b5" },
            count(*up),
            count(*total),
            l + bar + 10.0,
            y + 15.0,
            percent(share),
            l + bar + 10.0,
            y + 31.0,
            count(*up),
            count(*total),
        );
    }
    page.push_str("</svg>");
    let _ = write!(
        page,
        "<figcaption>\"Received e-mails\": the outbox sent the customer at least one e-mail \
         after they first entered {}.</figcaption></figure>",
        escape(&care.tier)
    );
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|(label, total, up)| {
            vec![
                (*label).to_owned(),
                count(*total),
                count(*up),
                percent(if *total > 0 {
                    *up as f64 / *total as f64
                } else {
                    0.0
                }),
            ]
        })
        .collect();
    table(
        page,
        "The care programme: a plain comparison, not a causal claim",
        &["Group", "Customers", "Moved up", "Share"],
        &rows,
    );
    page.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_for_people() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(money(-1234.5), "-1,235");
        assert_eq!(compact(950.0), "950");
        assert_eq!(compact(12_345.0), "12.3k");
        assert_eq!(compact(3_448_481.0), "3.4M");
        assert_eq!(compact(686_312_087.0), "686M");
        assert_eq!(percent(0.8), "80.0%");
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
