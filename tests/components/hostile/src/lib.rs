//! A detector that misbehaves when asked. The request's `threshold` picks the attack:
//!
//! | threshold | behaviour |
//! |---|---|
//! | 0.91 | panics (a trap) |
//! | 0.92 | loops forever (must hit the deadline) |
//! | 0.93 | allocates until the memory cap stops it |
//! | 0.94 | recurses until the stack overflows |
//! | other | returns one `ok` rectangle |

use std::hint::black_box;

wit_bindgen::generate!({
    world: "detector-model",
    path: "../../../wit",
    with: {
        "wasi:nn/tensor@0.2.0-rc-2024-10-28": model_sdk::bindings::wasi::nn::tensor,
        "wasi:nn/graph@0.2.0-rc-2024-10-28": model_sdk::bindings::wasi::nn::graph,
        "wasi:nn/inference@0.2.0-rc-2024-10-28": model_sdk::bindings::wasi::nn::inference,
        "wasi:nn/errors@0.2.0-rc-2024-10-28": model_sdk::bindings::wasi::nn::errors,
        "cvat:model/graphs@0.1.0": model_sdk::bindings::cvat::model::graphs,
    },
    generate_all,
});

use cvat::model::types::{Detection, Error, Frame, InstanceConfig, ModelInfo, ShapeType};

struct Hostile;

#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let buf = black_box([n; 64]);
    buf[0] + recurse(black_box(n + 1))
}

impl exports::cvat::model::detector::Guest for Hostile {
    fn describe(_config: InstanceConfig) -> ModelInfo {
        ModelInfo {
            labels: vec![],
            description: "misbehaves on request".into(),
            needs: vec![],
        }
    }

    fn init(_config: InstanceConfig) -> Result<ModelInfo, Error> {
        Ok(ModelInfo {
            labels: vec![],
            description: "misbehaves on request".into(),
            needs: vec![],
        })
    }

    fn detect(frame: Frame, threshold: Option<f32>) -> Result<Vec<Detection>, Error> {
        let pick = threshold.map(|t| (t * 100.0).round() as u32);
        match pick {
            Some(91) => panic!("hostile: asked to panic"),
            Some(92) => {
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            Some(93) => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 16 << 20]);
                    black_box(&hoard);
                }
            }
            Some(94) => {
                black_box(recurse(0));
            }
            _ => {}
        }
        Ok(vec![Detection {
            label: "ok".into(),
            confidence: 1.0,
            shape: ShapeType::Rectangle,
            points: vec![0.0, 0.0, frame.width as f32, frame.height as f32],
            mask: None,
            rotation: None,
            attributes: vec![],
            elements: vec![],
        }])
    }
}

export!(Hostile);
