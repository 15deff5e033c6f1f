//! What every inference backend provides: a loaded graph with a signature that runs byte
//! tensors, and the per-instance choice of backend and device.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::tensor::{ElementType, HostTensor};

/// A loaded model, ready to run. Dropping the last handle releases its memory.
pub trait Graph: Send + Sync {
    /// Inputs, outputs and metadata of the model file.
    fn signature(&self) -> &Signature;
    /// Run the graph. Inputs are matched by name; every output is returned in graph order.
    fn run(&self, inputs: Vec<(String, HostTensor)>) -> anyhow::Result<Vec<(String, HostTensor)>>;
    /// The floating-point precision the backend computes in, as it reports it (ONNX Runtime
    /// runs the model's own operators as they are: `model`).
    fn precision(&self) -> String {
        Precision::Model.to_string()
    }
    /// The backend running this graph.
    fn backend(&self) -> Backend;
    /// How `backend: auto` chose that backend, when it did.
    fn choice(&self) -> Option<&super::choose::Choice> {
        None
    }
}

/// Which library runs an instance's graphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// ONNX Runtime (CPU, or CUDA with `device: cuda:N`). The default: OpenVINO runs most
    /// graphs somewhat faster on the CPU but loads them 2-10x slower, and instances load
    /// lazily (README, "ONNX Runtime or OpenVINO").
    #[default]
    OnnxRuntime,
    /// OpenVINO on the CPU, reading the ONNX file directly.
    OpenVino,
    /// Whichever of the two runs each model file fastest on this machine, measured once
    /// (see [`super::choose`]); ONNX Runtime on CUDA.
    Auto,
}

impl Backend {
    /// Parse `onnxruntime` (or `ort`), `openvino` or `auto`.
    pub fn parse(text: &str) -> Result<Backend, String> {
        match text.trim() {
            "onnxruntime" | "ort" => Ok(Backend::OnnxRuntime),
            "openvino" => Ok(Backend::OpenVino),
            "auto" => Ok(Backend::Auto),
            t => Err(format!(
                "backend `{t}`: expected onnxruntime, openvino or auto"
            )),
        }
    }
}

impl Backend {
    /// Check that this backend can run on `device`.
    pub fn check_device(self, device: Device) -> Result<(), String> {
        match (self, device) {
            (Backend::OpenVino, Device::Cuda(_)) => Err(format!(
                "backend openvino runs on the cpu only; use backend onnxruntime for {device}"
            )),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::OnnxRuntime => "onnxruntime",
            Backend::OpenVino => "openvino",
            Backend::Auto => "auto",
        })
    }
}

/// An execution target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    #[default]
    Cpu,
    /// CUDA device N through ONNX Runtime's CUDA execution provider.
    Cuda(i32),
}

impl Device {
    /// Parse `cpu` or `cuda:N` (`cuda` alone is device 0).
    pub fn parse(text: &str) -> Result<Device, String> {
        match text.trim() {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            t => t
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<i32>().ok())
                .filter(|n| *n >= 0)
                .map(Device::Cuda)
                .ok_or_else(|| format!("device `{t}`: expected cpu or cuda:N")),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// The floating-point precision a graph computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// The model's own: f32 arithmetic for f32 models. Never reduced behind the user's back
    /// (OpenVINO would pick bf16 by itself on CPUs with AMX).
    #[default]
    Model,
    /// bfloat16 (OpenVINO on CPUs with bf16 instructions; faster, about 3 significant digits).
    Bf16,
    /// float16 (OpenVINO).
    F16,
}

impl Precision {
    /// Parse `model` (or `f32`), `bf16` or `f16`.
    pub fn parse(text: &str) -> Result<Precision, String> {
        match text.trim() {
            "model" | "f32" | "fp32" => Ok(Precision::Model),
            "bf16" => Ok(Precision::Bf16),
            "f16" | "fp16" => Ok(Precision::F16),
            t => Err(format!("precision `{t}`: expected model, bf16 or f16")),
        }
    }

    /// Check that `backend` can honour this precision.
    pub fn check_backend(self, backend: Backend) -> Result<(), String> {
        match (self, backend) {
            (Precision::Model, _) | (_, Backend::OpenVino) => Ok(()),
            (p, Backend::OnnxRuntime | Backend::Auto) => Err(format!(
                "precision {p}: onnxruntime runs the model's own precision; use backend openvino for reduced precision (or a model exported at it)"
            )),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::Model => "model",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        })
    }
}

/// How an instance's graphs are loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionOptions {
    /// Intra-op threads per graph (explicit, so several loaded models do not each spawn
    /// one thread per core).
    pub intra_threads: usize,
    pub backend: Backend,
    /// Where the graph runs.
    pub device: Device,
    /// The arithmetic precision asked for (the model's own unless the instance says).
    pub precision: Precision,
    /// Requests the instance expects to serve per load, which `backend: auto` weighs load
    /// time against.
    pub requests_per_load: u32,
}

/// Where the optional inference libraries are, found once at startup and loaded on first
/// use (ONNX Runtime itself is initialised by `host up`).
#[derive(Debug, Clone, Default)]
pub struct Libraries {
    /// ONNX Runtime's library (part of what `backend: auto` keys its measurements on).
    pub onnxruntime: Option<PathBuf>,
    /// Measures and remembers which backend runs each model file fastest (`backend: auto`);
    /// without one, `auto` runs ONNX Runtime.
    pub chooser: Option<Arc<super::choose::Chooser>>,
    /// OpenVINO's C library (`libopenvino_c.so`), if installed.
    pub openvino: Option<PathBuf>,
    /// Where OpenVINO caches compiled models, so that a reload skips compilation.
    pub openvino_cache: Option<PathBuf>,
}

/// Load `path` with the backend and device in `options`.
pub fn load(
    path: &Path,
    options: SessionOptions,
    libraries: &Libraries,
) -> anyhow::Result<Arc<dyn Graph>> {
    options
        .backend
        .check_device(options.device)
        .map_err(anyhow::Error::msg)?;
    options
        .precision
        .check_backend(options.backend)
        .map_err(anyhow::Error::msg)?;
    Ok(match options.backend {
        Backend::OnnxRuntime => Arc::new(super::onnx::OnnxGraph::load(path, options)?),
        Backend::OpenVino => {
            let Some(lib) = &libraries.openvino else {
                anyhow::bail!("backend openvino requested, but the OpenVINO library was not found (run scripts/setup.sh, which unpacks PyPI's openvino into .deps/openvino, or set OPENVINO_LIB to libopenvino_c.so)");
            };
            let cache = libraries.openvino_cache.as_deref();
            Arc::new(super::openvino::OvGraph::load(path, options, lib, cache)?)
        }
        Backend::Auto => {
            let (Device::Cpu, Some(chooser)) = (options.device, &libraries.chooser) else {
                let options = SessionOptions {
                    backend: Backend::OnnxRuntime,
                    ..options
                };
                return load(path, options, libraries);
            };
            let (choice, loaded) =
                chooser.choose(path, options, options.requests_per_load, libraries)?;
            tracing::info!(model = %path.display(), cached = choice.cached, "backend auto chose {}", choice.why);
            let graph = match loaded {
                Some(g) => g,
                None => load(
                    path,
                    SessionOptions {
                        backend: choice.backend,
                        ..options
                    },
                    libraries,
                )?,
            };
            Arc::new(Chosen { graph, choice })
        }
    })
}

/// A graph `backend: auto` chose a backend for.
struct Chosen {
    graph: Arc<dyn Graph>,
    choice: super::choose::Choice,
}

impl Graph for Chosen {
    fn signature(&self) -> &Signature {
        self.graph.signature()
    }
    fn run(&self, inputs: Vec<(String, HostTensor)>) -> anyhow::Result<Vec<(String, HostTensor)>> {
        self.graph.run(inputs)
    }
    fn precision(&self) -> String {
        self.graph.precision()
    }
    fn backend(&self) -> Backend {
        self.graph.backend()
    }
    fn choice(&self) -> Option<&super::choose::Choice> {
        Some(&self.choice)
    }
}

/// One input or output of a graph.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub ty: Option<ElementType>,
    /// -1 for dynamic dimensions.
    pub dims: Vec<i64>,
}

/// A graph's inputs, outputs and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<TensorInfo>,
    pub metadata: Vec<(String, String)>,
}

impl Signature {
    /// Check a named input against the graph's: the name exists and fixed dimensions match.
    pub fn check_input(&self, name: &str, got: &[u32]) -> anyhow::Result<&TensorInfo> {
        let Some(expected) = self.inputs.iter().find(|i| i.name == name) else {
            let names: Vec<_> = self.inputs.iter().map(|i| i.name.as_str()).collect();
            anyhow::bail!(
                "the graph has no input `{name}` (inputs: {})",
                names.join(", ")
            );
        };
        let fits = expected.dims.len() == got.len()
            && expected
                .dims
                .iter()
                .zip(got)
                .all(|(&e, &g)| e < 0 || e == g as i64);
        anyhow::ensure!(
            fits,
            "input `{name}`: the graph expects dims {:?}, got {got:?}",
            expected.dims
        );
        Ok(expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_backends_devices_and_refuses_openvino_on_cuda() {
        assert_eq!(Backend::parse("openvino"), Ok(Backend::OpenVino));
        assert_eq!(Backend::parse("ort"), Ok(Backend::OnnxRuntime));
        assert!(Backend::parse("tensorrt").unwrap_err().contains("expected"));
        assert_eq!(Device::parse("cuda:1"), Ok(Device::Cuda(1)));
        assert!(Device::parse("cuda:-1").is_err());
        let e = Backend::OpenVino.check_device(Device::Cuda(0)).unwrap_err();
        assert!(e.contains("cpu only"));
        assert!(Backend::OpenVino.check_device(Device::Cpu).is_ok());
    }

    #[test]
    fn checks_input_names_and_fixed_dims() {
        let s = Signature {
            inputs: vec![TensorInfo {
                name: "x".into(),
                ty: Some(ElementType::F32),
                dims: vec![-1, 3],
            }],
            outputs: vec![],
            metadata: vec![],
        };
        assert!(s.check_input("x", &[7, 3]).is_ok());
        assert!(s
            .check_input("x", &[7, 4])
            .unwrap_err()
            .to_string()
            .contains("[-1, 3]"));
        assert!(s
            .check_input("y", &[7, 3])
            .unwrap_err()
            .to_string()
            .contains("inputs: x"));
    }
}
