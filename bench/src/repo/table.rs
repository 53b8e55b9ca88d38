//! Results (`key=value` lines from the scenario processes) and the side-by-side table.

use std::collections::BTreeMap;

/// Figures of one side, by key.
pub type Figures = BTreeMap<String, f64>;

/// Parse `key=value` lines (other lines are ignored).
pub fn parse(text: &str) -> Figures {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// What a figure measures, which fixes how it prints and which way the ratio goes.
#[derive(Clone, Copy)]
pub enum Unit {
    /// Milliseconds (lower is better; ratio = python / tufpi).
    Ms,
    /// Megabytes of peak RSS (lower is better; ratio = python / tufpi).
    Mb,
    /// Per second (higher is better; ratio = tufpi / python).
    PerSec,
}

/// A goal for a row.
#[derive(Clone, Copy)]
pub enum Goal {
    /// tufpi's figure at most this.
    AtMost(f64),
    /// tufpi's figure at least this.
    AtLeast(f64),
    /// Ratio over python-tuf at least this.
    Ratio(f64),
}

/// One line of the table.
pub struct Row {
    /// What was measured.
    pub scenario: String,
    /// tufpi's figure.
    pub tufpi: Option<f64>,
    /// python-tuf's figure.
    pub python: Option<f64>,
    /// Unit of both figures.
    pub unit: Unit,
    /// The goal, if the issue sets one.
    pub goal: Option<Goal>,
    /// Marker after the python figure (footnote), e.g. "*" for extrapolated.
    pub mark: &'static str,
}

impl Row {
    /// A row from `key` in both sides' figures.
    pub fn new(scenario: &str, key: &str, t: &Figures, p: &Figures, unit: Unit) -> Row {
        Row {
            scenario: scenario.to_string(),
            tufpi: t.get(key).copied(),
            python: p.get(key).copied(),
            unit,
            goal: None,
            mark: "",
        }
    }

    /// With a goal.
    pub fn goal(mut self, g: Goal) -> Row {
        self.goal = Some(g);
        self
    }

    fn ratio(&self) -> Option<f64> {
        let (t, p) = (self.tufpi?, self.python?);
        match self.unit {
            Unit::Ms | Unit::Mb => Some(p / t),
            Unit::PerSec => Some(t / p),
        }
    }

    fn met(&self) -> Option<bool> {
        Some(match self.goal? {
            Goal::AtMost(x) => self.tufpi? <= x,
            Goal::AtLeast(x) => self.tufpi? >= x,
            Goal::Ratio(x) => self.ratio()? >= x,
        })
    }
}

fn fmt(v: Option<f64>, unit: Unit) -> String {
    let Some(v) = v.filter(|v| v.is_finite()) else {
        return "-".into();
    };
    match unit {
        Unit::Ms if v >= 1000.0 => format!("{:.2} s", v / 1000.0),
        Unit::Ms if v >= 10.0 => format!("{v:.1} ms"),
        Unit::Ms => format!("{v:.2} ms"),
        Unit::Mb => format!("{v:.0} MB"),
        Unit::PerSec => format!("{v:.0}/s"),
    }
}

fn fmt_goal(g: Option<Goal>, unit: Unit) -> String {
    match g {
        None => String::new(),
        Some(Goal::AtMost(x)) => format!("<= {}", fmt(Some(x), unit)),
        Some(Goal::AtLeast(x)) => format!(">= {}", fmt(Some(x), unit)),
        Some(Goal::Ratio(x)) => format!(">= {x:.0}x python-tuf"),
    }
}

/// Print the table.
pub fn print(rows: &[Row]) {
    let w = rows
        .iter()
        .map(|r| r.scenario.len())
        .max()
        .unwrap_or(8)
        .max(8);
    println!(
        "{:<w$}  {:>11}  {:>12}  {:>8}  {:<20}  met?",
        "scenario", "tufpi", "python-tuf", "ratio", "goal"
    );
    println!("{}", "-".repeat(w + 68));
    for r in rows {
        let py = match r.python {
            Some(_) => format!("{}{}", fmt(r.python, r.unit), r.mark),
            None => "-".into(),
        };
        let ratio = r.ratio().map_or("-".into(), |x| format!("{x:.1}x"));
        let met = match r.met() {
            Some(true) => "met",
            Some(false) => "MISSED",
            None if r.goal.is_some() => "?",
            None => "",
        };
        println!(
            "{:<w$}  {:>11}  {:>12}  {:>8}  {:<20}  {}",
            r.scenario,
            fmt(r.tufpi, r.unit),
            py,
            ratio,
            fmt_goal(r.goal, r.unit),
            met
        );
    }
}
