//! Component for Ultralytics-style ONNX exports, every task:
//!
//! - detect: YOLOv8/11/12 `[1, 4 + nc, N]` (centre-xywh, class scores, no objectness) or
//!   YOLOv5 `[1, N, 5 + nc]` (with objectness) -> rectangles;
//! - segment: `[1, 4 + nc + nm, N]` plus prototypes `[1, nm, H/4, W/4]` -> CVAT `mask`
//!   shapes (bitmap over the box, bilinear-upsampled mask logits > 0, cropped to the box);
//! - pose: `[1, 4 + nc + k*d, N]` with `kpt_shape` `[k, d]` -> `skeleton` shapes whose
//!   elements are the keypoints (COCO-17 names and layout when k = 17);
//! - classify: `[1, nc]` -> `tag`s for the classes at or over the threshold.
//!
//! The task comes from the export's `task` metadata, else config `task`, else the outputs'
//! shapes. Letterbox (pad 114) to the graph's input size, normalise to [0, 1], infer,
//! decode, class-wise NMS, map back to original pixels and clip.
//!
//! YOLOX exports (Megvii's ONNX, `[1, N, 5 + nc]` with one candidate per grid cell at
//! strides 8, 16 and 32, boxes in grid units) are detected by that shape: BGR bytes,
//! letterboxed top-left, decoded on the grids.
//!
//! Config keys: `weights` (graph, required), `threshold` (default 0.5), `iou_threshold`
//! (0.45), `max_detections` (300), `format` (`auto` | `v8` | `v5` | `yolox`), `task`,
//! `input_size` (for dynamic graph inputs, default 640), `keypoints` (JSON list of keypoint
//! names).

mod decode;
mod skeleton;

use std::cell::RefCell;

use model_sdk::bindings::cvat::model::graphs::{self, GraphSignature};
use model_sdk::boxes::nms;
use model_sdk::config::Config;
use model_sdk::image::{InputSpec, Letterbox, Normalize};
use model_sdk::nn::{image_input, Model, Output};
use model_sdk::pixels;

model_sdk::world!("detector-model");

use cvat::model::types::{
    Detection, Element, Error, Frame, InstanceConfig, Label, Mask, ModelInfo, ShapeType, Sublabel,
};
use decode::Format;

/// What the export does.
#[derive(Debug, Clone, PartialEq)]
enum Task {
    Detect,
    /// `nm` mask coefficients per candidate; prototypes in output `proto`.
    Segment {
        nm: usize,
        proto: usize,
    },
    /// `k` keypoints of `d` values (x, y[, visibility]).
    Pose {
        k: usize,
        d: usize,
        names: Vec<String>,
    },
    Classify,
}

struct State {
    model: Model,
    input_name: String,
    input: InputSpec,
    labels: Vec<String>,
    task: Task,
    format: Option<Format>,
    threshold: f32,
    iou: f32,
    max_detections: usize,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

struct Yolo;

/// The label spec for `names` under `task`. `input` is the size frames are letterboxed
/// into (known after `init`); segmentation masks follow frame pixels, so they take full frames.
fn model_info(names: &[String], task: &Task, format: &str, input: Option<&InputSpec>) -> ModelInfo {
    let shape = match task {
        Task::Detect => ShapeType::Rectangle,
        Task::Segment { .. } => ShapeType::Mask,
        Task::Pose { .. } => ShapeType::Skeleton,
        Task::Classify => ShapeType::Tag,
    };
    let (sublabels, svg) = match task {
        Task::Pose { names, .. } => (
            names
                .iter()
                .enumerate()
                .map(|(i, n)| Sublabel {
                    id: i as u32,
                    name: n.clone(),
                })
                .collect(),
            Some(skeleton::svg(names)),
        ),
        _ => (vec![], None),
    };
    ModelInfo {
        labels: names
            .iter()
            .enumerate()
            .map(|(i, name)| Label {
                id: i as u32,
                name: name.clone(),
                shape,
                attributes: vec![],
                sublabels: sublabels.clone(),
                svg: svg.clone(),
            })
            .collect(),
        description: format!("YOLO {task:?} ({format}), {} classes", names.len())
            .replace(['{', '}'], ""),
        needs: vec!["weights".into()],
        input_size: match task {
            Task::Segment { .. } => None,
            _ => input.map(|i| (i.width, i.height)),
        },
    }
}

fn task_of(cfg: &Config, signature: &GraphSignature) -> Result<Task, String> {
    let md = &signature.metadata;
    let outputs = &signature.outputs;
    let named = cfg.get("task").or_else(|| decode::meta(md, "task"));
    let guess = || match outputs.as_slice() {
        [o] if o.dims.len() == 2 => "classify",
        [_, p] if p.dims.len() == 4 => "segment",
        _ => "detect",
    };
    Ok(match named.unwrap_or_else(guess) {
        "detect" => Task::Detect,
        "segment" => {
            let proto = outputs
                .iter()
                .position(|o| o.dims.len() == 4)
                .ok_or("a segmentation export needs a [1, nm, h, w] prototype output")?;
            Task::Segment {
                nm: outputs[proto].dims[1].max(0) as usize,
                proto,
            }
        }
        "pose" => {
            let (k, d) = decode::meta(md, "kpt_shape")
                .and_then(decode::kpt_shape)
                .unwrap_or((17, 3));
            let names = match cfg.get("keypoints") {
                Some(json) => serde_names(json)
                    .ok_or("config key `keypoints`: expected a JSON list of names")?,
                None => skeleton::default_names(k),
            };
            if names.len() != k {
                return Err(format!("{} keypoint names for {k} keypoints", names.len()));
            }
            Task::Pose { k, d, names }
        }
        "classify" => Task::Classify,
        other => {
            return Err(format!(
                "task `{other}`: expected detect, segment, pose or classify"
            ))
        }
    })
}

/// A JSON list of strings, parsed without a JSON crate: `["a", "b"]`.
fn serde_names(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    if inner.trim().is_empty() {
        return Some(vec![]);
    }
    inner
        .split(',')
        .map(|p| {
            p.trim()
                .strip_prefix('"')?
                .strip_suffix('"')
                .map(String::from)
        })
        .collect()
}

/// How to run an export, decided from its signature alone (no session), so that `describe`
/// lists exactly the labels `init` will use.
struct Plan {
    input_name: String,
    input: InputSpec,
    task: Task,
    format: Option<Format>,
    labels: Vec<String>,
}

impl Plan {
    /// `configured`: the instance's classes (models.yaml or classes.txt), else the export's
    /// `names` metadata, else `class_<i>` for each class the output has.
    fn new(
        cfg: &Config,
        configured: Vec<String>,
        signature: &GraphSignature,
    ) -> Result<Plan, String> {
        let input_info = signature.inputs.first().ok_or("the graph has no inputs")?;
        let default_size = cfg.usize_or("input_size", 640)? as u32;
        let mut input = image_input(input_info, default_size, Normalize::UNIT, 114)?;
        let task = task_of(cfg, signature)?;
        let dims = &signature
            .outputs
            .first()
            .ok_or("the graph has no outputs")?
            .dims;
        let mut labels = configured;
        if labels.is_empty() {
            labels = decode::ultralytics_names(&signature.metadata);
        }
        let (format, classes) = match &task {
            Task::Classify => (None, dims.last().copied().unwrap_or(0).max(0) as usize),
            other => {
                let extra = match other {
                    Task::Segment { nm, .. } => *nm,
                    Task::Pose { k, d, .. } => k * d,
                    _ => 0,
                };
                let f = Format::detect(
                    cfg.str_or("format", "auto"),
                    dims,
                    labels.len(),
                    extra,
                    (input.width, input.height),
                )?;
                (input.channels, input.norm, input.place) = f.input_style();
                (Some(f), f.classes())
            }
        };
        if labels.is_empty() {
            labels = (0..classes).map(|i| format!("class_{i}")).collect();
        }
        if labels.len() != classes {
            return Err(format!(
                "the model has {classes} classes but {} labels are configured",
                labels.len()
            ));
        }
        Ok(Plan {
            input_name: input_info.name.clone(),
            input,
            task,
            format,
            labels,
        })
    }

    fn info(&self) -> ModelInfo {
        let format = self.format.map_or("classifier", |f| f.name());
        model_info(&self.labels, &self.task, format, Some(&self.input))
    }
}

fn config_of(config: &InstanceConfig) -> Config {
    Config::new(
        config
            .config
            .iter()
            .map(|e| (e.key.clone(), e.value.clone())),
    )
}

impl exports::cvat::model::detector::Guest for Yolo {
    fn describe(config: InstanceConfig) -> ModelInfo {
        let cfg = config_of(&config);
        let names: Vec<String> = config.labels.into_iter().map(|l| l.name).collect();
        let plan = graphs::signature("weights").and_then(|s| Plan::new(&cfg, names.clone(), &s));
        match plan {
            Ok(plan) => plan.info(),
            // The weights are unreadable: only the configured classes are known; say why.
            Err(e) => {
                let mut info = model_info(&names, &Task::Detect, "Ultralytics-style", None);
                info.description = format!("YOLO export that cannot be read: {e}");
                info
            }
        }
    }

    fn init(config: InstanceConfig) -> Result<ModelInfo, Error> {
        let cfg = config_of(&config);
        let model = Model::load("weights").map_err(Error::InvalidConfig)?;
        let names: Vec<String> = config.labels.into_iter().map(|l| l.name).collect();
        let plan = Plan::new(&cfg, names, &model.signature).map_err(Error::InvalidConfig)?;
        let info = plan.info();
        let state = State {
            threshold: cfg.f32_or("threshold", 0.5).map_err(Error::InvalidConfig)?,
            iou: cfg
                .f32_or("iou_threshold", 0.45)
                .map_err(Error::InvalidConfig)?,
            max_detections: cfg
                .usize_or("max_detections", 300)
                .map_err(Error::InvalidConfig)?,
            labels: plan.labels,
            task: plan.task,
            format: plan.format,
            model,
            input_name: plan.input_name,
            input: plan.input,
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
            let (tensor, lb) = pixels::letterbox(frame, &st.input).map_err(Error::Failed)?;
            let outputs = st
                .model
                .run_tensors(vec![(st.input_name.clone(), tensor)])
                .map_err(Error::Failed)?;
            let out = outputs
                .first()
                .ok_or_else(|| Error::Failed("no output tensor".into()))?;
            let threshold = threshold.unwrap_or(st.threshold);
            let Some(format) = st.format else {
                return Ok(classify(st, &out.data, threshold));
            };
            let candidates = format
                .decode(&out.data, &out.dims, threshold)
                .map_err(Error::Failed)?;
            let (width, height) = (frame.width(), frame.height());
            let (fw, fh) = (width as f32, height as f32);
            let mut result = Vec::new();
            for (b, index) in nms(candidates, st.iou, st.max_detections) {
                let (x1, y1) = lb.to_original(b.x1, b.y1);
                let (x2, y2) = lb.to_original(b.x2, b.y2);
                let (x1, x2) = (x1.clamp(0.0, fw), x2.clamp(0.0, fw));
                let (y1, y2) = (y1.clamp(0.0, fh), y2.clamp(0.0, fh));
                if x2 <= x1 || y2 <= y1 {
                    continue;
                }
                let mut d = Detection {
                    label: st.labels[b.class].clone(),
                    confidence: b.score,
                    shape: ShapeType::Rectangle,
                    points: vec![x1, y1, x2, y2],
                    mask: None,
                    rotation: None,
                    attributes: vec![],
                    elements: vec![],
                };
                match &st.task {
                    Task::Segment { proto, .. } => {
                        let coeffs = format.extra(&out.data, &out.dims, index);
                        let protos = outputs
                            .get(*proto)
                            .ok_or_else(|| Error::Failed("no prototype output".into()))?;
                        let Some(mask) = segment(
                            protos,
                            &coeffs,
                            &lb,
                            &st.input,
                            [x1, y1, x2, y2],
                            (width, height),
                        ) else {
                            continue;
                        };
                        d.shape = ShapeType::Mask;
                        d.points = vec![];
                        d.mask = Some(mask);
                    }
                    Task::Pose { k, d: dim, names } => {
                        let kp = format.extra(&out.data, &out.dims, index);
                        d.shape = ShapeType::Skeleton;
                        d.points = vec![];
                        d.elements = (0..*k)
                            .map(|i| {
                                let (x, y) = lb.to_original(kp[i * dim], kp[i * dim + 1]);
                                let visible = *dim < 3 || kp[i * dim + 2] >= 0.5;
                                Element {
                                    label: names[i].clone(),
                                    x: x.clamp(0.0, fw),
                                    y: y.clamp(0.0, fh),
                                    outside: !visible,
                                }
                            })
                            .collect();
                    }
                    _ => {}
                }
                result.push(d);
            }
            Ok(result)
        })
    }
}

/// Tags for the classes scoring at least `threshold`, best first.
fn classify(st: &State, scores: &[f32], threshold: f32) -> Vec<Detection> {
    let mut order: Vec<usize> = (0..scores.len().min(st.labels.len()))
        .filter(|&i| scores[i] >= threshold)
        .collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
        .into_iter()
        .map(|i| Detection {
            label: st.labels[i].clone(),
            confidence: scores[i],
            shape: ShapeType::Tag,
            points: vec![],
            mask: None,
            rotation: None,
            attributes: vec![],
            elements: vec![],
        })
        .collect()
}

/// The instance mask over the (original-pixel) box: mask logits = coefficients · prototypes,
/// sampled bilinearly at each pixel centre mapped back through the letterbox, > 0 inside.
fn segment(
    protos: &Output,
    coeffs: &[f32],
    lb: &Letterbox,
    input: &InputSpec,
    b: [f32; 4],
    frame: (u32, u32),
) -> Option<Mask> {
    let [_, nm, mh, mw] = protos.dims[..] else {
        return None;
    };
    let (nm, mh, mw) = (nm as usize, mh as usize, mw as usize);
    if nm != coeffs.len() || mh == 0 || mw == 0 {
        return None;
    }
    let plane = mh * mw;
    let logits: Vec<f32> = (0..plane)
        .map(|p| {
            (0..nm)
                .map(|k| coeffs[k] * protos.data[k * plane + p])
                .sum()
        })
        .collect();
    let at = |u: f32, v: f32| model_sdk::image::sample(&logits, mw, mh, u, v);
    let (sx, sy) = (
        input.width as f32 / mw as f32,
        input.height as f32 / mh as f32,
    );
    let x1 = b[0].floor().max(0.0) as u32;
    let y1 = b[1].floor().max(0.0) as u32;
    let x2 = (b[2].ceil() as u32).min(frame.0).saturating_sub(1).max(x1);
    let y2 = (b[3].ceil() as u32).min(frame.1).saturating_sub(1).max(y1);
    let mut bitmap = Vec::with_capacity(((x2 - x1 + 1) * (y2 - y1 + 1)) as usize);
    let mut any = false;
    for y in y1..=y2 {
        for x in x1..=x2 {
            let ix = (x as f32 + 0.5) * lb.scale + lb.pad_x;
            let iy = (y as f32 + 0.5) * lb.scale + lb.pad_y;
            let on = at(ix / sx - 0.5, iy / sy - 0.5) > 0.0;
            any |= on;
            bitmap.push(u8::from(on));
        }
    }
    any.then_some(Mask {
        x1,
        y1,
        x2,
        y2,
        bitmap,
    })
}

export!(Yolo);

#[cfg(test)]
mod tests {
    #[test]
    fn keypoint_name_lists() {
        assert_eq!(
            super::serde_names(r#"["a", "b c"]"#).unwrap(),
            vec!["a", "b c"]
        );
        assert!(super::serde_names("a,b").is_none());
    }
}
