//! Hostile requests: random and mutated bodies for every kind. Every answer must be JSON
//! with a 2xx/4xx/5xx status, the connection must never drop, and the host must keep
//! serving. CI runs FUZZ_CASES (default 400); scripts/fuzz.sh runs 100,000.

mod common;

use base64::Engine as _;
use common::*;
use serde_json::{json, Map, Value};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

fn random_json(r: &mut Rng, depth: u32) -> Value {
    match r.below(if depth > 3 { 6 } else { 9 }) {
        0 => Value::Null,
        1 => json!(r.below(2) == 1),
        2 => json!(*r.pick(&[0.0, -1.0, 0.5, 1e308, -1e308, 1e-300, 3.0e10, 255.0, 65536.0])),
        3 => json!(r.next() as i64),
        4 => json!((0..r.below(12))
            .map(|_| char::from_u32(32 + r.below(0x2FF) as u32).unwrap_or('?'))
            .collect::<String>()),
        5 => json!(r.below(100_000) as f64 / 7.0 - 5000.0),
        6 | 7 => Value::Array((0..r.below(5)).map(|_| random_json(r, depth + 1)).collect()),
        _ => {
            let mut m = Map::new();
            for _ in 0..r.below(5) {
                let k = r.pick(&[
                    "image",
                    "threshold",
                    "pos_points",
                    "neg_points",
                    "obj_bbox",
                    "shapes",
                    "states",
                    "points",
                    "type",
                    "image0",
                    "boxes0",
                    "x",
                ]);
                m.insert(k.to_string(), random_json(r, depth + 1));
            }
            Value::Object(m)
        }
    }
}

/// Images good and bad: a real PNG or JPEG (the JPEG large enough for the detector's reduced
/// decode), a truncated or bit-flipped one, a decode bomb header, junk, empty.
fn image(r: &mut Rng, good: &str) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let good = if r.below(2) == 0 { good } else { jpeg() };
    match r.below(7) {
        0 | 1 => json!(good),
        2 => {
            let bytes = b64.decode(good).unwrap();
            json!(b64.encode(&bytes[..bytes.len() * r.below(100) as usize / 100]))
        }
        6 => {
            let mut bytes = b64.decode(good).unwrap();
            for _ in 0..1 + r.below(8) {
                let at = r.below(bytes.len() as u64) as usize;
                bytes[at] ^= 1 << r.below(8);
            }
            json!(b64.encode(bytes))
        }
        3 => {
            let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
            png.extend_from_slice(&(1u32 << 30).to_be_bytes());
            png.extend_from_slice(&(1u32 << 30).to_be_bytes());
            png.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
            json!(b64.encode(png))
        }
        4 => json!(""),
        _ => random_json(r, 2),
    }
}

/// A 640x480 JPEG, base64, made once.
fn jpeg() -> &'static str {
    static JPEG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    JPEG.get_or_init(|| {
        let mut out = Vec::new();
        texture(640, 480, 1)
            .write_to(
                &mut std::io::Cursor::new(&mut out),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        base64::engine::general_purpose::STANDARD.encode(out)
    })
}

fn valid(kind: &str, img: &str) -> Value {
    match kind {
        "detector" => json!({"image": img, "threshold": 0.5}),
        "tracker" => {
            json!({"image": img, "shapes": [{"type": "rectangle", "points": [1, 1, 6, 6]}], "states": []})
        }
        "interactor" => {
            json!({"image": img, "pos_points": [[3, 3]], "neg_points": [], "obj_bbox": []})
        }
        _ => {
            json!({"image0": img, "image1": img, "boxes0": [{"points": [0, 0, 4, 4]}], "boxes1": [{"points": [1, 1, 5, 5]}]})
        }
    }
}

fn body(r: &mut Rng, kind: &str, img: &str) -> Vec<u8> {
    match r.below(10) {
        0 => (0..r.below(200)).map(|_| r.next() as u8).collect(),
        1 => random_json(r, 0).to_string().into_bytes(),
        _ => {
            let mut v = valid(kind, img);
            let m = v.as_object_mut().unwrap();
            let keys: Vec<String> = m.keys().cloned().collect();
            for _ in 0..1 + r.below(3) {
                let k = r.pick(&keys).clone();
                match r.below(4) {
                    0 => {
                        m.remove(&k);
                    }
                    1 if k.starts_with("image") => {
                        m.insert(k, image(r, img));
                    }
                    _ => {
                        m.insert(k, random_json(r, 1));
                    }
                }
            }
            v.to_string().into_bytes()
        }
    }
}

#[test]
fn random_and_mutated_requests_always_get_a_json_answer() {
    let cases: u64 = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let mut host = Host::start(
        &["request_timeout: 5s"],
        &[
            Inst {
                name: "det",
                implementation: "yolo",
                port: ports[0],
                config: &["weights: tests/fixtures/yolo_v8_test.onnx"],
                classes: None,
                extra: &[],
            },
            Inst {
                name: "trk",
                implementation: "ncc-tracker",
                port: ports[1],
                config: &[],
                classes: None,
                extra: &[],
            },
            Inst {
                name: "sam",
                implementation: "sam",
                port: ports[2],
                config: &[
                    "encoder: tests/fixtures/sam_encoder_test.onnx",
                    "decoder: tests/fixtures/sam_decoder_test.onnx",
                ],
                classes: None,
                extra: &[],
            },
            Inst {
                name: "reid",
                implementation: "reid",
                port: ports[3],
                config: &["weights: tests/fixtures/reid_test.onnx"],
                classes: None,
                extra: &[],
            },
        ],
    );
    let kinds = ["detector", "tracker", "interactor", "reid"];
    let img = frame_png(8, 8, &[(2, 2, 5, 5, [200, 10, 10])]);
    let mut r = Rng(seed);
    let mut by_status = std::collections::BTreeMap::new();
    for case in 0..cases {
        let k = r.below(4) as usize;
        let b = body(&mut r, kinds[k], &img);
        let (status, v) = post_raw(ports[k], "/", &b);
        assert!(
            v.is_object() || v.is_array(),
            "case {case}: non-JSON answer {v}"
        );
        assert!(
            matches!(status, 200 | 400 | 413 | 500 | 503),
            "case {case}: status {status}: {v}"
        );
        if status >= 400 {
            assert!(
                v["error"].as_str().is_some_and(|e| !e.is_empty()),
                "case {case}: error body {v}"
            );
        }
        *by_status.entry(status).or_insert(0u64) += 1;
    }
    println!("{cases} cases (seed {seed}): answers by status {by_status:?}");
    assert!(
        by_status.get(&400).copied().unwrap_or(0) > cases / 4,
        "most cases are malformed: {by_status:?}"
    );
    for (k, port) in ports.iter().enumerate() {
        let (s, v) = post(*port, &valid(kinds[k], &img));
        assert_eq!(s, 200, "{} still serves: {v}", kinds[k]);
    }
    assert!(
        !host.wait_exit(std::time::Duration::from_millis(10)),
        "the host is still running"
    );
}
