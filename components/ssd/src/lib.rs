//! Detector for SSD models whose graph ends in TFLite's detection post-processing
//! (`TFLite_Detection_PostProcess`, kept as ONNX ops by `tf2onnx --tflite`), such as
//! Google's quantised SSD MobileNet v2 COCO.
//!
//! Input: the frame resized to the graph's input without keeping the aspect ratio, RGB,
//! as bytes for a uint8 input (quantised models) or in [-1, 1] for a float one; NHWC or
//! NCHW as the graph declares. Outputs, in the post-processing's documented order: boxes
//! `[1, N, 4]` (ymin, xmin, ymax, xmax, normalised), classes `[1, N]`, scores `[1, N]`,
//! count `[1]`. NMS already happened in the graph.
//!
//! Labels: the instance's classes, matched by id to the model's class index (a TFLite
//! label file `<id> <name>`, ids with gaps, works as `classes.txt`); detections of a class
//! without a label are dropped.
//!
//! Config keys: `weights` (graph, required), `threshold` (default 0.5).

use std::cell::RefCell;

use model_sdk::bindings::cvat::model::pixels::{Filter, Fit};
use model_sdk::config::Config;
use model_sdk::image::{InputSpec, Normalize};
use model_sdk::nn::{image_input, Model};
use model_sdk::{pixels, results};

model_sdk::world!("detector-model");

use cvat::model::types::{Detection, Error, Frame, InstanceConfig, ModelInfo, ShapeType};
use model_sdk::bindings::wasi::nn::tensor::TensorType;

struct State {
    model: Model,
    input_name: String,
    input: InputSpec,
    bytes: bool,
    labels: Vec<(u32, String)>,
    threshold: f32,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

struct Ssd;

fn model_info(labels: &[(u32, String)]) -> ModelInfo {
    ModelInfo {
        labels: results::labels(
            labels.iter().map(|(id, n)| (*id, n.as_str())),
            ShapeType::Rectangle,
        ),
        description: format!(
            "SSD detector with TFLite post-processing, {} classes",
            labels.len()
        ),
        needs: vec!["weights".into()],
        // The frame is stretched, not letterboxed: `input-size` (an aspect-keeping fit)
        // would let the host decode too few rows, so frames always come in full.
        input_size: None,
    }
}

fn labels(config: &InstanceConfig) -> Vec<(u32, String)> {
    config
        .labels
        .iter()
        .map(|l| (l.id, l.name.clone()))
        .collect()
}

impl exports::cvat::model::detector::Guest for Ssd {
    fn describe(config: InstanceConfig) -> ModelInfo {
        model_info(&labels(&config))
    }

    fn init(config: InstanceConfig) -> Result<ModelInfo, Error> {
        let labels = labels(&config);
        let cfg = Config::new(config.config.into_iter().map(|e| (e.key, e.value)));
        let model = Model::load("weights").map_err(Error::InvalidConfig)?;
        let info = model.input().map_err(Error::InvalidConfig)?;
        let bytes = info.ty == TensorType::U8;
        let norm = if bytes {
            Normalize::RAW
        } else {
            Normalize::SIGNED
        };
        let input = image_input(info, 300, norm, 0).map_err(Error::InvalidConfig)?;
        if model.signature.outputs.len() != 4 {
            return Err(Error::InvalidConfig(format!(
                "{} outputs: expected the 4 of TFLite's detection post-processing (boxes, classes, scores, count)",
                model.signature.outputs.len()
            )));
        }
        let state = State {
            input_name: info.name.clone(),
            input,
            bytes,
            threshold: cfg.f32_or("threshold", 0.5).map_err(Error::InvalidConfig)?,
            labels: labels.clone(),
            model,
        };
        let info = model_info(&labels);
        STATE.with(|s| *s.borrow_mut() = Some(state));
        Ok(info)
    }

    fn detect(frame: &Frame, threshold: Option<f32>) -> Result<Vec<Detection>, Error> {
        STATE.with(|s| {
            let guard = s.borrow();
            let st = guard
                .as_ref()
                .ok_or_else(|| Error::Failed("detect before init".into()))?;
            // Stretched to the input, bytes for a quantised model, in the host.
            let element = if st.bytes {
                TensorType::U8
            } else {
                TensorType::Fp32
            };
            let spec = pixels::spec(&st.input, element, Filter::Bilinear);
            let (tensor, _) = pixels::fit(frame, Fit::Stretch, spec).map_err(Error::Failed)?;
            let outputs = st
                .model
                .run_tensors(vec![(st.input_name.clone(), tensor)])
                .map_err(Error::Failed)?;
            let [boxes, classes, scores, count] = &outputs[..] else {
                return Err(Error::Failed(format!(
                    "{} outputs, expected 4",
                    outputs.len()
                )));
            };
            let n = (count.data.first().copied().unwrap_or(0.0).max(0.0) as usize)
                .min(scores.data.len())
                .min(classes.data.len())
                .min(boxes.data.len() / 4);
            let threshold = threshold.unwrap_or(st.threshold);
            let (fw, fh) = (frame.width() as f32, frame.height() as f32);
            let mut result = Vec::new();
            for i in 0..n {
                let score = scores.data[i];
                if score < threshold || !score.is_finite() {
                    continue;
                }
                let class = classes.data[i];
                let Some((_, label)) = st.labels.iter().find(|(id, _)| *id as f32 == class) else {
                    continue;
                };
                // (ymin, xmin, ymax, xmax), normalised.
                let b = &boxes.data[i * 4..i * 4 + 4];
                let (w, h) = (frame.width(), frame.height());
                result.extend(results::rectangle(
                    label,
                    score,
                    [b[1] * fw, b[0] * fh, b[3] * fw, b[2] * fh],
                    w,
                    h,
                ));
            }
            Ok(result)
        })
    }
}

export!(Ssd);
