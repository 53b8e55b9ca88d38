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

/// Read `v` with a `payload` reader, or answer its 422.
fn check<T>(v: &Value, read: impl FnOnce(&mut Check, &Value) -> Option<T>) -> Result<T, Response> {
    let mut c = Check::new();
    read(&mut c, v).ok_or_else(|| unprocessable(c))
}

/// Queue `v` as task `name`: 202 with its id and `message`.
fn queue(svc: &Service, name: &str, v: Value, message: &str) -> Response {
    match svc.submit(name, v) {
        Ok(id) => accepted(task_data(&id), message),
        Err(e) => internal(e),
    }
}

/// A task endpoint that only checks its payload: bootstrap finished, the body read by `read`,
/// then queued as task `name` (202 with `message`).
async fn checked_task<T: 'static>(
    svc: Arc<Service>,
    body: Bytes,
    read: fn(&mut Check, &Value) -> Option<T>,
    name: &'static str,
    message: &'static str,
) -> Response {
    blocking(svc, move |svc| {
        require_bootstrap(svc)?;
        let v = body_json(&body)?;
        check(&v, read)?;
        Ok(queue(svc, name, v, message))
    })
    .await
}

/// Run a handler's work on the blocking pool: it reads and writes the task store (SQLite,
/// behind a lock the worker thread also takes), which must not stall the runtime's threads.
/// `Err` is a refusal; either way it is the answer.
async fn blocking<F>(svc: Arc<Service>, work: F) -> Response
where
    F: FnOnce(&Service) -> Result<Response, Response> + Send + 'static,
{
    match tokio::task::spawn_blocking(move || work(&svc)).await {
        Ok(r) => r.unwrap_or_else(|refused| refused),
        Err(e) => {
            tracing::error!("request handler failed: {e}");
            refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error.",
                format!("request handler failed: {e}"),
            )
        }
    }
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
    blocking(svc, move |svc| {
        let v = body_json(&body)?;
        check(&v, payload::bootstrap)?;
        let id = crate::tasks::new_task_id();
        if !svc.begin_bootstrap(&id).map_err(internal)? {
            // RSTUF answers 200 with this error; a conflict is what its clients treat as one.
            return Err(refusal(
                StatusCode::CONFLICT,
                "Bootstrap not accepted.",
                format!(
                    "System already has a Metadata or a bootstrap in progress. State: {}",
                    svc.bootstrap_state().name()
                ),
            ));
        }
        if let Err(e) = svc.submit_as(&id, "bootstrap", v) {
            let _ = svc.set_bootstrap(None);
            return Err(internal(e));
        }
        Ok(accepted(json!({"task_id": id}), "Bootstrap accepted."))
    })
    .await
}

/// 202 for an artifacts task: the paths, the task id, and `message` (publishing skipped said).
fn artifacts_accepted(paths: Value, id: &str, message: &str, publish: bool) -> Response {
    let mut message = message.to_string();
    if !publish {
        message.push_str(" Publishing will be skipped.");
    }
    accepted(
        json!({"artifacts": paths, "task_id": id, "last_update": now_iso()}),
        &message,
    )
}

async fn post_artifacts(State(svc): Svc, body: Bytes) -> Response {
    blocking(svc, move |svc| {
        require_bootstrap(svc)?;
        let mut v = body_json(&body)?;
        payload::targets_alias(&mut v);
        let a = check(&v, |c, v| {
            let a = payload::add_artifacts(c, v)?;
            payload::check_customs(c, &a);
            c.ok().then_some(a)
        })?;
        let id = crate::tasks::new_task_id();
        if a.add_task_id_to_custom {
            payload::add_task_id(&mut v, &id);
        }
        svc.submit_as(&id, "add_artifacts", v).map_err(internal)?;
        let paths: Vec<&str> = a.artifacts.iter().map(|x| x.path.as_str()).collect();
        let message = "New Artifact(s) successfully submitted.";
        Ok(artifacts_accepted(json!(paths), &id, message, a.publish))
    })
    .await
}

async fn delete_artifacts(State(svc): Svc, body: Bytes) -> Response {
    blocking(svc, move |svc| {
        require_bootstrap(svc)?;
        let mut v = body_json(&body)?;
        payload::targets_alias(&mut v);
        let d = check(&v, payload::delete_artifacts)?;
        let id = svc.submit("remove_artifacts", v).map_err(internal)?;
        let message = "Remove Artifact(s) successfully submitted.";
        Ok(artifacts_accepted(
            json!(d.artifacts),
            &id,
            message,
            d.publish,
        ))
    })
    .await
}

async fn publish_artifacts(State(svc): Svc) -> Response {
    blocking(svc, |svc| {
        require_bootstrap(svc)?;
        let id = svc
            .submit("publish_artifacts", Value::Null)
            .map_err(internal)?;
        Ok(accepted(
            json!({"artifacts": [], "task_id": id, "last_update": now_iso()}),
            "Publish artifacts successfully submitted.",
        ))
    })
    .await
}

async fn get_task(
    State(svc): Svc,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let Some(id) = q.get("task_id").cloned() else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"detail": [{
                "type": "missing", "loc": ["query", "task_id"],
                "msg": "Field required", "input": null,
            }]})),
        )
            .into_response();
    };
    blocking(svc, move |svc| {
        // As Celery: an unknown id is PENDING.
        let (st, result) = svc
            .tasks
            .get(&id)
            .map_err(internal)?
            .unwrap_or((state::PENDING.to_string(), None));
        Ok(Json(json!({
            "data": {"task_id": id, "state": st, "result": result},
            "message": "Task state.",
        }))
        .into_response())
    })
    .await
}

async fn post_metadata(State(svc): Svc, body: Bytes) -> Response {
    checked_task(
        svc,
        body,
        payload::metadata_update,
        "metadata_update",
        "Metadata update accepted.",
    )
    .await
}

async fn post_online(State(svc): Svc, body: Bytes) -> Response {
    checked_task(
        svc,
        body,
        payload::online_roles,
        "force_online_metadata_update",
        "Force online metadata update accepted.",
    )
    .await
}

async fn get_sign(State(svc): Svc) -> Response {
    blocking(svc, |svc| {
        let bs = svc.bootstrap_state();
        if !bs.done && bs.state != Some("signing") {
            return Err(refusal(
                StatusCode::NOT_FOUND,
                "No signing available",
                format!("Requires bootstrap started. State: {}", bs.name()),
            ));
        }
        let mut md = serde_json::Map::new();
        if let Some(root) = svc.root_signing().map_err(internal)? {
            let version = root["signed"]["version"].as_u64().unwrap_or(1);
            if let Some(prev) = version.checked_sub(1).filter(|v| *v >= 1) {
                let trusted = svc.metadata_dir().join(format!("{prev}.root.json"));
                if let Some(t) = std::fs::read(&trusted)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                {
                    md.insert("trusted_root".into(), t);
                }
            }
            md.insert("root".into(), root);
        }
        Ok(Json(json!({
            "data": {"metadata": md},
            "message": "Metadata role(s) pending signing",
        }))
        .into_response())
    })
    .await
}

async fn post_sign(State(svc): Svc, body: Bytes) -> Response {
    blocking(svc, move |svc| {
        let bs = svc.bootstrap_state();
        if !bs.done && bs.state != Some("signing") {
            return Err(refusal(
                StatusCode::NOT_FOUND,
                "No signing pending.",
                format!("Requires bootstrap in signing state. State: {}", bs.name()),
            ));
        }
        let v = body_json(&body)?;
        let s = check(&v, payload::sign)?;
        check_signing_pending(svc, &s.role)?;
        Ok(queue(svc, "sign_metadata", v, "Metadata sign accepted."))
    })
    .await
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
    blocking(svc, move |svc| {
        let v = body_json(&body)?;
        let role = check(&v, payload::role)?;
        check_signing_pending(svc, &role)?;
        let message = "Metadata sign delete accepted.";
        Ok(queue(svc, "delete_sign_metadata", v, message))
    })
    .await
}

async fn get_config(State(svc): Svc) -> Response {
    blocking(svc, |svc| {
        require_bootstrap(svc)?;
        let d = settings::config_data(&svc.tasks).map_err(internal)?;
        Ok(Json(json!({"data": d, "message": "Current Settings"})).into_response())
    })
    .await
}

async fn put_config(State(svc): Svc, body: Bytes) -> Response {
    checked_task(
        svc,
        body,
        payload::config,
        "update_settings",
        "Settings successfully submitted.",
    )
    .await
}
