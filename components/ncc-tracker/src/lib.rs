//! A single-object tracker that needs no weights: the object's appearance is a 32x32
//! grey template; each frame it is searched for by normalised cross-correlation over a
//! window 2.5x the box, at three scales, and the template adapts slowly.
//!
//! The whole state travels in CVAT's `states` as compact JSON:
//! `{"v":1,"box":[x1,y1,x2,y2],"tpl":"<base64 of 1024 grey bytes>","lost":0}`.
//!
//! Config keys: `search` (window half-extent in box sizes, default 0.75), `scales`
//! (relative step, default 0.03), `lost_below` (NCC under which the object counts as
//! lost, default 0.2), `learning_rate` (template update, default 0.1).

mod ncc;

use std::cell::RefCell;

use model_sdk::b64;
use model_sdk::config::Config;
use serde::{Deserialize, Serialize};

model_sdk::world!("tracker-model");

use cvat::model::types::{Error, Frame, InstanceConfig, ModelInfo, ShapeType};
use exports::cvat::model::tracker::{TrackResult, TrackedShape};
use ncc::{Gray, Params, TEMPLATE};

#[derive(Serialize, Deserialize)]
struct State {
    v: u32,
    #[serde(rename = "box")]
    bbox: [f32; 4],
    tpl: String,
    lost: u32,
}

thread_local! {
    static PARAMS: RefCell<Params> = RefCell::new(Params::default());
}

struct Tracker;

fn result(bbox: [f32; 4], tpl: &[u8], lost: u32) -> Result<TrackResult, Error> {
    let state = State {
        v: 1,
        bbox,
        tpl: b64::encode(tpl),
        lost,
    };
    Ok(TrackResult {
        shape: Some(TrackedShape {
            shape: ShapeType::Rectangle,
            points: bbox.to_vec(),
        }),
        state: serde_json::to_string(&state).map_err(|e| Error::Failed(e.to_string()))?,
    })
}

impl exports::cvat::model::tracker::Guest for Tracker {
    fn describe(_config: InstanceConfig) -> ModelInfo {
        ModelInfo {
            labels: vec![],
            description: "Normalised cross-correlation tracker with scale search (no weights)"
                .into(),
            needs: vec![],
            input_size: None,
        }
    }

    fn init(config: InstanceConfig) -> Result<ModelInfo, Error> {
        let cfg = Config::new(config.config.clone().into_iter().map(|e| (e.key, e.value)));
        let p = Params {
            search: cfg.f32_or("search", 0.75).map_err(Error::InvalidConfig)?,
            scale_step: cfg.f32_or("scales", 0.03).map_err(Error::InvalidConfig)?,
            lost_below: cfg
                .f32_or("lost_below", 0.2)
                .map_err(Error::InvalidConfig)?,
            learning_rate: cfg
                .f32_or("learning_rate", 0.1)
                .map_err(Error::InvalidConfig)?,
        };
        PARAMS.with(|s| *s.borrow_mut() = p);
        Ok(Self::describe(config))
    }

    fn start(frame: &Frame, shape: TrackedShape) -> Result<TrackResult, Error> {
        let [x1, y1, x2, y2] = match shape.points.as_slice() {
            [a, b, c, d] => [*a, *b, *c, *d],
            _ => {
                return Err(Error::InvalidInput(
                    "the tracker starts from a rectangle".into(),
                ))
            }
        };
        let bbox = [x1.min(x2), y1.min(y2), x1.max(x2), y1.max(y2)];
        if bbox[2] - bbox[0] < 2.0 || bbox[3] - bbox[1] < 2.0 {
            return Err(Error::InvalidInput(
                "the box is smaller than 2x2 pixels".into(),
            ));
        }
        // Grey pixels over the whole search window: this tracker reads the frame itself.
        let rgb = frame.rgb();
        let img = Gray::new(&rgb, frame.width(), frame.height());
        let tpl = ncc::patch(&img, bbox, 1.0);
        result(bbox, &ncc::quantize(&tpl), 0)
    }

    fn track(frame: &Frame, state: String) -> Result<TrackResult, Error> {
        let st: State = serde_json::from_str(&state)
            .map_err(|e| Error::InvalidInput(format!("tracker state: {e}")))?;
        let tpl = b64::decode(&st.tpl)
            .ok_or_else(|| Error::InvalidInput("tracker state: bad template".into()))?;
        if tpl.len() != TEMPLATE * TEMPLATE {
            return Err(Error::InvalidInput(
                "tracker state: template of the wrong size".into(),
            ));
        }
        let params = PARAMS.with(|p| *p.borrow());
        // Grey pixels over the whole search window: this tracker reads the frame itself.
        let rgb = frame.rgb();
        let img = Gray::new(&rgb, frame.width(), frame.height());
        let tpl_f: Vec<f32> = tpl.iter().map(|&b| b as f32).collect();
        let found = ncc::search(&img, st.bbox, &tpl_f, &params, st.lost > 0);
        if found.score < params.lost_below {
            // Lost: report the last position (CVAT's UI expects a shape) and keep looking.
            return result(st.bbox, &tpl, st.lost + 1);
        }
        let fresh = ncc::patch(&img, found.bbox, 1.0);
        let lr = params.learning_rate.clamp(0.0, 1.0);
        let blended: Vec<f32> = tpl_f
            .iter()
            .zip(&fresh)
            .map(|(a, b)| a * (1.0 - lr) + b * lr)
            .collect();
        result(found.bbox, &ncc::quantize(&blended), 0)
    }
}

export!(Tracker);
