//! Component for Ultralytics-style ONNX exports, every task:
//!
//! - detect: YOLOv8/11/12 `[1, 4 + nc, N]` (centre-xywh, class scores, no objectness) or
//!   YOLOv5 `[1, N, 5 + nc]` (with objectness) -> rectangles;
//! - segment: `[1, 4 + nc + nm, N]` plus prototypes `[1, nm, H/4, W/4]` -> CVAT `mask`
//!   shapes (bitmap over the box, bilinear-upsampled mask logits > 0, cropped to the box);
//! - pose: `[1, 4 + nc + k*d, N]` with `kpt_shape` `[k, d]` -> `skeleton` shapes whose
//!   elements are the keypoints (COCO-17 names and layout when k = 17);
//! - obb: `[1, 4 + nc + 1, N]` (angle last) -> rectangles with CVAT's `rotation`, after
//!   rotated (probabilistic-IoU) NMS;
//! - classify: `[1, nc]` (softmax already applied) -> `tag`s for the classes at or over the
//!   threshold; the frame resized so its shorter side fits and centre-cropped, as Ultralytics'
//!   `classify_transforms` does (not letterboxed).
//!
//! End-to-end exports (YOLO26 and YOLOv10 with `nms=False`: `end2end: True`) and exports with
//! NMS in the graph (`nms=True`) answer rows the model already suppressed: `[1, K, 6 + extra]`
//! (x1, y1, x2, y2, score, class, then mask coefficients or keypoints; OBB rows `[cx, cy, w, h,
//! score, class, angle]`), used as they are, no second NMS. Ultralytics' RT-DETR export
//! (`head: RTDETRDecoder`) answers `[1, K, 6]` rows normalised to 0-1 (before 8.4.50 `[1, K,
//! 4 + nc]`) from a frame stretched to the input. Layouts: src/decode.rs.
//!
//! The task comes from config `task`, else the export's `task` metadata, else the outputs'
//! shapes; the layout from the metadata (`end2end`, `args` `nms`, `head`), else the shapes.
//! Letterbox (pad 114) to the graph's input size, normalise to [0, 1], infer, decode,
//! class-wise NMS where the model did none, map back to original pixels and clip. An export
//! that fits no layout is refused naming its outputs, the metadata read and the layouts read.
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
mod obb;
mod skeleton;

use std::cell::RefCell;

use model_sdk::bindings::cvat::model::graphs::{self, GraphSignature};
use model_sdk::bindings::cvat::model::pixels::{Filter, Fit};
use model_sdk::bindings::cvat::model::types::Bbox;
use model_sdk::bindings::wasi::nn::tensor::{Tensor, TensorType};
use model_sdk::boxes::nms;
use model_sdk::config::Config;
use model_sdk::image::{InputSpec, Letterbox, Normalize};
use model_sdk::nn::{image_input, Model, Output};
use model_sdk::{pixels, results};

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
    /// Oriented boxes.
    Obb,
    Classify,
}

/// How the frame becomes the input.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Prep {
    /// Aspect kept, padded (Ultralytics' LetterBox, YOLOX's top-left one).
    Letterbox,
    /// Stretched to the input (RT-DETR's `scale_fill`).
    Stretch,
    /// The shorter side resized to the input, the centre cropped (classification).
    CentreCrop,
}

/// What an export's metadata says about its layout (Ultralytics writes each value with
/// Python's `str()`: `True`, `{'nms': None, ...}`).
#[derive(Debug, Clone, Default, PartialEq)]
struct Export {
    task: Option<String>,
    head: Option<String>,
    end2end: Option<bool>,
    nms: Option<bool>,
    /// Ultralytics' version, `(major, minor, patch)`.
    version: Option<(u32, u32, u32)>,
}

impl Export {
    fn read(md: &[(String, String)]) -> Self {
        let flag = |v: &str| match v.trim() {
            "True" => Some(true),
            "False" => Some(false),
            _ => None,
        };
        // `args` is a dict literal; `nms` is True, False or None.
        let nms = decode::meta(md, "args").and_then(|a| {
            let at = a.find("'nms':").or_else(|| a.find("\"nms\":"))?;
            let rest = a[at..].split_once(':')?.1.trim_start();
            flag(rest.split([',', '}']).next()?)
        });
        Export {
            task: decode::meta(md, "task").map(String::from),
            head: decode::meta(md, "head").map(String::from),
            end2end: decode::meta(md, "end2end").and_then(flag),
            nms,
            version: decode::meta(md, "version").and_then(|v| {
                let mut n = v.trim().split('.').map(|p| p.parse::<u32>().ok());
                Some((n.next()??, n.next()??, n.next().flatten().unwrap_or(0)))
            }),
        }
    }

    /// Whether the rows are final: an end-to-end head or NMS in the graph.
    fn post_nms(&self) -> bool {
        self.end2end == Some(true) || self.nms == Some(true)
    }

    fn rtdetr(&self) -> bool {
        self.head.as_deref() == Some("RTDETRDecoder")
    }

    /// The metadata as a refusal quotes it.
    fn describe(&self) -> String {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let flag = |v: Option<bool>| v.map_or("-".to_string(), |b| b.to_string());
        format!(
            "task {}, head {}, end2end {}, args.nms {}",
            show(&self.task),
            show(&self.head),
            flag(self.end2end),
            flag(self.nms)
        )
    }
}

/// The layouts this component reads, for refusals.
const LAYOUTS: &str = "detect/segment/pose [1, 4+nc(+extra), N] (YOLOv8, 11, 12, 26, v10 without nms=False), YOLOv5 and YOLOX [1, N, 5+nc], end-to-end or NMS-in-graph rows [1, K, 6(+extra)] (end2end or args nms True), OBB [1, 4+nc+1, N] and rows [1, K, 7], RT-DETR [1, K, 6] or [1, K, 4+nc], classify [1, nc]";

struct State {
    model: Model,
    plan: Plan,
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
        Task::Detect | Task::Obb => ShapeType::Rectangle,
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
            Task::Segment { .. } | Task::Classify => None,
            _ => input.map(|i| (i.width, i.height)),
        },
    }
}

fn task_of(cfg: &Config, signature: &GraphSignature, export: &Export) -> Result<Task, String> {
    let md = &signature.metadata;
    let outputs = &signature.outputs;
    let named = cfg.get("task").or(export.task.as_deref());
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
        "obb" => Task::Obb,
        "classify" => Task::Classify,
        other => {
            return Err(format!(
                "task `{other}`: expected detect, segment, pose, obb or classify"
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
    prep: Prep,
    task: Task,
    format: Option<Format>,
    labels: Vec<String>,
}

/// The layout of an end-to-end, NMS-in-graph or RT-DETR export, if it is one: `dims` is the
/// first output's, `extra` the values per row after the class, `names` the class names known.
fn rows_format(
    export: &Export,
    task: &Task,
    dims: &[i64],
    extra: usize,
    names: usize,
) -> Option<Format> {
    let [_, k, c] = dims[..] else { return None };
    let (k, c) = (k.max(0) as usize, c.max(0) as usize);
    // Ultralytics' own fallback for exports without `end2end` (8.3): the row width. Rows are
    // at most max_det (300); raw outputs have a candidate per anchor (2,100 at 320 pixels).
    let rows_by_shape = export.end2end.is_none() && k <= 1000;
    match task {
        Task::Obb if c == 7 && (export.post_nms() || rows_by_shape) => {
            Some(Format::ObbRows { classes: names })
        }
        // RT-DETR: named by `head` (8.4.100 on); before, an export that is no end-to-end one
        // (`end2end: False`) answering [1, K, 6], or one answering a score per class.
        Task::Detect
            if export.rtdetr()
                || (export.head.is_none()
                    && k <= 1000
                    && !export.post_nms()
                    && ((export.end2end == Some(false) && c == 6)
                        || (names > 0 && c == 4 + names))) =>
        {
            // Rows from 8.4.50 on, a score per class before; with two classes both are 6
            // wide and the version decides.
            let rows_era = export.version.is_some_and(|v| v >= (8, 4, 50));
            if c == 6 && (c != 4 + names || rows_era || export.rtdetr()) {
                Some(Format::RtDetr { classes: names })
            } else if names > 0 && c == 4 + names {
                Some(Format::RtDetrScores { classes: names })
            } else {
                None
            }
        }
        Task::Detect | Task::Segment { .. } | Task::Pose { .. }
            if c == 6 + extra && (export.post_nms() || (rows_by_shape && names != 1)) =>
        {
            Some(Format::Rows {
                classes: names,
                extra,
            })
        }
        _ => None,
    }
}

impl Plan {
    /// `configured`: the instance's classes (models.yaml or classes.txt), else the export's
    /// `names` metadata, else `class_<i>` for each class the output has.
    fn new(
        cfg: &Config,
        configured: Vec<String>,
        signature: &GraphSignature,
    ) -> Result<Plan, String> {
        let export = Export::read(&signature.metadata);
        let refuse = |why: String| {
            let outputs: Vec<String> = signature
                .outputs
                .iter()
                .map(|o| format!("{} {:?}", o.name, o.dims))
                .collect();
            format!(
                "{why}; outputs {}; metadata: {}; layouts read here: {LAYOUTS}",
                outputs.join(", "),
                export.describe()
            )
        };
        let input_info = signature.inputs.first().ok_or("the graph has no inputs")?;
        let default_size = cfg.usize_or("input_size", 640)? as u32;
        let mut input = image_input(input_info, default_size, Normalize::UNIT, 114)?;
        let task = task_of(cfg, signature, &export).map_err(refuse)?;
        let dims = &signature
            .outputs
            .first()
            .ok_or("the graph has no outputs")?
            .dims;
        let mut labels = configured;
        if labels.is_empty() {
            labels = decode::ultralytics_names(&signature.metadata);
        }
        let extra = match &task {
            Task::Segment { nm, .. } => *nm,
            Task::Pose { k, d, .. } => k * d,
            _ => 0,
        };
        let mut prep = Prep::Letterbox;
        let (format, classes) = match &task {
            Task::Classify => {
                // Ultralytics resizes then centre-crops a square input; a non-square one
                // it resizes to exactly.
                prep = if input.width == input.height {
                    Prep::CentreCrop
                } else {
                    Prep::Stretch
                };
                (None, dims.last().copied().unwrap_or(0).max(0) as usize)
            }
            other => {
                let choice = cfg.str_or("format", "auto");
                let rows = match choice {
                    "auto" | "rows" => rows_format(&export, other, dims, extra, labels.len()),
                    _ => None,
                };
                let f = match (rows, other) {
                    (Some(f), _) => f,
                    (None, _) if choice == "rows" => {
                        return Err(refuse(
                            "config `format: rows`, but the output is no [1, K, 6+extra] rows"
                                .into(),
                        ))
                    }
                    (None, Task::Obb) => match dims[..] {
                        [_, c, n] if c > 5 && n > 0 => Format::Obb {
                            classes: c as usize - 5,
                        },
                        _ => {
                            return Err(refuse(
                                "an OBB export must answer [1, 4+nc+1, N] or rows [1, K, 7]".into(),
                            ))
                        }
                    },
                    (None, _) => Format::detect(
                        choice,
                        dims,
                        labels.len(),
                        extra,
                        (input.width, input.height),
                    )
                    .map_err(refuse)?,
                };
                if f.normalised() {
                    prep = Prep::Stretch;
                } else {
                    (input.channels, input.norm, input.place) = f.input_style();
                }
                if matches!(
                    f,
                    Format::Rows { .. } | Format::ObbRows { .. } | Format::RtDetr { .. }
                ) && labels.is_empty()
                {
                    return Err(refuse("the rows carry class indices, and no class names were found (metadata `names`, models.yaml `classes` or a classes.txt)".into()));
                }
                (Some(f), f.classes())
            }
        };
        if labels.is_empty() {
            labels = (0..classes).map(|i| format!("class_{i}")).collect();
        }
        if labels.len() != classes {
            return Err(refuse(format!(
                "the output has {classes} classes but {} labels are configured",
                labels.len()
            )));
        }
        Ok(Plan {
            input_name: input_info.name.clone(),
            input,
            prep,
            task,
            format,
            labels,
        })
    }

    fn info(&self) -> ModelInfo {
        let format = self.format.map_or("classifier", |f| f.name());
        // Frames stretched or cropped into the input: no reduced decode.
        let fitted = (self.prep == Prep::Letterbox).then_some(&self.input);
        model_info(&self.labels, &self.task, format, fitted)
    }

    /// The frame as the model's input, and for a letterbox how input pixels map back to it
    /// (a stretched input's outputs are normalised to the frame; a classifier's have none).
    fn tensor(&self, frame: &Frame) -> Result<(Tensor, Option<Letterbox>), String> {
        let spec = pixels::spec(&self.input, TensorType::Fp32, Filter::Bilinear);
        match self.prep {
            Prep::Letterbox => {
                let (t, lb) = pixels::letterbox(frame, &self.input)?;
                Ok((t, Some(lb)))
            }
            Prep::Stretch => Ok((pixels::fit(frame, Fit::Stretch, spec)?.0, None)),
            Prep::CentreCrop => {
                // PIL's bilinear resize (torchvision on a PIL image) is antialiased.
                let spec = pixels::spec(&self.input, TensorType::Fp32, Filter::Antialiased);
                let (w, h) = (frame.width() as f32, frame.height() as f32);
                let side = w.min(h);
                let (x1, y1) = (((w - side) / 2.0).round(), ((h - side) / 2.0).round());
                let region = Bbox {
                    x1,
                    y1,
                    x2: x1 + side,
                    y2: y1 + side,
                };
                Ok((pixels::crops(frame, &[region], spec)?, None))
            }
        }
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
            plan,
            model,
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
            let plan = &st.plan;
            let (tensor, lb) = plan.tensor(frame).map_err(Error::Failed)?;
            let outputs = st
                .model
                .run_tensors(vec![(plan.input_name.clone(), tensor)])
                .map_err(Error::Failed)?;
            let out = outputs
                .first()
                .ok_or_else(|| Error::Failed("no output tensor".into()))?;
            let threshold = threshold.unwrap_or(st.threshold);
            let Some(format) = plan.format else {
                return Ok(classify(&plan.labels, &out.data, threshold));
            };
            let mut candidates = format
                .candidates(&out.data, &out.dims, threshold)
                .map_err(Error::Failed)?;
            let (width, height) = (frame.width(), frame.height());
            let (fw, fh) = (width as f32, height as f32);
            let kept = match (format.needs_nms(), plan.task == Task::Obb) {
                (true, true) => obb::nms(candidates, st.iou, st.max_detections),
                (true, false) => {
                    let boxes = candidates.iter().map(|c| (c.b, *c)).collect();
                    nms(boxes, st.iou, st.max_detections)
                        .into_iter()
                        .map(|(_, c)| c)
                        .collect()
                }
                // The model suppressed already: best first, as many as asked.
                (false, _) => {
                    candidates.sort_by(|a, b| b.b.score.total_cmp(&a.b.score));
                    candidates.truncate(st.max_detections);
                    candidates
                }
            };
            // Input pixels (or, for normalised outputs, fractions of the frame) to frame pixels.
            let to_frame = |x: f32, y: f32| match lb {
                Some(lb) => lb.to_original(x, y),
                None => (x * fw, y * fh),
            };
            let scale = lb.map_or(1.0, |lb| lb.scale);
            let mut result = Vec::new();
            for c in kept {
                let b = c.b;
                let Some(label) = plan.labels.get(b.class) else {
                    continue;
                };
                if let Some(angle) = c.angle {
                    let centre = to_frame((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
                    let size = ((b.x2 - b.x1) / scale, (b.y2 - b.y1) / scale);
                    result.push(results::rotated(label, b.score, centre, size, angle));
                    continue;
                }
                let (x1, y1) = to_frame(b.x1, b.y1);
                let (x2, y2) = to_frame(b.x2, b.y2);
                let Some(mut d) =
                    results::rectangle(label, b.score, [x1, y1, x2, y2], width, height)
                else {
                    continue;
                };
                let [x1, y1, x2, y2] = [d.points[0], d.points[1], d.points[2], d.points[3]];
                match (&plan.task, lb) {
                    (Task::Segment { proto, .. }, Some(lb)) => {
                        let coeffs = format.extra(&out.data, &out.dims, c.index);
                        let protos = outputs
                            .get(*proto)
                            .ok_or_else(|| Error::Failed("no prototype output".into()))?;
                        let Some(mask) = segment(
                            protos,
                            &coeffs,
                            &lb,
                            &plan.input,
                            [x1, y1, x2, y2],
                            (width, height),
                        ) else {
                            continue;
                        };
                        d.shape = ShapeType::Mask;
                        d.points = vec![];
                        d.mask = Some(mask);
                    }
                    (Task::Pose { k, d: dim, names }, _) => {
                        let kp = format.extra(&out.data, &out.dims, c.index);
                        d.shape = ShapeType::Skeleton;
                        d.points = vec![];
                        d.elements = (0..*k)
                            .map(|i| {
                                let (x, y) = to_frame(kp[i * dim], kp[i * dim + 1]);
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
fn classify(labels: &[String], scores: &[f32], threshold: f32) -> Vec<Detection> {
    let mut order: Vec<usize> = (0..scores.len().min(labels.len()))
        .filter(|&i| scores[i] >= threshold)
        .collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
        .into_iter()
        .map(|i| results::tag(&labels[i], scores[i]))
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

    #[test]
    fn export_metadata_as_ultralytics_writes_it() {
        let md = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let e = super::Export::read(&md(&[
            ("task", "detect"),
            ("head", "v10Detect"),
            ("end2end", "True"),
            ("version", "8.4.190"),
            ("args", "{'batch': 1, 'nms': None, 'dynamic': False}"),
        ]));
        assert_eq!(
            (e.end2end, e.nms, e.version),
            (Some(true), None, Some((8, 4, 190)))
        );
        assert!(e.post_nms());
        let e = super::Export::read(&md(&[
            ("args", "{'nms': True, 'opset': None}"),
            ("end2end", "False"),
        ]));
        assert!(e.post_nms() && !e.rtdetr());
        assert_eq!(
            super::Export::read(&md(&[])).describe(),
            "task -, head -, end2end -, args.nms -"
        );
    }
}
