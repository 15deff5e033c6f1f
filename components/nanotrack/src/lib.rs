//! NanoTrack v2, a learned single-object tracker (SiamTrackers, Apache-2.0; the models
//! OpenCV's TrackerNano runs). Graphs: `backbone` (`[1, 3, H, W]` BGR 0-255 → features;
//! its H and W must be dynamic so that the 127x127 template and the 255x255 search crop
//! both run) and `head` (template features, search features → `cls` `[1, 2, n, n]`,
//! `loc` `[1, 4, n, n]`).
//!
//! `start` embeds the template once; its features travel in CVAT's tracker state, so any
//! instance (or a reloaded one) can continue a track:
//! `{"v":1,"box":[cx,cy,w,h],"fill":[r,g,b],"z":"<base64 of the f32 features>","sum":"<hex>"}`
//! (16 KB for NanoTrack v2's 48x8x8 features). A state that does not parse, has another
//! version, features of another size, non-finite numbers or a checksum that does not match
//! its content is refused as invalid input (HTTP 400). CVAT signs states itself (since
//! 2.26); the checksum catches corrupted and stale states, not a determined forger.
//!
//! Config keys: `backbone`, `head` (graphs, required), `context` (0.5), `penalty_k` (0.15),
//! `window_influence` (0.49), `lr` (0.385), `stride` (16).

mod siam;

use std::cell::RefCell;

use model_sdk::b64;
use model_sdk::bindings::cvat::model::pixels::{Channels, Filter, Layout, TensorSpec};
use model_sdk::bindings::wasi::nn::tensor::TensorType;
use model_sdk::config::Config;
use model_sdk::nn::Model;
use model_sdk::pixels;
use serde::{Deserialize, Serialize};

model_sdk::world!("tracker-model");

use cvat::model::types::{Bbox, Error, Frame, InstanceConfig, ModelInfo, ShapeType};
use exports::cvat::model::tracker::{TrackResult, TrackedShape};
use siam::{Params, Target, EXEMPLAR, INSTANCE};

/// The state format's version: bump it when the fields or their meaning change.
const VERSION: u32 = 1;
/// Longest state text accepted (the features' base64 plus a little).
const MAX_STATE: usize = 1 << 20;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    v: u32,
    #[serde(rename = "box")]
    bbox: [f32; 4],
    fill: [f32; 3],
    z: String,
    sum: String,
}

struct Loaded {
    backbone: Model,
    head: Model,
    params: Params,
    /// Template feature dims, from the first `start`'s backbone output.
    template_len: usize,
}

thread_local! {
    static LOADED: RefCell<Option<Loaded>> = const { RefCell::new(None) };
}

struct NanoTrack;

/// FNV-1a 64 over the state's fields: a cheap check that they were not altered.
fn checksum(bbox: &[f32; 4], fill: &[f32; 3], z: &str) -> String {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= *b as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    };
    eat(&VERSION.to_le_bytes());
    for v in bbox.iter().chain(fill) {
        eat(&v.to_le_bytes());
    }
    eat(z.as_bytes());
    format!("{h:016x}")
}

fn encode_state(t: &Target, fill: [f32; 3], z: &str) -> Result<String, Error> {
    let bbox = [t.cx, t.cy, t.w, t.h];
    let state = State {
        v: VERSION,
        bbox,
        fill,
        z: z.to_string(),
        sum: checksum(&bbox, &fill, z),
    };
    serde_json::to_string(&state).map_err(|e| Error::Failed(e.to_string()))
}

fn bad_state(why: &str) -> Error {
    Error::InvalidInput(format!("tracker state: {why}; start tracking again"))
}

/// Parse and check a state from CVAT: the target, the fill colour and the features.
fn decode_state(
    text: &str,
    template_len: usize,
) -> Result<(Target, [f32; 3], Vec<f32>, String), Error> {
    if text.len() > MAX_STATE {
        return Err(bad_state("too large"));
    }
    let st: State = serde_json::from_str(text).map_err(|e| bad_state(&e.to_string()))?;
    if st.v != VERSION {
        return Err(bad_state(&format!(
            "version {} (this tracker writes version {VERSION})",
            st.v
        )));
    }
    if checksum(&st.bbox, &st.fill, &st.z) != st.sum {
        return Err(bad_state(
            "it does not match its checksum (altered or corrupted)",
        ));
    }
    let [cx, cy, w, h] = st.bbox;
    if !st.bbox.iter().chain(&st.fill).all(|v| v.is_finite()) || w <= 0.0 || h <= 0.0 {
        return Err(bad_state("the box is not a finite, non-empty box"));
    }
    let bytes = b64::decode(&st.z).ok_or_else(|| bad_state("the features are not base64"))?;
    if bytes.len() != template_len * 4 {
        return Err(bad_state(&format!(
            "{} feature bytes, this model's template has {}",
            bytes.len(),
            template_len * 4
        )));
    }
    let z: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if !z.iter().all(|v| v.is_finite()) {
        return Err(bad_state("non-finite features"));
    }
    Ok((Target { cx, cy, w, h }, st.fill, z, st.z))
}

fn rectangle(t: &Target) -> TrackedShape {
    TrackedShape {
        shape: ShapeType::Rectangle,
        points: vec![
            t.cx - t.w / 2.0,
            t.cy - t.h / 2.0,
            t.cx + t.w / 2.0,
            t.cy + t.h / 2.0,
        ],
    }
}

/// Run the backbone on a square crop of side `side` around `centre`, resized to `out`.
fn embed(
    l: &Loaded,
    frame: &Frame,
    centre: (f32, f32),
    side: f32,
    out: u32,
    fill: [f32; 3],
) -> Result<model_sdk::nn::Output, Error> {
    // The square `side` x `side` around the centre (SiamFC's sub-window), BGR bytes,
    // pixels past the frame's edges in the fill colour: cropped and resized in the host.
    let spec = TensorSpec {
        width: out,
        height: out,
        layout: Layout::Nchw,
        channels: Channels::Bgr,
        element: TensorType::Fp32,
        mean: (0.0, 0.0, 0.0),
        scale: (1.0, 1.0, 1.0),
        pad: (fill[0], fill[1], fill[2]),
        filter: Filter::Bilinear,
    };
    let [x1, y1, x2, y2] = siam::window(centre, side);
    let crop = pixels::crops(frame, &[Bbox { x1, y1, x2, y2 }], spec).map_err(Error::Failed)?;
    let name = l.backbone.input().map_err(Error::Failed)?.name.clone();
    l.backbone
        .run_tensors(vec![(name, crop)])
        .map_err(Error::Failed)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Failed("the backbone has no output".into()))
}

impl exports::cvat::model::tracker::Guest for NanoTrack {
    fn describe(_config: InstanceConfig) -> ModelInfo {
        ModelInfo {
            labels: vec![],
            description: "NanoTrack v2 learned single-object tracker (template in the state)"
                .into(),
            needs: vec!["backbone".into(), "head".into()],
            input_size: None,
        }
    }

    fn init(config: InstanceConfig) -> Result<ModelInfo, Error> {
        let cfg = Config::new(config.config.clone().into_iter().map(|e| (e.key, e.value)));
        let d = Params::default();
        let f = |k: &str, default: f32| cfg.f32_or(k, default).map_err(Error::InvalidConfig);
        let params = Params {
            context: f("context", d.context)?,
            penalty_k: f("penalty_k", d.penalty_k)?,
            window_influence: f("window_influence", d.window_influence)?,
            lr: f("lr", d.lr)?,
            stride: f("stride", d.stride)?,
        };
        let backbone = Model::load("backbone").map_err(Error::InvalidConfig)?;
        let head = Model::load("head").map_err(Error::InvalidConfig)?;
        if head.signature.inputs.len() != 2 || head.signature.outputs.len() != 2 {
            return Err(Error::InvalidConfig(
                "head: expected two inputs (template, search features) and two outputs (cls, loc)"
                    .into(),
            ));
        }
        // The template's feature size: what the head's first input declares.
        let template_len = head.signature.inputs[0]
            .dims
            .iter()
            .map(|&d| d.max(1) as usize)
            .product();
        LOADED.with(|s| {
            *s.borrow_mut() = Some(Loaded {
                backbone,
                head,
                params,
                template_len,
            })
        });
        Ok(Self::describe(config))
    }

    fn start(frame: &Frame, shape: TrackedShape) -> Result<TrackResult, Error> {
        let [x1, y1, x2, y2] = match shape.points.as_slice() {
            [a, b, c, d] if [a, b, c, d].iter().all(|v| v.is_finite()) => [*a, *b, *c, *d],
            _ => {
                return Err(Error::InvalidInput(
                    "the tracker starts from a rectangle".into(),
                ))
            }
        };
        let target = Target {
            cx: (x1 + x2) / 2.0,
            cy: (y1 + y2) / 2.0,
            w: (x2 - x1).abs(),
            h: (y2 - y1).abs(),
        };
        if target.w < 2.0 || target.h < 2.0 {
            return Err(Error::InvalidInput(
                "the box is smaller than 2x2 pixels".into(),
            ));
        }
        LOADED.with(|s| {
            let guard = s.borrow();
            let l = guard
                .as_ref()
                .ok_or_else(|| Error::Failed("start before init".into()))?;
            // The fill for crops past the frame's edges: the frame's mean colour, the one
            // time this tracker reads the frame's pixels.
            let fill = siam::mean_colour(&frame.rgb());
            let side = target.context_side(&l.params).round();
            let z = embed(l, frame, (target.cx, target.cy), side, EXEMPLAR, fill)?;
            if z.data.len() != l.template_len {
                return Err(Error::InvalidConfig(format!(
                    "the backbone embeds the template as {:?}, the head expects {} values",
                    z.dims, l.template_len
                )));
            }
            let bytes: Vec<u8> = z.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            Ok(TrackResult {
                shape: Some(rectangle(&target)),
                state: encode_state(&target, fill, &b64::encode(&bytes))?,
            })
        })
    }

    fn track(frame: &Frame, state: String) -> Result<TrackResult, Error> {
        LOADED.with(|s| {
            let guard = s.borrow();
            let l = guard
                .as_ref()
                .ok_or_else(|| Error::Failed("track before init".into()))?;
            let (target, fill, z, z_text) = decode_state(&state, l.template_len)?;
            let p = &l.params;
            let search_side = target.context_side(p) * INSTANCE as f32 / EXEMPLAR as f32;
            let x = embed(
                l,
                frame,
                (target.cx, target.cy),
                search_side,
                INSTANCE,
                fill,
            )?;
            let names: Vec<String> = l
                .head
                .signature
                .inputs
                .iter()
                .map(|i| i.name.clone())
                .collect();
            let z_dims: Vec<u32> = l.head.signature.inputs[0]
                .dims
                .iter()
                .map(|&d| d.max(1) as u32)
                .collect();
            let outputs = l
                .head
                .run_f32(vec![
                    (names[0].clone(), z_dims, z),
                    (names[1].clone(), x.dims.clone(), x.data),
                ])
                .map_err(Error::Failed)?;
            // cls has 2 channels, loc 4.
            let cls = outputs.iter().find(|o| o.dims.get(1) == Some(&2));
            let loc = outputs.iter().find(|o| o.dims.get(1) == Some(&4));
            let (Some(cls), Some(loc)) = (cls, loc) else {
                return Err(Error::Failed(
                    "head outputs: expected [1, 2, n, n] and [1, 4, n, n]".into(),
                ));
            };
            let n = cls.dims.get(2).copied().unwrap_or(0) as usize;
            if n == 0 || cls.data.len() != 2 * n * n || loc.data.len() != 4 * n * n {
                return Err(Error::Failed(format!(
                    "head outputs {:?} and {:?} are not square grids",
                    cls.dims, loc.dims
                )));
            }
            let (next, _score) = siam::step(&cls.data, &loc.data, n, &target, p);
            let next = siam::clip(next, frame.width(), frame.height());
            Ok(TrackResult {
                shape: Some(rectangle(&next)),
                state: encode_state(&next, fill, &z_text)?,
            })
        })
    }
}

export!(NanoTrack);

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> String {
        let t = Target {
            cx: 50.0,
            cy: 40.0,
            w: 20.0,
            h: 10.0,
        };
        let z = b64::encode(&[0u8; 16]);
        encode_state(&t, [1.0, 2.0, 3.0], &z).unwrap()
    }

    fn refused(text: &str) -> String {
        match decode_state(text, 4) {
            Err(Error::InvalidInput(m)) => m,
            Err(e) => panic!("not invalid input: {e:?}"),
            Ok(_) => panic!("accepted {text}"),
        }
    }

    #[test]
    fn states_round_trip_and_altered_ones_are_refused() {
        let s = state();
        let (t, fill, z, _) = decode_state(&s, 4).unwrap();
        assert_eq!(
            (t.cx, t.w, fill, z),
            (50.0, 20.0, [1.0, 2.0, 3.0], vec![0.0; 4])
        );
        assert!(refused(&s.replace("50.0", "51.0")).contains("checksum"));
        assert!(refused(&s.replace("\"v\":1", "\"v\":0")).contains("version 0"));
        assert!(refused("{}").contains("missing field"));
        assert!(refused(&s.replace("\"sum\"", "\"extra\":1,\"sum\"")).contains("unknown field"));
        // Features of another size (another model), with a valid checksum.
        let t = Target {
            cx: 1.0,
            cy: 1.0,
            w: 1.0,
            h: 1.0,
        };
        let other = encode_state(&t, [0.0; 3], &b64::encode(&[0u8; 8])).unwrap();
        assert!(refused(&other).contains("8 feature bytes"));
        assert!(refused(&"x".repeat(MAX_STATE + 1)).contains("too large"));
    }
}
