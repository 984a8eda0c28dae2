//! The results of a run: one row per measurement with its target and its
//! ratio to the JetStream ceiling, printed as a table and written as JSON.

use std::fmt::Write as _;

use serde::Serialize;

/// A target a row is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Target {
    AtLeast(f64),
    Below(f64),
}

impl Target {
    pub fn met(self, value: f64) -> bool {
        match self {
            Self::AtLeast(t) => value >= t,
            Self::Below(t) => value < t,
        }
    }

    fn describe(self, unit: &str) -> String {
        match self {
            Self::AtLeast(t) => format!(">= {}{}", number(t), unit_suffix(unit)),
            Self::Below(t) => format!("< {}{}", number(t), unit_suffix(unit)),
        }
    }
}

/// One measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: &'static str,
    pub case: String,
    pub metric: String,
    pub value: f64,
    pub unit: &'static str,
    /// The value over the JetStream ceiling it is compared with.
    pub ratio: Option<f64>,
    pub target: Option<Target>,
    /// The target applies to `ratio`, not to `value`.
    pub target_on_ratio: bool,
    pub met: Option<bool>,
}

impl Row {
    pub fn new(
        scenario: &'static str,
        case: impl Into<String>,
        metric: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) -> Self {
        Self {
            scenario,
            case: case.into(),
            metric: metric.into(),
            value,
            unit,
            ratio: None,
            target: None,
            target_on_ratio: false,
            met: None,
        }
    }

    pub fn ratio(mut self, reference: Option<f64>) -> Self {
        self.ratio = reference.filter(|r| *r > 0.0).map(|r| self.value / r);
        self
    }

    pub fn target(mut self, target: Target) -> Self {
        self.met = Some(target.met(self.value));
        self.target = Some(target);
        self
    }

    /// A target on the ratio rather than the value.
    pub fn ratio_target(mut self, target: Target) -> Self {
        self.met = self.ratio.map(|r| target.met(r));
        self.target = Some(target);
        self.target_on_ratio = true;
        self
    }

    fn target_text(&self) -> String {
        match self.target {
            None => String::new(),
            Some(t) if self.target_on_ratio => t.describe("x JS"),
            Some(t) => t.describe(self.unit),
        }
    }
}

fn unit_suffix(unit: &str) -> String {
    if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    }
}

/// A number with sensible digits for a table.
pub fn number(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".to_owned()
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// The table as printed.
pub fn table(rows: &[Row]) -> String {
    let head = [
        "SCENARIO", "CASE", "METRIC", "VALUE", "x JS", "TARGET", "MET",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.scenario.to_owned(),
                r.case.clone(),
                r.metric.clone(),
                format!("{}{}", number(r.value), unit_suffix(r.unit)),
                r.ratio.map(number).unwrap_or_default(),
                r.target_text(),
                match r.met {
                    Some(true) => "yes".to_owned(),
                    Some(false) => "NO".to_owned(),
                    None => String::new(),
                },
            ]
        })
        .collect();
    let mut widths = head.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cols: &[&str]| {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i == 3 || i == 4 {
                let _ = write!(s, "{c:>w$}  ");
            } else {
                let _ = write!(s, "{c:<w$}  ");
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&mut out, &head);
    for row in &cells {
        let cols: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&mut out, &cols);
    }
    out
}

/// The same table in Markdown, for the README.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | case | metric | value | × JetStream | target | met |\n|---|---|---|---:|---:|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {}{} | {} | {} | {} |",
            r.scenario,
            r.case,
            r.metric,
            number(r.value),
            unit_suffix(r.unit),
            r.ratio.map(number).unwrap_or_default(),
            r.target_text(),
            match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            }
        );
    }
    out
}
