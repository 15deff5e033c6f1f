//! Other hosts behind this gateway (`settings.pools`). CVAT knows one Nuclio dashboard; the
//! gateway lists every pool's functions as if they were its own and forwards their
//! invocations unchanged, so a GPU pool for the large models and a CPU pool for the small
//! ones serve one CVAT.
//!
//! A pool is one or more hosts serving the same models.yaml, named by URLs; a URL whose host
//! name resolves to several addresses (a Kubernetes headless Service) is one member per
//! address, so pods that come and go are followed. Calls spread over its members
//! in turn, except an interactor's: those go to the member picked by the frame (rendezvous
//! hashing of the request's image), so the host that computed a frame's embedding gets the
//! next clicks on that frame, and a member that leaves only moves its own frames. A member
//! that cannot be reached is skipped; a pool none of whose members answers keeps its
//! functions listed, in state `error`, with the reason.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value};

use crate::config::PoolSpec;
use crate::serve::api_error::ApiError;

/// The pools and what the gateway last learned of each.
pub struct Pools {
    specs: Vec<PoolSpec>,
    client: Client<HttpConnector, Full<Bytes>>,
    /// How long a listing may take per member.
    timeout: Duration,
    /// Per pool name: its last listing.
    state: Mutex<HashMap<String, PoolState>>,
    /// Per pool name: its members as last resolved, and when.
    resolved: Mutex<HashMap<String, (Instant, Vec<String>)>>,
    next: AtomicUsize,
}

/// How long a pool's resolved members are reused.
const RESOLVE_EVERY: Duration = Duration::from_secs(2);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Default, Clone)]
struct PoolState {
    /// Function objects of the last listing that answered.
    functions: Map<String, Value>,
    /// Why the last listing failed, if it did.
    error: Option<String>,
}

/// Why a call to a member did not produce an answer.
enum CallError {
    /// Nothing reached the member: another member may be tried.
    Unreachable(String),
    /// The member took longer than allowed (the call may have run).
    Timeout,
}

/// Headers that describe one hop of a connection, not the request.
const HOP_BY_HOP: &[&str] = &[
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "keep-alive",
    "te",
    "upgrade",
    "proxy-connection",
];

impl Pools {
    /// Pools from the settings (none: an empty set that lists nothing).
    pub fn new(specs: Vec<PoolSpec>, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        Self {
            specs,
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
            state: Mutex::new(HashMap::new()),
            resolved: Mutex::new(HashMap::new()),
            next: AtomicUsize::new(0),
        }
    }

    /// Whether any pool is configured.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        headers: &HeaderMap,
        body: Bytes,
        timeout: Duration,
    ) -> Result<(StatusCode, HeaderMap, Bytes), CallError> {
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            if !HOP_BY_HOP.contains(&k.as_str()) {
                req = req.header(k, v);
            }
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| CallError::Unreachable(format!("{url}: {e}")))?;
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| {
                // The request was not sent when the connection failed.
                let mut why = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    why = format!("{why}: {s}");
                    source = s.source();
                }
                CallError::Unreachable(format!("{url}: {why}"))
            })?;
            let (parts, body) = resp.into_parts();
            let bytes = body
                .collect()
                .await
                .map_err(|e| CallError::Unreachable(format!("{url}: reading the answer: {e}")))?
                .to_bytes();
            Ok((parts.status, parts.headers, bytes))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout),
        }
    }

    /// The members of `pool` now: each configured URL, or, when its host name resolves to
    /// several addresses (a Kubernetes headless Service: one per ready pod), one member per
    /// address. Resolved at most every [`RESOLVE_EVERY`].
    async fn members(&self, pool: &PoolSpec) -> Vec<String> {
        if let Some((at, members)) = lock(&self.resolved).get(&pool.name) {
            if at.elapsed() < RESOLVE_EVERY {
                return members.clone();
            }
        }
        let mut members = Vec::new();
        for url in &pool.members {
            let authority = url.trim_start_matches("http://");
            let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
            let literal = host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok();
            let resolved = if literal {
                None
            } else {
                tokio::time::timeout(self.timeout, tokio::net::lookup_host(authority.to_string()))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .map(|addrs| addrs.collect::<Vec<_>>())
            };
            match resolved {
                Some(addrs) if !addrs.is_empty() => {
                    // IPv4 when there is any: `localhost` is one host, not two.
                    let v4: Vec<_> = addrs.iter().filter(|a| a.is_ipv4()).collect();
                    let pick = if v4.is_empty() {
                        addrs.iter().collect()
                    } else {
                        v4
                    };
                    members.extend(pick.into_iter().map(|a| format!("http://{a}")));
                }
                // A literal address, or a name that does not resolve (its calls say why).
                _ => members.push(url.clone()),
            }
        }
        members.sort();
        members.dedup();
        lock(&self.resolved).insert(pool.name.clone(), (Instant::now(), members.clone()));
        members
    }

    /// `members` in the order to try them: from the next in turn.
    fn in_turn(&self, members: &[String]) -> Vec<String> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = members.len();
        (0..n).map(|i| members[(start + i) % n].clone()).collect()
    }

    /// A GET to a member, within the listing timeout.
    async fn get(&self, url: &str) -> Result<(StatusCode, HeaderMap, Bytes), CallError> {
        let headers = HeaderMap::new();
        self.call(Method::GET, url, &headers, Bytes::new(), self.timeout)
            .await
    }

    /// Ask one pool for its functions, member after member.
    async fn fetch(&self, pool: &PoolSpec) -> Result<Map<String, Value>, String> {
        let mut failures = Vec::new();
        for member in self.in_turn(&self.members(pool).await) {
            let url = format!("{member}/api/functions");
            match self.get(&url).await {
                Ok((StatusCode::OK, _, body)) => match serde_json::from_slice(&body) {
                    Ok(Value::Object(map)) => return Ok(map),
                    _ => failures.push(format!("{url}: not a function listing")),
                },
                Ok((status, _, _)) => failures.push(format!("{url}: HTTP {status}")),
                Err(CallError::Unreachable(why)) => failures.push(why),
                Err(CallError::Timeout) => {
                    failures.push(format!("{url}: no answer within {:?}", self.timeout))
                }
            }
        }
        Err(failures.join("; "))
    }

    /// Every pool's functions, fetched now (pools concurrently). A pool that does not answer
    /// contributes the functions of its last listing, marked `error` with the reason first
    /// in their description (what CVAT shows), so that its functions stay visible.
    pub async fn list(&self) -> Vec<(String, Value)> {
        let fetched = futures_util::future::join_all(
            self.specs
                .iter()
                .map(|p| async move { (p, self.fetch(p).await) }),
        )
        .await;
        let mut out = Vec::new();
        let mut state = lock(&self.state);
        for (pool, result) in fetched {
            let entry = state.entry(pool.name.clone()).or_default();
            match result {
                Ok(functions) => {
                    entry.functions = functions;
                    entry.error = None;
                }
                Err(why) => {
                    if entry.error.is_none() {
                        tracing::warn!(pool = %pool.name, "pool unreachable: {why}");
                    }
                    entry.error = Some(why);
                }
            }
            for (name, f) in &entry.functions {
                out.push((name.clone(), mark(f, &pool.name, entry.error.as_deref())));
            }
        }
        out
    }

    /// Every pool as `host status` shows it, listed now: its members as resolved, how many
    /// functions it serves and, when it did not answer, why.
    pub async fn statuses(&self) -> Vec<Value> {
        if self.specs.is_empty() {
            return Vec::new();
        }
        self.list().await;
        let mut out = Vec::new();
        for pool in &self.specs {
            let members = self.members(pool).await;
            let state = lock(&self.state)
                .get(&pool.name)
                .cloned()
                .unwrap_or_default();
            out.push(serde_json::json!({
                "name": pool.name,
                "members": members,
                "functions": state.functions.len(),
                "error": state.error,
            }));
        }
        out
    }

    /// The pool serving function `name`, from the last listing (listing again if unknown).
    async fn owner(&self, name: &str) -> Option<(PoolSpec, Value)> {
        let lookup = || {
            let state = lock(&self.state);
            self.specs.iter().find_map(|p| {
                state
                    .get(&p.name)
                    .and_then(|s| s.functions.get(name))
                    .map(|f| (p.clone(), f.clone()))
            })
        };
        if let Some(found) = lookup() {
            return Some(found);
        }
        self.list().await;
        lookup()
    }

    /// `GET /api/functions/{name}` for a pool's function: the member's answer, or 503 when no
    /// member answers. `None`: no pool serves `name`.
    pub async fn describe(&self, name: &str) -> Option<Response> {
        let (pool, _) = self.owner(name).await?;
        let mut failures = Vec::new();
        for member in self.in_turn(&self.members(&pool).await) {
            let url = format!("{member}/api/functions/{name}");
            match self.get(&url).await {
                Ok((status, headers, body)) => return Some(passthrough(status, &headers, body)),
                Err(CallError::Unreachable(why)) => failures.push(why),
                Err(CallError::Timeout) => failures.push(format!("{url}: no answer")),
            }
        }
        Some(unreachable(name, &pool, &failures))
    }

    /// Forward an invocation of a pool's function unchanged (headers and body), with
    /// `timeout`. Interactors go to the member the frame hashes to; the others to the next
    /// member in turn; an unreachable member passes the call to the next. `None`: no pool
    /// serves `name`.
    pub async fn forward(
        &self,
        name: &str,
        headers: &HeaderMap,
        body: Bytes,
        timeout: Duration,
    ) -> Option<Response> {
        let (pool, function) = self.owner(name).await?;
        let interactor = function["metadata"]["annotations"]["type"] == "interactor";
        let all = self.members(&pool).await;
        let members = match image_of(&body) {
            Some(image) if interactor => by_affinity(&all, name, image),
            _ => self.in_turn(&all),
        };
        let mut failures = Vec::new();
        for member in members {
            let url = format!("{member}/api/function_invocations");
            match self
                .call(Method::POST, &url, headers, body.clone(), timeout)
                .await
            {
                Ok((status, headers, body)) => {
                    let mut resp = passthrough(status, &headers, body);
                    if let Ok(v) = HeaderValue::from_str(&member) {
                        resp.headers_mut().insert("x-served-by", v);
                    }
                    return Some(resp);
                }
                Err(CallError::Unreachable(why)) => failures.push(why),
                Err(CallError::Timeout) => {
                    return Some(
                        ApiError::new(
                            StatusCode::GATEWAY_TIMEOUT,
                            format!(
                                "function `{name}` (pool `{}`, {member}) did not answer within {timeout:?}",
                                pool.name
                            ),
                        )
                        .into_response(),
                    )
                }
            }
        }
        Some(unreachable(name, &pool, &failures))
    }
}

/// A pool's function object as this gateway lists it: `error` with the reason when the pool
/// did not answer, and the pool named in the description.
fn mark(f: &Value, pool: &str, error: Option<&str>) -> Value {
    let mut f = f.clone();
    let description = f["spec"]["description"].as_str().unwrap_or("").to_string();
    let description = match error {
        Some(why) => {
            f["status"]["state"] = Value::from("error");
            format!("UNREACHABLE: pool `{pool}` did not answer ({why}). {description}")
        }
        None => format!("{description} [pool {pool}]"),
    };
    if let Some(spec) = f.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("description".into(), Value::from(description));
    }
    f
}

fn passthrough(status: StatusCode, headers: &HeaderMap, body: Bytes) -> Response {
    let mut resp = (status, body).into_response();
    if let Some(ct) = headers.get("content-type") {
        resp.headers_mut().insert("content-type", ct.clone());
    }
    resp
}

fn unreachable(name: &str, pool: &PoolSpec, failures: &[String]) -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "function `{name}`: no member of pool `{}` answered: {}",
            pool.name,
            failures.join("; ")
        ),
    )
    .into_response()
}

/// The raw `image` string of a JSON request body, found without parsing the whole body (it
/// may be megabytes of base64). `None` when there is none.
pub fn image_of(body: &[u8]) -> Option<&[u8]> {
    let key = b"\"image\"";
    let at = body.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = &body[at..];
    let colon = rest.iter().position(|&b| !b.is_ascii_whitespace())?;
    if rest[colon] != b':' {
        return None;
    }
    let rest = &rest[colon + 1..];
    let quote = rest.iter().position(|&b| !b.is_ascii_whitespace())?;
    if rest[quote] != b'"' {
        return None;
    }
    let value = &rest[quote + 1..];
    let end = value.iter().position(|&b| b == b'"')?;
    Some(&value[..end])
}

/// `members` in rendezvous order for (`function`, `image`): each member scores the pair,
/// highest first. The same frame always ranks the same member first; when a member leaves,
/// only the frames it ranked first move.
fn by_affinity(members: &[String], function: &str, image: &[u8]) -> Vec<String> {
    let mut frame = DefaultHasher::new();
    function.hash(&mut frame);
    image.hash(&mut frame);
    let frame = frame.finish();
    let mut scored: Vec<(u64, &String)> = members
        .iter()
        .map(|m| {
            let mut h = DefaultHasher::new();
            m.hash(&mut h);
            frame.hash(&mut h);
            (h.finish(), m)
        })
        .collect();
    scored.sort_by_key(|s| std::cmp::Reverse(s.0));
    scored.into_iter().map(|(_, m)| m.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_is_found_without_parsing_the_body() {
        assert_eq!(
            image_of(br#"{"pos_points": [[1, 2]], "image" : "AAAA", "neg_points": []}"#),
            Some(&b"AAAA"[..])
        );
        assert_eq!(image_of(br#"{"image0": "AAAA"}"#), None);
        assert_eq!(image_of(br#"{"image": 5}"#), None);
    }

    #[test]
    fn a_frame_stays_with_its_member_and_a_leaving_member_moves_only_its_frames() {
        let pool =
            |members: &[&str]| -> Vec<String> { members.iter().map(|m| m.to_string()).collect() };
        let three = pool(&["http://a:1", "http://b:1", "http://c:1"]);
        let two = pool(&["http://a:1", "http://c:1"]);
        let mut firsts = HashMap::new();
        for i in 0..300 {
            let image = format!("frame-{i}");
            let first = by_affinity(&three, "sam", image.as_bytes())[0].clone();
            assert_eq!(first, by_affinity(&three, "sam", image.as_bytes())[0]);
            *firsts.entry(first.clone()).or_insert(0) += 1;
            let after = by_affinity(&two, "sam", image.as_bytes())[0].clone();
            if first != "http://b:1" {
                assert_eq!(first, after, "{image} moved although its member stayed");
            }
        }
        // Spread over every member.
        assert_eq!(firsts.len(), 3);
        assert!(firsts.values().all(|&n| n > 60), "{firsts:?}");
    }

    #[tokio::test]
    async fn a_name_resolving_to_addresses_is_a_member_per_address() {
        let pools = Pools::new(
            vec![PoolSpec {
                name: "p".into(),
                members: vec![
                    "http://localhost:18070".into(),
                    "http://127.0.0.1:18070".into(),
                    "http://10.1.2.3:18070".into(),
                ],
            }],
            Duration::from_secs(2),
        );
        let members = pools.members(&pools.specs[0]).await;
        assert_eq!(members, ["http://10.1.2.3:18070", "http://127.0.0.1:18070"]);
    }

    #[test]
    fn an_unreachable_pool_s_functions_stay_listed_as_errors_with_the_reason() {
        let f = serde_json::json!({"metadata": {"name": "x"}, "spec": {"description": "d"}, "status": {"state": "ready"}});
        let m = mark(&f, "gpu", Some("connection refused"));
        assert_eq!(m["status"]["state"], "error");
        assert!(m["spec"]["description"]
            .as_str()
            .unwrap()
            .starts_with("UNREACHABLE: pool `gpu` did not answer (connection refused)"));
        assert_eq!(mark(&f, "gpu", None)["status"]["state"], "ready");
    }
}
