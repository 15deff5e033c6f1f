//! HTTP: one router per instance port (CVAT's direct invoke path `POST /`, plus `/infer`
//! and `/health`), and the management router on the gateway port. [`frame`] decodes the
//! request's frames, [`api_error`] is every error's JSON.

pub mod api_error;
pub mod frame;
pub mod jpeg;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::app::App;
use crate::config::Settings;
use crate::cvat::payload::{
    interactor_json, interactor_legacy_json, tracked_shape_json, Detections, DetectorRequest,
    InteractorRequest, ReidRequest, RequestLimits, ShapeFlavour, TrackItem, TrackerRequest,
};
use crate::instance::{Instance, Status};
use crate::metrics::{InstanceMetrics, Stage};
use crate::runtime::kind::Kind;
use crate::runtime::loaded::{Bbox, Frame, Point, Prompt, TrackCall, TrackedShape, WitShapeType};
use crate::serve::api_error::ApiError;

/// The instance a port serves now; swapped when its config changes, so requests in
/// flight finish on the instance they started on.
pub type PortSlot = Arc<RwLock<Arc<Instance>>>;

type InstanceCtx = (Arc<App>, PortSlot);

fn current(slot: &PortSlot) -> Arc<Instance> {
    slot.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The router served on an instance's own port.
pub fn instance_router(app: Arc<App>, instance: PortSlot) -> Router {
    Router::new()
        .route("/", post(infer))
        .route("/infer", post(infer))
        .route("/health", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state((app, instance))
}

/// The management router on the gateway port.
pub fn management_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/api/status", get(status))
        .merge(crate::cvat::gateway::router())
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app)
}

/// Ready once the config is applied, every instance's port is bound and every `preload`
/// instance has loaded (or failed to); not ready again from the moment a shutdown begins.
async fn readyz(State(app): State<Arc<App>>) -> Response {
    let statuses = app.statuses();
    let unbound: Vec<&str> = statuses
        .iter()
        .filter(|s| {
            s.error
                .as_deref()
                .is_some_and(|e| e.starts_with("cannot listen"))
        })
        .map(|s| s.name.as_str())
        .collect();
    if app.is_draining() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining: shutting down, finishing the requests in flight",
        )
        .into_response();
    }
    if !app.is_ready() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting: the config is not applied yet",
        )
        .into_response();
    }
    if !unbound.is_empty() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("ports not bound for: {}", unbound.join(", ")),
        )
        .into_response();
    }
    let warming: Vec<String> = app
        .instances()
        .iter()
        .filter(|i| i.warming())
        .map(|i| i.spec.name.clone())
        .collect();
    if !warming.is_empty() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("warming: loading {} (preload)", warming.join(", ")),
        )
        .into_response();
    }
    Json(json!({"status": "ready", "instances": statuses.len()})).into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let instances = app.instances();
    let statuses: Vec<Status> = instances.iter().map(|i| i.status()).collect();
    let samples: Vec<crate::metrics::Sample> = instances
        .iter()
        .zip(&statuses)
        .map(|(i, s)| crate::metrics::Sample {
            name: &i.spec.name,
            state: s.state.as_str(),
            metrics: &i.metrics,
            wasm_memory_bytes: s.wasm_memory_bytes,
            inference_memory_bytes: s.inference_memory_bytes,
            inference_memory_limit_bytes: s.inference_memory_limit_bytes,
            in_flight: i.in_flight(),
            graphs: &s.graphs,
        })
        .collect();
    let text = crate::metrics::render(&samples, rss_bytes());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint",
    )
}

async fn status(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    Json(json!({
        "gateway": SocketAddr::new(app.settings.bind, app.settings.gateway_port).to_string(),
        "rss_bytes": rss_bytes(),
        "pid": std::process::id(),
        "build": BUILD,
        "instances": app.statuses(),
        "pools": app.pools.statuses().await,
    }))
}

/// How this binary was built: `release`, or `debug` (several times slower per request).
pub const BUILD: &str = if cfg!(debug_assertions) {
    "debug"
} else {
    "release"
};

/// The process's resident set size, from /proc (Linux).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

async fn health(State((_, slot)): State<InstanceCtx>) -> Json<serde_json::Value> {
    let s = current(&slot).status();
    Json(json!({"status": "ok", "name": s.name, "kind": s.kind, "state": s.state}))
}

/// Read the whole body, answering 413 past the configured limit.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if too_large {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body over the limit of {limit} bytes"),
            )
        } else {
            ApiError::field("body", format!("could not read the request body: {e}"))
        }
    })
}

async fn infer(State((app, slot)): State<InstanceCtx>, body: Body) -> Response {
    let inst = current(&slot);
    match read_body(body, app.settings.max_body_bytes).await {
        Ok(body) => invoke(&app, &inst, body).await,
        Err(e) => e.into_response(),
    }
}

/// Run one CVAT request on `inst` and answer as the function would.
pub async fn invoke(app: &Arc<App>, inst: &Arc<Instance>, body: Bytes) -> Response {
    let started = std::time::Instant::now();
    let response = invoke_inner(app, inst, body).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    inst.metrics.stage(Stage::Total, elapsed);
    inst.metrics.outcome(InstanceMetrics::outcome_of(status));
    tracing::info!(instance = %inst.spec.name, status, ms = elapsed.as_millis() as u64, "request");
    response
}

async fn invoke_inner(app: &Arc<App>, inst: &Arc<Instance>, body: Bytes) -> Response {
    let result = async {
        match &inst.kind {
            Ok(Kind::Detector) => detect(app, inst, body).await,
            Ok(Kind::Tracker) => track(app, inst, body).await,
            Ok(Kind::Interactor) => interact(app, inst, body).await,
            Ok(Kind::Reid) => reid(app, inst, body).await,
            Err(e) => Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("instance `{}` is unusable: {e}", inst.spec.name),
            )),
        }
    }
    .await;
    match result {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(instance = %inst.spec.name, status = e.status.as_u16(), "request failed: {}", e.error);
            e.into_response()
        }
    }
}

async fn detect(app: &Arc<App>, inst: &Arc<Instance>, body: Bytes) -> Result<Response, ApiError> {
    let req = DetectorRequest::parse(&body)?;
    drop(body);
    let admission = inst.admit()?;
    // A detector that declared the input it fits frames into may get a smaller JPEG decode.
    let (frame, reduced) =
        decode_frame_for(app, inst, "image", req.image, inst.input_size()).await?;
    let (width, height) = (frame.width, frame.height);
    let threshold = req.threshold;
    let mut detections = inst
        .call(admission, &app.runtime, &app.settings, move |m| {
            m.detect(frame, threshold)
        })
        .await?;
    check_detections(&detections, &app.settings, width, height)?;
    if let Some(r) = reduced {
        r.map_back(&mut detections);
    }
    crate::cvat::contour::add_polygons(&mut detections, app.settings.max_points);
    Ok(Json(Detections(&detections)).into_response())
}

/// A component's answer must stay within the result caps and describe shapes that fit
/// the frame; anything else is the component's bug, answered as a 500.
fn check_detections(
    dets: &[crate::runtime::loaded::Detection],
    s: &Settings,
    w: u32,
    h: u32,
) -> Result<(), ApiError> {
    if dets.len() > s.max_results {
        return Err(component_error(format!(
            "{} shapes, over the limit of {}",
            dets.len(),
            s.max_results
        )));
    }
    for d in dets {
        if d.points.len() > s.max_points || d.elements.len() > s.max_points {
            return Err(component_error(format!(
                "a shape with {} points, over the limit of {}",
                d.points.len(),
                s.max_points
            )));
        }
        if !d.points.iter().all(|p| p.is_finite()) || !d.confidence.is_finite() {
            return Err(component_error("a shape with a non-finite number".into()));
        }
        if let Some(m) = &d.mask {
            check_mask(m, w, h)?;
        }
    }
    Ok(())
}

/// Decode the base64 image in request field `field`, off the async workers, timed.
async fn decode_frame(
    app: &Arc<App>,
    inst: &Arc<Instance>,
    field: &'static str,
    b64: String,
) -> Result<Frame, ApiError> {
    Ok(decode_frame_for(app, inst, field, b64, None).await?.0)
}

/// [`decode_frame`] for a model that fits frames into `fit` (see [`crate::serve::frame::decode_fitted`]).
async fn decode_frame_for(
    app: &Arc<App>,
    inst: &Arc<Instance>,
    field: &'static str,
    b64: String,
    fit: Option<(u32, u32)>,
) -> Result<(Frame, Option<crate::serve::frame::Reduced>), ApiError> {
    let max_pixels = app.settings.max_image_pixels;
    let started = std::time::Instant::now();
    let frame = tokio::task::spawn_blocking(move || {
        crate::serve::frame::decode_fitted(field, &b64, max_pixels, fit)
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("decode task failed: {e}"),
        )
    })??;
    inst.metrics.stage(Stage::Decode, started.elapsed());
    Ok(frame)
}

/// A mask must lie inside the frame and hold one byte per pixel of its inclusive box.
fn check_mask(m: &crate::runtime::loaded::Mask, w: u32, h: u32) -> Result<(), ApiError> {
    let fits = m.x1 <= m.x2
        && m.y1 <= m.y2
        && m.x2 < w
        && m.y2 < h
        && m.bitmap.len() == ((m.x2 - m.x1 + 1) as usize) * ((m.y2 - m.y1 + 1) as usize);
    if fits {
        Ok(())
    } else {
        Err(component_error(format!(
            "mask {},{}-{},{} of {} bytes does not fit the {w}x{h} frame",
            m.x1,
            m.y1,
            m.x2,
            m.y2,
            m.bitmap.len()
        )))
    }
}

fn component_error(msg: String) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the component returned an invalid result: {msg}"),
    )
}

async fn track(app: &Arc<App>, inst: &Arc<Instance>, body: Bytes) -> Result<Response, ApiError> {
    let req = TrackerRequest::parse(&body, &RequestLimits::of(&app.settings))?;
    drop(body);
    let admission = inst.admit()?;
    let frame = decode_frame(app, inst, "image", req.image).await?;
    let default = if inst.spec.config_is("tracker_interface", "legacy") {
        ShapeFlavour::Legacy
    } else {
        ShapeFlavour::Dict
    };
    let flavour = req.flavour.unwrap_or(default);
    let items = req.items;
    let results = inst
        .call(admission, &app.runtime, &app.settings, move |m| {
            let calls: Vec<TrackCall> = items
                .into_iter()
                .map(|item| match item {
                    TrackItem::Start(b) => TrackCall::Start(TrackedShape {
                        shape: WitShapeType::Rectangle,
                        points: b.to_vec(),
                    }),
                    TrackItem::Continue(state) => TrackCall::Continue(state),
                })
                .collect();
            m.track(frame, &calls)
        })
        .await?;
    let mut shapes = Vec::with_capacity(results.len());
    let mut states = Vec::with_capacity(results.len());
    for r in results {
        shapes.push(match &r.shape {
            Some(s) if s.points.len() >= 4 && s.points.iter().all(|p| p.is_finite()) => {
                tracked_shape_json(&s.points, flavour)
            }
            Some(_) => {
                return Err(component_error(
                    "a tracked shape needs at least 4 finite numbers".into(),
                ))
            }
            None => serde_json::Value::Null,
        });
        states.push(
            serde_json::from_str::<serde_json::Value>(&r.state)
                .map_err(|e| component_error(format!("state is not JSON: {e}")))?,
        );
    }
    // CVAT reads `states` unconditionally: it is always present.
    Ok(Json(json!({ "shapes": shapes, "states": states })).into_response())
}

async fn interact(app: &Arc<App>, inst: &Arc<Instance>, body: Bytes) -> Result<Response, ApiError> {
    let mut req = InteractorRequest::parse(&body, &RequestLimits::of(&app.settings))?;
    drop(body);
    let admission = inst.admit()?;
    let frame = decode_frame(app, inst, "image", std::mem::take(&mut req.image)).await?;
    req.check_bounds(frame.width, frame.height)?;
    let (w, h) = (frame.width, frame.height);
    let clamp = |(x, y): (f32, f32)| Point {
        x: x.clamp(0.0, (w - 1) as f32),
        y: y.clamp(0.0, (h - 1) as f32),
    };
    let prompt = Prompt {
        positive: req.positive.iter().copied().map(clamp).collect(),
        negative: req.negative.iter().copied().map(clamp).collect(),
        bbox: req.bbox.map(|[x1, y1, x2, y2]| Bbox { x1, y1, x2, y2 }),
    };
    let mut proposals = inst
        .call(admission, &app.runtime, &app.settings, move |m| {
            m.interact(frame, &prompt)
        })
        .await?;
    for p in &proposals {
        check_mask(&p.mask, w, h)?;
        if !p.confidence.is_finite() {
            return Err(component_error(
                "a proposal with a non-finite confidence".into(),
            ));
        }
    }
    proposals.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    if inst.spec.config_is("response_format", "legacy") {
        Ok(Json(interactor_legacy_json(&proposals, w, h)).into_response())
    } else {
        Ok(Json(interactor_json(&proposals)).into_response())
    }
}

async fn reid(app: &Arc<App>, inst: &Arc<Instance>, body: Bytes) -> Result<Response, ApiError> {
    let req = ReidRequest::parse(&body, &RequestLimits::of(&app.settings))?;
    drop(body);
    let admission = inst.admit()?;
    let f0 = decode_frame(app, inst, "image0", req.image0).await?;
    let f1 = decode_frame(app, inst, "image1", req.image1).await?;
    let to_wit = |b: &[f32; 4]| Bbox {
        x1: b[0],
        y1: b[1],
        x2: b[2],
        y2: b[3],
    };
    let b0: Vec<Bbox> = req.boxes0.iter().map(to_wit).collect();
    let b1: Vec<Bbox> = req.boxes1.iter().map(to_wit).collect();
    let (n0, n1) = (b0.len(), b1.len() as i32);
    let (threshold, max_distance) = (req.threshold, req.max_distance);
    let matches = inst
        .call(admission, &app.runtime, &app.settings, move |m| {
            m.match_boxes((f0, f1), (&b0, &b1), threshold, max_distance)
        })
        .await?;
    if matches.len() != n0 || matches.iter().any(|&i| i < -1 || i >= n1) {
        return Err(component_error(format!(
            "expected {n0} indices in -1..{n1}, got {matches:?}"
        )));
    }
    Ok(Json(json!(matches)).into_response())
}
