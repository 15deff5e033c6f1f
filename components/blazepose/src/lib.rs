//! Full-body pose with MediaPipe BlazePose, two graphs in one component:
//!
//! 1. `detector` (pose_detection, 224x224 RGB in [-1, 1]): 2254 SSD anchors (strides 8, 16,
//!    32, 32, 32), box + 4 keypoints per anchor, sigmoid scores, weighted NMS;
//! 2. `landmarks` (pose_landmark_full, 256x256 RGB in [0, 1]): 39 landmarks x (x, y, z,
//!    visibility, presence) inside a rotated region of interest.
//!
//! The region of interest follows MediaPipe: centred on detection keypoint 0 (hips),
//! side 2 x |kp1 - kp0| x 1.25, rotated so that kp0 -> kp1 points up. The 33 body
//! landmarks become one CVAT `skeleton` per person; a landmark whose visibility is under
//! 0.5 is `outside`.
//!
//! Config keys: `detector`, `landmarks` (graphs, required), `threshold` (detection score,
//! default 0.5), `max_poses` (default 5), `min_presence` (pose flag, default 0.5).

mod names;

use std::cell::RefCell;

use model_sdk::boxes::{weighted_nms, Scored};
use model_sdk::config::Config;
use model_sdk::image::{InputSpec, Layout, Normalize};
use model_sdk::nn::{image_input, output_shaped, sigmoid, Model};
use model_sdk::{pixels, results};

model_sdk::world!("detector-model");

use cvat::model::types::{
    Detection, Element, Error, Frame, InstanceConfig, Label, ModelInfo, ShapeType, Sublabel,
};

struct State {
    detector: Model,
    landmarks: Model,
    det_input: InputSpec,
    lm_input: InputSpec,
    anchors: Vec<(f32, f32)>,
    label: String,
    threshold: f32,
    max_poses: usize,
    min_presence: f32,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn label_name(config: &InstanceConfig) -> String {
    config
        .labels
        .first()
        .map(|l| l.name.clone())
        .unwrap_or_else(|| "person".into())
}

fn model_info(label: String) -> ModelInfo {
    ModelInfo {
        labels: vec![Label {
            id: 0,
            name: label,
            shape: ShapeType::Skeleton,
            attributes: vec![],
            sublabels: names::NAMES
                .iter()
                .enumerate()
                .map(|(i, n)| Sublabel {
                    id: i as u32,
                    name: n.to_string(),
                })
                .collect(),
            svg: Some(names::svg()),
        }],
        description: "MediaPipe BlazePose: 33 body landmarks per person".into(),
        needs: vec!["detector".into(), "landmarks".into()],
        // Landmarks are read from a full-resolution crop around the person: full frames.
        input_size: None,
    }
}

/// A rotated square region of interest in frame pixels.
#[derive(Debug, Clone, Copy)]
struct Roi {
    cx: f32,
    cy: f32,
    side: f32,
    rotation: f32,
}

impl Roi {
    /// Frame pixel of the normalised ROI point (`u`, `v` in [0, 1]).
    fn to_frame(self, u: f32, v: f32) -> (f32, f32) {
        let (dx, dy) = ((u - 0.5) * self.side, (v - 0.5) * self.side);
        let (s, c) = self.rotation.sin_cos();
        (self.cx + c * dx - s * dy, self.cy + s * dx + c * dy)
    }
}

/// The ROI (rotated) resampled (bilinear) from the frame's pixels (`rgb`, `fw` x `fh`) into
/// the landmark model's input tensor. A rotated crop is not one of the host's pixel
/// primitives, so this stage reads the frame itself.
fn crop(rgb: &[u8], (fw, fh): (usize, usize), roi: &Roi, input: &InputSpec) -> Vec<f32> {
    let (w, h) = (input.width as usize, input.height as usize);
    let plane = w * h;
    let mut out = vec![0f32; plane * 3];
    for y in 0..h {
        for x in 0..w {
            let (px, py) = roi.to_frame((x as f32 + 0.5) / w as f32, (y as f32 + 0.5) / h as f32);
            let (px, py) = (px - 0.5, py - 0.5);
            if px < 0.0 || py < 0.0 || px > (fw - 1) as f32 || py > (fh - 1) as f32 {
                continue; // outside the frame: black, as MediaPipe pads
            }
            let (x0, y0) = (px as usize, py as usize);
            let (x1, y1) = ((x0 + 1).min(fw - 1), (y0 + 1).min(fh - 1));
            let (fx, fy) = (px - x0 as f32, py - y0 as f32);
            for c in 0..3 {
                let p = |xx: usize, yy: usize| rgb[(yy * fw + xx) * 3 + c] as f32;
                let v = (p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx) * (1.0 - fy)
                    + (p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx) * fy;
                let v = v * input.norm.mul + input.norm.add;
                let idx = match input.layout {
                    Layout::Nchw => c * plane + y * w + x,
                    Layout::Nhwc => (y * w + x) * 3 + c,
                };
                out[idx] = v;
            }
        }
    }
    out
}

struct BlazePose;

impl exports::cvat::model::detector::Guest for BlazePose {
    fn describe(config: InstanceConfig) -> ModelInfo {
        model_info(label_name(&config))
    }

    fn init(config: InstanceConfig) -> Result<ModelInfo, Error> {
        let label = label_name(&config);
        let cfg = Config::new(config.config.into_iter().map(|e| (e.key, e.value)));
        let detector = Model::load("detector").map_err(Error::InvalidConfig)?;
        let landmarks = Model::load("landmarks").map_err(Error::InvalidConfig)?;
        let det_input = image_input(
            detector.input().map_err(Error::InvalidConfig)?,
            224,
            Normalize::SIGNED,
            0,
        )
        .map_err(Error::InvalidConfig)?;
        let lm_input = image_input(
            landmarks.input().map_err(Error::InvalidConfig)?,
            256,
            Normalize::UNIT,
            0,
        )
        .map_err(Error::InvalidConfig)?;
        let state = State {
            anchors: model_sdk::anchors::ssd(
                &[8, 16, 32, 32, 32],
                det_input.width,
                det_input.height,
            ),
            detector,
            landmarks,
            det_input,
            lm_input,
            label: label.clone(),
            threshold: cfg.f32_or("threshold", 0.5).map_err(Error::InvalidConfig)?,
            max_poses: cfg.usize_or("max_poses", 5).map_err(Error::InvalidConfig)?,
            min_presence: cfg
                .f32_or("min_presence", 0.5)
                .map_err(Error::InvalidConfig)?,
        };
        STATE.with(|s| *s.borrow_mut() = Some(state));
        Ok(model_info(label))
    }

    fn detect(frame: &Frame, threshold: Option<f32>) -> Result<Vec<Detection>, Error> {
        STATE.with(|s| {
            let guard = s.borrow();
            let st = guard
                .as_ref()
                .ok_or_else(|| Error::Failed("detect before init".into()))?;
            let name = |m: &Model| m.input().map(|i| i.name.clone()).map_err(Error::Failed);
            // Stage 1: people.
            let (tensor, lb) = pixels::letterbox(frame, &st.det_input).map_err(Error::Failed)?;
            let out = st
                .detector
                .run_tensors(vec![(name(&st.detector)?, tensor)])
                .map_err(Error::Failed)?;
            let n = st.anchors.len();
            let (Some(reg), Some(scores)) = (output_shaped(&out, n, 12), output_shaped(&out, n, 1))
            else {
                return Err(Error::Failed(format!(
                    "detector outputs {:?}: expected [1, {n}, 12] and [1, {n}, 1]",
                    out.iter().map(|o| &o.dims).collect::<Vec<_>>()
                )));
            };
            let (iw, ih) = (st.det_input.width as f32, st.det_input.height as f32);
            let threshold = threshold.unwrap_or(st.threshold);
            let mut candidates = Vec::new();
            for (i, &(ax, ay)) in st.anchors.iter().enumerate() {
                let score = sigmoid(scores.data[i].clamp(-100.0, 100.0));
                if score < threshold {
                    continue;
                }
                let r = &reg.data[i * 12..(i + 1) * 12];
                let (cx, cy) = (r[0] + ax * iw, r[1] + ay * ih);
                let kps: Vec<f32> = (0..4)
                    .flat_map(|k| [r[4 + 2 * k] + ax * iw, r[5 + 2 * k] + ay * ih])
                    .collect();
                candidates.push((
                    Scored {
                        x1: cx - r[2] / 2.0,
                        y1: cy - r[3] / 2.0,
                        x2: cx + r[2] / 2.0,
                        y2: cy + r[3] / 2.0,
                        score,
                        class: 0,
                    },
                    kps,
                ));
            }
            // Stage 2: landmarks inside each person's rotated region (pixels read once, and
            // only when someone was found).
            let mut people = Vec::new();
            let mut rgb: Option<Vec<u8>> = None;
            let size = (frame.width() as usize, frame.height() as usize);
            for (det, kps) in weighted_nms(candidates, 0.3, st.max_poses) {
                let (x0, y0) = lb.to_original(kps[0], kps[1]);
                let (x1, y1) = lb.to_original(kps[2], kps[3]);
                let dist = ((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt();
                let rotation = std::f32::consts::FRAC_PI_2 - (-(y1 - y0)).atan2(x1 - x0);
                let roi = Roi {
                    cx: x0,
                    cy: y0,
                    side: 2.0 * dist * 1.25,
                    rotation,
                };
                if roi.side < 4.0 {
                    continue;
                }
                let rgb = rgb.get_or_insert_with(|| frame.rgb());
                let input = crop(rgb, size, &roi, &st.lm_input);
                let lm_out = st
                    .landmarks
                    .run_f32(vec![(name(&st.landmarks)?, st.lm_input.dims(), input)])
                    .map_err(Error::Failed)?;
                let Some(points) = lm_out.iter().find(|o| o.data.len() == 195) else {
                    return Err(Error::Failed("landmark model: no [1, 195] output".into()));
                };
                let presence = lm_out
                    .iter()
                    .find(|o| o.data.len() == 1)
                    .map(|o| o.data[0])
                    .unwrap_or(1.0);
                let presence = if (0.0..=1.0).contains(&presence) {
                    presence
                } else {
                    sigmoid(presence)
                };
                if presence < st.min_presence {
                    continue;
                }
                let (lw, lh) = (st.lm_input.width as f32, st.lm_input.height as f32);
                let (fw, fh) = (frame.width() as f32, frame.height() as f32);
                let elements = names::NAMES
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        let p = &points.data[i * 5..i * 5 + 5];
                        let (x, y) = roi.to_frame(p[0] / lw, p[1] / lh);
                        let visible = sigmoid(p[3]) >= 0.5
                            && (0.0..fw).contains(&x)
                            && (0.0..fh).contains(&y);
                        Element {
                            label: n.to_string(),
                            x: x.clamp(0.0, fw - 1.0),
                            y: y.clamp(0.0, fh - 1.0),
                            outside: !visible,
                        }
                    })
                    .collect();
                let confidence = det.score.min(presence);
                people.push(Detection {
                    elements,
                    ..results::detection(&st.label, confidence, ShapeType::Skeleton, vec![])
                });
            }
            Ok(people)
        })
    }
}

export!(BlazePose);

#[cfg(test)]
mod tests {
    use super::Roi;

    #[test]
    fn roi_maps_its_centre_and_rotates() {
        let r = Roi {
            cx: 100.0,
            cy: 50.0,
            side: 20.0,
            rotation: 0.0,
        };
        assert_eq!(r.to_frame(0.5, 0.5), (100.0, 50.0));
        assert_eq!(r.to_frame(1.0, 0.5), (110.0, 50.0));
        let q = Roi {
            rotation: std::f32::consts::FRAC_PI_2,
            ..r
        };
        let (x, y) = q.to_frame(1.0, 0.5);
        assert!((x - 100.0).abs() < 1e-4 && (y - 60.0).abs() < 1e-4);
    }
}
