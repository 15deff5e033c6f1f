//! The host side of `wasi:nn` (graphs, tensors, inference, errors) and of
//! `cvat:model/graphs`, backed by ONNX Runtime (CPU or CUDA) or OpenVINO (CPU), and of the
//! request frames and the `cvat:model/pixels` imports that turn them into tensors
//! ([`pixels`]).
//! [`graph`] holds what the backends share; [`onnx`] and [`openvino`] implement it.
//!
//! Each model instance gets its own [`NnCtx`]: a registry that maps graph names (config keys)
//! to the model files the instance was configured with, and the sessions loaded so far.
//! Dropping the context drops the sessions, which is how an idle instance gives memory back.

pub mod budget;
pub mod choose;
pub mod graph;
pub mod onnx;
pub mod onnx_meta;
pub mod openvino;
pub mod pixels;
pub mod tensor;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

pub use graph::{Backend, Device, Graph, Libraries, Precision, SessionOptions};
use tensor::{ElementType, HostTensor};

/// Generated bindings for the imports every model component may use.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "cvat:model/model-imports",
        with: {
            "wasi:nn/graph.graph": super::GraphHandle,
            "wasi:nn/tensor.tensor": super::tensor::HostTensor,
            "wasi:nn/inference.graph-execution-context": super::ExecContext,
            "wasi:nn/errors.error": super::NnError,
            "cvat:model/types.frame": super::pixels::Frame,
        },
        imports: { default: trappable },
    });
}

use bindings::cvat::model::graphs as wit_graphs;
use bindings::cvat::model::pixels as wit_pixels;
use bindings::cvat::model::types as wit_types;
use bindings::wasi::nn::{errors, graph as wit_graph, inference, tensor as wit_tensor};

/// A loaded graph as the guest holds it.
pub type GraphHandle = Arc<dyn Graph>;

/// An execution context: the graph's session, shared with the graph resource.
pub struct ExecContext(GraphHandle);

/// A wasi-nn error resource.
#[derive(Debug)]
pub struct NnError {
    code: errors::ErrorCode,
    message: String,
}

/// What a loaded graph runs on, for status and metrics.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GraphState {
    /// The graph's name (its config key).
    pub name: String,
    pub backend: Backend,
    /// The precision the backend computes in, as it reports it.
    pub precision: String,
    /// How `backend: auto` chose, with its figures.
    pub choice: Option<choose::Choice>,
}

/// Limits on what a component may ask of the inference backend.
#[derive(Debug, Clone, Copy)]
pub struct NnLimits {
    /// Largest single tensor, in bytes, a component may create or receive.
    pub max_tensor_bytes: usize,
    /// Most bytes the instance's live tensors may hold together.
    pub max_live_bytes: usize,
}

/// The graphs an instance's replicas share: each loaded once, by name, for the version of
/// its file it was loaded from, and the inference memory budget their sessions are charged
/// to. Dropping the last handle (every replica unloaded, the instance's cache cleared) frees
/// the session.
pub struct SharedGraphs {
    graphs: std::sync::Mutex<HashMap<String, (Option<FileVersion>, GraphHandle)>>,
    budget: Arc<budget::Budget>,
}

impl Default for SharedGraphs {
    /// No limit (listing loads nothing).
    fn default() -> Self {
        Self::new(usize::MAX)
    }
}

/// A model file's size and modification time: a cached graph is reused only for the same.
type FileVersion = (u64, std::time::SystemTime);

fn file_version(path: &std::path::Path) -> Option<FileVersion> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

impl SharedGraphs {
    /// Graphs whose sessions may hold `budget` bytes of inference memory together.
    pub fn new(budget: usize) -> Self {
        Self {
            graphs: Default::default(),
            budget: budget::Budget::new(budget),
        }
    }

    /// The instance's inference memory budget.
    pub fn budget(&self) -> &Arc<budget::Budget> {
        &self.budget
    }

    /// Drop every cached graph (the instance unloads).
    pub fn clear(&self) {
        self.graphs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// Per-store wasi-nn state: which graphs the instance may load, and those this store has.
pub struct NnCtx {
    files: HashMap<String, PathBuf>,
    /// Graphs shared with the instance's other replicas.
    shared: Arc<SharedGraphs>,
    /// Set while the host lists a component (`describe`): signatures are read from the
    /// model files, and nothing is loaded.
    describing: bool,
    loaded: HashMap<String, GraphHandle>,
    options: SessionOptions,
    libraries: Libraries,
    limits: NnLimits,
    /// Time spent inside ONNX Runtime since the host last took it.
    pub inference_time: std::time::Duration,
    /// Bytes held by the instance's live tensors (created by it or handed to it).
    live_bytes: usize,
    /// The size of an allocation the inference budget refused during the current call.
    budget_refusal: Option<usize>,
}

impl NnCtx {
    /// `files` maps graph names to model files already checked to lie under the model root.
    pub fn new(
        files: HashMap<String, PathBuf>,
        shared: Arc<SharedGraphs>,
        options: SessionOptions,
        libraries: Libraries,
        limits: NnLimits,
    ) -> Self {
        Self {
            files,
            shared,
            describing: false,
            loaded: HashMap::new(),
            options,
            libraries,
            limits,
            inference_time: Default::default(),
            live_bytes: 0,
            budget_refusal: None,
        }
    }

    /// The size of an allocation the instance's inference budget refused since the last
    /// call, with the budget: the request that caused it fails naming the budget.
    pub fn take_budget_refusal(&mut self) -> Option<(usize, Arc<budget::Budget>)> {
        let asked = self.budget_refusal.take()?;
        Some((asked, self.shared.budget.clone()))
    }

    /// The graphs loaded so far and what runs them, sorted by name.
    pub fn graph_states(&self) -> Vec<GraphState> {
        let mut v: Vec<GraphState> = self
            .loaded
            .iter()
            .map(|(name, g)| GraphState {
                name: name.clone(),
                backend: g.backend(),
                precision: g.precision(),
                choice: g.choice().cloned(),
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// A context for `describe`: the graphs' signatures can be read (from the files, no
    /// session), none can be loaded, no tensor can be made.
    pub fn for_describe(files: HashMap<String, PathBuf>) -> Self {
        Self {
            describing: true,
            ..Self::new(
                files,
                Default::default(),
                SessionOptions {
                    intra_threads: 1,
                    backend: Default::default(),
                    device: Default::default(),
                    precision: Default::default(),
                    requests_per_load: 1,
                },
                Default::default(),
                NnLimits {
                    max_tensor_bytes: 0,
                    max_live_bytes: 0,
                },
            )
        }
    }

    /// The model file of graph `name`.
    fn file(&self, name: &str) -> Result<&PathBuf, NnError> {
        self.files.get(name).ok_or_else(|| {
            let mut known: Vec<_> = self.files.keys().cloned().collect();
            known.sort();
            NnError {
                code: errors::ErrorCode::NotFound,
                message: format!(
                    "no graph named `{name}` for this instance (graphs: {})",
                    known.join(", ")
                ),
            }
        })
    }

    /// Graph `name`'s signature: the loaded session's, or while describing, the file's.
    fn signature(&mut self, name: &str) -> Result<graph::Signature, String> {
        if self.describing {
            let path = self.file(name).map_err(|e| e.message)?;
            let bytes =
                std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            return onnx_meta::signature(&bytes).map_err(|e| format!("{}: {e}", path.display()));
        }
        Ok(self.graph(name).map_err(|e| e.message)?.signature().clone())
    }

    /// Load graph `name`, or return the session loaded earlier.
    fn graph(&mut self, name: &str) -> Result<GraphHandle, NnError> {
        if let Some(g) = self.loaded.get(name) {
            return Ok(g.clone());
        }
        if self.describing {
            return Err(NnError {
                code: errors::ErrorCode::UnsupportedOperation,
                message: format!("graph `{name}` cannot be loaded while the host describes the component (listing never loads a model); load graphs in `init`"),
            });
        }
        let path = self.file(name)?.clone();
        // Another replica may have loaded this file already; loading under the lock makes
        // replicas that start together load it once.
        let mut shared = self.shared.graphs.lock().unwrap_or_else(|p| p.into_inner());
        let version = file_version(&path);
        if let Some((v, g)) = shared.get(name) {
            if *v == version {
                let g = g.clone();
                self.loaded.insert(name.to_string(), g.clone());
                return Ok(g);
            }
        }
        let started = std::time::Instant::now();
        let (backend, device) = (self.options.backend, self.options.device);
        tracing::info!(graph = name, path = %path.display(), %backend, %device, "loading graph");
        // The weights are charged to the instance's inference budget.
        let charging = self.shared.budget.charge_here();
        let loaded = graph::load(&path, self.options, &self.libraries);
        drop(charging);
        // A load whose weights were refused memory holds placeholders: it is dropped.
        let loaded = match (loaded, self.shared.budget.take_refusal()) {
            (_, Some(asked)) => Err(self.shared.budget.refusal_message(asked)),
            (Ok(g), None) => Ok(g),
            (Err(e), None) => Err(format!("{e:#}")),
        };
        let g = loaded.map_err(|why| NnError {
            code: errors::ErrorCode::RuntimeError,
            message: format!("loading {}: {why}", path.display()),
        })?;
        tracing::info!(graph = name, path = %path.display(), ms = started.elapsed().as_millis() as u64, "graph loaded");
        shared.insert(name.to_string(), (version, g.clone()));
        self.loaded.insert(name.to_string(), g.clone());
        Ok(g)
    }
}

/// What a store's data must provide for the wasi-nn imports.
pub trait NnView {
    fn nn(&mut self) -> NnHost<'_>;
}

/// The wasi-nn state of one store, borrowed for a host call.
pub struct NnHost<'a> {
    pub ctx: &'a mut NnCtx,
    pub table: &'a mut ResourceTable,
}

impl NnHost<'_> {
    fn nn(&mut self) -> (&mut NnCtx, &mut ResourceTable) {
        (&mut *self.ctx, &mut *self.table)
    }
}

struct HasNn;

impl HasData for HasNn {
    type Data<'a> = NnHost<'a>;
}

/// Add `wasi:nn/*` and `cvat:model/graphs` to `linker`.
pub fn add_to_linker<T: NnView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    bindings::ModelImports::add_to_linker::<T, HasNn>(linker, |s| s.nn())
}

fn push_error(s: &mut NnHost<'_>, e: NnError) -> wasmtime::Result<Resource<NnError>> {
    tracing::debug!(code = ?e.code, "wasi-nn error: {}", e.message);
    Ok(s.table.push(e)?)
}

impl wit_graph::Host for NnHost<'_> {
    fn load(
        &mut self,
        _builder: Vec<wit_graph::GraphBuilder>,
        _encoding: wit_graph::GraphEncoding,
        _target: wit_graph::ExecutionTarget,
    ) -> wasmtime::Result<Result<Resource<GraphHandle>, Resource<NnError>>> {
        let e = NnError {
            code: errors::ErrorCode::UnsupportedOperation,
            message: "components load graphs by name (`load-by-name`); weights stay on the host"
                .into(),
        };
        Ok(Err(push_error(self, e)?))
    }

    fn load_by_name(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Resource<GraphHandle>, Resource<NnError>>> {
        let (ctx, table) = self.nn();
        match ctx.graph(&name) {
            Ok(g) => Ok(Ok(table.push(g)?)),
            Err(e) => Ok(Err(push_error(self, e)?)),
        }
    }
}

impl wit_graph::HostGraph for NnHost<'_> {
    fn init_execution_context(
        &mut self,
        graph: Resource<GraphHandle>,
    ) -> wasmtime::Result<Result<Resource<ExecContext>, Resource<NnError>>> {
        let table = self.nn().1;
        let g = table.get(&graph)?.clone();
        Ok(Ok(table.push(ExecContext(g))?))
    }

    fn drop(&mut self, graph: Resource<GraphHandle>) -> wasmtime::Result<()> {
        self.nn().1.delete(graph)?;
        Ok(())
    }
}

impl inference::Host for NnHost<'_> {}

impl inference::HostGraphExecutionContext for NnHost<'_> {
    fn compute(
        &mut self,
        ctx: Resource<ExecContext>,
        inputs: Vec<(String, Resource<HostTensor>)>,
    ) -> wasmtime::Result<Result<Vec<(String, Resource<HostTensor>)>, Resource<NnError>>> {
        let (nn, table) = self.nn();
        let max = nn.limits.max_tensor_bytes;
        let g = table.get(&ctx)?.0.clone();
        let mut named = Vec::with_capacity(inputs.len());
        for (name, t) in inputs {
            let t = table.delete(t)?;
            nn.live_bytes = nn.live_bytes.saturating_sub(t.data.len());
            named.push((name, t));
        }
        let started = std::time::Instant::now();
        let result = {
            let _charging = nn.shared.budget.charge_here();
            g.run(named)
        };
        self.ctx.inference_time += started.elapsed();
        let outputs = match result {
            Ok(o) => o,
            Err(e) => {
                let nn = &mut *self.ctx;
                let e = match nn.shared.budget.take_refusal() {
                    // Over the budget: the host answers the request naming it, whatever the
                    // component does with this error.
                    Some(asked) => {
                        nn.budget_refusal = Some(asked);
                        NnError {
                            code: errors::ErrorCode::TooLarge,
                            message: nn.shared.budget.refusal_message(asked),
                        }
                    }
                    None => NnError {
                        code: errors::ErrorCode::RuntimeError,
                        message: e.to_string(),
                    },
                };
                return Ok(Err(push_error(self, e)?));
            }
        };
        if let Some((name, t)) = outputs.iter().find(|(_, t)| t.data.len() > max) {
            let e = NnError {
                code: errors::ErrorCode::TooLarge,
                message: format!(
                    "output `{name}` has {} bytes, over the limit of {max}",
                    t.data.len()
                ),
            };
            return Ok(Err(push_error(self, e)?));
        }
        let total: usize = outputs.iter().map(|(_, t)| t.data.len()).sum();
        let (nn, _) = self.nn();
        if nn.live_bytes + total > nn.limits.max_live_bytes {
            let e = NnError {
                code: errors::ErrorCode::TooLarge,
                message: format!(
                    "outputs of {total} bytes would take the instance's tensors over {} bytes",
                    nn.limits.max_live_bytes
                ),
            };
            return Ok(Err(push_error(self, e)?));
        }
        nn.live_bytes += total;
        let table = self.nn().1;
        let mut result = Vec::with_capacity(outputs.len());
        for (name, t) in outputs {
            result.push((name, table.push(t)?));
        }
        Ok(Ok(result))
    }

    fn drop(&mut self, ctx: Resource<ExecContext>) -> wasmtime::Result<()> {
        self.nn().1.delete(ctx)?;
        Ok(())
    }
}

fn from_wit(ty: wit_tensor::TensorType) -> ElementType {
    use wit_tensor::TensorType as W;
    match ty {
        W::Fp16 => ElementType::F16,
        W::Fp32 => ElementType::F32,
        W::Fp64 => ElementType::F64,
        W::Bf16 => ElementType::Bf16,
        W::U8 => ElementType::U8,
        W::I32 => ElementType::I32,
        W::I64 => ElementType::I64,
    }
}

fn to_wit(ty: ElementType) -> wit_tensor::TensorType {
    use wit_tensor::TensorType as W;
    match ty {
        ElementType::F16 => W::Fp16,
        ElementType::F32 => W::Fp32,
        ElementType::F64 => W::Fp64,
        ElementType::Bf16 => W::Bf16,
        ElementType::U8 => W::U8,
        ElementType::I32 => W::I32,
        ElementType::I64 => W::I64,
    }
}

impl wit_tensor::Host for NnHost<'_> {}

impl wit_tensor::HostTensor for NnHost<'_> {
    fn new(
        &mut self,
        dimensions: Vec<u32>,
        ty: wit_tensor::TensorType,
        data: Vec<u8>,
    ) -> wasmtime::Result<Resource<HostTensor>> {
        let (nn, table) = self.nn();
        // A malformed tensor is the guest's bug: trap its call rather than pass it on.
        let t = HostTensor::new(dimensions, from_wit(ty), data, nn.limits.max_tensor_bytes)
            .map_err(wasmtime::Error::msg)?;
        if nn.live_bytes + t.data.len() > nn.limits.max_live_bytes {
            return Err(wasmtime::Error::msg(format!(
                "the instance's tensors would hold more than {} bytes",
                nn.limits.max_live_bytes
            )));
        }
        nn.live_bytes += t.data.len();
        Ok(table.push(t)?)
    }

    fn dimensions(&mut self, t: Resource<HostTensor>) -> wasmtime::Result<Vec<u32>> {
        Ok(self.nn().1.get(&t)?.dims.clone())
    }

    fn ty(&mut self, t: Resource<HostTensor>) -> wasmtime::Result<wit_tensor::TensorType> {
        Ok(to_wit(self.nn().1.get(&t)?.ty))
    }

    fn data(&mut self, t: Resource<HostTensor>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.nn().1.get(&t)?.data.clone())
    }

    fn drop(&mut self, t: Resource<HostTensor>) -> wasmtime::Result<()> {
        let (nn, table) = self.nn();
        let t = table.delete(t)?;
        nn.live_bytes = nn.live_bytes.saturating_sub(t.data.len());
        Ok(())
    }
}

impl errors::Host for NnHost<'_> {}

impl errors::HostError for NnHost<'_> {
    fn code(&mut self, e: Resource<NnError>) -> wasmtime::Result<errors::ErrorCode> {
        Ok(self.nn().1.get(&e)?.code)
    }

    fn data(&mut self, e: Resource<NnError>) -> wasmtime::Result<String> {
        Ok(self.nn().1.get(&e)?.message.clone())
    }

    fn drop(&mut self, e: Resource<NnError>) -> wasmtime::Result<()> {
        self.nn().1.delete(e)?;
        Ok(())
    }
}

impl wit_graphs::Host for NnHost<'_> {
    fn signature(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<wit_graphs::GraphSignature, String>> {
        let s = match self.nn().0.signature(&name) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let conv = |i: &graph::TensorInfo| wit_graphs::TensorInfo {
            name: i.name.clone(),
            ty: i.ty.map(to_wit).unwrap_or(wit_tensor::TensorType::Fp32),
            dims: i.dims.clone(),
        };
        Ok(Ok(wit_graphs::GraphSignature {
            inputs: s.inputs.iter().map(conv).collect(),
            outputs: s.outputs.iter().map(conv).collect(),
            metadata: s.metadata,
        }))
    }
}

impl wit_types::Host for NnHost<'_> {}

impl wit_types::HostFrame for NnHost<'_> {
    fn width(&mut self, f: Resource<pixels::Frame>) -> wasmtime::Result<u32> {
        Ok(self.table.get(&f)?.width)
    }

    fn height(&mut self, f: Resource<pixels::Frame>) -> wasmtime::Result<u32> {
        Ok(self.table.get(&f)?.height)
    }

    fn rgb(&mut self, f: Resource<pixels::Frame>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.table.get(&f)?.rgb.clone())
    }

    fn digest(&mut self, f: Resource<pixels::Frame>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&f)?.digest())
    }

    fn drop(&mut self, f: Resource<pixels::Frame>) -> wasmtime::Result<()> {
        self.table.delete(f)?;
        Ok(())
    }
}

fn pixel_spec(s: &wit_pixels::TensorSpec) -> Result<pixels::Spec, String> {
    let bytes = match s.element {
        wit_tensor::TensorType::Fp32 => false,
        wit_tensor::TensorType::U8 => true,
        other => {
            return Err(format!(
                "tensor-spec: element {other:?}: expected fp32 or u8"
            ))
        }
    };
    let spec = pixels::Spec {
        width: s.width,
        height: s.height,
        nchw: s.layout == wit_pixels::Layout::Nchw,
        bgr: s.channels == wit_pixels::Channels::Bgr,
        bytes,
        mean: [s.mean.0, s.mean.1, s.mean.2],
        scale: [s.scale.0, s.scale.1, s.scale.2],
        pad: [s.pad.0, s.pad.1, s.pad.2],
        antialias: s.filter == wit_pixels::Filter::Antialiased,
    };
    let numbers = spec.mean.iter().chain(&spec.scale).chain(&spec.pad);
    if !numbers.into_iter().all(|v| v.is_finite()) {
        return Err("tensor-spec: mean, scale and pad must be finite".into());
    }
    Ok(spec)
}

impl NnHost<'_> {
    /// Count a tensor the host made for the component against the instance's limits, and
    /// hand it over.
    fn push_tensor(
        &mut self,
        t: HostTensor,
    ) -> wasmtime::Result<Result<Resource<HostTensor>, String>> {
        if self.ctx.live_bytes + t.data.len() > self.ctx.limits.max_live_bytes {
            return Ok(Err(format!(
                "the instance's tensors would hold more than {} bytes",
                self.ctx.limits.max_live_bytes
            )));
        }
        self.ctx.live_bytes += t.data.len();
        Ok(Ok(self.table.push(t)?))
    }
}

impl wit_pixels::Host for NnHost<'_> {
    fn fit_frame(
        &mut self,
        frame: Resource<pixels::Frame>,
        fit: wit_pixels::Fit,
        spec: wit_pixels::TensorSpec,
    ) -> wasmtime::Result<Result<(Resource<HostTensor>, wit_pixels::Mapping), String>> {
        let spec = match pixel_spec(&spec) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let fit = match fit {
            wit_pixels::Fit::LetterboxCentre => pixels::Fit::LetterboxCentre,
            wit_pixels::Fit::LetterboxTopLeft => pixels::Fit::LetterboxTopLeft,
            wit_pixels::Fit::Stretch => pixels::Fit::Stretch,
        };
        let max = self.ctx.limits.max_tensor_bytes;
        let made = pixels::fit(self.table.get(&frame)?, fit, &spec, max);
        let (tensor, m) = match made {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        let mapping = wit_pixels::Mapping {
            scale_x: m.scale_x,
            scale_y: m.scale_y,
            offset_x: m.offset_x,
            offset_y: m.offset_y,
        };
        Ok(self.push_tensor(tensor)?.map(|t| (t, mapping)))
    }

    fn crop_frame(
        &mut self,
        frame: Resource<pixels::Frame>,
        regions: Vec<wit_types::Bbox>,
        spec: wit_pixels::TensorSpec,
    ) -> wasmtime::Result<Result<Resource<HostTensor>, String>> {
        let spec = match pixel_spec(&spec) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let regions: Vec<pixels::Region> = regions
            .iter()
            .map(|b| pixels::Region {
                x1: b.x1,
                y1: b.y1,
                x2: b.x2,
                y2: b.y2,
            })
            .collect();
        let max = self.ctx.limits.max_tensor_bytes;
        match pixels::crops(self.table.get(&frame)?, &regions, &spec, max) {
            Ok(t) => self.push_tensor(t),
            Err(e) => Ok(Err(e)),
        }
    }
}
