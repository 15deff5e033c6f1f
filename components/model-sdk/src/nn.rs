//! A loaded wasi-nn graph with its signature, and tensors in and out of it.

use crate::bindings::cvat::model::graphs::{self, GraphSignature, TensorInfo};
use crate::bindings::wasi::nn::graph::{self, Graph};
use crate::bindings::wasi::nn::inference::GraphExecutionContext;
use crate::bindings::wasi::nn::tensor::{Tensor, TensorType};

/// A graph the host resolved by name, ready to run.
pub struct Model {
    _graph: Graph,
    ctx: GraphExecutionContext,
    /// Inputs, outputs and metadata as the host read them from the model file.
    pub signature: GraphSignature,
}

/// Input tensor data.
pub enum Data {
    F32(Vec<f32>),
    /// Bytes, for graphs with uint8 inputs (quantised TFLite conversions).
    U8(Vec<u8>),
    /// 64-bit integers (sizes, as DETR exports take `orig_target_sizes`).
    I64(Vec<i64>),
    /// 32-bit integers.
    I32(Vec<i32>),
}

/// One output tensor, converted to f32.
#[derive(Debug, Clone)]
pub struct Output {
    pub name: String,
    pub dims: Vec<u32>,
    pub data: Vec<f32>,
}

fn nn_error(what: &str, e: crate::bindings::wasi::nn::errors::Error) -> String {
    format!("{what}: {:?}: {}", e.code(), e.data())
}

impl Model {
    /// Load graph `name` (a key of the instance's config naming a model file).
    pub fn load(name: &str) -> Result<Self, String> {
        let signature = graphs::signature(name)?;
        let g = graph::load_by_name(name)
            .map_err(|e| nn_error(&format!("loading graph `{name}`"), e))?;
        let ctx = g
            .init_execution_context()
            .map_err(|e| nn_error("creating an execution context", e))?;
        Ok(Self {
            _graph: g,
            ctx,
            signature,
        })
    }

    /// The first input's description.
    pub fn input(&self) -> Result<&TensorInfo, String> {
        self.signature
            .inputs
            .first()
            .ok_or_else(|| "the graph has no inputs".to_string())
    }

    /// Run the graph on f32 inputs `(name, dims, data)`; returns every output as f32.
    pub fn run_f32(
        &self,
        inputs: Vec<(String, Vec<u32>, Vec<f32>)>,
    ) -> Result<Vec<Output>, String> {
        let inputs = inputs
            .into_iter()
            .map(|(name, dims, data)| (name, dims, Data::F32(data)))
            .collect();
        self.run(inputs)
    }

    /// Run the graph on inputs `(name, dims, data)` of the element types the graph declares;
    /// returns every output as f32 (u8 outputs are widened).
    pub fn run(&self, inputs: Vec<(String, Vec<u32>, Data)>) -> Result<Vec<Output>, String> {
        let tensors: Vec<(String, Tensor)> = inputs
            .into_iter()
            .map(|(name, dims, data)| (name, tensor(&dims, data)))
            .collect();
        self.run_tensors(tensors)
    }

    /// Run the graph on tensors already made (e.g. by [`crate::pixels`], in the host);
    /// returns every output as f32 (u8, i32 and i64 outputs converted: class indices and
    /// labels are exact below 2^24).
    pub fn run_tensors(&self, tensors: Vec<(String, Tensor)>) -> Result<Vec<Output>, String> {
        let outputs = self
            .ctx
            .compute(tensors)
            .map_err(|e| nn_error("inference", e))?;
        outputs
            .into_iter()
            .map(|(name, t)| {
                let dims = t.dimensions();
                let raw = t.data();
                let data = match t.ty() {
                    TensorType::Fp32 => raw
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                    TensorType::U8 => raw.iter().map(|&b| b as f32).collect(),
                    TensorType::I64 => raw
                        .chunks_exact(8)
                        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
                        .collect(),
                    TensorType::I32 => raw
                        .chunks_exact(4)
                        .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as f32)
                        .collect(),
                    TensorType::Fp64 => raw
                        .chunks_exact(8)
                        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
                        .collect(),
                    other => {
                        return Err(format!(
                            "output `{name}` is {other:?}, expected FP32, FP64, U8, I32 or I64"
                        ))
                    }
                };
                Ok(Output { name, dims, data })
            })
            .collect()
    }
}

/// A wasi-nn tensor of `dims` holding `data`.
pub fn tensor(dims: &[u32], data: Data) -> Tensor {
    fn le<T, const N: usize>(v: &[T], f: impl Fn(&T) -> [u8; N]) -> Vec<u8> {
        v.iter().flat_map(f).collect()
    }
    match data {
        Data::F32(v) => Tensor::new(dims, TensorType::Fp32, &le(&v, |x| x.to_le_bytes())),
        Data::U8(bytes) => Tensor::new(dims, TensorType::U8, &bytes),
        Data::I64(v) => Tensor::new(dims, TensorType::I64, &le(&v, |x| x.to_le_bytes())),
        Data::I32(v) => Tensor::new(dims, TensorType::I32, &le(&v, |x| x.to_le_bytes())),
    }
}

/// Describe an image input from its graph dims: NCHW when the second dimension is 3, NHWC
/// when the last is. Dynamic sizes take `default_size`.
pub fn image_input(
    info: &TensorInfo,
    default_size: u32,
    norm: crate::image::Normalize,
    pad: u8,
) -> Result<crate::image::InputSpec, String> {
    use crate::image::{InputSpec, Layout};
    let d = &info.dims;
    if d.len() != 4 {
        return Err(format!(
            "input `{}` has {} dimensions, expected 4",
            info.name,
            d.len()
        ));
    }
    let size = |v: i64| if v > 0 { v as u32 } else { default_size };
    let (layout, width, height) = if d[1] == 3 {
        (Layout::Nchw, size(d[3]), size(d[2]))
    } else if d[3] == 3 {
        (Layout::Nhwc, size(d[2]), size(d[1]))
    } else {
        return Err(format!(
            "input `{}` dims {:?}: no channel axis of size 3",
            info.name, d
        ));
    };
    Ok(InputSpec {
        width,
        height,
        layout,
        norm,
        pad,
        channels: Default::default(),
        place: Default::default(),
    })
}

/// The output shaped `[1, rows, last]` (found by its last dimension and size), for models
/// whose outputs are told apart by shape rather than name.
pub fn output_shaped(outputs: &[Output], rows: usize, last: u32) -> Option<&Output> {
    outputs
        .iter()
        .find(|o| o.dims.last() == Some(&last) && o.data.len() == rows * last as usize)
}

/// The logistic function.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}
