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
//! | 0.90 | echoes the frame it got: a rectangle over all of it (attribute `frame` = `WxH`), a mask with a checkerboard bitmap over its centre quarter, a point at its last pixel and a one-element skeleton at its centre |
//! | other | returns one `ok` rectangle over the frame |
//!
//! With config `hang_in_init: true`, `init` never returns; with `describe: panic` or
//! `describe: hang`, `describe` traps or never returns. With config `input_size: WxH`,
//! `init` declares that input size (so the host may hand it reduced JPEG frames).

use std::hint::black_box;

model_sdk::world!("detector-model", "../../../wit");

use cvat::model::types::{
    Attribute, Detection, Element, Error, Frame, InstanceConfig, Mask, ModelInfo, ShapeType,
};

struct Hostile;

#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let buf = black_box([n; 64]);
    buf[0] + recurse(black_box(n + 1))
}

impl exports::cvat::model::detector::Guest for Hostile {
    fn describe(config: InstanceConfig) -> ModelInfo {
        match config
            .config
            .iter()
            .find(|e| e.key == "describe")
            .map(|e| e.value.as_str())
        {
            Some("panic") => panic!("hostile: asked to panic in describe"),
            Some("hang") => {
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            _ => {}
        }
        ModelInfo {
            labels: vec![],
            description: "misbehaves on request".into(),
            needs: vec![],
            input_size: None,
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
        let input_size = config
            .config
            .iter()
            .find(|e| e.key == "input_size")
            .and_then(|e| e.value.split_once('x'))
            .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)));
        Ok(ModelInfo {
            labels: vec![],
            description: "misbehaves on request".into(),
            needs: vec![],
            input_size,
        })
    }

    fn detect(frame: &Frame, threshold: Option<f32>) -> Result<Vec<Detection>, Error> {
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
            Some(90) => return Ok(echo(frame)),
            _ => {}
        }
        Ok(vec![Detection {
            label: "ok".into(),
            confidence: 1.0,
            shape: ShapeType::Rectangle,
            points: vec![0.0, 0.0, frame.width() as f32, frame.height() as f32],
            mask: None,
            rotation: None,
            attributes: vec![],
            elements: vec![],
        }])
    }
}

/// Shapes that describe the frame `detect` received, for the frame-scaling tests.
fn echo(frame: &Frame) -> Vec<Detection> {
    let (w, h) = (frame.width(), frame.height());
    let shape = |shape, points: Vec<f32>| Detection {
        label: "echo".into(),
        confidence: 1.0,
        shape,
        points,
        mask: None,
        rotation: None,
        attributes: vec![],
        elements: vec![],
    };
    let mut rect = shape(ShapeType::Rectangle, vec![0.0, 0.0, w as f32, h as f32]);
    rect.attributes.push(Attribute {
        name: "frame".into(),
        value: format!("{w}x{h}"),
    });
    let (x1, y1, x2, y2) = (w / 4, h / 4, w / 2, h / 2);
    let mut mask = shape(ShapeType::Mask, vec![]);
    mask.mask = Some(Mask {
        x1,
        y1,
        x2,
        y2,
        bitmap: (y1..=y2)
            .flat_map(|y| (x1..=x2).map(move |x| ((x + y) % 2) as u8))
            .collect(),
    });
    let point = shape(ShapeType::Points, vec![(w - 1) as f32, (h - 1) as f32]);
    let mut skeleton = shape(ShapeType::Skeleton, vec![]);
    skeleton.elements.push(Element {
        label: "centre".into(),
        x: w as f32 / 2.0,
        y: h as f32 / 2.0,
        outside: false,
    });
    vec![rect, mask, point, skeleton]
}

export!(Hostile);
