//! Face detector component for MediaPipe's BlazeFace short-range model converted to ONNX.
//!
//! Input 128x128 RGB in [-1, 1] (NCHW from tflite2onnx or NHWC from tf2onnx; read from the
//! graph). Outputs: regressors `[1, 896, 16]` (box centre/size and six keypoints, in input
//! pixels relative to the anchor) and classificators `[1, 896, 1]` (logits). 896 fixed-size
//! SSD anchors over strides 8, 16, 16, 16; sigmoid scores; weighted NMS.
//!
//! Config keys: `weights` (graph, required), `threshold` (default 0.5), `iou_threshold`
//! (0.3), `max_detections` (100).

use std::cell::RefCell;

use model_sdk::boxes::{weighted_nms, Scored};
use model_sdk::config::Config;
use model_sdk::image::{InputSpec, Normalize};
use model_sdk::nn::{image_input, output_shaped, sigmoid, Model, Output};
use model_sdk::{pixels, results};

model_sdk::world!("detector-model");

use cvat::model::types::{Detection, Error, Frame, InstanceConfig, ModelInfo, ShapeType};

const KEYPOINTS: usize = 6;

struct State {
    model: Model,
    input_name: String,
    input: InputSpec,
    anchors: Vec<(f32, f32)>,
    label: String,
    threshold: f32,
    iou: f32,
    max_detections: usize,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

struct BlazeFace;

/// The one label: the instance's first class, or `face`.
fn label_name(config: &InstanceConfig) -> String {
    config
        .labels
        .first()
        .map(|l| l.name.clone())
        .unwrap_or_else(|| "face".into())
}

/// `input`: the model input the frame is letterboxed into (known after `init`).
fn model_info(label: String, input: Option<&InputSpec>) -> ModelInfo {
    ModelInfo {
        labels: results::labels([(0, label.as_str())], ShapeType::Rectangle),
        description: "MediaPipe BlazeFace short-range face detector".into(),
        needs: vec!["weights".into()],
        input_size: input.map(|i| (i.width, i.height)),
    }
}

impl exports::cvat::model::detector::Guest for BlazeFace {
    fn describe(config: InstanceConfig) -> ModelInfo {
        model_info(label_name(&config), None)
    }

    fn init(config: InstanceConfig) -> Result<ModelInfo, Error> {
        let label = label_name(&config);
        let cfg = Config::new(config.config.into_iter().map(|e| (e.key, e.value)));
        let model = Model::load("weights").map_err(Error::InvalidConfig)?;
        let input_info = model.input().map_err(Error::InvalidConfig)?;
        let input_name = input_info.name.clone();
        let input =
            image_input(input_info, 128, Normalize::SIGNED, 0).map_err(Error::InvalidConfig)?;
        let anchors = model_sdk::anchors::ssd(&[8, 16, 16, 16], input.width, input.height);
        let info = model_info(label.clone(), Some(&input));
        let state = State {
            model,
            input_name,
            input,
            anchors,
            threshold: cfg.f32_or("threshold", 0.5).map_err(Error::InvalidConfig)?,
            iou: cfg
                .f32_or("iou_threshold", 0.3)
                .map_err(Error::InvalidConfig)?,
            max_detections: cfg
                .usize_or("max_detections", 100)
                .map_err(Error::InvalidConfig)?,
            label: label.clone(),
        };
        STATE.with(|s| *s.borrow_mut() = Some(state));
        Ok(info)
    }

    fn detect(frame: &Frame, threshold: Option<f32>) -> Result<Vec<Detection>, Error> {
        STATE.with(|s| {
            let guard = s.borrow();
            let st = guard
                .as_ref()
                .ok_or_else(|| Error::Failed("detect before init".into()))?;
            let (iw, ih) = (st.input.width, st.input.height);
            let (tensor, lb) = pixels::letterbox(frame, &st.input).map_err(Error::Failed)?;
            let outputs = st
                .model
                .run_tensors(vec![(st.input_name.clone(), tensor)])
                .map_err(Error::Failed)?;
            let (regressors, scores) =
                split_outputs(&outputs, st.anchors.len()).map_err(Error::Failed)?;
            let threshold = threshold.unwrap_or(st.threshold);
            let mut candidates = Vec::new();
            for (i, &(ax, ay)) in st.anchors.iter().enumerate() {
                let score = sigmoid(scores[i].clamp(-100.0, 100.0));
                if score < threshold {
                    continue;
                }
                let r = &regressors[i * 16..(i + 1) * 16];
                // Offsets are in input pixels; anchors are normalised centres of unit size.
                let cx = r[0] + ax * iw as f32;
                let cy = r[1] + ay * ih as f32;
                let (w, h) = (r[2], r[3]);
                let kps: Vec<f32> = (0..KEYPOINTS)
                    .flat_map(|k| [r[4 + 2 * k] + ax * iw as f32, r[5 + 2 * k] + ay * ih as f32])
                    .collect();
                let b = Scored {
                    x1: cx - w / 2.0,
                    y1: cy - h / 2.0,
                    x2: cx + w / 2.0,
                    y2: cy + h / 2.0,
                    score,
                    class: 0,
                };
                candidates.push((b, kps));
            }
            Ok(weighted_nms(candidates, st.iou, st.max_detections)
                .into_iter()
                .filter_map(|(b, _kps)| {
                    let (x1, y1) = lb.to_original(b.x1, b.y1);
                    let (x2, y2) = lb.to_original(b.x2, b.y2);
                    let (w, h) = (frame.width(), frame.height());
                    results::rectangle(&st.label, b.score, [x1, y1, x2, y2], w, h)
                })
                .collect())
        })
    }
}

/// Pick the regressor (`[1, N, 16]`) and score (`[1, N, 1]`) outputs by shape.
fn split_outputs(outputs: &[Output], anchors: usize) -> Result<(&[f32], &[f32]), String> {
    match (
        output_shaped(outputs, anchors, 16),
        output_shaped(outputs, anchors, 1),
    ) {
        (Some(r), Some(s)) => Ok((&r.data, &s.data)),
        _ => Err(format!(
            "expected outputs [1, {anchors}, 16] and [1, {anchors}, 1], got {:?}",
            outputs.iter().map(|o| &o.dims).collect::<Vec<_>>()
        )),
    }
}

export!(BlazeFace);
