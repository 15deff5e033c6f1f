//! Detector component for Ultralytics-style ONNX exports.
//!
//! - YOLOv8/11/12: output `[1, 4 + nc, N]`, centre-xywh in input pixels, class scores, no
//!   objectness.
//! - YOLOv5: output `[1, N, 5 + nc]`, centre-xywh, objectness, class scores.
//!
//! Letterbox (pad 114) to the graph's input size, normalise to [0, 1], infer, decode,
//! class-wise NMS, map boxes back to original pixels and clip.
//!
//! Config keys: `weights` (graph, required), `threshold` (default 0.5), `iou_threshold`
//! (0.45), `max_detections` (300), `format` (`auto` | `v8` | `v5`), `input_size` (used when
//! the graph's input size is dynamic, default 640).

mod decode;

use std::cell::RefCell;

use model_sdk::boxes::nms;
use model_sdk::config::Config;
use model_sdk::image::{letterbox, InputSpec, Normalize};
use model_sdk::nn::{image_input, Model};

wit_bindgen::generate!({
    world: "detector-model",
    path: "../../wit",
    with: {
        "wasi:nn/tensor@0.2.0-rc-2024-10-28": model_sdk::bindings::wasi::nn::tensor,
        "wasi:nn/graph@0.2.0-rc-2024-10-28": model_sdk::bindings::wasi::nn::graph,
        "wasi:nn/inference@0.2.0-rc-2024-10-28": model_sdk::bindings::wasi::nn::inference,
        "wasi:nn/errors@0.2.0-rc-2024-10-28": model_sdk::bindings::wasi::nn::errors,
        "cvat:model/graphs@0.1.0": model_sdk::bindings::cvat::model::graphs,
    },
    generate_all,
});

use cvat::model::types::{Detection, Error, Frame, InstanceConfig, Label, ModelInfo, ShapeType};
use decode::Format;

struct State {
    model: Model,
    input_name: String,
    input: InputSpec,
    labels: Vec<String>,
    format: Format,
    threshold: f32,
    iou: f32,
    max_detections: usize,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

struct Yolo;

/// Rectangle labels for `names`.
fn model_info(names: &[String], format: &str) -> ModelInfo {
    ModelInfo {
        labels: names
            .iter()
            .enumerate()
            .map(|(i, name)| Label {
                id: i as u32,
                name: name.clone(),
                shape: ShapeType::Rectangle,
                attributes: vec![],
                sublabels: vec![],
                svg: None,
            })
            .collect(),
        description: format!("YOLO detector ({format}), {} classes", names.len()),
        needs: vec!["weights".into()],
    }
}

impl exports::cvat::model::detector::Guest for Yolo {
    fn describe(config: InstanceConfig) -> ModelInfo {
        let names: Vec<String> = config.labels.into_iter().map(|l| l.name).collect();
        model_info(&names, "Ultralytics-style")
    }

    fn init(config: InstanceConfig) -> Result<ModelInfo, Error> {
        let cfg = Config::new(config.config.into_iter().map(|e| (e.key, e.value)));
        let model = Model::load("weights").map_err(Error::InvalidConfig)?;
        let input_info = model.input().map_err(Error::InvalidConfig)?;
        let input_name = input_info.name.clone();
        let default_size = cfg
            .usize_or("input_size", 640)
            .map_err(Error::InvalidConfig)? as u32;
        let input = image_input(input_info, default_size, Normalize::UNIT, 114)
            .map_err(Error::InvalidConfig)?;
        let output = model
            .signature
            .outputs
            .first()
            .ok_or_else(|| Error::InvalidConfig("the graph has no outputs".into()))?;
        let mut labels: Vec<String> = config.labels.iter().map(|l| l.name.clone()).collect();
        if labels.is_empty() {
            labels = decode::ultralytics_names(&model.signature.metadata);
        }
        let format = Format::detect(cfg.str_or("format", "auto"), &output.dims, labels.len())
            .map_err(Error::InvalidConfig)?;
        if labels.is_empty() {
            labels = (0..format.classes())
                .map(|i| format!("class_{i}"))
                .collect();
        }
        if labels.len() != format.classes() {
            return Err(Error::InvalidConfig(format!(
                "the model has {} classes but {} labels are configured",
                format.classes(),
                labels.len()
            )));
        }
        let state = State {
            format,
            threshold: cfg.f32_or("threshold", 0.5).map_err(Error::InvalidConfig)?,
            iou: cfg
                .f32_or("iou_threshold", 0.45)
                .map_err(Error::InvalidConfig)?,
            max_detections: cfg
                .usize_or("max_detections", 300)
                .map_err(Error::InvalidConfig)?,
            labels,
            model,
            input_name,
            input,
        };
        let info = model_info(&state.labels, state.format.name());
        STATE.with(|s| *s.borrow_mut() = Some(state));
        Ok(info)
    }

    fn detect(frame: Frame, threshold: Option<f32>) -> Result<Vec<Detection>, Error> {
        STATE.with(|s| {
            let guard = s.borrow();
            let st = guard
                .as_ref()
                .ok_or_else(|| Error::Failed("detect before init".into()))?;
            let (tensor, lb) = letterbox(&frame.rgb, frame.width, frame.height, &st.input);
            let outputs = st
                .model
                .run_f32(vec![(st.input_name.clone(), st.input.dims(), tensor)])
                .map_err(Error::Failed)?;
            let out = outputs
                .first()
                .ok_or_else(|| Error::Failed("no output tensor".into()))?;
            let threshold = threshold.unwrap_or(st.threshold);
            let candidates = st
                .format
                .decode(&out.data, &out.dims, threshold)
                .map_err(Error::Failed)?;
            let kept = nms(candidates, st.iou, st.max_detections);
            let (fw, fh) = (frame.width as f32, frame.height as f32);
            Ok(kept
                .into_iter()
                .filter_map(|b| {
                    let (x1, y1) = lb.to_original(b.x1, b.y1);
                    let (x2, y2) = lb.to_original(b.x2, b.y2);
                    let (x1, x2) = (x1.clamp(0.0, fw), x2.clamp(0.0, fw));
                    let (y1, y2) = (y1.clamp(0.0, fh), y2.clamp(0.0, fh));
                    (x2 > x1 && y2 > y1).then(|| Detection {
                        label: st.labels[b.class].clone(),
                        confidence: b.score,
                        shape: ShapeType::Rectangle,
                        points: vec![x1, y1, x2, y2],
                        mask: None,
                        rotation: None,
                        attributes: vec![],
                        elements: vec![],
                    })
                })
                .collect())
        })
    }
}

export!(Yolo);
