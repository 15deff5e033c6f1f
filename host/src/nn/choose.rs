//! `backend: auto`: run each model file on the backend that is fastest for it on this
//! machine, measured once and remembered.
//!
//! The first time a model file is loaded with `auto` on a machine, every available backend
//! (ONNX Runtime; OpenVINO when installed and the device is the CPU) loads it with the
//! instance's thread count and runs it on the same deterministic inputs ([`probe::inputs`]):
//! one untimed run, then [`TIMED_RUNS`] timed ones. OpenVINO is loaded twice: the first
//! load compiles the model into its cache, and every later load (after each idle unload)
//! reads it from there, so the second load is what a load costs. A backend whose outputs differ from ONNX
//! Runtime's by more than [`TOLERANCE`] (relative to each output's largest magnitude) is
//! never chosen: it is not computing the same model. The measurements are kept in
//! `<state>/backends/<key>.json`, the key covering the model's SHA-256, the backend
//! libraries (file names and sizes) and the CPU (model name and instruction flags), so a
//! new model, library or machine is measured again.
//!
//! The choice weighs load time against reuse: each backend costs `p50 + load / N` per
//! request, N being the requests an instance expects to serve per load
//! (`requests_per_load`, default [`DEFAULT_REQUESTS_PER_LOAD`]): a model unloaded after
//! every request (N = 1) pays its whole load each time. The cheapest agreeing backend wins;
//! ties go to ONNX Runtime.
//!
//! [`probe::inputs`]: crate::probe::inputs

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::graph::{self, Backend, Graph, Libraries, SessionOptions};
use super::tensor::{ElementType, HostTensor};

/// Largest relative output difference (to ONNX Runtime's) of a backend that may be chosen:
/// f32 kernels differ by up to about 1e-4 here (YOLOX-Nano on OpenVINO: 7.6e-5), bf16 by
/// about 1e-2.
pub const TOLERANCE: f64 = 1e-3;
/// Timed runs per backend (after one untimed run).
pub const TIMED_RUNS: usize = 5;
/// Requests an instance is expected to serve per load when it does not say.
pub const DEFAULT_REQUESTS_PER_LOAD: u32 = 50;

/// One backend's figures for one model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    pub backend: String,
    /// What each load costs: for OpenVINO the second load, from its compiled-model cache.
    pub load_ms: f64,
    /// The first load on this machine, when it costs more (OpenVINO compiling the model).
    pub cold_load_ms: Option<f64>,
    pub p50_ms: f64,
    /// Largest output difference relative to ONNX Runtime's (0 for ONNX Runtime itself;
    /// none when ONNX Runtime could not run the inputs, so nothing was compared).
    pub max_rel_diff: Option<f64>,
    /// Why the backend could not run the model, if it could not.
    pub error: Option<String>,
}

/// The measurements of one model file on this machine (what is cached).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub key: String,
    pub model: String,
    pub threads: usize,
    pub trials: Vec<Trial>,
}

/// A decision: the backend, the requests per load it assumed, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    pub backend: Backend,
    pub requests_per_load: u32,
    pub why: String,
    /// Whether the measurements came from the cache.
    pub cached: bool,
    pub measured: Measured,
}

impl Measured {
    /// The cheapest backend whose outputs agree, at `n` requests per load.
    pub fn choose(&self, n: u32) -> (Backend, String) {
        let n = n.max(1);
        let cost = |t: &Trial| t.p50_ms + t.load_ms / f64::from(n);
        let mut parts = vec![];
        let mut best: Option<(&Trial, f64)> = None;
        for t in &self.trials {
            let usable = t.error.is_none() && t.max_rel_diff.is_some_and(|d| d <= TOLERANCE);
            let c = cost(t);
            parts.push(match (&t.error, t.max_rel_diff) {
                (Some(e), _) => format!("{}: failed ({e})", t.backend),
                (None, Some(d)) if d > TOLERANCE => format!(
                    "{}: outputs differ by {d:.1e} > {TOLERANCE:.0e}, not used",
                    t.backend
                ),
                (None, None) => format!(
                    "{}: not compared with onnxruntime's outputs, not used",
                    t.backend
                ),
                _ => format!(
                    "{}: {:.2} + {:.0}/{n} = {c:.2} ms",
                    t.backend, t.p50_ms, t.load_ms
                ),
            });
            if usable && best.is_none_or(|(_, b)| c < b) {
                best = Some((t, c));
            }
        }
        let Some(backend) = best.and_then(|(t, _)| Backend::parse(&t.backend).ok()) else {
            return (
                Backend::OnnxRuntime,
                format!(
                    "onnxruntime, as no backend could be measured ({})",
                    parts.join("; ")
                ),
            );
        };
        (
            backend,
            format!(
                "{backend} (p50 + load / requests per load: {})",
                parts.join("; ")
            ),
        )
    }
}

/// Measures model files and remembers the measurements: in memory per file version, on disk
/// per key.
#[derive(Debug, Default)]
pub struct Chooser {
    /// `<state>/backends`; `None` keeps measurements in memory only.
    dir: Option<PathBuf>,
    memo: Mutex<HashMap<(PathBuf, u64, std::time::SystemTime, usize), Measured>>,
}

impl Chooser {
    /// A chooser caching its measurements under `dir`.
    pub fn new(dir: Option<PathBuf>) -> Arc<Self> {
        Arc::new(Self {
            dir,
            memo: Mutex::default(),
        })
    }

    /// Choose the backend for `path` (CPU; an `auto` instance on CUDA runs ONNX Runtime)
    /// with `options`' thread count, measuring if this machine never has. Returns the choice
    /// and, when it just measured, the chosen backend's already loaded graph.
    pub fn choose(
        &self,
        path: &Path,
        options: SessionOptions,
        requests_per_load: u32,
        libraries: &Libraries,
    ) -> anyhow::Result<(Choice, Option<Arc<dyn Graph>>)> {
        let meta = std::fs::metadata(path)?;
        let memo_key = (
            path.to_path_buf(),
            meta.len(),
            meta.modified()?,
            options.intra_threads,
        );
        let cached = self
            .memo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&memo_key)
            .cloned();
        let key = match &cached {
            Some(m) => m.key.clone(),
            None => key(path, options.intra_threads, libraries)?,
        };
        let from_disk = cached.or_else(|| self.load_measured(&key));
        let (measured, mut graphs, was_cached) = match from_disk {
            Some(m) => (m, HashMap::new(), true),
            None => {
                let (m, graphs) = measure(path, options, libraries, key)?;
                self.store_measured(&m);
                (m, graphs, false)
            }
        };
        self.memo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(memo_key, measured.clone());
        let (backend, why) = measured.choose(requests_per_load);
        let graph = graphs.remove(&backend.to_string());
        Ok((
            Choice {
                backend,
                requests_per_load: requests_per_load.max(1),
                why,
                cached: was_cached,
                measured,
            },
            graph,
        ))
    }

    fn file(&self, key: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{key}.json")))
    }

    fn load_measured(&self, key: &str) -> Option<Measured> {
        let text = std::fs::read_to_string(self.file(key)?).ok()?;
        serde_json::from_str::<Measured>(&text)
            .ok()
            .filter(|m| m.key == key)
    }

    fn store_measured(&self, m: &Measured) {
        let Some(path) = self.file(&m.key) else {
            return;
        };
        let write = || -> anyhow::Result<()> {
            std::fs::create_dir_all(path.parent().expect("a file in a folder"))?;
            crate::config::yaml_edit::write_atomic(&path, &serde_json::to_string_pretty(m)?)?;
            Ok(())
        };
        if let Err(e) = write() {
            tracing::warn!(path = %path.display(), "could not keep the backend measurements: {e:#}");
        }
    }
}

/// Measure `path` on every available backend now (no cache): what `host probe
/// --all-backends` prints.
pub fn compare(
    path: &Path,
    options: SessionOptions,
    libraries: &Libraries,
) -> anyhow::Result<Measured> {
    let key = key(path, options.intra_threads, libraries)?;
    Ok(measure(path, options, libraries, key)?.0)
}

/// The cache key: the model's SHA-256, the thread count, the backend libraries and the CPU.
fn key(path: &Path, threads: usize, libraries: &Libraries) -> anyhow::Result<String> {
    let mut h = Sha256::new();
    h.update(std::fs::read(path)?);
    h.update(threads.to_le_bytes());
    for lib in [&libraries.onnxruntime, &libraries.openvino]
        .into_iter()
        .flatten()
    {
        let real = lib.canonicalize().unwrap_or_else(|_| lib.clone());
        h.update(real.file_name().unwrap_or_default().as_encoded_bytes());
        h.update(
            std::fs::metadata(&real)
                .map(|m| m.len())
                .unwrap_or(0)
                .to_le_bytes(),
        );
    }
    h.update(cpu_identity().as_bytes());
    let digest = h.finalize();
    Ok(digest.iter().take(16).map(|b| format!("{b:02x}")).collect())
}

/// The CPU's model name and instruction flags (what decides which kernels a backend uses).
pub fn cpu_identity() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    format!("{} | {}", field("model name"), field("flags"))
}

/// The backends that can run on the CPU here.
fn candidates(libraries: &Libraries) -> Vec<Backend> {
    let mut b = vec![Backend::OnnxRuntime];
    if libraries.openvino.is_some() {
        b.push(Backend::OpenVino);
    }
    b
}

/// The graphs a measurement loaded, by backend name.
type Loaded = HashMap<String, Arc<dyn Graph>>;

/// Load and time `path` on every candidate backend; ONNX Runtime's outputs are the reference.
fn measure(
    path: &Path,
    options: SessionOptions,
    libraries: &Libraries,
    key: String,
) -> anyhow::Result<(Measured, Loaded)> {
    tracing::info!(model = %path.display(), threads = options.intra_threads, "backend auto: measuring every backend on this model (once per machine)");
    let mut trials = vec![];
    let mut graphs = HashMap::new();
    let mut reference: Option<Vec<(String, HostTensor)>> = None;
    for backend in candidates(libraries) {
        let opts = SessionOptions { backend, ..options };
        match time(path, opts, libraries) {
            Ok((load_ms, cold_load_ms, p50_ms, outputs, g)) => {
                // ONNX Runtime's outputs are the reference; without them (it failed on these
                // inputs) another backend stays unverified, and unverified is not usable.
                let diff = match (backend, &reference) {
                    (Backend::OnnxRuntime, _) => Some(0.0),
                    (_, Some(r)) => Some(relative_diff(r, &outputs)),
                    (_, None) => None,
                };
                if backend == Backend::OnnxRuntime {
                    reference = Some(outputs);
                }
                trials.push(Trial {
                    backend: backend.to_string(),
                    load_ms,
                    cold_load_ms,
                    p50_ms,
                    max_rel_diff: diff,
                    error: None,
                });
                graphs.insert(backend.to_string(), g);
            }
            Err(e) => trials.push(Trial {
                backend: backend.to_string(),
                load_ms: 0.0,
                cold_load_ms: None,
                p50_ms: 0.0,
                max_rel_diff: None,
                error: Some(format!("{e:#}")),
            }),
        }
    }
    if reference.is_none() {
        // The deterministic inputs may not suit the model (SAM's decoder reads a frame size
        // from one): nothing can be compared, so ONNX Runtime runs it (see `choose`).
        tracing::warn!(model = %path.display(), "backend auto: could not measure this model; onnxruntime runs it");
    }
    let measured = Measured {
        key,
        model: path.display().to_string(),
        threads: options.intra_threads,
        trials,
    };
    Ok((measured, graphs))
}

/// Load time, first (cold) load time if it differs, p50, outputs and the loaded graph.
type Timed = (
    f64,
    Option<f64>,
    f64,
    Vec<(String, HostTensor)>,
    Arc<dyn Graph>,
);

/// Load `path` on one backend and time it: load (OpenVINO: cold, then from its cache), then
/// p50 of the timed runs.
fn time(path: &Path, options: SessionOptions, libraries: &Libraries) -> anyhow::Result<Timed> {
    let load = || -> anyhow::Result<(Arc<dyn Graph>, f64)> {
        let started = Instant::now();
        let g = graph::load(path, options, libraries)?;
        Ok((g, started.elapsed().as_secs_f64() * 1e3))
    };
    let (mut g, mut load_ms) = load()?;
    let mut cold_load_ms = None;
    if options.backend == Backend::OpenVino && libraries.openvino_cache.is_some() {
        drop(g);
        cold_load_ms = Some(load_ms);
        (g, load_ms) = load()?;
    }
    let input = crate::probe::inputs(g.as_ref())?;
    let mut out = g.run(input.clone())?;
    let mut runs = Vec::with_capacity(TIMED_RUNS);
    for _ in 0..TIMED_RUNS {
        let started = Instant::now();
        out = g.run(input.clone())?;
        runs.push(started.elapsed().as_secs_f64() * 1e3);
    }
    runs.sort_by(f64::total_cmp);
    Ok((load_ms, cold_load_ms, runs[runs.len() / 2], out, g))
}

/// The largest difference between two runs' f32 outputs, relative to each output's largest
/// magnitude (outputs of other element types must match exactly).
pub fn relative_diff(a: &[(String, HostTensor)], b: &[(String, HostTensor)]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    let mut worst = 0f64;
    for ((_, x), (_, y)) in a.iter().zip(b) {
        if x.dims != y.dims || x.ty != y.ty {
            return f64::INFINITY;
        }
        if x.ty != ElementType::F32 {
            if x.data != y.data {
                return f64::INFINITY;
            }
            continue;
        }
        let floats = |t: &HostTensor| -> Vec<f64> {
            t.data
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        };
        let (p, q) = (floats(x), floats(y));
        let scale = p.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-12);
        let diff = p
            .iter()
            .zip(&q)
            .fold(0f64, |m, (u, v)| m.max((u - v).abs()));
        worst = worst.max(if diff.is_nan() {
            f64::INFINITY
        } else {
            diff / scale
        });
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(backend: &str, load_ms: f64, p50_ms: f64, diff: f64) -> Trial {
        Trial {
            backend: backend.into(),
            load_ms,
            cold_load_ms: None,
            p50_ms,
            max_rel_diff: Some(diff),
            error: None,
        }
    }

    #[test]
    fn the_choice_weighs_load_time_against_reuse_and_skips_disagreeing_backends() {
        // BlazeFace-like: OpenVINO runs faster but loads much slower.
        let m = Measured {
            key: "k".into(),
            model: "m".into(),
            threads: 2,
            trials: vec![
                trial("onnxruntime", 12.0, 1.5, 0.0),
                trial("openvino", 179.0, 0.6, 1e-6),
            ],
        };
        assert_eq!(m.choose(50).0, Backend::OnnxRuntime); // 1.74 vs 4.18 ms
        assert_eq!(m.choose(1000).0, Backend::OpenVino); // 1.51 vs 0.78 ms
        let (_, why) = m.choose(50);
        assert!(why.contains("openvino: 0.60 + 179/50 = 4.18 ms"), "{why}");
        // A faster backend that computes something else is never chosen.
        let mut wrong = m.clone();
        wrong.trials[1].max_rel_diff = Some(0.02);
        assert_eq!(wrong.choose(100_000).0, Backend::OnnxRuntime);
        assert!(wrong.choose(1).1.contains("differ"));
        // A failed backend neither.
        let mut failed = m.clone();
        failed.trials[1].error = Some("boom".into());
        assert_eq!(failed.choose(100_000).0, Backend::OnnxRuntime);
        // Nothing measurable (the inputs do not suit the model): onnxruntime, saying why,
        // even though another backend ran (it could not be compared).
        failed.trials[0].error = Some("bad inputs".into());
        failed.trials[1].error = None;
        failed.trials[1].max_rel_diff = None;
        let (b, why) = failed.choose(1);
        assert_eq!(b, Backend::OnnxRuntime);
        assert!(
            why.contains("no backend could be measured") && why.contains("bad inputs"),
            "{why}"
        );
        assert!(why.contains("openvino: not compared"), "{why}");
    }

    #[test]
    fn measurements_are_keyed_on_the_model_bytes_the_threads_and_the_libraries() {
        let dir = std::env::temp_dir().join(format!("choose-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b, c) = (dir.join("a.onnx"), dir.join("b.onnx"), dir.join("c.onnx"));
        std::fs::write(&a, b"model one").unwrap();
        std::fs::write(&b, b"model one").unwrap();
        std::fs::write(&c, b"model two").unwrap();
        let none = Libraries::default();
        let k = |p: &Path, threads, libs: &Libraries| key(p, threads, libs).unwrap();
        assert_eq!(k(&a, 2, &none), k(&b, 2, &none), "same bytes, another path");
        assert_ne!(k(&a, 2, &none), k(&c, 2, &none));
        assert_ne!(k(&a, 2, &none), k(&a, 4, &none));
        let lib = dir.join("libonnxruntime.so.1.99.0");
        std::fs::write(&lib, b"x").unwrap();
        let with_lib = Libraries {
            onnxruntime: Some(lib),
            ..Default::default()
        };
        assert_ne!(k(&a, 2, &none), k(&a, 2, &with_lib));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn relative_differences() {
        let t = |v: &[f32]| HostTensor {
            dims: vec![v.len() as u32],
            ty: ElementType::F32,
            data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        };
        let a = vec![("o".to_string(), t(&[100.0, 1.0]))];
        let b = vec![("o".to_string(), t(&[100.0, 1.01]))];
        assert!((relative_diff(&a, &b) - 1e-4).abs() < 1e-6);
        let c = vec![("o".to_string(), t(&[100.0]))];
        assert_eq!(relative_diff(&a, &c), f64::INFINITY);
    }
}
