//! The HTTP API: RSTUF's `/api/v1/…` routes (with or without a trailing slash, as its clients
//! call them), its `{"data": …, "message": …}` envelopes, 202 + `task_id` for every change,
//! FastAPI's error shapes, and the published metadata under `/metadata/`.

// The helpers' `Err` is the response to send: built once per request, boxing buys nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde_json::{json, Value};
use tower_http::services::ServeDir;

use crate::error::RstufError;
use crate::payload;
use crate::service::Service;
use crate::settings;
use crate::tasks::{now_iso, state};
use crate::validate::{parse_body, Check};

/// Largest request body (a ceremony payload, or thousands of artifacts).
pub const MAX_BODY: usize = 16 << 20;

type Svc = State<Arc<Service>>;

/// The router: API and metadata.
pub fn router(svc: Arc<Service>) -> Router {
    let meta = ServeDir::new(svc.metadata_dir());
    let mut r = Router::new();
    let routes: Vec<(&str, MethodRouter<Arc<Service>>)> = vec![
        ("/api/v1/bootstrap", get(get_bootstrap).post(post_bootstrap)),
        ("/api/v1/artifacts", post(post_artifacts)),
        ("/api/v1/artifacts/delete", post(delete_artifacts)),
        ("/api/v1/artifacts/publish", post(publish_artifacts)),
        // RSTUF before 1.0 named them targets.
        ("/api/v1/targets", post(post_artifacts)),
        ("/api/v1/targets/delete", post(delete_artifacts)),
        ("/api/v1/targets/publish", post(publish_artifacts)),
        ("/api/v1/task", get(get_task)),
        ("/api/v1/metadata", post(post_metadata)),
        ("/api/v1/metadata/online", post(post_online)),
        ("/api/v1/metadata/sign", get(get_sign).post(post_sign)),
        ("/api/v1/metadata/sign/delete", post(post_sign_delete)),
        ("/api/v1/config", get(get_config).put(put_config)),
        (
            "/api/v1/delegations",
            post(no_delegations).put(no_delegations),
        ),
        ("/api/v1/delegations/delete", post(no_delegations)),
    ];
    for (path, m) in routes {
        r = r.route(path, m.clone()).route(&format!("{path}/"), m);
    }
    r.nest_service("/metadata", meta)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(svc)
}

/// Custom delegations are not implemented: said so, rather than a bare 404.
async fn no_delegations() -> Response {
    refusal(
        StatusCode::NOT_IMPLEMENTED,
        "Task not accepted.",
        "custom delegations are not supported by tufpi's RSTUF API: the repository uses \
         hash bins (settings.roles.bins)"
            .into(),
    )
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"detail": "Not Found"}))).into_response()
}

/// FastAPI's HTTPException body: `{"detail": {"message": …, "error": …}}`.
fn refusal(status: StatusCode, message: &str, error: String) -> Response {
    (
        status,
        Json(json!({"detail": {"message": message, "error": error}})),
    )
        .into_response()
}

fn internal(e: RstufError) -> Response {
    tracing::error!("{e}");
    refusal(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal error.",
        e.to_string(),
    )
}

fn unprocessable(c: Check) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, Json(c.into_detail())).into_response()
}

/// Parse a body as JSON, or answer FastAPI's 422.
fn body_json(body: &Bytes) -> Result<Value, Response> {
    parse_body(body).map_err(|d| (StatusCode::UNPROCESSABLE_ENTITY, Json(d)).into_response())
}

/// 404 unless bootstrap has finished (RSTUF ≥ 1.0 answers 404; earlier versions 200).
fn require_bootstrap(svc: &Service) -> Result<(), Response> {
    let bs = svc.bootstrap_state();
    if bs.done {
        return Ok(());
    }
    Err(refusal(
        StatusCode::NOT_FOUND,
        "Task not accepted.",
        format!("It requires bootstrap finished. State: {}", bs.name()),
    ))
}

fn accepted(data: Value, message: &str) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(json!({"data": data, "message": message})),
    )
        .into_response()
}

fn task_data(id: &str) -> Value {
    json!({"task_id": id, "last_update": now_iso()})
}

async fn get_bootstrap(State(svc): Svc) -> Response {
    let bs = svc.bootstrap_state();
    let message = if bs.state.is_some() {
        "System LOCKED for bootstrap."
    } else {
        "System available for bootstrap."
    };
    Json(json!({
        "data": {"bootstrap": bs.done, "state": bs.state, "id": bs.task_id},
        "message": message,
    }))
    .into_response()
}

async fn post_bootstrap(State(svc): Svc, body: Bytes) -> Response {
    let v = match body_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut c = Check::new();
    if payload::bootstrap(&mut c, &v).is_none() {
        return unprocessable(c);
    }
    let id = crate::tasks::new_task_id();
    match svc.begin_bootstrap(&id) {
        Ok(true) => {}
        Ok(false) => {
            // RSTUF answers 200 with this error; a conflict is what its clients treat as one.
            return refusal(
                StatusCode::CONFLICT,
                "Bootstrap not accepted.",
                format!(
                    "System already has a Metadata or a bootstrap in progress. State: {}",
                    svc.bootstrap_state().name()
                ),
            );
        }
        Err(e) => return internal(e),
    }
    match svc.submit_as(&id, "bootstrap", v) {
        Ok(()) => accepted(json!({"task_id": id}), "Bootstrap accepted."),
        Err(e) => {
            let _ = svc.set_bootstrap(None);
            internal(e)
        }
    }
}

/// Pre-1.0 clients (Warehouse's merged integration among them) send `targets` where RSTUF 1.0
/// says `artifacts`: taken as the same field.
fn targets_alias(v: &mut Value) {
    if let Some(m) = v.as_object_mut() {
        if !m.contains_key("artifacts") {
            if let Some(t) = m.remove("targets") {
                m.insert("artifacts".into(), t);
            }
        }
    }
}

async fn post_artifacts(State(svc): Svc, body: Bytes) -> Response {
    if let Err(r) = require_bootstrap(&svc) {
        return r;
    }
    let mut v = match body_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    targets_alias(&mut v);
    let mut c = Check::new();
    let Some(a) = payload::add_artifacts(&mut c, &v) else {
        return unprocessable(c);
    };
    for (i, art) in a.artifacts.iter().enumerate() {
        if let Some(custom) = &art.custom {
            if let Err(e) = crate::convert::to_core(custom) {
                let loc = crate::validate::Loc::body()
                    .key("artifacts")
                    .index(i)
                    .key("info")
                    .key("custom");
                c.error("value_error", &loc, format!("Value error, {e}"), custom);
            }
        }
    }
    if !c.ok() {
        return unprocessable(c);
    }
    let id = crate::tasks::new_task_id();
    if a.add_task_id_to_custom {
        if let Some(list) = v.get_mut("artifacts").and_then(Value::as_array_mut) {
            for art in list {
                let info = &mut art["info"];
                let mut custom = match info.get("custom") {
                    Some(Value::Object(m)) => m.clone(),
                    _ => serde_json::Map::new(),
                };
                custom.insert("added_by_task_id".into(), Value::String(id.clone()));
                info["custom"] = Value::Object(custom);
            }
        }
    }
    if let Err(e) = svc.submit_as(&id, "add_artifacts", v) {
        return internal(e);
    }
    let mut message = "New Artifact(s) successfully submitted.".to_string();
    if !a.publish {
        message.push_str(" Publishing will be skipped.");
    }
    let paths: Vec<&str> = a.artifacts.iter().map(|x| x.path.as_str()).collect();
    accepted(
        json!({"artifacts": paths, "task_id": id, "last_update": now_iso()}),
        &message,
    )
}

async fn delete_artifacts(State(svc): Svc, body: Bytes) -> Response {
    if let Err(r) = require_bootstrap(&svc) {
        return r;
    }
    let mut v = match body_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    targets_alias(&mut v);
    let mut c = Check::new();
    let Some(d) = payload::delete_artifacts(&mut c, &v) else {
        return unprocessable(c);
    };
    let id = match svc.submit("remove_artifacts", v) {
        Ok(id) => id,
        Err(e) => return internal(e),
    };
    let mut message = "Remove Artifact(s) successfully submitted.".to_string();
    if !d.publish {
        message.push_str(" Publishing will be skipped.");
    }
    accepted(
        json!({"artifacts": d.artifacts, "task_id": id, "last_update": now_iso()}),
        &message,
    )
}

async fn publish_artifacts(State(svc): Svc) -> Response {
    if let Err(r) = require_bootstrap(&svc) {
        return r;
    }
    match svc.submit("publish_artifacts", Value::Null) {
        Ok(id) => accepted(
            json!({"artifacts": [], "task_id": id, "last_update": now_iso()}),
            "Publish artifacts successfully submitted.",
        ),
        Err(e) => internal(e),
    }
}

async fn get_task(
    State(svc): Svc,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let Some(id) = q.get("task_id") else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"detail": [{
                "type": "missing", "loc": ["query", "task_id"],
                "msg": "Field required", "input": null,
            }]})),
        )
            .into_response();
    };
    match svc.tasks.get(id) {
        // As Celery: an unknown id is PENDING.
        Ok(None) => Json(json!({
            "data": {"task_id": id, "state": state::PENDING, "result": null},
            "message": "Task state.",
        }))
        .into_response(),
        Ok(Some((st, result))) => Json(json!({
            "data": {"task_id": id, "state": st, "result": result},
            "message": "Task state.",
        }))
        .into_response(),
        Err(e) => internal(e),
    }
}

async fn post_metadata(State(svc): Svc, body: Bytes) -> Response {
    if let Err(r) = require_bootstrap(&svc) {
        return r;
    }
    let v = match body_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut c = Check::new();
    if payload::metadata_update(&mut c, &v).is_none() {
        return unprocessable(c);
    }
    match svc.submit("metadata_update", v) {
        Ok(id) => accepted(task_data(&id), "Metadata update accepted."),
        Err(e) => internal(e),
    }
}

async fn post_online(State(svc): Svc, body: Bytes) -> Response {
    if let Err(r) = require_bootstrap(&svc) {
        return r;
    }
    let v = match body_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut c = Check::new();
    if payload::online_roles(&mut c, &v).is_none() {
        return unprocessable(c);
    }
    match svc.submit("force_online_metadata_update", v) {
        Ok(id) => accepted(task_data(&id), "Force online metadata update accepted."),
        Err(e) => internal(e),
    }
}

async fn get_sign(State(svc): Svc) -> Response {
    let bs = svc.bootstrap_state();
    if !bs.done && bs.state != Some("signing") {
        return refusal(
            StatusCode::NOT_FOUND,
            "No signing available",
            format!("Requires bootstrap started. State: {}", bs.name()),
        );
    }
    let pending = match svc.root_signing() {
        Ok(p) => p,
        Err(e) => return internal(e),
    };
    let mut md = serde_json::Map::new();
    if let Some(root) = pending {
        let version = root["signed"]["version"].as_u64().unwrap_or(1);
        if version > 1 {
            let trusted = svc
                .metadata_dir()
                .join(format!("{}.root.json", version - 1));
            if let Some(t) = std::fs::read(&trusted)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            {
                md.insert("trusted_root".into(), t);
            }
        }
        md.insert("root".into(), root);
    }
    Json(json!({
        "data": {"metadata": md},
        "message": "Metadata role(s) pending signing",
    }))
    .into_response()
}

async fn post_sign(State(svc): Svc, body: Bytes) -> Response {
    let bs = svc.bootstrap_state();
    if !bs.done && bs.state != Some("signing") {
        return refusal(
            StatusCode::NOT_FOUND,
            "No signing pending.",
            format!("Requires bootstrap in signing state. State: {}", bs.name()),
        );
    }
    let v = match body_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut c = Check::new();
    let Some(s) = payload::sign(&mut c, &v) else {
        return unprocessable(c);
    };
    if let Err(r) = check_signing_pending(&svc, &s.role) {
        return r;
    }
    match svc.submit("sign_metadata", v) {
        Ok(id) => accepted(task_data(&id), "Metadata sign accepted."),
        Err(e) => internal(e),
    }
}

/// 404 unless `role` is waiting for signatures.
fn check_signing_pending(svc: &Service, role: &str) -> Result<(), Response> {
    let pending = match svc.root_signing() {
        Ok(p) => p.is_some(),
        Err(e) => return Err(internal(e)),
    };
    if role == "root" && pending {
        return Ok(());
    }
    // RSTUF answers 200 with this error; its clients expect a refusal.
    Err(refusal(
        StatusCode::NOT_FOUND,
        &format!("No signing process for {role}."),
        format!("The {role} role is not in a signing process."),
    ))
}

async fn post_sign_delete(State(svc): Svc, body: Bytes) -> Response {
    let v = match body_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut c = Check::new();
    let Some(role) = payload::role(&mut c, &v) else {
        return unprocessable(c);
    };
    if let Err(r) = check_signing_pending(&svc, &role) {
        return r;
    }
    match svc.submit("delete_sign_metadata", v) {
        Ok(id) => accepted(task_data(&id), "Metadata sign delete accepted."),
        Err(e) => internal(e),
    }
}

async fn get_config(State(svc): Svc) -> Response {
    if let Err(r) = require_bootstrap(&svc) {
        return r;
    }
    match settings::config_data(&svc.tasks) {
        Ok(d) => Json(json!({"data": d, "message": "Current Settings"})).into_response(),
        Err(e) => internal(e),
    }
}

async fn put_config(State(svc): Svc, body: Bytes) -> Response {
    if let Err(r) = require_bootstrap(&svc) {
        return r;
    }
    let v = match body_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut c = Check::new();
    if payload::config(&mut c, &v).is_none() {
        return unprocessable(c);
    }
    match svc.submit("update_settings", v) {
        Ok(id) => accepted(task_data(&id), "Settings successfully submitted."),
        Err(e) => internal(e),
    }
}
