//! A loaded model instance: its store, the instantiated component and the calls into it.
//!
//! Every call runs under the instance's CPU deadline (epoch interruption) and memory cap.
//! A trap (panic, out-of-bounds, deadline, memory cap) poisons the instance: the caller
//! drops it and the next request loads a fresh one.

use std::time::{Duration, Instant};

use wasmtime::component::{Component, Resource};
use wasmtime::Store;

use super::kind::Kind;
use super::store::StoreState;
use super::{Runtime, EPOCH_TICK};
use crate::config::InstanceSpec;
use crate::cvat::labels::{AttributeSpec, LabelSpec, ModelInfo, ShapeType};
use crate::nn::SessionOptions;
use crate::nn::{NnCtx, NnLimits};

/// Bindings per kind. The imports every kind shares (`cvat:model/types`, `graphs`, `pixels`,
/// `wasi:nn`) come from [`crate::nn::bindings`], so one set of Rust types serves every kind.
mod bindings {
    macro_rules! kind {
        ($module:ident, $world:literal) => {
            pub mod $module {
                wasmtime::component::bindgen!({
                    path: "../wit",
                    world: $world,
                    with: {
                        "wasi:nn": crate::nn::bindings::wasi::nn,
                        "cvat:model/graphs": crate::nn::bindings::cvat::model::graphs,
                        "cvat:model/types": crate::nn::bindings::cvat::model::types,
                        "cvat:model/pixels": crate::nn::bindings::cvat::model::pixels,
                    },
                });
            }
        };
    }
    kind!(detector, "cvat:model/detector-model");
    kind!(tracker, "cvat:model/tracker-model");
    kind!(interactor, "cvat:model/interactor-model");
    kind!(reid, "cvat:model/reid-model");
}

use crate::nn::bindings::cvat::model::types as wit;
use bindings::detector::DetectorModel;
use bindings::interactor::InteractorModel;
use bindings::reid::ReidModel;
use bindings::tracker::TrackerModel;

/// The interactor's prompt and proposal types.
pub use bindings::interactor::exports::cvat::model::interactor::{Prompt, Proposal};
/// The tracker's shape and result types.
pub use bindings::tracker::exports::cvat::model::tracker::{TrackResult, TrackedShape};
/// Boxes and points.
pub use wit::{Attribute, Bbox, Element, Point, ShapeType as WitShapeType};

pub use crate::nn::pixels::Frame;

/// One detection in host terms (see `wit/cvat-model.wit`, record `detection`).
pub type Detection = wit::Detection;
/// A mask in host terms.
pub type Mask = wit::Mask;

/// Why a call into a component failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The component judged the request unusable (HTTP 400).
    #[error("{0}")]
    InvalidInput(String),
    /// The component reported a failure (HTTP 500); the instance stays usable.
    #[error("{0}")]
    Failed(String),
    /// The component trapped or overran its deadline (HTTP 500); the instance must be dropped.
    #[error("{0}")]
    Trap(String),
}

enum Exports {
    Detector(DetectorModel),
    Tracker(TrackerModel),
    Interactor(InteractorModel),
    Reid(ReidModel),
}

/// Call `$method` on whichever kind interface `$exports` holds.
macro_rules! on_kind {
    ($exports:expr, $store:expr, $method:ident ( $($arg:expr),* )) => {
        match $exports {
            Exports::Detector(m) => m.cvat_model_detector().$method($store, $($arg),*),
            Exports::Tracker(m) => m.cvat_model_tracker().$method($store, $($arg),*),
            Exports::Interactor(m) => m.cvat_model_interactor().$method($store, $($arg),*),
            Exports::Reid(m) => m.cvat_model_reid().$method($store, $($arg),*),
        }
    };
}

/// One call of a tracker request: start a track from a shape, or continue one from its state.
pub enum TrackCall {
    Start(TrackedShape),
    Continue(String),
}

/// An instantiated, initialised component.
pub struct Loaded {
    store: Store<StoreState>,
    exports: std::sync::Arc<Exports>,
    pub kind: Kind,
    pub info: ModelInfo,
    deadline: Duration,
    memory_limit: u64,
    name: String,
    /// The component and model files as they were when loaded.
    files: Vec<(std::path::PathBuf, Option<FileStamp>)>,
}

/// What identifies a file's version cheaply: its inode, size and modification time (the
/// inode tells a replaced file, such as a Kubernetes ConfigMap's after its `..data` symlink
/// swap, from the old one even within one clock tick).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    ino: u64,
    len: u64,
    modified: std::time::SystemTime,
}

/// The files an instance is made of: its component, then its model files (in a stable order).
fn files(spec: &InstanceSpec) -> impl Iterator<Item = &std::path::PathBuf> {
    let mut graphs: Vec<_> = spec.graphs.iter().collect();
    graphs.sort();
    std::iter::once(&spec.component).chain(graphs.into_iter().map(|(_, p)| p))
}

/// The stamps of an instance's files now (see [`Loaded::stamps`]).
pub fn stamps(spec: &InstanceSpec) -> Vec<Option<FileStamp>> {
    files(spec).map(|p| stamp(p)).collect()
}

/// The stamp of `path` now, if it exists.
pub fn stamp(path: &std::path::Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        ino: m.ino(),
        len: m.len(),
        modified: m.modified().ok()?,
    })
}

/// Figures from a load, for logs and status.
#[derive(Debug, Clone, Copy)]
pub struct LoadStats {
    pub compile_cached: bool,
    pub total: Duration,
}

fn ticks(d: Duration) -> u64 {
    (d.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

impl Loaded {
    /// Compile (or fetch from cache), instantiate and `init` the instance's component.
    pub fn load(
        rt: &Runtime,
        spec: &InstanceSpec,
        settings: &crate::config::Settings,
        shared: std::sync::Arc<crate::nn::SharedGraphs>,
    ) -> Result<(Self, LoadStats), String> {
        let started = Instant::now();
        // Stamp before reading, so a change during the load is seen as a change.
        let files: Vec<_> = files(spec).map(|p| (p.clone(), stamp(p))).collect();
        let wasm = std::fs::read(&spec.component)
            .map_err(|e| format!("reading {}: {e}", spec.component.display()))?;
        let kind = super::kind::kind_of(&wasm)?;
        super::sandbox::Imports::of(&wasm)?.check()?;
        let (component, compile_cached) = rt.compile(&wasm).map_err(|e| format!("{e:#}"))?;
        let nn = NnCtx::new(
            spec.graphs.clone(),
            shared,
            SessionOptions {
                intra_threads: spec.ort_threads.unwrap_or(settings.ort_threads),
                backend: spec.backend,
                device: spec.device,
                precision: spec.precision,
                requests_per_load: spec.requests_per_load,
            },
            rt.libraries.clone(),
            NnLimits {
                max_tensor_bytes: settings.max_tensor_bytes,
                max_live_bytes: settings.max_nn_bytes,
            },
        );
        let mut store = Store::new(&rt.engine, StoreState::new(nn, settings.memory_limit));
        store.limiter(|s| &mut s.limits);
        let deadline = settings.request_timeout;
        store.set_epoch_deadline(ticks(deadline));
        let exports = instantiate(rt, &mut store, &component, kind)
            .map_err(|e| format!("instantiating: {e:#}"))?;
        let mut loaded = Self {
            store,
            exports: std::sync::Arc::new(exports),
            kind,
            info: ModelInfo {
                labels: vec![],
                description: String::new(),
                needs: vec![],
                input_size: None,
            },
            deadline,
            memory_limit: settings.memory_limit,
            name: spec.name.clone(),
            files,
        };
        let config = instance_config(spec);
        let info = loaded.init(config).map_err(|e| format!("init: {e}"))?;
        loaded.info = info;
        Ok((
            loaded,
            LoadStats {
                compile_cached,
                total: started.elapsed(),
            },
        ))
    }

    /// The counter of this instance's linear memory, in bytes.
    pub fn memory_counter(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.store.data().limits.memory_bytes.clone()
    }

    /// The instance's loaded graphs and what runs them.
    pub fn graph_states(&self) -> Vec<crate::nn::GraphState> {
        self.store.data().graph_states()
    }

    /// Time spent in inference since the last call.
    pub fn take_inference_time(&mut self) -> Duration {
        self.store.data_mut().take_inference_time()
    }

    /// Why the last call's inference was refused memory, if it was: the budget's message.
    pub fn take_budget_refusal(&mut self) -> Option<String> {
        let (asked, budget) = self.store.data_mut().take_budget_refusal()?;
        Some(budget.refusal_message(asked))
    }

    /// The stamps of the component and model files as they were when loaded, in the order
    /// [`stamps`] gives.
    pub fn stamps(&self) -> Vec<Option<FileStamp>> {
        self.files.iter().map(|(_, s)| *s).collect()
    }

    /// Whether the component or a model file changed since this instance was loaded.
    pub fn is_stale(&self) -> bool {
        self.files.iter().any(|(p, s)| stamp(p) != *s)
    }

    fn init(&mut self, config: wit::InstanceConfig) -> Result<ModelInfo, CallError> {
        self.store.set_epoch_deadline(ticks(self.deadline));
        let result = on_kind!(&*self.exports, &mut self.store, call_init(&config));
        let info = self.finish(result)?;
        Ok(model_info(info))
    }

    fn wrong_kind(&self, wanted: Kind) -> CallError {
        CallError::Failed(format!(
            "instance `{}` is a {}, not a {wanted}",
            self.name, self.kind
        ))
    }

    /// Lend `frame` to the component for the calls `f` makes with its handle, then take it
    /// back.
    fn with_frame<T>(
        &mut self,
        frame: Frame,
        f: impl FnOnce(&mut Self, &Resource<Frame>) -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        let lent = self
            .store
            .data_mut()
            .lend_frame(frame)
            .map_err(|e| CallError::Failed(format!("lending the frame: {e}")))?;
        let result = f(self, &lent);
        self.store.data_mut().take_frame(lent);
        result
    }

    /// The calls of one tracker request on its frame: each starts a track or continues one.
    pub fn track(
        &mut self,
        frame: Frame,
        calls: &[TrackCall],
    ) -> Result<Vec<TrackResult>, CallError> {
        let exports = self.exports.clone();
        let Exports::Tracker(m) = &*exports else {
            return Err(self.wrong_kind(Kind::Tracker));
        };
        self.with_frame(frame, |this, f| {
            calls
                .iter()
                .map(|call| {
                    this.store.set_epoch_deadline(ticks(this.deadline));
                    let t = m.cvat_model_tracker();
                    let borrowed = Resource::new_borrow(f.rep());
                    let result = match call {
                        TrackCall::Start(shape) => t.call_start(&mut this.store, borrowed, shape),
                        TrackCall::Continue(state) => {
                            t.call_track(&mut this.store, borrowed, state)
                        }
                    };
                    this.finish(result)
                })
                .collect()
        })
    }

    /// Segment the object the prompt points at.
    pub fn interact(&mut self, frame: Frame, prompt: &Prompt) -> Result<Vec<Proposal>, CallError> {
        let exports = self.exports.clone();
        let Exports::Interactor(m) = &*exports else {
            return Err(self.wrong_kind(Kind::Interactor));
        };
        self.with_frame(frame, |this, f| {
            this.store.set_epoch_deadline(ticks(this.deadline));
            let result = m.cvat_model_interactor().call_interact(
                &mut this.store,
                Resource::new_borrow(f.rep()),
                prompt,
            );
            this.finish(result)
        })
    }

    /// Match `boxes0` on `frame0` to `boxes1` on `frame1`.
    pub fn match_boxes(
        &mut self,
        frames: (Frame, Frame),
        boxes: (&[Bbox], &[Bbox]),
        threshold: Option<f32>,
        max_distance: Option<f32>,
    ) -> Result<Vec<i32>, CallError> {
        let exports = self.exports.clone();
        let Exports::Reid(m) = &*exports else {
            return Err(self.wrong_kind(Kind::Reid));
        };
        let (f0, f1) = frames;
        self.with_frame(f0, |this, f0| {
            this.with_frame(f1, |this, f1| {
                this.store.set_epoch_deadline(ticks(this.deadline));
                let result = m.cvat_model_reid().call_match_boxes(
                    &mut this.store,
                    Resource::new_borrow(f0.rep()),
                    boxes.0,
                    Resource::new_borrow(f1.rep()),
                    boxes.1,
                    threshold,
                    max_distance,
                );
                this.finish(result)
            })
        })
    }

    /// Run the detector on `frame`.
    pub fn detect(
        &mut self,
        frame: Frame,
        threshold: Option<f32>,
    ) -> Result<Vec<Detection>, CallError> {
        let exports = self.exports.clone();
        let Exports::Detector(d) = &*exports else {
            return Err(self.wrong_kind(Kind::Detector));
        };
        self.with_frame(frame, |this, f| {
            this.store.set_epoch_deadline(ticks(this.deadline));
            let result = d.cvat_model_detector().call_detect(
                &mut this.store,
                Resource::new_borrow(f.rep()),
                threshold,
            );
            this.finish(result)
        })
    }

    /// Turn a call's outcome into a [`CallError`], logging what the component printed.
    fn finish<T>(
        &mut self,
        result: wasmtime::Result<Result<T, wit::Error>>,
    ) -> Result<T, CallError> {
        let printed = self.store.data().log.take();
        if !printed.is_empty() {
            tracing::info!(instance = %self.name, "component output: {printed}");
        }
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(wit::Error::InvalidInput(m))) => Err(CallError::InvalidInput(m)),
            Ok(Err(wit::Error::InvalidConfig(m))) => {
                Err(CallError::Failed(format!("invalid config: {m}")))
            }
            Ok(Err(wit::Error::Failed(m))) => Err(CallError::Failed(m)),
            Err(e) => Err(CallError::Trap(describe_trap(
                &e,
                self.deadline,
                self.memory_limit,
                &printed,
            ))),
        }
    }
}

/// What `init` and `describe` receive: the config map and the configured classes.
fn instance_config(spec: &InstanceSpec) -> wit::InstanceConfig {
    wit::InstanceConfig {
        config: spec
            .config
            .iter()
            .map(|(k, v)| wit::ConfigEntry {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
        labels: spec
            .classes
            .iter()
            .map(|(id, name)| wit::Label {
                id: *id,
                name: name.clone(),
                shape: wit::ShapeType::Any,
                attributes: vec![],
                sublabels: vec![],
                svg: None,
            })
            .collect(),
    }
}

/// Call the component's `describe` in a throwaway instance that can load no graphs, so
/// that listing an instance never loads its model; it can read their signatures and
/// metadata (from the files), e.g. the class names an exporter stored there.
pub fn describe(
    rt: &Runtime,
    spec: &InstanceSpec,
    settings: &crate::config::Settings,
) -> Result<(Kind, ModelInfo), String> {
    let wasm = std::fs::read(&spec.component)
        .map_err(|e| format!("reading {}: {e}", spec.component.display()))?;
    let kind = super::kind::kind_of(&wasm)?;
    super::sandbox::Imports::of(&wasm)?.check()?;
    let (component, _) = rt.compile(&wasm).map_err(|e| format!("{e:#}"))?;
    let nn = NnCtx::for_describe(spec.graphs.clone());
    let mut store = Store::new(&rt.engine, StoreState::new(nn, settings.memory_limit));
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(ticks(settings.request_timeout));
    let exports = instantiate(rt, &mut store, &component, kind)
        .map_err(|e| format!("instantiating: {e:#}"))?;
    let config = instance_config(spec);
    let info = on_kind!(&exports, &mut store, call_describe(&config)).map_err(|e| {
        let printed = store.data().log.take();
        describe_trap(
            &e,
            settings.request_timeout,
            settings.memory_limit,
            &printed,
        )
    })?;
    Ok((kind, model_info(info)))
}

fn instantiate(
    rt: &Runtime,
    store: &mut Store<StoreState>,
    component: &Component,
    kind: Kind,
) -> wasmtime::Result<Exports> {
    match kind {
        Kind::Detector => Ok(Exports::Detector(DetectorModel::instantiate(
            store, component, &rt.linker,
        )?)),
        Kind::Tracker => Ok(Exports::Tracker(TrackerModel::instantiate(
            store, component, &rt.linker,
        )?)),
        Kind::Interactor => Ok(Exports::Interactor(InteractorModel::instantiate(
            store, component, &rt.linker,
        )?)),
        Kind::Reid => Ok(Exports::Reid(ReidModel::instantiate(
            store, component, &rt.linker,
        )?)),
    }
}

fn describe_trap(
    e: &wasmtime::Error,
    deadline: Duration,
    memory_limit: u64,
    printed: &str,
) -> String {
    let mut msg = match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => {
            format!(
                "the component exceeded its deadline of {:.1}s",
                deadline.as_secs_f64()
            )
        }
        Some(trap) => format!("the component trapped: {trap}"),
        None => {
            let root = e.root_cause().to_string();
            if root.contains("growing memory") {
                format!(
                    "the component trapped: it hit its memory limit of {} MiB ({root})",
                    memory_limit >> 20
                )
            } else {
                format!("the component trapped: {root}")
            }
        }
    };
    if let Some(reason) = printed_reason(printed) {
        msg.push_str(&format!(" ({reason})"));
    }
    msg
}

/// The line of a component's output that says why it stopped: a Python traceback's
/// exception line, else the last line (a Rust panic's message), skipping `note:` hints.
fn printed_reason(printed: &str) -> Option<&str> {
    let mut lines: Vec<&str> = printed
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    while lines.last().is_some_and(|l| l.starts_with("note: ")) {
        lines.pop();
    }
    if let Some(tb) = lines
        .iter()
        .rposition(|l| l.starts_with("Traceback (most recent call last)"))
    {
        let stop = lines[tb..]
            .iter()
            .position(|l| l.starts_with("thread '"))
            .map_or(lines.len(), |p| tb + p);
        return lines[tb + 1..stop]
            .iter()
            .rev()
            .find(|l| !l.starts_with(' '))
            .copied();
    }
    lines.last().copied()
}

fn shape(s: wit::ShapeType) -> ShapeType {
    match s {
        wit::ShapeType::Any => ShapeType::Any,
        wit::ShapeType::Rectangle => ShapeType::Rectangle,
        wit::ShapeType::Polygon => ShapeType::Polygon,
        wit::ShapeType::Polyline => ShapeType::Polyline,
        wit::ShapeType::Points => ShapeType::Points,
        wit::ShapeType::Ellipse => ShapeType::Ellipse,
        wit::ShapeType::Cuboid => ShapeType::Cuboid,
        wit::ShapeType::Mask => ShapeType::Mask,
        wit::ShapeType::Skeleton => ShapeType::Skeleton,
        wit::ShapeType::Tag => ShapeType::Tag,
    }
}

/// The CVAT name of a result's shape type.
pub fn shape_name(s: wit::ShapeType) -> &'static str {
    shape(s).as_str()
}

fn model_info(info: wit::ModelInfo) -> ModelInfo {
    ModelInfo {
        description: info.description,
        needs: info.needs,
        input_size: info.input_size,
        labels: info
            .labels
            .into_iter()
            .map(|l| LabelSpec {
                id: l.id,
                name: l.name,
                shape: shape(l.shape),
                attributes: l
                    .attributes
                    .into_iter()
                    .map(|a| AttributeSpec {
                        name: a.name,
                        input_type: a.input_type,
                        values: a.values,
                    })
                    .collect(),
                sublabels: l.sublabels.into_iter().map(|s| (s.id, s.name)).collect(),
                svg: l.svg,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::printed_reason;

    #[test]
    fn the_reason_a_component_stopped_is_its_exception_or_panic_message() {
        let python = "Traceback (most recent call last):\n  File \"/0/app.py\", line 51, in detect\nModuleNotFoundError: No module named 'socket'\n\nthread '<unnamed>' (1) panicked at runtime/src/lib.rs:1293:29:\nPython function threw an unexpected exception\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            printed_reason(python),
            Some("ModuleNotFoundError: No module named 'socket'")
        );
        let rust = "thread '<unnamed>' panicked at src/lib.rs:80:24:\nhostile: asked to panic\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(printed_reason(rust), Some("hostile: asked to panic"));
        assert_eq!(printed_reason("\n\n"), None);
    }
}
