//! The OpenVINO backend (CPU): reads the ONNX file with OpenVINO's ONNX frontend, compiles
//! it for the CPU plugin with an explicit thread count, and runs it on byte tensors.
//!
//! The C library (`libopenvino_c.so`, from PyPI's `openvino` wheel) is opened on the first
//! OpenVINO graph, so hosts that never use it never map it.

use std::path::Path;
use std::sync::Mutex;

use anyhow::Context as _;
use openvino::{
    CompiledModel, Core, DeviceType, ElementType as OvType, InferRequest, Node, RwPropertyKey,
    Shape, Tensor,
};

use super::graph::{Backend, Graph, Precision, SessionOptions, Signature, TensorInfo};
use super::tensor::{ElementType, HostTensor};

/// A model compiled for OpenVINO's CPU plugin, with one infer request that runs it.
pub struct OvGraph {
    session: Mutex<Session>,
    signature: Signature,
    /// The precision OpenVINO compiled the model at (its `INFERENCE_PRECISION_HINT`).
    precision: String,
}

/// What one graph holds in OpenVINO. Field order is drop order: the request before the
/// model, the model before the core.
struct Session {
    request: InferRequest,
    _compiled: CompiledModel,
    _core: Core,
}

fn ov_err(context: &str) -> impl FnOnce(openvino::InferenceError) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("{context}: {e}")
}

fn element_type(t: OvType) -> Option<ElementType> {
    Some(match t {
        OvType::F16 => ElementType::F16,
        OvType::F32 => ElementType::F32,
        OvType::F64 => ElementType::F64,
        OvType::Bf16 => ElementType::Bf16,
        OvType::U8 => ElementType::U8,
        OvType::I32 => ElementType::I32,
        OvType::I64 => ElementType::I64,
        _ => return None,
    })
}

fn ov_type(t: ElementType) -> OvType {
    match t {
        ElementType::F16 => OvType::F16,
        ElementType::F32 => OvType::F32,
        ElementType::F64 => OvType::F64,
        ElementType::Bf16 => OvType::Bf16,
        ElementType::U8 => OvType::U8,
        ElementType::I32 => OvType::I32,
        ElementType::I64 => OvType::I64,
    }
}

fn info(port: &Node) -> anyhow::Result<TensorInfo> {
    let name = port.get_name().map_err(ov_err("port name"))?;
    let shape = port.get_partial_shape().map_err(ov_err("port shape"))?;
    let dims = if shape.get_rank().is_dynamic() {
        vec![]
    } else {
        shape
            .get_dimensions()
            .iter()
            .map(|d| if d.is_dynamic() { -1 } else { d.get_min() })
            .collect()
    };
    Ok(TensorInfo {
        ty: element_type(port.get_element_type().map_err(ov_err("port type"))?),
        name,
        dims,
    })
}

impl OvGraph {
    /// Open the OpenVINO library at `lib` (once per process), then read and compile `path`,
    /// keeping the compiled model in `cache` (if given) for the next load.
    pub fn load(
        path: &Path,
        options: SessionOptions,
        lib: &Path,
        cache: Option<&Path>,
    ) -> anyhow::Result<Self> {
        openvino_sys::library::load_from(lib)
            .map_err(|e| anyhow::anyhow!("opening OpenVINO at {}: {e}", lib.display()))?;
        let mut core = Core::new().map_err(|e| anyhow::anyhow!("starting OpenVINO: {e}"))?;
        let threads = options.intra_threads.max(1).to_string();
        core.set_properties(
            &DeviceType::CPU,
            [
                (RwPropertyKey::InferenceNumThreads, threads.as_str()),
                (RwPropertyKey::HintPerformanceMode, "LATENCY"),
                (RwPropertyKey::NumStreams, "1"),
                // Several loaded models share the cores; do not pin threads to them.
                (RwPropertyKey::HintEnableCpuPinning, "NO"),
                // Never a precision nobody asked for: OpenVINO's CPU plugin computes in bf16
                // by itself on CPUs with AMX unless told otherwise.
                (
                    RwPropertyKey::HintInferencePrecision,
                    match options.precision {
                        Precision::Model => "f32",
                        Precision::Bf16 => "bf16",
                        Precision::F16 => "f16",
                    },
                ),
            ],
        )
        .map_err(ov_err("setting CPU properties"))?;
        if let Some(dir) = cache.and_then(|d| d.to_str()) {
            // A failed cache is only slower: warn and go on.
            if let Err(e) = std::fs::create_dir_all(dir)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    core.set_property(&DeviceType::CPU, &RwPropertyKey::CacheDir, dir)
                        .map_err(|e| e.to_string())
                })
            {
                tracing::warn!(dir, "OpenVINO model cache unavailable: {e}");
            }
        }
        let path_text = path
            .to_str()
            .with_context(|| format!("{} is not UTF-8", path.display()))?;
        let model = core
            .read_model_from_file(path_text, "")
            .map_err(ov_err("reading the model"))?;
        let ports = |n: usize, get: &dyn Fn(usize) -> Result<Node, openvino::InferenceError>| {
            (0..n)
                .map(|i| info(&get(i).map_err(ov_err("port"))?))
                .collect::<anyhow::Result<Vec<_>>>()
        };
        let inputs = ports(model.get_inputs_len().map_err(ov_err("inputs"))?, &|i| {
            model.get_input_by_index(i)
        })?;
        let outputs = ports(model.get_outputs_len().map_err(ov_err("outputs"))?, &|i| {
            model.get_output_by_index(i)
        })?;
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let signature = Signature {
            inputs,
            outputs,
            metadata: super::onnx_meta::metadata_props(&bytes),
        };
        let mut compiled = core
            .compile_model(&model, DeviceType::CPU)
            .map_err(ov_err("compiling for the CPU"))?;
        let cached = compiled
            .get_property(&openvino::PropertyKey::Other("LOADED_FROM_CACHE".into()))
            .is_ok_and(|v| v == "YES");
        let precision = compiled
            .get_property(&openvino::PropertyKey::Rw(
                RwPropertyKey::HintInferencePrecision,
            ))
            .map_or_else(|_| "unknown".into(), |p| p.into_owned());
        tracing::info!(path = %path.display(), cached, %precision, "OpenVINO model compiled");
        let request = compiled
            .create_infer_request()
            .map_err(ov_err("creating an infer request"))?;
        Ok(Self {
            session: Mutex::new(Session {
                request,
                _compiled: compiled,
                _core: core,
            }),
            signature,
            precision,
        })
    }
}

impl Graph for OvGraph {
    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn precision(&self) -> String {
        self.precision.clone()
    }

    fn backend(&self) -> Backend {
        Backend::OpenVino
    }

    fn run(&self, inputs: Vec<(String, HostTensor)>) -> anyhow::Result<Vec<(String, HostTensor)>> {
        let mut session = self
            .session
            .lock()
            .map_err(|_| anyhow::anyhow!("infer request poisoned"))?;
        let request = &mut session.request;
        for (name, t) in &inputs {
            let expected = self.signature.check_input(name, &t.dims)?;
            if let Some(ty) = expected.ty.filter(|&ty| ty != t.ty) {
                anyhow::bail!("input `{name}`: the graph expects {ty:?}, got {:?}", t.ty);
            }
            let dims: Vec<i64> = t.dims.iter().map(|&d| i64::from(d)).collect();
            let shape = Shape::new(&dims).map_err(ov_err("input shape"))?;
            let mut tensor = Tensor::new(ov_type(t.ty), &shape).map_err(ov_err("input tensor"))?;
            // An empty tensor has no buffer: the crate would make a slice from a null pointer.
            if !t.data.is_empty() {
                tensor
                    .get_raw_data_mut()
                    .map_err(ov_err("input tensor"))?
                    .copy_from_slice(&t.data);
            }
            request
                .set_tensor(name, &tensor)
                .map_err(ov_err("setting an input"))?;
        }
        request.infer().map_err(ov_err("inference"))?;
        let mut result = Vec::with_capacity(self.signature.outputs.len());
        for (i, out) in self.signature.outputs.iter().enumerate() {
            let tensor = request
                .get_output_tensor_by_index(i)
                .map_err(ov_err("reading an output"))?;
            let ty = tensor.get_element_type().map_err(ov_err("output type"))?;
            let ty = element_type(ty).with_context(|| {
                format!("output `{}` has unsupported element type {ty:?}", out.name)
            })?;
            let shape = tensor.get_shape().map_err(ov_err("output shape"))?;
            // A model may produce an empty output (SAM's decoder asked for a 0-pixel mask):
            // it has no buffer, and reading one would make a slice from a null pointer.
            let empty = shape.get_dimensions().contains(&0);
            let data = if empty {
                &[][..]
            } else {
                tensor.get_raw_data().map_err(ov_err("output data"))?
            };
            result.push((
                out.name.clone(),
                HostTensor {
                    dims: shape
                        .get_dimensions()
                        .iter()
                        .map(|&d| d.max(0) as u32)
                        .collect(),
                    ty,
                    data: data.to_vec(),
                },
            ));
        }
        Ok(result)
    }
}
