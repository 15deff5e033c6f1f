//! Model instances at run time: lazy load on first request (one load however many requests
//! arrive together), serialized calls, bounded queue, idle unload, and the status each
//! instance reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use axum::http::StatusCode;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::config::{InstanceSpec, Settings};
use crate::cvat::functions::{listing, Listing};
use crate::cvat::labels::ModelInfo;
use crate::metrics::{InstanceMetrics, Stage};
use crate::runtime::kind::{kind_of, Kind};
use crate::runtime::loaded::{self, CallError, FileStamp, Loaded};
use crate::runtime::Runtime;
use crate::serve::api_error::ApiError;

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Unloaded,
    Loading,
    Ready,
    Error,
}

impl State {
    /// Every state, in order.
    pub const ALL: [State; 4] = [State::Unloaded, State::Loading, State::Ready, State::Error];

    /// The name status, logs and metrics use (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unloaded => "unloaded",
            State::Loading => "loading",
            State::Ready => "ready",
            State::Error => "error",
        }
    }
}

/// What `status` shows for one instance.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub name: String,
    pub kind: Option<Kind>,
    pub port: Option<u16>,
    pub state: State,
    pub error: Option<String>,
    pub requests: u64,
    pub failures: u64,
    /// Seconds since the Unix epoch.
    pub last_used: Option<u64>,
    pub last_load_ms: Option<u64>,
    pub compile_cached: Option<bool>,
    /// Linear memory of the loaded component (model sessions live outside it).
    pub wasm_memory_bytes: u64,
    /// What the instance's ONNX Runtime sessions hold now (weights, and activations during
    /// a run), the most they have held, and the budget they may not pass.
    pub inference_memory_bytes: u64,
    pub inference_memory_peak_bytes: u64,
    pub inference_memory_limit_bytes: u64,
    /// How many labels CVAT is shown, once the instance has been described or loaded.
    pub labels: Option<usize>,
    /// Which library runs inference (`onnxruntime` or `openvino`).
    pub backend: String,
    /// Where inference runs.
    pub device: String,
    /// The arithmetic precision asked for (`model`: the model's own).
    pub precision: String,
    /// The loaded graphs: what runs each (for `backend: auto`, the choice and its figures).
    pub graphs: Vec<crate::nn::GraphState>,
}

struct Tracking {
    status: Status,
    last_used: Option<Instant>,
    /// Linear-memory counters of the loaded replicas, by slot.
    memory: Vec<Option<Arc<AtomicU64>>>,
}

/// What `init` or `describe` said (or why `describe` failed), and the stamps of the files
/// it was read from.
type Described = (Vec<Option<FileStamp>>, Result<ModelInfo, String>);

/// One configured model instance.
pub struct Instance {
    pub spec: InstanceSpec,
    /// Read from the component's exports at start-up (no compilation).
    pub kind: Result<Kind, String>,
    /// The replicas (`replicas:`), each a store and component instance of its own; calls to
    /// one replica are serialized, replicas run side by side.
    slots: Vec<Mutex<Option<Loaded>>>,
    /// How many replicas are free: a call waits here for one.
    free: Arc<Semaphore>,
    /// The graphs the replicas share (one session per model file).
    graphs: Arc<crate::nn::SharedGraphs>,
    /// The label spec and description, from `init` once loaded, else from `describe` (or
    /// why `describe` failed), with the stamps of the files they were read from.
    info: Mutex<Option<Described>>,
    tracking: Mutex<Tracking>,
    queue: Arc<Semaphore>,
    /// Whether a `preload` has finished (loaded or failed).
    preloaded: std::sync::atomic::AtomicBool,
    /// Counters and latency histograms for `/metrics`.
    pub metrics: InstanceMetrics,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Instance {
    /// Create the instance; nothing is compiled or loaded.
    pub fn new(spec: InstanceSpec) -> Self {
        let kind = std::fs::read(&spec.component)
            .map_err(|e| format!("reading {}: {e}", spec.component.display()))
            .and_then(|wasm| kind_of(&wasm));
        let status = Status {
            name: spec.name.clone(),
            kind: kind.as_ref().ok().copied(),
            port: Some(spec.port),
            state: if kind.is_ok() {
                State::Unloaded
            } else {
                State::Error
            },
            error: kind.as_ref().err().cloned(),
            requests: 0,
            failures: 0,
            last_used: None,
            last_load_ms: None,
            compile_cached: None,
            wasm_memory_bytes: 0,
            inference_memory_bytes: 0,
            inference_memory_peak_bytes: 0,
            inference_memory_limit_bytes: spec.inference_memory as u64,
            labels: None,
            backend: spec.backend.to_string(),
            device: spec.device.to_string(),
            precision: spec.precision.to_string(),
            graphs: vec![],
        };
        let queue = Arc::new(Semaphore::new(spec.max_queue));
        let replicas = spec.replicas;
        let budget = spec.inference_memory;
        Self {
            spec,
            kind,
            slots: (0..replicas).map(|_| Mutex::new(None)).collect(),
            free: Arc::new(Semaphore::new(replicas)),
            graphs: Arc::new(crate::nn::SharedGraphs::new(budget)),
            info: Mutex::new(None),
            tracking: Mutex::new(Tracking {
                status,
                last_used: None,
                memory: vec![None; replicas],
            }),
            queue,
            preloaded: Default::default(),
            metrics: InstanceMetrics::default(),
        }
    }

    /// A snapshot of the instance's status. Never describes or loads: labels are counted
    /// from what the last listing or load found, and an instance listed as unusable (see
    /// [`Listing::problem`]) shows as `error` with the reason.
    pub fn status(&self) -> Status {
        let listing = self.cached_listing();
        let t = lock(&self.tracking);
        let mut s = t.status.clone();
        s.wasm_memory_bytes = t
            .memory
            .iter()
            .flatten()
            .map(|m| m.load(Ordering::Relaxed))
            .sum();
        let budget = self.graphs.budget();
        s.inference_memory_bytes = budget.used() as u64;
        s.inference_memory_peak_bytes = budget.peak() as u64;
        if let Some(l) = listing {
            s.labels = Some(l.labels.len());
            if let Some(problem) = l.problem {
                s.state = State::Error;
                s.error = Some(problem);
            }
        }
        s
    }

    /// Mark the instance as failed outside a request (e.g. its port could not be bound).
    pub fn set_error(&self, error: String) {
        let mut t = lock(&self.tracking);
        t.status.state = State::Error;
        t.status.error = Some(error);
    }

    fn update(&self, f: impl FnOnce(&mut Tracking)) {
        f(&mut lock(&self.tracking));
    }

    /// Requests admitted and not yet answered (waiting or running).
    pub fn in_flight(&self) -> usize {
        self.spec.max_queue - self.queue.available_permits()
    }

    /// Take a place in the instance's queue, before a request does any costly work (such as
    /// decoding its frame): past `max_queue` waiting requests the answer is 503 with
    /// `Retry-After`.
    pub fn admit(&self) -> Result<Admission, ApiError> {
        self.queue
            .clone()
            .try_acquire_owned()
            .map(Admission)
            .map_err(|_| ApiError {
                retry_after: Some(1),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("instance `{}` is busy; retry later", self.spec.name),
                )
            })
    }

    /// Run `f` on a free replica of the instance, loading it first if needed, with a place
    /// taken by [`Instance::admit`]. Each replica serves one call at a time.
    pub async fn call<T, F>(
        self: &Arc<Self>,
        admission: Admission,
        rt: &Arc<Runtime>,
        settings: &Arc<Settings>,
        f: F,
    ) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Loaded) -> Result<T, CallError> + Send + 'static,
    {
        let permit = admission.0;
        let replica = self.free.clone().acquire_owned().await.map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("replicas: {e}"))
        })?;
        let this = self.clone();
        let (rt, settings) = (rt.clone(), settings.clone());
        let result = tokio::task::spawn_blocking(move || {
            let _permits = (permit, replica);
            this.call_blocking(&rt, &settings, f)
        })
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("request task failed: {e}"),
            )
        })?;
        self.update(|t| {
            t.status.requests += 1;
            t.status.failures += u64::from(result.is_err());
            t.last_used = Some(Instant::now());
            t.status.last_used = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs());
        });
        result
    }

    /// A free replica slot (the caller holds one of `free`'s permits, so one is free): the
    /// first that is loaded, else the first at all, so that a lightly used instance keeps
    /// one replica warm rather than loading them all.
    fn free_slot(&self) -> (usize, MutexGuard<'_, Option<Loaded>>) {
        let mut empty = None;
        for (i, slot) in self.slots.iter().enumerate() {
            if let Ok(guard) = slot.try_lock() {
                if guard.is_some() {
                    return (i, guard);
                }
                empty.get_or_insert((i, guard));
            }
        }
        empty.unwrap_or_else(|| (0, lock(&self.slots[0])))
    }

    fn call_blocking<T>(
        &self,
        rt: &Runtime,
        settings: &Settings,
        f: impl FnOnce(&mut Loaded) -> Result<T, CallError>,
    ) -> Result<T, ApiError> {
        let internal = |m: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, m);
        if let Err(e) = &self.kind {
            return Err(internal(format!(
                "instance `{}` is unusable: {e}",
                self.spec.name
            )));
        }
        let (index, mut slot) = self.free_slot();
        if slot.as_ref().is_some_and(|l| l.is_stale()) {
            // The component or a model file changed: requests before this one finished on
            // the old instance; this one loads the new files (the shared graphs are keyed by
            // file version, so the changed ones load again).
            tracing::info!(instance = %self.spec.name, "component or model files changed; reloading");
            *slot = None;
        }
        if slot.is_none() {
            self.update(|t| {
                if t.status.state != State::Ready {
                    t.status.state = State::Loading;
                }
            });
            match Loaded::load(rt, &self.spec, settings, self.graphs.clone()) {
                Ok((loaded, stats)) => {
                    tracing::info!(
                        instance = %self.spec.name,
                        replica = index,
                        ms = stats.total.as_millis() as u64,
                        compile_cached = stats.compile_cached,
                        "instance loaded"
                    );
                    let graphs = loaded.graph_states();
                    self.update(|t| {
                        t.status.state = State::Ready;
                        t.status.error = None;
                        t.status.graphs = graphs;
                        t.status.last_load_ms = Some(stats.total.as_millis() as u64);
                        t.status.compile_cached = Some(stats.compile_cached);
                    });
                    *lock(&self.info) = Some((loaded.stamps(), Ok(loaded.info.clone())));
                    self.metrics.loads.fetch_add(1, Ordering::Relaxed);
                    self.metrics.load_time.observe(stats.total);
                    let memory = loaded.memory_counter();
                    self.update(|t| t.memory[index] = Some(memory));
                    *slot = Some(loaded);
                }
                Err(e) => {
                    tracing::error!(instance = %self.spec.name, "load failed: {e}");
                    self.update(|t| {
                        t.status.state = State::Error;
                        t.status.error = Some(e.clone());
                    });
                    return Err(internal(format!(
                        "instance `{}` failed to load: {e}",
                        self.spec.name
                    )));
                }
            }
        }
        let loaded = slot.as_mut().expect("loaded above");
        let started = Instant::now();
        let result = f(loaded);
        self.metrics.stage(Stage::Component, started.elapsed());
        self.metrics
            .stage(Stage::Inference, loaded.take_inference_time());
        if let Some(why) = loaded.take_budget_refusal() {
            // The run was refused memory: whatever the component made of it, the request
            // did not run as asked. The instance stays loaded and serves the next one.
            tracing::warn!(instance = %self.spec.name, "{why}");
            self.metrics.budget_refusals.fetch_add(1, Ordering::Relaxed);
            return Err(ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                format!("instance `{}`: {why}", self.spec.name),
            ));
        }
        match result {
            Ok(v) => Ok(v),
            Err(CallError::InvalidInput(m)) => Err(ApiError::new(StatusCode::BAD_REQUEST, m)),
            Err(CallError::Failed(m)) => Err(internal(m)),
            Err(CallError::Trap(m)) => {
                // The replica's memory may be inconsistent: drop it, rebuild on next use.
                tracing::warn!(instance = %self.spec.name, replica = index, "dropping instance after trap: {m}");
                *slot = None;
                let others_loaded = self
                    .slots
                    .iter()
                    .enumerate()
                    .any(|(i, s)| i != index && s.try_lock().map_or(true, |g| g.is_some()));
                self.update(|t| {
                    if !others_loaded {
                        t.status.state = State::Unloaded;
                    }
                    t.status.error = Some(m.clone());
                    t.memory[index] = None;
                });
                Err(internal(m))
            }
        }
    }

    /// What CVAT is shown for this instance, without loading its model: the label spec and
    /// description `init` reported, else the component's `describe` (run in a throwaway
    /// instance that reads the graphs' signatures from their files), cached until the
    /// component or a model file changes.
    pub fn listing(&self, rt: &Runtime, settings: &Settings) -> Listing {
        let Ok(kind) = self.kind else {
            return listing(&self.spec, None, &Err("unusable".into()));
        };
        let now = loaded::stamps(&self.spec);
        if let Some((stamps, info)) = lock(&self.info).as_ref() {
            if *stamps == now {
                return listing(&self.spec, Some(kind), info);
            }
        }
        let info = loaded::describe(rt, &self.spec, settings).map(|(_, info)| info);
        if let Err(e) = &info {
            tracing::warn!(instance = %self.spec.name, "describe failed: {e}");
        }
        let mut cached = lock(&self.info);
        // A load may have finished meanwhile: what `init` said about the same files wins.
        match cached.as_ref() {
            Some((stamps, fresher)) if *stamps == now => listing(&self.spec, Some(kind), fresher),
            _ => {
                let l = listing(&self.spec, Some(kind), &info);
                *cached = Some((now, info));
                l
            }
        }
    }

    /// The listing as last computed, if any (never describes).
    fn cached_listing(&self) -> Option<Listing> {
        let kind = *self.kind.as_ref().ok()?;
        let cached = lock(&self.info);
        let (_, info) = cached.as_ref()?;
        Some(listing(&self.spec, Some(kind), info))
    }

    /// The input size the loaded (or described) component declared, if known yet. Never
    /// loads or describes: before the first load this is `None` and frames decode in full.
    pub fn input_size(&self) -> Option<(u32, u32)> {
        lock(&self.info)
            .as_ref()
            .and_then(|(_, i)| i.as_ref().ok()?.input_size)
    }

    /// Load one replica now, as a request would, without counting as one (`preload: true`
    /// instances, at start and when they change). A failure shows in the status; either
    /// way [`Instance::warming`] turns false when it ends.
    pub async fn preload(self: &Arc<Self>, rt: &Arc<Runtime>, settings: &Arc<Settings>) {
        let Ok(replica) = self.free.clone().acquire_owned().await else {
            return;
        };
        let (this, rt, settings) = (self.clone(), rt.clone(), settings.clone());
        let loaded = tokio::task::spawn_blocking(move || {
            let _replica = replica;
            this.call_blocking(&rt, &settings, |_| Ok(()))
        })
        .await;
        match loaded {
            Ok(Ok(())) => tracing::info!(instance = %self.spec.name, "preloaded"),
            Ok(Err(e)) => {
                tracing::error!(instance = %self.spec.name, "preload failed: {}", e.error)
            }
            Err(e) => tracing::error!(instance = %self.spec.name, "preload failed: {e}"),
        }
        self.preloaded.store(true, Ordering::Relaxed);
    }

    /// Whether a `preload: true` instance has not finished its first load yet (`/readyz`
    /// waits for it).
    pub fn warming(&self) -> bool {
        self.spec.preload && !self.preloaded.load(Ordering::Relaxed)
    }

    /// Unload if idle for longer than the instance's idle timeout and no request holds it
    /// (never a `preload: true` one). Returns whether it unloaded.
    pub fn unload_if_idle(&self, now: Instant) -> bool {
        if self.spec.preload {
            return false;
        }
        let idle = {
            let t = lock(&self.tracking);
            t.status.state == State::Ready
                && t.last_used
                    .is_some_and(|u| now.saturating_duration_since(u) >= self.spec.idle_timeout)
        };
        if !idle {
            return false;
        }
        // Every replica, and only when none is serving a request.
        let Ok(mut guards) = self
            .slots
            .iter()
            .map(|s| s.try_lock())
            .collect::<Result<Vec<_>, _>>()
        else {
            return false;
        };
        let mut any = false;
        for g in &mut guards {
            any |= g.take().is_some();
        }
        self.graphs.clear();
        drop(guards);
        if !any {
            return false;
        }
        release_freed_memory();
        self.metrics.unloads.fetch_add(1, Ordering::Relaxed);
        self.update(|t| {
            t.status.state = State::Unloaded;
            t.memory.iter_mut().for_each(|m| *m = None);
        });
        tracing::info!(instance = %self.spec.name, "unloaded after {:?} idle", self.spec.idle_timeout);
        true
    }
}

/// A request's place in an instance's queue (see [`Instance::admit`]); released on drop.
pub struct Admission(tokio::sync::OwnedSemaphorePermit);

/// Hand memory freed by an unload back to the OS. glibc keeps freed heap pages in its
/// arenas (one per thread that allocated); without a trim an unloaded model's buffers stay
/// in the process's RSS.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Check every instance for idleness once per `period` until the process ends.
pub async fn idle_unloader(app: Arc<crate::app::App>, period: Duration) {
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let now = Instant::now();
        for inst in &app.instances() {
            let inst = inst.clone();
            // Dropping sessions can take a moment; keep it off the async workers.
            let _ = tokio::task::spawn_blocking(move || inst.unload_if_idle(now)).await;
        }
    }
}
