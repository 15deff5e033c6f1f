//! A detector that misbehaves when asked. The request's `threshold` picks the attack:
//!
//! | threshold | behaviour |
//! |---|---|
//! | 0.91 | panics (a trap) |
//! | 0.92 | loops forever (must hit the deadline) |
//! | 0.93 | allocates until the memory cap stops it |
//! | 0.94 | recurses until the stack overflows |
//! | 0.95 | returns 20,000 detections (over the host's default result cap) |
//! | 0.96 | asks for a graph that is not its own (`../../etc/passwd`) |
//! | 0.97 | makes a tensor claiming 4 GiB of data |
//! | 0.98 | works for 1.5 s (wall clock), then answers normally |
//! | 0.99 | hoards 16 MiB tensors on the host until the instance's wasi-nn budget stops it |
//! | other | returns one `ok` rectangle |
//!
//! With config `hang_in_init: true`, `init` never returns.

use std::hint::black_box;

model_sdk::world!("detector-model", "../../../wit");

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

    fn init(config: InstanceConfig) -> Result<ModelInfo, Error> {
        if config
            .config
            .iter()
            .any(|e| e.key == "hang_in_init" && e.value == "true")
        {
            let mut n = 0u64;
            loop {
                n = black_box(n.wrapping_add(1));
            }
        }
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
            Some(95) => {
                let one = Detection {
                    label: "flood".into(),
                    confidence: 1.0,
                    shape: ShapeType::Rectangle,
                    points: vec![0.0, 0.0, 1.0, 1.0],
                    mask: None,
                    rotation: None,
                    attributes: vec![],
                    elements: vec![],
                };
                return Ok(vec![one; 20_000]);
            }
            Some(96) => {
                return match model_sdk::nn::Model::load("../../etc/passwd") {
                    Ok(_) => Ok(vec![]),
                    Err(e) => Err(Error::Failed(format!("refused as expected: {e}"))),
                };
            }
            Some(97) => {
                use model_sdk::bindings::wasi::nn::tensor::{Tensor, TensorType};
                let t = Tensor::new(&[1 << 30], TensorType::Fp32, &[0u8; 16]);
                black_box(t);
            }
            Some(99) => {
                use model_sdk::bindings::wasi::nn::tensor::{Tensor, TensorType};
                let buf = vec![0u8; 16 << 20];
                let mut hoard = Vec::new();
                for _ in 0..200 {
                    hoard.push(Tensor::new(&[4 << 20], TensorType::Fp32, &buf));
                }
                black_box(hoard);
            }
            Some(98) => {
                let start = std::time::Instant::now();
                while start.elapsed() < std::time::Duration::from_millis(1500) {
                    black_box(start);
                }
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
