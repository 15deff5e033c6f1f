//! The Nuclio-dashboard-compatible API CVAT talks to (shared/docs/cvat-protocol.md §2, §3.1):
//! listing and describing functions, and `dashboard` invoke mode. With it CVAT needs no
//! Nuclio: point `CVAT_NUCLIO_HOST`/`CVAT_NUCLIO_PORT` at the management port.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde_json::{Map, Value};

use crate::app::App;
use crate::cvat::functions::function_object;
use crate::instance::{Instance, State as InstanceState};
use crate::serve::api_error::ApiError;
use crate::serve::{invoke, read_body};

/// How long a forwarded call may take when CVAT sent no `x-nuclio-invoke-timeout`.
const DEFAULT_POOL_CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Routes mounted on the management port.
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/api/functions", get(list))
        .route("/api/functions/{name}", get(describe_one))
        .route("/api/function_invocations", any(invocation))
        .route("/api/function_invocations/{*rest}", any(invocation))
}

/// One function object, and why the instance is unusable if it is. Listing never loads a
/// model (see [`Instance::listing`]).
async fn function(app: &Arc<App>, inst: &Arc<Instance>) -> Option<(Value, Option<String>)> {
    let kind = *inst.kind.as_ref().ok()?;
    let (app2, inst2) = (app.clone(), inst.clone());
    let listing = tokio::task::spawn_blocking(move || inst2.listing(&app2.runtime, &app2.settings))
        .await
        .ok()?;
    let state = match inst.status().state {
        InstanceState::Error => "error",
        // Unloaded instances load on the first call: ready for CVAT's purposes.
        _ => "ready",
    };
    let f = function_object(&inst.spec, kind, &listing, state);
    Some((f, listing.problem))
}

async fn list(State(app): State<Arc<App>>) -> Json<Value> {
    let mut all = Map::new();
    for inst in &app.instances() {
        if let Some((f, _)) = function(&app, inst).await {
            all.insert(inst.spec.name.clone(), f);
        }
    }
    // Then every pool's, in settings order (the first of a name wins: local, then pools).
    for (name, f) in app.pools.list().await {
        if all.contains_key(&name) {
            tracing::warn!(function = %name, "two functions of this name: listing the first (local instances, then pools in settings order)");
            continue;
        }
        all.insert(name, f);
    }
    Json(Value::Object(all))
}

fn find(app: &App, name: &str) -> Result<Arc<Instance>, ApiError> {
    app.instances()
        .into_iter()
        .find(|i| i.spec.name == name)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("function `{name}` not found"),
            )
        })
}

async fn describe_one(State(app): State<Arc<App>>, Path(name): Path<String>) -> Response {
    let inst = match find(&app, &name) {
        Ok(inst) => inst,
        Err(e) => {
            return match app.pools.describe(&name).await {
                Some(resp) => resp,
                None => e.into_response(),
            }
        }
    };
    describe_local(&app, &inst, &name).await.into_response()
}

async fn describe_local(
    app: &Arc<App>,
    inst: &Arc<Instance>,
    name: &str,
) -> Result<Json<Value>, ApiError> {
    match function(app, inst).await {
        Some((f, None)) => Ok(Json(f)),
        // What CVAT does with a function that is not ready (cvat-protocol.md §2.6): its own
        // request fails with our status and message, instead of annotating nothing.
        Some((_, Some(problem))) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("function `{name}` is unusable: {problem}"),
        )),
        None => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "function `{name}` is unusable: {}",
                inst.kind.as_ref().err().cloned().unwrap_or_default()
            ),
        )),
    }
}

/// Parse a Go duration as the dashboard does (`120s`, `1m30s`, `500ms`, `1.5h`).
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).ok()
}

async fn invocation(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let Some(name) = header("x-nuclio-function-name") else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing header x-nuclio-function-name",
        )
        .into_response();
    };
    let timeout = match header("x-nuclio-invoke-timeout") {
        None => None,
        Some(t) => match parse_go_duration(t) {
            Some(d) => Some(d),
            None => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("invalid x-nuclio-invoke-timeout `{t}`"),
                )
                .into_response()
            }
        },
    };
    let body = match read_body(body, app.settings.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let inst = match find(&app, name) {
        Ok(i) => i,
        Err(e) => {
            // A pool's function: forwarded as it came, under the same timeout.
            let limit = timeout.unwrap_or(DEFAULT_POOL_CALL_TIMEOUT);
            return match app.pools.forward(name, &headers, body, limit).await {
                Some(resp) => resp,
                None => e.into_response(),
            };
        }
    };
    let call = invoke(&app, &inst, body);
    match timeout {
        Some(t) => match tokio::time::timeout(t, call).await {
            Ok(resp) => resp,
            Err(_) => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!("function `{name}` did not answer within {t:?}"),
            )
            .into_response(),
        },
        None => call.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("120s"), Some(Duration::from_secs(120)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("soon"), None);
        assert_eq!(parse_go_duration("10"), None);
    }
}
