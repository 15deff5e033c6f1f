//! What the host adds on top of ONNX Runtime, on a 1920x1080 JPEG.
//!
//! For each model it measures, in one run:
//!   (a) raw ONNX Runtime: the host's backend running a ready input tensor (as `host probe`);
//!   (b) the host's in-process path: base64 + JPEG decode (reduced for detectors that declare
//!       their input size) + component (letterbox, wasi-nn inference, decode, NMS) + JSON;
//!   (c) the same request over HTTP on loopback to a running host;
//! and prints medians, overheads (b-a, c-a) and ratios (b/a, c/a).
//!
//! Run: `scripts/setup.sh && cargo bench -p host --bench overhead`. Models: the face detector,
//! the synthetic YOLO test graph, and `models/yolo11n.onnx` when present
//! (`scripts/yolo-export.sh` makes a random-weight export).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use common::{free_port, measure, wait_for};
use host::config::ModelsFile;
use host::runtime::loaded::Loaded;
use host::runtime::Runtime;

struct Model {
    name: &'static str,
    implementation: &'static str,
    weights: &'static str,
    classes: &'static str,
}

const MODELS: &[Model] = &[
    Model {
        name: "blazeface",
        implementation: "blazeface",
        weights: "models/face_detection_short_range.onnx",
        classes: "[face]",
    },
    Model {
        name: "yolo-synthetic-64",
        implementation: "yolo",
        weights: "tests/fixtures/yolo_v8_test.onnx",
        classes: "[red, green]",
    },
    Model {
        name: "yolo11n-640",
        implementation: "yolo",
        weights: "models/yolo11n.onnx",
        classes: "",
    },
];

/// The raw floor: the host's own ONNX Runtime backend on a ready input tensor (`host probe`).
fn raw_ort(path: &Path, threads: usize) -> f64 {
    let options = host::nn::SessionOptions {
        intra_threads: threads,
        backend: host::nn::Backend::OnnxRuntime,
        device: host::nn::Device::Cpu,
        precision: Default::default(),
        requests_per_load: 1,
    };
    let report = host::probe::probe(path, options, &Default::default(), 300, |_| {}).unwrap();
    report.quantile(0.5)
}

fn main() {
    let root = common::repo();
    host::up::init_onnxruntime(&root, "bench").expect("run scripts/setup.sh first");
    let jpeg = std::fs::read(root.join("tests/fixtures/frame_1080p.jpg"))
        .expect("run scripts/setup.sh first");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&jpeg);
    let body = serde_json::json!({ "image": b64 }).to_string();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);

    // A config with every available model, served over HTTP by an in-process host.
    let dir = std::env::temp_dir().join(format!("host-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("config")).unwrap();
    let gateway = free_port();
    let mut yaml = format!(
        "settings:\n  bind: 127.0.0.1\n  gateway_port: {gateway}\n  models_root: {}\n  components_dir: {}\n  ort_threads: {threads}\nmodels:\n",
        root.display(),
        root.join("components").display()
    );
    let mut ports = Vec::new();
    for m in MODELS.iter().filter(|m| root.join(m.weights).is_file()) {
        let port = free_port();
        ports.push((m, port));
        let classes = if m.classes.is_empty() {
            String::new()
        } else {
            format!("    classes: {}\n", m.classes)
        };
        yaml.push_str(&format!(
            "  {}:\n    implementation: {}\n    port: {port}\n    config: {{weights: {}}}\n{classes}",
            m.name, m.implementation, m.weights
        ));
    }
    std::fs::write(dir.join("config/models.yaml"), &yaml).unwrap();
    let file = ModelsFile::parse(&yaml, &dir).unwrap();
    assert!(file.broken.is_empty(), "{:?}", file.broken);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server_root = dir.clone();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(host::up::run(
            &server_root,
            &server_root.join("config/models.yaml"),
            stop_rx,
        ))
        .unwrap();
    });
    wait_for(gateway);

    let runtime = Arc::new(
        Runtime::new(
            dir.join(".state/cache/components"),
            host::up::libraries(&dir),
        )
        .unwrap(),
    );
    println!(
        "1920x1080 JPEG ({} KB), {threads} ORT threads, medians in ms",
        jpeg.len() / 1024
    );
    println!(
        "{:<20} {:>9} {:>11} {:>9} {:>9} {:>9} {:>7} {:>7}",
        "model", "(a) ORT", "(b) in-proc", "(c) HTTP", "b-a", "c-a", "b/a", "c/a"
    );
    for (m, port) in ports {
        let spec = file.instances.iter().find(|s| s.name == m.name).unwrap();
        let a = raw_ort(&root.join(m.weights), threads);
        let (mut loaded, _) =
            Loaded::load(&runtime, spec, &file.settings, Default::default()).unwrap();
        // As the server does: a detector that declared its input size gets a reduced decode.
        let fit = loaded.info.input_size;
        let b = measure(Duration::from_secs(4), || {
            let req = host::cvat::payload::DetectorRequest::parse(body.as_bytes()).unwrap();
            let (frame, reduced) =
                host::serve::frame::decode_fitted("image", &req.image, u64::MAX, fit).unwrap();
            let mut dets = loaded.detect(frame, req.threshold).unwrap();
            if let Some(r) = reduced {
                r.map_back(&mut dets);
            }
            std::hint::black_box(host::cvat::payload::detections_json(&dets).to_string());
        });
        let url = format!("http://127.0.0.1:{port}/");
        let c = measure(Duration::from_secs(4), || {
            let resp = ureq::post(&url)
                .set("content-type", "application/json")
                .send_string(&body)
                .unwrap();
            std::hint::black_box(resp.into_string().unwrap());
        });
        println!(
            "{:<20} {:>9.2} {:>11.2} {:>9.2} {:>9.2} {:>9.2} {:>7.2} {:>7.2}",
            m.name,
            a,
            b,
            c,
            b - a,
            c - a,
            b / a,
            c / a
        );
    }
    // What the frame decode costs alone.
    let decode = measure(Duration::from_secs(2), || {
        let req = host::cvat::payload::DetectorRequest::parse(body.as_bytes()).unwrap();
        std::hint::black_box(host::serve::frame::decode("image", &req.image, u64::MAX).unwrap());
    });
    println!("JSON + base64 + full JPEG decode of the frame: {decode:.2} ms");
    let reduced = measure(Duration::from_secs(2), || {
        let req = host::cvat::payload::DetectorRequest::parse(body.as_bytes()).unwrap();
        let fit = Some((128, 128));
        std::hint::black_box(
            host::serve::frame::decode_fitted("image", &req.image, u64::MAX, fit).unwrap(),
        );
    });
    println!("the same decoded for a 128x128 input (1/8 scale): {reduced:.2} ms");
    let _ = stop_tx.send(true);
    server.join().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}
