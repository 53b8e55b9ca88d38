//! Reading python_bench.py's JSON, and the result table.

use tufpi_core::Value;

use crate::measure::Stats;

/// The speed-up over python-tuf the issue asks for.
pub const GOAL: f64 = 10.0;

/// python-tuf's timings and signature for one file.
pub struct PythonCase {
    /// canonicalize+sign times.
    pub sign: Stats,
    /// verify times.
    pub verify: Stats,
    /// Hex signature python-tuf made over the file.
    pub sig: String,
}

fn ms_list(v: Option<&Value>, what: &str) -> Result<Stats, String> {
    let Some(Value::Array(items)) = v else {
        return Err(format!("python output: {what} is not a list"));
    };
    let ms = items
        .iter()
        .map(|x| match x {
            Value::Float(f) => f.parse::<f64>().map_err(|e| e.to_string()),
            Value::Int(i) => i.to_string().parse::<f64>().map_err(|e| e.to_string()),
            _ => Err(format!("python output: {what} holds a non-number")),
        })
        .collect::<Result<Vec<f64>, String>>()?;
    if ms.is_empty() {
        return Err(format!("python output: {what} is empty"));
    }
    Ok(Stats::new(ms))
}

/// Pick file `name`'s results out of python_bench.py's output.
pub fn python_case(out: &Value, name: &str) -> Result<PythonCase, String> {
    let r = out
        .get("results")
        .and_then(|r| r.get(name))
        .ok_or_else(|| format!("python output has no results for {name}"))?;
    Ok(PythonCase {
        sign: ms_list(r.get("sign_ms"), "sign_ms")?,
        verify: ms_list(r.get("verify_ms"), "verify_ms")?,
        sig: r
            .get("sig")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    })
}

/// One line of the table.
pub struct Row {
    /// Operation measured.
    pub op: &'static str,
    /// File it ran on.
    pub file: &'static str,
    /// tufpi timings.
    pub rust: Stats,
    /// python-tuf timings, if Python ran.
    pub python: Option<Stats>,
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        self.python
            .as_ref()
            .map(|p| p.median() / self.rust.median())
    }
}

/// Print the table (median and mean ms; ratio = python median / rust median) and one
/// summary line per operation.
pub fn print(rows: &[Row]) {
    println!(
        "{:<18} {:<9} {:>11} {:>11} {:>12} {:>12} {:>8}",
        "operation", "file", "rust med", "rust mean", "python med", "python mean", "ratio"
    );
    println!("{}", "-".repeat(87));
    for r in rows {
        let (pm, pa, ratio) = match (&r.python, r.ratio()) {
            (Some(p), Some(x)) => (
                format!("{:.2} ms", p.median()),
                format!("{:.2} ms", p.mean()),
                format!("{x:.1}x"),
            ),
            _ => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "{:<18} {:<9} {:>8.3} ms {:>8.3} ms {:>12} {:>12} {:>8}",
            r.op,
            r.file,
            r.rust.median(),
            r.rust.mean(),
            pm,
            pa,
            ratio
        );
    }
    println!();
    let mut ops: Vec<&str> = Vec::new();
    for r in rows {
        if !ops.contains(&r.op) {
            ops.push(r.op);
        }
    }
    for op in ops {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.op == op).collect();
        if mine.iter().any(|r| r.python.is_none()) {
            continue;
        }
        let parts: Vec<String> = mine
            .iter()
            .map(|r| format!("{}: {:.1}x", r.file, r.ratio().unwrap_or(0.0)))
            .collect();
        let met = mine.iter().all(|r| r.ratio().unwrap_or(0.0) >= GOAL);
        println!(
            "{op}: tufpi vs python-tuf speed-up {} (goal >= {GOAL}x: {})",
            parts.join(", "),
            if met { "met" } else { "NOT met" }
        );
    }
}
