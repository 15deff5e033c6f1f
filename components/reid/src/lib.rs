//! Re-identification: each box is cropped, resized to the embedding graph's input and
//! embedded (graph `weights`, output `[1, D]`); boxes are matched across frames greedily by
//! cosine distance (at most `threshold`, default 0.5) among pairs whose centres are at most
//! `max_distance` pixels apart (default 50), as CVAT's reference function does.
//!
//! Config keys: `weights` (graph, required), `normalize` (`unit`: bytes/255, default;
//! `raw`: bytes as they are; `imagenet`: mean/std).

use std::cell::RefCell;

use model_sdk::config::Config;
use model_sdk::image::resample;
use model_sdk::nn::Model;

model_sdk::world!("reid-model");

use cvat::model::types::{Bbox, Error, Frame, InstanceConfig, ModelInfo};

#[derive(Clone, Copy)]
enum Norm {
    Unit,
    Raw,
    Imagenet,
}

struct State {
    model: Model,
    input_name: String,
    width: u32,
    height: u32,
    norm: Norm,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Crop `b` (rounded to whole pixels, clamped to the frame) and stretch it to `w` x `h`
/// with PIL's antialiased bilinear filter (how torchreid resizes), NCHW, normalised.
fn crop_resize(f: &Frame, b: &Bbox, w: u32, h: u32, norm: Norm) -> Vec<f32> {
    let (fw, fh) = (f.width, f.height);
    let x1 = (b.x1.round().max(0.0) as u32).min(fw - 1);
    let y1 = (b.y1.round().max(0.0) as u32).min(fh - 1);
    let x2 = (b.x2.round().max(0.0) as u32).clamp(x1 + 1, fw);
    let y2 = (b.y2.round().max(0.0) as u32).clamp(y1 + 1, fh);
    let (cw, ch) = (x2 - x1, y2 - y1);
    let mut crop = Vec::with_capacity((cw * ch * 3) as usize);
    for y in y1..y2 {
        let row = (y * fw + x1) as usize * 3;
        crop.extend_from_slice(&f.rgb[row..row + cw as usize * 3]);
    }
    let hwc = resample(&crop, cw, ch, w, h);
    let plane = (w * h) as usize;
    let mut out = vec![0f32; plane * 3];
    for (i, px) in hwc.chunks_exact(3).enumerate() {
        for (c, &v) in px.iter().enumerate() {
            out[c * plane + i] = match norm {
                Norm::Unit => v / 255.0,
                Norm::Raw => v,
                Norm::Imagenet => (v - [123.675, 116.28, 103.53][c]) / [58.395, 57.12, 57.375][c],
            };
        }
    }
    out
}

fn embed(st: &State, f: &Frame, boxes: &[Bbox]) -> Result<Vec<Vec<f32>>, Error> {
    boxes
        .iter()
        .map(|b| {
            let t = crop_resize(f, b, st.width, st.height, st.norm);
            let out = st
                .model
                .run_f32(vec![(
                    st.input_name.clone(),
                    vec![1, 3, st.height, st.width],
                    t,
                )])
                .map_err(Error::Failed)?;
            let mut v = out
                .into_iter()
                .next()
                .ok_or_else(|| Error::Failed("no output".into()))?
                .data;
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            v.iter_mut().for_each(|x| *x /= n);
            Ok(v)
        })
        .collect()
}

/// Greedy one-to-one matching of the closest pairs within both limits.
pub fn match_greedy(
    e0: &[Vec<f32>],
    c0: &[(f32, f32)],
    e1: &[Vec<f32>],
    c1: &[(f32, f32)],
    threshold: f32,
    max_distance: f32,
) -> Vec<i32> {
    let mut pairs = Vec::new();
    for (i, a) in e0.iter().enumerate() {
        for (j, b) in e1.iter().enumerate() {
            let cos = 1.0 - a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
            let dist = ((c0[i].0 - c1[j].0).powi(2) + (c0[i].1 - c1[j].1).powi(2)).sqrt();
            if cos <= threshold && dist <= max_distance {
                pairs.push((cos, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = vec![-1i32; e0.len()];
    let mut used = vec![false; e1.len()];
    for (_, i, j) in pairs {
        if out[i] == -1 && !used[j] {
            out[i] = j as i32;
            used[j] = true;
        }
    }
    out
}

fn centres(b: &[Bbox]) -> Vec<(f32, f32)> {
    b.iter()
        .map(|b| ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0))
        .collect()
}

fn info() -> ModelInfo {
    ModelInfo {
        labels: vec![],
        description: "Re-identification by embedding and greedy matching".into(),
        needs: vec!["weights".into()],
        input_size: None,
    }
}

struct Reid;

impl exports::cvat::model::reid::Guest for Reid {
    fn describe(_config: InstanceConfig) -> ModelInfo {
        info()
    }

    fn init(config: InstanceConfig) -> Result<ModelInfo, Error> {
        let cfg = Config::new(config.config.into_iter().map(|e| (e.key, e.value)));
        let model = Model::load("weights").map_err(Error::InvalidConfig)?;
        let input = model.input().map_err(Error::InvalidConfig)?;
        let (height, width) = match input.dims.as_slice() {
            [_, 3, h, w] if *h > 0 && *w > 0 => (*h as u32, *w as u32),
            d => {
                return Err(Error::InvalidConfig(format!(
                    "input {d:?}: expected [1, 3, H, W]"
                )))
            }
        };
        let norm = match cfg.str_or("normalize", "unit") {
            "unit" => Norm::Unit,
            "raw" => Norm::Raw,
            "imagenet" => Norm::Imagenet,
            other => {
                return Err(Error::InvalidConfig(format!(
                    "normalize: expected unit, raw or imagenet, got `{other}`"
                )))
            }
        };
        let input_name = input.name.clone();
        STATE.with(|s| {
            *s.borrow_mut() = Some(State {
                model,
                input_name,
                width,
                height,
                norm,
            })
        });
        Ok(info())
    }

    fn match_boxes(
        frame0: Frame,
        boxes0: Vec<Bbox>,
        frame1: Frame,
        boxes1: Vec<Bbox>,
        threshold: Option<f32>,
        max_distance: Option<f32>,
    ) -> Result<Vec<i32>, Error> {
        STATE.with(|s| {
            let guard = s.borrow();
            let st = guard
                .as_ref()
                .ok_or_else(|| Error::Failed("match before init".into()))?;
            let e0 = embed(st, &frame0, &boxes0)?;
            let e1 = embed(st, &frame1, &boxes1)?;
            Ok(match_greedy(
                &e0,
                &centres(&boxes0),
                &e1,
                &centres(&boxes1),
                threshold.unwrap_or(0.5),
                max_distance.unwrap_or(50.0),
            ))
        })
    }
}

export!(Reid);

#[cfg(test)]
mod tests {
    #[test]
    fn greedy_matching_respects_both_limits() {
        let e = |v: [f32; 2]| v.to_vec();
        let m = super::match_greedy(
            &[e([1.0, 0.0]), e([0.0, 1.0])],
            &[(0.0, 0.0), (100.0, 0.0)],
            &[e([0.0, 1.0]), e([1.0, 0.0])],
            &[(102.0, 0.0), (3.0, 0.0)],
            0.5,
            50.0,
        );
        assert_eq!(m, vec![1, 0]);
        let far = super::match_greedy(
            &[e([1.0, 0.0])],
            &[(0.0, 0.0)],
            &[e([1.0, 0.0])],
            &[(80.0, 0.0)],
            0.5,
            50.0,
        );
        assert_eq!(far, vec![-1]);
    }
}
