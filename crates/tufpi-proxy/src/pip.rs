//! pip's workarounds: pip hides the proxy's reasons for a refusal unless it is told them in
//! a form it prints (see [`for_pip`]). Every other client gets the plain answer.

use axum::http::StatusCode;
use axum::response::Response;

/// Marks a response as a project page's (set by `project_page`): only those get pip's
/// page workaround in `for_pip`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageResponse;

/// pip hides the proxy's reasons: it retries a 502 five times and then reports only "too many
/// 502 error responses", and it logs a failed index page only at debug level. So to pip (and
/// only pip, by its User-Agent) a refused file is a 403, which it does not retry and whose
/// reason phrase — the failed check — it prints; and a refused project page is a 200 whose
/// Content-Type carries the reason, which pip prints in its "Skipping page" warning before it
/// fails for want of a distribution. No file link is ever served: the body is the reason, as
/// plain text. Every other client gets the 502.
pub(crate) async fn for_pip(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let pip = req
        .headers()
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("pip/"));
    let resp = next.run(req).await;
    if pip {
        pip_answer(resp)
    } else {
        resp
    }
}

/// A 502 as pip is told it: a page's (marked `PageResponse`) as a 200 with the reason in
/// the Content-Type, anything else's as a 403.
fn pip_answer(mut resp: Response) -> Response {
    if resp.status() != StatusCode::BAD_GATEWAY {
        return resp;
    }
    if resp.extensions().get::<PageResponse>().is_none() {
        *resp.status_mut() = StatusCode::FORBIDDEN;
        return resp;
    }
    let reason = resp
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .unwrap_or_else(|| "TUF verification failed".into());
    let ctype = format!("text/plain; tufpi-refused=\"{}\"", reason.replace('"', "'"));
    if let Ok(v) = axum::http::HeaderValue::from_str(&ctype) {
        *resp.status_mut() = StatusCode::OK;
        resp.extensions_mut().remove::<hyper::ext::ReasonPhrase>();
        resp.headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ProxyError;
    use axum::http::header;
    use axum::response::IntoResponse;

    #[test]
    fn pip_gets_page_reasons_in_a_200_and_file_refusals_as_403() {
        let refused = || ProxyError::Verification("sha256 hash mismatch".into()).into_response();
        // A failing target file, wherever its path lies (even under simple/): 403.
        let file = pip_answer(refused());
        assert_eq!(file.status(), StatusCode::FORBIDDEN);
        assert!(file.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; charset"));
        // A project page's refusal: 200, the reason in the Content-Type, no links.
        let mut page = refused();
        page.extensions_mut().insert(PageResponse);
        let page = pip_answer(page);
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .contains("tufpi-refused=\"TUF verification failed: sha256 hash mismatch\""));
        // Anything else passes untouched.
        let nf = pip_answer(ProxyError::NotFound("x".into()).into_response());
        assert_eq!(nf.status(), StatusCode::NOT_FOUND);
    }
}
