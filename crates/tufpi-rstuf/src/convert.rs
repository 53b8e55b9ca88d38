//! JSON values from requests (serde_json) into the core's JSON model, which refuses what
//! canonical JSON cannot sign (floats).

use tufpi_core::json;

/// `v` in the core's JSON model; refused if it holds a float (it could never be signed).
pub fn to_core(v: &serde_json::Value) -> Result<json::Value, String> {
    let bytes = serde_json::to_vec(v).map_err(|e| e.to_string())?;
    let parsed = json::parse(&bytes).map_err(|e| e.to_string())?;
    if let Some(f) = json::find_float(&parsed) {
        return Err(format!(
            "holds the number {f}: floats cannot be signed (canonical JSON has none)"
        ));
    }
    Ok(parsed)
}
