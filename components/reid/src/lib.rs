//! Re-identification: each box is cropped, resized to the embedding graph's input and
//! embedded (graph `weights`, output `[1, D]`); boxes are matched across frames greedily by
//! cosine distance (at most `threshold`, default 0.5) among pairs whose centres are at most
//! `max_distance` pixels apart (default 50), as CVAT's reference function does.
//!
//! Crops run through the graph in batches of at most `batch_size` (default 32) when its batch
//! dimension is dynamic, one at a time otherwise, so a crowded frame (CVAT sends every box
//! of both frames) stays under the host's tensor limit however many boxes it holds.
//!
//! Config keys: `weights` (graph, required), `normalize` (`unit`: bytes/255, default;
//! `raw`: bytes as they are; `imagenet`: mean/std), `batch_size` (32).

use std::cell::RefCell;

use model_sdk::bindings::cvat::model::pixels::{Channels, Filter, Layout, TensorSpec};
use model_sdk::bindings::wasi::nn::tensor::TensorType;
use model_sdk::config::Config;
use model_sdk::nn::Model;
use model_sdk::pixels;

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
    /// Crops per run: `batch_size` when the graph's first dimension is dynamic, else 1.
    batch: usize,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// The host's crop spec: the graph's input size, NCHW RGB f32, normalised as configured,
/// resized with PIL's antialiased filter (how torchreid resizes).
fn crop_spec(st: &State) -> TensorSpec {
    let (mean, scale) = match st.norm {
        Norm::Unit => ((0.0, 0.0, 0.0), (1.0 / 255.0, 1.0 / 255.0, 1.0 / 255.0)),
        Norm::Raw => ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
        Norm::Imagenet => (
            (123.675, 116.28, 103.53),
            (1.0 / 58.395, 1.0 / 57.12, 1.0 / 57.375),
        ),
    };
    TensorSpec {
        width: st.width,
        height: st.height,
        layout: Layout::Nchw,
        channels: Channels::Rgb,
        element: TensorType::Fp32,
        mean,
        scale,
        pad: (0.0, 0.0, 0.0),
        filter: Filter::Antialiased,
    }
}

/// A box rounded to whole pixels and kept inside the frame (at least one pixel).
fn region(b: &Bbox, fw: u32, fh: u32) -> Bbox {
    let (fw, fh) = (fw as f32, fh as f32);
    let x1 = b.x1.round().clamp(0.0, fw - 1.0);
    let y1 = b.y1.round().clamp(0.0, fh - 1.0);
    Bbox {
        x1,
        y1,
        x2: b.x2.round().clamp(x1 + 1.0, fw),
        y2: b.y2.round().clamp(y1 + 1.0, fh),
    }
}

/// One unit-length embedding per box: the crops made in the host, `st.batch` per run.
fn embed(st: &State, f: &Frame, boxes: &[Bbox]) -> Result<Vec<Vec<f32>>, Error> {
    let regions: Vec<Bbox> = boxes
        .iter()
        .map(|b| region(b, f.width(), f.height()))
        .collect();
    let mut out = Vec::with_capacity(regions.len());
    for chunk in regions.chunks(st.batch) {
        let t = pixels::crops(f, chunk, crop_spec(st)).map_err(Error::Failed)?;
        let first = st
            .model
            .run_tensors(vec![(st.input_name.clone(), t)])
            .map_err(Error::Failed)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Failed("no output".into()))?;
        let d = first.data.len() / chunk.len();
        for v in first.data.chunks_exact(d.max(1)) {
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            out.push(v.iter().map(|x| x / n).collect());
        }
    }
    Ok(out)
}

/// Greedy one-to-one matching of the closest pairs within both limits. Pairs farther apart
/// than `max_distance` are skipped before their embeddings are compared (with thousands of
/// boxes per frame almost every pair is).
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
            let dist = ((c0[i].0 - c1[j].0).powi(2) + (c0[i].1 - c1[j].1).powi(2)).sqrt();
            if dist > max_distance {
                continue;
            }
            let cos = 1.0 - a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
            if cos <= threshold {
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
        let batch_size = cfg
            .usize_or("batch_size", 32)
            .map_err(Error::InvalidConfig)?
            .max(1);
        let (batch, height, width) = match input.dims.as_slice() {
            [n, 3, h, w] if *h > 0 && *w > 0 => {
                (if *n < 0 { batch_size } else { 1 }, *h as u32, *w as u32)
            }
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
                batch,
            })
        });
        Ok(info())
    }

    fn match_boxes(
        frame0: &Frame,
        boxes0: Vec<Bbox>,
        frame1: &Frame,
        boxes1: Vec<Bbox>,
        threshold: Option<f32>,
        max_distance: Option<f32>,
    ) -> Result<Vec<i32>, Error> {
        STATE.with(|s| {
            let guard = s.borrow();
            let st = guard
                .as_ref()
                .ok_or_else(|| Error::Failed("match before init".into()))?;
            let e0 = embed(st, frame0, &boxes0)?;
            let e1 = embed(st, frame1, &boxes1)?;
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
