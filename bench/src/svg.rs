//! Line charts as SVG, written by hand: a few panels of lines with
//! logarithmic or linear axes, a legend and dashed reference lines are all
//! the figures need, and a plotting crate would bring a font stack and
//! dozens of dependencies for that.

use std::fmt::Write as _;

/// Colours that stay apart for the colour-blind (Okabe–Ito).
pub const COLORS: [&str; 7] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
];

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: &'static str,
    pub dashed: bool,
}

/// One panel.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
    /// Horizontal reference lines (targets), with their labels.
    pub rules: Vec<(f64, String)>,
}

const PANEL_W: f64 = 460.0;
const PANEL_H: f64 = 340.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 96.0;

/// Panels side by side under a common title.
pub fn render(title: &str, charts: &[Chart]) -> String {
    let width = PANEL_W * charts.len().max(1) as f64;
    let height = PANEL_H + BOTTOM;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{}" y="20" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        width / 2.0,
        escape(title)
    );
    for (i, chart) in charts.iter().enumerate() {
        panel(&mut s, chart, i as f64 * PANEL_W);
    }
    s.push_str("</svg>\n");
    s
}

struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Axis {
    fn fit(values: impl Iterator<Item = f64>, log: bool) -> Self {
        let vals: Vec<f64> = values
            .filter(|v| v.is_finite() && (!log || *v > 0.0))
            .collect();
        let (mut lo, mut hi) = vals
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
        if vals.is_empty() {
            (lo, hi) = (1.0, 10.0);
        }
        if log {
            lo = 10f64.powf(lo.log10().floor());
            hi = 10f64.powf(hi.log10().ceil());
            if hi <= lo {
                hi = lo * 10.0;
            }
        } else {
            lo = lo.min(0.0);
            let step = nice_step((hi - lo).max(1e-9) / 5.0);
            hi = (hi / step).ceil() * step;
            if hi <= lo {
                hi = lo + 1.0;
            }
        }
        Self { lo, hi, log }
    }

    /// Position from 0 to 1.
    fn at(&self, v: f64) -> f64 {
        if self.log {
            (v.max(1e-12).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    fn ticks(&self) -> Vec<f64> {
        if self.log {
            let mut out = Vec::new();
            let mut decade = self.lo;
            while decade <= self.hi * 1.0001 {
                for m in [1.0, 2.0, 5.0] {
                    let v = decade * m;
                    if v >= self.lo * 0.9999 && v <= self.hi * 1.0001 {
                        out.push(v);
                    }
                }
                decade *= 10.0;
            }
            out
        } else {
            let step = nice_step((self.hi - self.lo) / 5.0);
            let mut out = Vec::new();
            let mut v = (self.lo / step).ceil() * step;
            while v <= self.hi + step * 1e-6 {
                out.push(v);
                v += step;
            }
            out
        }
    }
}

fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn label(v: f64) -> String {
    if v >= 1000.0 && (v / 1000.0).fract() == 0.0 {
        format!("{}k", v / 1000.0)
    } else if v >= 1.0 || v == 0.0 {
        format!("{}", (v * 100.0).round() / 100.0)
    } else {
        format!("{v}")
    }
}

fn panel(s: &mut String, chart: &Chart, x0: f64) {
    let all = || chart.series.iter().flat_map(|se| se.points.iter());
    let xa = Axis::fit(all().map(|p| p.0), chart.log_x);
    let ya = Axis::fit(
        all().map(|p| p.1).chain(chart.rules.iter().map(|r| r.0)),
        chart.log_y,
    );
    let (pl, pt) = (x0 + LEFT, TOP);
    let (pw, ph) = (PANEL_W - LEFT - RIGHT, PANEL_H - TOP - 40.0);
    let px = |v: f64| pl + xa.at(v) * pw;
    let py = |v: f64| pt + ph - ya.at(v) * ph;
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="13" font-weight="bold">{}</text>"#,
        pl + pw / 2.0,
        pt - 8.0,
        escape(&chart.title)
    );
    let _ = writeln!(
        s,
        r##"<rect x="{pl}" y="{pt}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##
    );
    for t in ya.ticks() {
        let y = py(t);
        let _ = writeln!(
            s,
            r##"<line x1="{pl}" x2="{}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            pl + pw,
            pl - 4.0,
            y + 4.0,
            label(t)
        );
    }
    let mut xs: Vec<f64> = all().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    for t in xs {
        let x = px(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x}" x2="{x}" y1="{pt}" y2="{}" stroke="#eee"/><text x="{x}" y="{}" text-anchor="middle">{}</text>"##,
            pt + ph,
            pt + ph + 16.0,
            label(t)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        pl + pw / 2.0,
        pt + ph + 34.0,
        escape(&chart.x_label)
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate({},{}) rotate(-90)" text-anchor="middle">{}</text>"#,
        x0 + 16.0,
        pt + ph / 2.0,
        escape(&chart.y_label)
    );
    for (v, text) in &chart.rules {
        let y = py(*v);
        let _ = writeln!(
            s,
            r##"<line x1="{pl}" x2="{}" y1="{y}" y2="{y}" stroke="#B00" stroke-dasharray="2,3"/><text x="{}" y="{}" text-anchor="end" fill="#B00" font-size="11">{}</text>"##,
            pl + pw,
            pl + pw - 4.0,
            y - 4.0,
            escape(text)
        );
    }
    for se in &chart.series {
        let points: Vec<String> = se
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite() && (!chart.log_y || *y > 0.0))
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let dash = if se.dashed {
            r#" stroke-dasharray="6,4""#
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
            points.join(" "),
            se.color
        );
        if !se.dashed {
            for p in &points {
                let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(
                    s,
                    r#"<circle cx="{x}" cy="{y}" r="3" fill="{}"/>"#,
                    se.color
                );
            }
        }
    }
    // The legend, under the panel, two entries a line.
    for (i, se) in chart.series.iter().enumerate() {
        let lx = pl + (i % 2) as f64 * (pw / 2.0);
        let ly = pt + ph + 54.0 + (i / 2) as f64 * 16.0;
        let dash = if se.dashed {
            r#" stroke-dasharray="6,4""#
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" x2="{}" y1="{}" y2="{}" stroke="{}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            lx + 22.0,
            ly - 4.0,
            ly - 4.0,
            se.color,
            lx + 28.0,
            ly,
            escape(&se.name)
        );
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_well_formed_svg_with_every_series() {
        let chart = Chart {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y <ms>".into(),
            log_x: true,
            log_y: true,
            series: vec![Series {
                name: "p99".into(),
                points: vec![(50.0, 3.0), (200.0, 4.5), (1000.0, 20.0)],
                color: COLORS[0],
                dashed: false,
            }],
            rules: vec![(50.0, "target".into())],
        };
        let svg = render("figure", &[chart.clone(), chart]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("y &lt;ms&gt;"));
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn log_ticks_cover_the_decades() {
        let a = Axis::fit([3.0, 40.0].into_iter(), true);
        assert_eq!((a.lo, a.hi), (1.0, 100.0));
        assert_eq!(a.ticks(), [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]);
    }
}
