//! Interactor for Segment-Anything-style ONNX exports: an image encoder (graph `encoder`,
//! input `[1, 3, S, S]`, first output = image embeddings) and a prompt decoder (graph
//! `decoder`, SAM's I/O: `image_embeddings`, `point_coords`, `point_labels`, `mask_input`,
//! `has_mask_input`, `orig_im_size` -> `masks` logits at the original size,
//! `iou_predictions`).
//!
//! The frame is resized so its longest side is S (SAM's ResizeLongestSide), normalised
//! with ImageNet mean/std and padded bottom-right, by the host. The embedding is computed
//! once per frame and kept in a small cache keyed by the frame's digest (a hash of its
//! pixels, computed by the host), so further clicks on the same frame only run the decoder.
//!
//! Config keys: `encoder`, `decoder` (graphs, required), `cache_frames` (default 4),
//! `cache_mb` (default 64: the cache's bytes stay under it whatever the embedding's size),
//! `mask_threshold` (logit threshold, default 0).

use std::cell::RefCell;

use model_sdk::bindings::cvat::model::pixels::{Channels, Filter, Fit, Layout, TensorSpec};
use model_sdk::bindings::wasi::nn::tensor::TensorType;
use model_sdk::config::Config;
use model_sdk::nn::Model;
use model_sdk::pixels;

model_sdk::world!("interactor-model");

use cvat::model::types::{Error, Frame, InstanceConfig, Mask, ModelInfo};
use exports::cvat::model::interactor::{Prompt, Proposal};

const MEAN: [f32; 3] = [123.675, 116.28, 103.53];
const STD: [f32; 3] = [58.395, 57.12, 57.375];

struct Embedding {
    key: u64,
    dims: Vec<u32>,
    data: Vec<f32>,
}

struct State {
    encoder: Model,
    decoder: Model,
    size: u32,
    cache: Vec<Embedding>,
    cache_frames: usize,
    cache_bytes: usize,
    threshold: f32,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// SAM's ResizeLongestSide: the resized size and the per-axis coordinate factors.
fn resized(w: u32, h: u32, size: u32) -> (u32, u32, f32, f32) {
    let scale = size as f32 / w.max(h) as f32;
    let (nw, nh) = (
        ((w as f32 * scale) + 0.5) as u32,
        ((h as f32 * scale) + 0.5) as u32,
    );
    (
        nw.max(1),
        nh.max(1),
        nw as f32 / w as f32,
        nh as f32 / h as f32,
    )
}

/// The encoder's input, made in the host: the frame resized so its longest side is `size`
/// (bilinear), in the top-left corner, normalised with SAM's mean and std; the padding is the
/// mean, so it normalises to 0.
fn encoder_input(
    f: &Frame,
    size: u32,
) -> Result<model_sdk::bindings::wasi::nn::tensor::Tensor, Error> {
    let spec = TensorSpec {
        width: size,
        height: size,
        layout: Layout::Nchw,
        channels: Channels::Rgb,
        element: TensorType::Fp32,
        mean: (MEAN[0], MEAN[1], MEAN[2]),
        scale: (1.0 / STD[0], 1.0 / STD[1], 1.0 / STD[2]),
        pad: (MEAN[0], MEAN[1], MEAN[2]),
        filter: Filter::Bilinear,
    };
    let (tensor, _) = pixels::fit(f, Fit::LetterboxTopLeft, spec).map_err(Error::Failed)?;
    Ok(tensor)
}

fn info() -> ModelInfo {
    ModelInfo {
        labels: vec![],
        description: "Segment-Anything-style interactor (embedding cached per frame)".into(),
        needs: vec!["encoder".into(), "decoder".into()],
        input_size: None,
    }
}

struct Sam;

impl exports::cvat::model::interactor::Guest for Sam {
    fn describe(_config: InstanceConfig) -> ModelInfo {
        info()
    }

    fn init(config: InstanceConfig) -> Result<ModelInfo, Error> {
        let cfg = Config::new(config.config.into_iter().map(|e| (e.key, e.value)));
        let encoder = Model::load("encoder").map_err(Error::InvalidConfig)?;
        let decoder = Model::load("decoder").map_err(Error::InvalidConfig)?;
        let input = encoder.input().map_err(Error::InvalidConfig)?;
        let size = match input.dims.as_slice() {
            [_, 3, h, w] if h == w && *h > 0 => *h as u32,
            d => {
                return Err(Error::InvalidConfig(format!(
                    "encoder input {d:?}: expected [1, 3, S, S]"
                )))
            }
        };
        let state = State {
            encoder,
            decoder,
            size,
            cache: Vec::new(),
            cache_frames: cfg
                .usize_or("cache_frames", 4)
                .map_err(Error::InvalidConfig)?
                .max(1),
            cache_bytes: cfg
                .usize_or("cache_mb", 64)
                .map_err(Error::InvalidConfig)?
                .saturating_mul(1 << 20),
            threshold: cfg
                .f32_or("mask_threshold", 0.0)
                .map_err(Error::InvalidConfig)?,
        };
        STATE.with(|s| *s.borrow_mut() = Some(state));
        Ok(info())
    }

    fn interact(frame: &Frame, prompt: Prompt) -> Result<Vec<Proposal>, Error> {
        if prompt.positive.is_empty() && prompt.bbox.is_none() {
            return Err(Error::InvalidInput(
                "give at least one positive point or a box".into(),
            ));
        }
        STATE.with(|s| {
            let mut guard = s.borrow_mut();
            let st = guard
                .as_mut()
                .ok_or_else(|| Error::Failed("interact before init".into()))?;
            let key = frame.digest();
            if let Some(pos) = st.cache.iter().position(|e| e.key == key) {
                let hit = st.cache.remove(pos);
                st.cache.push(hit);
            } else {
                let enc_in = st.encoder.input().map_err(Error::Failed)?.name.clone();
                let tensor = encoder_input(frame, st.size)?;
                let out = st
                    .encoder
                    .run_tensors(vec![(enc_in, tensor)])
                    .map_err(Error::Failed)?;
                let first = out
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::Failed("encoder has no output".into()))?;
                eprintln!("sam: embedding computed for a new frame");
                let bytes = first.data.len() * 4;
                evict(&mut st.cache, st.cache_frames, st.cache_bytes, bytes);
                st.cache.push(Embedding {
                    key,
                    dims: first.dims,
                    data: first.data,
                });
            }
            let emb = st.cache.last().expect("just inserted or moved");
            decode(st, emb, frame, &prompt)
        })
    }
}

/// Drop the least recently used embeddings until one of `incoming` bytes fits within both
/// bounds (the newest is always kept, even alone over the byte bound).
fn evict(cache: &mut Vec<Embedding>, frames: usize, bytes: usize, incoming: usize) {
    let held = |c: &Vec<Embedding>| c.iter().map(|e| e.data.len() * 4).sum::<usize>();
    while !cache.is_empty() && (cache.len() >= frames || held(cache) + incoming > bytes) {
        cache.remove(0);
    }
}

fn decode(
    st: &State,
    emb: &Embedding,
    frame: &Frame,
    prompt: &Prompt,
) -> Result<Vec<Proposal>, Error> {
    let (_, _, fx, fy) = resized(frame.width(), frame.height(), st.size);
    let mut coords = Vec::new();
    let mut labels = Vec::new();
    for p in &prompt.positive {
        coords.extend([p.x * fx, p.y * fy]);
        labels.push(1.0);
    }
    for p in &prompt.negative {
        coords.extend([p.x * fx, p.y * fy]);
        labels.push(0.0);
    }
    match &prompt.bbox {
        Some(b) => {
            coords.extend([b.x1 * fx, b.y1 * fy, b.x2 * fx, b.y2 * fy]);
            labels.extend([2.0, 3.0]);
        }
        // SAM's ONNX usage: a padding point when there is no box.
        None => {
            coords.extend([0.0, 0.0]);
            labels.push(-1.0);
        }
    }
    let n = labels.len() as u32;
    let mut inputs = Vec::new();
    for info in &st.decoder.signature.inputs {
        let (dims, data) = match info.name.as_str() {
            "image_embeddings" => (emb.dims.clone(), emb.data.clone()),
            "point_coords" => (vec![1, n, 2], coords.clone()),
            "point_labels" => (vec![1, n], labels.clone()),
            "mask_input" => (vec![1, 1, 256, 256], vec![0.0; 256 * 256]),
            "has_mask_input" => (vec![1], vec![0.0]),
            "orig_im_size" => (vec![2], vec![frame.height() as f32, frame.width() as f32]),
            other => {
                return Err(Error::InvalidConfig(format!(
                    "decoder input `{other}` is not part of SAM's interface"
                )))
            }
        };
        inputs.push((info.name.clone(), dims, data));
    }
    let outputs = st.decoder.run_f32(inputs).map_err(Error::Failed)?;
    let masks = outputs
        .iter()
        .find(|o| o.name == "masks")
        .or(outputs.first())
        .ok_or_else(|| Error::Failed("no masks".into()))?;
    let ious = outputs.iter().find(|o| o.name == "iou_predictions");
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let per_mask = w * h;
    if masks.dims.len() != 4 || masks.dims[2] as usize != h || masks.dims[3] as usize != w {
        return Err(Error::Failed(format!(
            "masks {:?}: expected [1, K, {h}, {w}]",
            masks.dims
        )));
    }
    let k = masks.dims[1] as usize;
    // The best of the K masks by predicted IoU.
    let best = (0..k).max_by(|&a, &b| {
        let s = |i: usize| ious.and_then(|o| o.data.get(i)).copied().unwrap_or(0.0);
        s(a).total_cmp(&s(b))
    });
    let Some(best) = best else { return Ok(vec![]) };
    let logits = &masks.data[best * per_mask..(best + 1) * per_mask];
    let confidence = ious
        .and_then(|o| o.data.get(best))
        .copied()
        .unwrap_or(1.0)
        .clamp(0.0, 1.0);
    Ok(crop(logits, w, h, st.threshold)
        .map(|mask| vec![Proposal { mask, confidence }])
        .unwrap_or_default())
}

/// The pixels over `threshold`, cropped to their bounding box; none when empty.
fn crop(logits: &[f32], w: usize, h: usize, threshold: f32) -> Option<Mask> {
    let (mut x1, mut y1, mut x2, mut y2) = (usize::MAX, usize::MAX, 0, 0);
    for y in 0..h {
        for x in 0..w {
            if logits[y * w + x] > threshold {
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
    for y in y1..=y2 {
        bitmap.extend(
            logits[y * w + x1..=y * w + x2]
                .iter()
                .map(|&v| u8::from(v > threshold)),
        );
    }
    Some(Mask {
        x1: x1 as u32,
        y1: y1 as u32,
        x2: x2 as u32,
        y2: y2 as u32,
        bitmap,
    })
}

export!(Sam);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_longest_side_like_sam() {
        assert_eq!(
            resized(1920, 1080, 1024),
            (1024, 576, 1024.0 / 1920.0, 576.0 / 1080.0)
        );
        assert_eq!(resized(256, 128, 64), (64, 32, 0.25, 0.25));
    }

    #[test]
    fn the_cache_stays_within_its_frames_and_bytes() {
        let e = |key, floats| Embedding {
            key,
            dims: vec![],
            data: vec![0.0; floats],
        };
        let mut c = vec![e(1, 100), e(2, 100), e(3, 100)];
        evict(&mut c, 4, 1000, 400);
        assert_eq!(c.iter().map(|e| e.key).collect::<Vec<_>>(), [3], "400 + 400 bytes fit");
        let mut c = vec![e(1, 10), e(2, 10)];
        evict(&mut c, 2, 1 << 20, 40);
        assert_eq!(c.len(), 1, "the frame bound");
        evict(&mut c, 2, 10, 4000);
        assert!(c.is_empty(), "an embedding over the bound alone still replaces the rest");
    }

    #[test]
    fn crop_to_the_mask() {
        let logits = [-1.0, 2.0, -1.0, -1.0, 3.0, 4.0];
        let m = crop(&logits, 3, 2, 0.0).unwrap();
        assert_eq!(
            (m.x1, m.y1, m.x2, m.y2, m.bitmap),
            (1, 0, 2, 1, vec![1, 0, 1, 1])
        );
        assert!(crop(&[-1.0; 4], 2, 2, 0.0).is_none());
    }
}
