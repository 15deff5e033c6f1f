//! Detector for DETR-family ONNX exports, which need no NMS: the graph's queries are the
//! detections. Two layouts, told apart by the graph's input and output names:
//!
//! - **RT-DETR, D-FINE, DEIM** (their `tools/export_onnx.py` / `tools/deployment/
//!   export_onnx.py`): inputs `images` f32 `[N, 3, S, S]` and `orig_target_sizes` i64
//!   `[N, 2]` = (width, height); outputs `labels` i64 `[N, Q]` (class index, contiguous from 0),
//!   `boxes` f32 `[N, Q, 4]` (x1, y1, x2, y2 in the pixels `orig_target_sizes` names: the
//!   graph scales its normalised boxes by them), `scores` f32 `[N, Q]` (sigmoid; top-Q over
//!   queries x classes, Q = 300). Their evaluation resizes the frame to S x S without
//!   keeping the aspect ratio, then divides by 255 (no mean or std); the frame's own size is
//!   passed, so boxes come back in frame pixels.
//! - **RF-DETR** (`rfdetr/deploy/export.py`): input f32 `[1, 3, R, R]`; outputs `dets`
//!   `[1, Q, 4]` (cx, cy, w, h normalised to 0-1) and `labels` `[1, Q, C]` (logits). Its
//!   preprocessing is the same stretch with ImageNet's mean and std; its `PostProcess` takes
//!   the sigmoid, the top 300 over queries x classes and scales the boxes by the frame size.
//!   For the COCO checkpoints the class index is COCO's category id (1-90, gaps unused).
//!
//! Labels are the instance's classes (models.yaml `classes` or `classes.txt`, `<id> <name>`
//! lines for ids with gaps), matched by id to the model's class index; detections of a class
//! with no label are dropped. The exports carry no class names.
//!
//! Config keys: `weights` (graph, required), `threshold` (0.5), `max_detections` (300),
//! `input_size` (for a dynamic image input, default 640).

mod decode;

use std::cell::RefCell;

use model_sdk::bindings::cvat::model::graphs::{self, GraphSignature};
use model_sdk::bindings::cvat::model::pixels::{Channels, Filter, Fit, Layout, TensorSpec};
use model_sdk::bindings::wasi::nn::tensor::{Tensor, TensorType};
use model_sdk::config::Config;
use model_sdk::nn::{Data, Model};
use model_sdk::{pixels, results};

model_sdk::world!("detector-model");

use cvat::model::types::{Detection, Error, Frame, InstanceConfig, ModelInfo, ShapeType};
use decode::{Plan, Style};

struct State {
    model: Model,
    plan: Plan,
    labels: Vec<(u32, String)>,
    threshold: f32,
    max_detections: usize,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn labels_of(config: &InstanceConfig) -> Vec<(u32, String)> {
    config
        .labels
        .iter()
        .map(|l| (l.id, l.name.clone()))
        .collect()
}

fn config_of(config: &InstanceConfig) -> Config {
    Config::new(
        config
            .config
            .iter()
            .map(|e| (e.key.clone(), e.value.clone())),
    )
}

fn model_info(labels: &[(u32, String)], what: &str) -> ModelInfo {
    ModelInfo {
        labels: results::labels(
            labels.iter().map(|(id, n)| (*id, n.as_str())),
            ShapeType::Rectangle,
        ),
        description: format!("{what}, {} classes", labels.len()),
        needs: vec!["weights".into()],
        // The frame is stretched to the input: no reduced decode.
        input_size: None,
    }
}

fn plan(cfg: &Config, signature: &GraphSignature) -> Result<Plan, String> {
    let default_size = cfg.usize_or("input_size", 640)? as u32;
    Plan::of(signature, default_size)
}

/// The frame stretched to the model's input, normalised as its style says.
fn image_tensor(frame: &Frame, plan: &Plan) -> Result<Tensor, String> {
    let (mean, scale) = match plan.style {
        Style::RtDetr => ((0.0, 0.0, 0.0), (1.0 / 255.0, 1.0 / 255.0, 1.0 / 255.0)),
        Style::RfDetr => (
            (123.675, 116.28, 103.53),
            (1.0 / 58.395, 1.0 / 57.12, 1.0 / 57.375),
        ),
    };
    let spec = TensorSpec {
        width: plan.size,
        height: plan.size,
        layout: Layout::Nchw,
        channels: Channels::Rgb,
        element: TensorType::Fp32,
        mean,
        scale,
        pad: (0.0, 0.0, 0.0),
        filter: Filter::Antialiased,
    };
    Ok(pixels::fit(frame, Fit::Stretch, spec)?.0)
}

struct Detr;

impl exports::cvat::model::detector::Guest for Detr {
    fn describe(config: InstanceConfig) -> ModelInfo {
        let labels = labels_of(&config);
        match graphs::signature("weights").and_then(|s| plan(&config_of(&config), &s)) {
            Ok(p) => model_info(&labels, p.style.name()),
            Err(e) => {
                let mut info = model_info(&labels, "DETR-family detector");
                info.description = format!("DETR-family export that cannot be read: {e}");
                info
            }
        }
    }

    fn init(config: InstanceConfig) -> Result<ModelInfo, Error> {
        let cfg = config_of(&config);
        let model = Model::load("weights").map_err(Error::InvalidConfig)?;
        let plan = plan(&cfg, &model.signature).map_err(Error::InvalidConfig)?;
        let labels = labels_of(&config);
        if labels.is_empty() {
            return Err(Error::InvalidConfig(
                "DETR exports carry no class names: list them under `classes:` in models.yaml or in a classes.txt beside the weights (`<id> <name>` lines when the ids have gaps, as RF-DETR's COCO ids do)".into(),
            ));
        }
        let info = model_info(&labels, plan.style.name());
        let state = State {
            threshold: cfg.f32_or("threshold", 0.5).map_err(Error::InvalidConfig)?,
            max_detections: cfg
                .usize_or("max_detections", 300)
                .map_err(Error::InvalidConfig)?,
            model,
            plan,
            labels,
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
            let (w, h) = (frame.width(), frame.height());
            let mut inputs = vec![(
                st.plan.image_input.clone(),
                image_tensor(frame, &st.plan).map_err(Error::Failed)?,
            )];
            if let Some((name, ty)) = &st.plan.sizes_input {
                let size = [i64::from(w), i64::from(h)];
                let data = match ty {
                    TensorType::I32 => Data::I32(size.map(|v| v as i32).to_vec()),
                    TensorType::Fp32 => Data::F32(size.map(|v| v as f32).to_vec()),
                    _ => Data::I64(size.to_vec()),
                };
                inputs.push((name.clone(), model_sdk::nn::tensor(&[1, 2], data)));
            }
            let outputs = st.model.run_tensors(inputs).map_err(Error::Failed)?;
            let found = st
                .plan
                .decode(
                    &outputs,
                    (w, h),
                    threshold.unwrap_or(st.threshold),
                    st.max_detections,
                )
                .map_err(Error::Failed)?;
            Ok(found
                .into_iter()
                .filter_map(|d| {
                    let (_, name) = st.labels.iter().find(|(id, _)| *id as usize == d.class)?;
                    results::rectangle(name, d.score, d.b, w, h)
                })
                .collect())
        })
    }
}

export!(Detr);
