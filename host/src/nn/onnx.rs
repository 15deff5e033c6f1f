//! The ONNX Runtime backend: sessions with explicit threading on the CPU or CUDA, their
//! inputs and outputs, and runs on byte tensors.

use std::path::Path;
use std::sync::Mutex;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::{RunOptions, Session, SessionInputValue};
use ort::tensor::TensorElementType;
use ort::value::{Tensor as OrtTensor, TensorRef, ValueType};
use ort::AsPointer as _;

use super::graph::{Backend, Device, Graph, SessionOptions, Signature, TensorInfo};
use super::tensor::{as_f32, le_bytes, ElementType, HostTensor};

/// A loaded ONNX model. The session is dropped (and its memory released) with this value.
pub struct OnnxGraph {
    session: Mutex<Session>,
    signature: Signature,
}

fn element_type(t: TensorElementType) -> Option<ElementType> {
    Some(match t {
        TensorElementType::Float16 => ElementType::F16,
        TensorElementType::Float32 => ElementType::F32,
        TensorElementType::Float64 => ElementType::F64,
        TensorElementType::Bfloat16 => ElementType::Bf16,
        TensorElementType::Uint8 => ElementType::U8,
        TensorElementType::Int32 => ElementType::I32,
        TensorElementType::Int64 => ElementType::I64,
        _ => return None,
    })
}

fn info(name: &str, ty: &ValueType) -> TensorInfo {
    match ty {
        ValueType::Tensor { ty, shape, .. } => TensorInfo {
            name: name.to_string(),
            ty: element_type(*ty),
            dims: shape.iter().copied().collect(),
        },
        _ => TensorInfo {
            name: name.to_string(),
            ty: None,
            dims: vec![],
        },
    }
}

impl OnnxGraph {
    /// Load `path` into a new session on `options.device`.
    pub fn load(path: &Path, options: SessionOptions) -> anyhow::Result<Self> {
        let mut builder = Session::builder()?;
        if let Device::Cuda(n) = options.device {
            use ort::execution_providers::{
                ArenaExtendStrategy, CUDAExecutionProvider, ExecutionProvider as _,
            };
            // Never fall back to CPU silently: a CUDA instance that cannot get CUDA fails.
            // The arena grows by what is asked, not in powers of two, so a loaded model holds
            // about what it needs; it is freed with the session when the instance unloads.
            let mut ep = CUDAExecutionProvider::default()
                .with_device_id(n)
                .with_arena_extend_strategy(ArenaExtendStrategy::SameAsRequested);
            // The instance's inference budget bounds its device memory too.
            if let Some(limit) = super::budget::current_limit().filter(|&l| l < usize::MAX) {
                ep = ep.with_memory_limit(limit);
            }
            if !ep.is_available().unwrap_or(false) {
                anyhow::bail!("{} requested, but this ONNX Runtime library has no CUDA execution provider (install the onnxruntime-gpu libraries and point ORT_DYLIB_PATH at them)", options.device);
            }
            builder = builder
                .with_execution_providers([ep.build().error_on_failure()])
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{} requested, but the CUDA execution provider failed to register: {e}",
                        options.device
                    )
                })?;
        }
        // CPU tensors come from the host's accounting allocator (nn::budget) when the load
        // is charged to a budget: the instance's limit holds, and what a run needed is
        // returned after it instead of kept in ONNX Runtime's arena. Without a budget
        // (`inference_memory_mb: 0`, `host probe`), the arena.
        if super::budget::current_limit().is_some_and(|l| l < usize::MAX) {
            builder = builder.with_env_allocators()?;
        }
        let session = builder
            .with_optimization_level(GraphOptimizationLevel::Level3)?
            .with_intra_threads(options.intra_threads.max(1))?
            .with_inter_threads(1)?
            // Worker threads spin briefly for the next operator instead of sleeping (ONNX
            // Runtime's default): YOLOX-Nano's ~200 operators otherwise pay a wake-up each,
            // 16.1 -> 11.8 ms a request here, with the same 4-client throughput.
            .with_intra_op_spinning(true)?
            .commit_from_file(path)?;
        let mut metadata = Vec::new();
        if let Ok(md) = session.metadata() {
            if let Ok(keys) = md.custom_keys() {
                for k in keys {
                    if let Ok(Some(v)) = md.custom(&k) {
                        metadata.push((k, v));
                    }
                }
            }
        }
        let signature = Signature {
            inputs: session
                .inputs
                .iter()
                .map(|i| info(&i.name, &i.input_type))
                .collect(),
            outputs: session
                .outputs
                .iter()
                .map(|o| info(&o.name, &o.output_type))
                .collect(),
            metadata,
        };
        Ok(Self {
            session: Mutex::new(session),
            signature,
        })
    }
}

impl Graph for OnnxGraph {
    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn backend(&self) -> Backend {
        Backend::OnnxRuntime
    }

    fn run(&self, inputs: Vec<(String, HostTensor)>) -> anyhow::Result<Vec<(String, HostTensor)>> {
        let mut values: Vec<(String, SessionInputValue<'_>)> = Vec::with_capacity(inputs.len());
        for (name, t) in &inputs {
            self.signature.check_input(name, &t.dims)?;
            values.push((name.clone(), to_ort(t)?));
        }
        let mut session = self
            .session
            .lock()
            .map_err(|_| anyhow::anyhow!("session poisoned"))?;
        // A run refused memory by the instance's budget stops before its next operator.
        let options = RunOptions::new()?;
        let _stop = super::budget::stop_run_on_refusal(options.ptr().cast_mut());
        let outputs = session.run_with_options(values, &options)?;
        let mut result = Vec::with_capacity(outputs.len());
        for (name, value) in outputs.iter() {
            result.push((name.to_string(), from_ort(name, &value)?));
        }
        Ok(result)
    }
}

/// An input for ONNX Runtime: f32 and u8 tensors are read in place (the host's byte buffers
/// are aligned for f32 as the allocator gives them), other types are converted.
fn to_ort(t: &HostTensor) -> anyhow::Result<SessionInputValue<'_>> {
    let shape: Vec<i64> = t.dims.iter().map(|&d| d as i64).collect();
    macro_rules! typed {
        ($ty:ty, $n:expr) => {{
            let data: Vec<$ty> = t
                .data
                .chunks_exact($n)
                .map(|c| <$ty>::from_le_bytes(c.try_into().unwrap()))
                .collect();
            OrtTensor::from_array((shape, data))?.into()
        }};
    }
    Ok(match t.ty {
        ElementType::F32 => match as_f32(&t.data) {
            Some(values) => TensorRef::from_array_view((shape, values))?.into(),
            None => typed!(f32, 4),
        },
        ElementType::U8 => TensorRef::from_array_view((shape, &t.data[..]))?.into(),
        ElementType::F64 => typed!(f64, 8),
        ElementType::I32 => typed!(i32, 4),
        ElementType::I64 => typed!(i64, 8),
        other => anyhow::bail!("{other:?} input tensors are not supported"),
    })
}

fn from_ort(name: &str, value: &ort::value::ValueRef<'_>) -> anyhow::Result<HostTensor> {
    let ValueType::Tensor { ty, .. } = value.dtype() else {
        anyhow::bail!("output `{name}` is not a tensor");
    };
    macro_rules! typed {
        ($ty:ty, $et:expr) => {{
            let (shape, data) = value.try_extract_tensor::<$ty>()?;
            HostTensor {
                dims: shape.iter().map(|&d| d.max(0) as u32).collect(),
                ty: $et,
                data: le_bytes(data),
            }
        }};
    }
    Ok(match ty {
        TensorElementType::Float32 => typed!(f32, ElementType::F32),
        TensorElementType::Float64 => typed!(f64, ElementType::F64),
        TensorElementType::Int32 => typed!(i32, ElementType::I32),
        TensorElementType::Int64 => typed!(i64, ElementType::I64),
        TensorElementType::Uint8 => typed!(u8, ElementType::U8),
        other => anyhow::bail!("output `{name}` has unsupported element type {other:?}"),
    })
}
