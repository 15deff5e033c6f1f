//! Person segmentation for MediaPipe's selfie segmentation model converted to ONNX:
//! input 256x256 RGB in [0, 1] (NHWC from tf2onnx, or NCHW; read from the graph), output a
//! 256x256 person probability map. The frame is letterboxed (pad 0), the map is sampled
//! bilinearly at every original pixel, and the pixels over `threshold` become one CVAT
//! `mask` item over their tight bounding box.
//!
//! Config keys: `weights` (graph, required), `threshold` (probability, default 0.5).

use std::cell::RefCell;

use model_sdk::config::Config;
use model_sdk::image::{InputSpec, Letterbox, Normalize};
use model_sdk::nn::{image_input, Model};
use model_sdk::{pixels, results};

model_sdk::world!("detector-model");

use cvat::model::types::{Detection, Error, Frame, InstanceConfig, Mask, ModelInfo, ShapeType};

struct State {
    model: Model,
    input_name: String,
    input: InputSpec,
    label: String,
    threshold: f32,
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
        labels: results::labels([(0, label.as_str())], ShapeType::Mask),
        description: "MediaPipe selfie segmentation: one person mask per frame".into(),
        needs: vec!["weights".into()],
        // The mask is drawn at frame resolution: always the full frame.
        input_size: None,
    }
}

/// The probability map sampled at every frame pixel, thresholded and cropped.
fn mask_of(
    map: &[f32],
    mw: usize,
    mh: usize,
    lb: &Letterbox,
    frame: (u32, u32),
    threshold: f32,
) -> Option<(Mask, f32)> {
    let (fw, fh) = (frame.0 as usize, frame.1 as usize);
    let sample = |u: f32, v: f32| model_sdk::image::sample(map, mw, mh, u, v);
    let mut full = vec![0f32; fw * fh];
    let (mut x1, mut y1, mut x2, mut y2) = (usize::MAX, usize::MAX, 0, 0);
    for y in 0..fh {
        let v = (y as f32 + 0.5) * lb.scale + lb.pad_y - 0.5;
        for x in 0..fw {
            let p = sample((x as f32 + 0.5) * lb.scale + lb.pad_x - 0.5, v);
            full[y * fw + x] = p;
            if p > threshold {
                x1 = x1.min(x);
                y1 = y1.min(y);
                x2 = x2.max(x);
                y2 = y2.max(y);
            }
        }
    }
    if x1 == usize::MAX {
        return None;
    }
    let mut bitmap = Vec::with_capacity((x2 - x1 + 1) * (y2 - y1 + 1));
    let (mut sum, mut n) = (0f32, 0usize);
    for y in y1..=y2 {
        for &p in &full[y * fw + x1..=y * fw + x2] {
            let on = p > threshold;
            if on {
                sum += p;
                n += 1;
            }
            bitmap.push(u8::from(on));
        }
    }
    Some((
        Mask {
            x1: x1 as u32,
            y1: y1 as u32,
            x2: x2 as u32,
            y2: y2 as u32,
            bitmap,
        },
        sum / n as f32,
    ))
}

struct Selfie;

impl exports::cvat::model::detector::Guest for Selfie {
    fn describe(config: InstanceConfig) -> ModelInfo {
        model_info(label_name(&config))
    }

    fn init(config: InstanceConfig) -> Result<ModelInfo, Error> {
        let label = label_name(&config);
        let cfg = Config::new(config.config.into_iter().map(|e| (e.key, e.value)));
        let model = Model::load("weights").map_err(Error::InvalidConfig)?;
        let info = model.input().map_err(Error::InvalidConfig)?;
        let input_name = info.name.clone();
        let input = image_input(info, 256, Normalize::UNIT, 0).map_err(Error::InvalidConfig)?;
        let threshold = cfg.f32_or("threshold", 0.5).map_err(Error::InvalidConfig)?;
        STATE.with(|s| {
            *s.borrow_mut() = Some(State {
                model,
                input_name,
                input,
                label: label.clone(),
                threshold,
            })
        });
        Ok(model_info(label))
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
                .ok_or_else(|| Error::Failed("no output".into()))?;
            // [1, H, W, 1] or [1, 1, H, W]: the map is H x W either way.
            let (mh, mw) = match out.dims.as_slice() {
                [1, h, w, 1] | [1, 1, h, w] => (*h as usize, *w as usize),
                d => {
                    return Err(Error::Failed(format!(
                        "output dims {d:?}: expected a single-channel map"
                    )))
                }
            };
            let threshold = threshold.unwrap_or(st.threshold);
            Ok(mask_of(
                &out.data,
                mw,
                mh,
                &lb,
                (frame.width(), frame.height()),
                threshold,
            )
            .map(|(mask, confidence)| Detection {
                mask: Some(mask),
                ..results::detection(&st.label, confidence, ShapeType::Mask, vec![])
            })
            .into_iter()
            .collect())
        })
    }
}

export!(Selfie);

#[cfg(test)]
mod tests {
    #[test]
    fn mask_is_cropped_to_the_pixels_over_the_threshold() {
        let map = [0.0, 0.0, 0.9, 0.9];
        let lb = model_sdk::image::Letterbox {
            scale: 1.0,
            pad_x: 0.0,
            pad_y: 0.0,
        };
        let (m, conf) = super::mask_of(&map, 2, 2, &lb, (2, 2), 0.5).unwrap();
        assert_eq!((m.x1, m.y1, m.x2, m.y2, m.bitmap), (0, 1, 1, 1, vec![1, 1]));
        assert!((conf - 0.9).abs() < 1e-6);
    }
}
