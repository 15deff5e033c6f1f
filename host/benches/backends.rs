//! ONNX Runtime vs OpenVINO on this machine's CPU, through the host's own backends
//! (`host::nn::graph::load`, byte tensors in and out, as a component sees them).
//!
//! For each model file present it prints the median `run` time of each backend on the same
//! input, the ratio, the largest difference between their outputs and each backend's load
//! time (instances load lazily, so it is paid again after every idle unload); then, for the
//! detectors, the whole in-process request (JPEG decode + component + inference + JSON) on
//! a 1920x1080 frame with each backend. The default backend is the one these numbers favour.
//!
//! Run: `scripts/setup.sh && cargo bench -p host --bench backends`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::measure;
use host::config::ModelsFile;
use host::nn::tensor::{ElementType, HostTensor};
use host::nn::{graph, Backend, Device, Libraries, SessionOptions};
use host::runtime::loaded::Loaded;
use host::runtime::Runtime;

const MODELS: &[&str] = &[
    "models/face_detection_short_range.onnx",
    "models/selfie_segmentation.onnx",
    "models/pose_landmark_full.onnx",
    "models/yolov8n.onnx",
    "models/yolo11n.onnx",
];

/// Detectors run end to end: (instance implementation, weights, classes).
const DETECTORS: &[(&str, &str, &str)] = &[
    (
        "blazeface",
        "models/face_detection_short_range.onnx",
        "[face]",
    ),
    ("yolo", "models/yolov8n.onnx", ""),
];

fn options(backend: Backend, threads: usize) -> SessionOptions {
    SessionOptions {
        intra_threads: threads,
        backend,
        device: Device::Cpu,
        precision: Default::default(),
        requests_per_load: 1,
    }
}

fn floats(t: &HostTensor) -> Vec<f32> {
    t.data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn main() {
    let root = common::repo();
    host::up::init_onnxruntime(&root, "bench").expect("run scripts/setup.sh first");
    // A fresh OpenVINO model cache, so the first load of each model is a cold one.
    let cache = std::env::temp_dir().join(format!("host-bench-ov-cache-{}", std::process::id()));
    let libraries = Libraries {
        openvino_cache: Some(cache.clone()),
        ..host::up::libraries(&root)
    };
    assert!(
        libraries.openvino.is_some(),
        "OpenVINO not found: run scripts/setup.sh"
    );
    // Open the library once (as a running host does) so no row pays for it.
    let uncached = Libraries {
        openvino_cache: None,
        ..libraries.clone()
    };
    graph::load(
        &root.join(MODELS[0]),
        options(Backend::OpenVino, 1),
        &uncached,
    )
    .unwrap();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("{threads} threads per session, medians in ms");
    println!(
        "{:<40} {:>9} {:>9} {:>8} {:>10} {:>9} {:>9} {:>9}",
        "model (graph run)",
        "ORT",
        "OpenVINO",
        "ORT/OV",
        "max |diff|",
        "ORT load",
        "OV load",
        "OV cached"
    );
    for rel in MODELS.iter().filter(|m| root.join(m).is_file()) {
        compare_graph(&root.join(rel), rel, threads, &libraries);
    }

    let jpeg = std::fs::read(root.join("tests/fixtures/frame_1080p.jpg"))
        .expect("run scripts/setup.sh first");
    let body = serde_json::json!({
        "image": base64::engine::general_purpose::STANDARD.encode(&jpeg)
    })
    .to_string();
    let dir = std::env::temp_dir().join(format!("host-bench-backends-{}", std::process::id()));
    let runtime = Runtime::new(dir.join("cache"), libraries).unwrap();
    println!(
        "\n{:<40} {:>9} {:>9} {:>8}",
        "detector (1080p JPEG request, in-process)", "ORT", "OpenVINO", "ORT/OV"
    );
    for (implementation, weights, classes) in DETECTORS {
        if !root.join(weights).is_file() {
            continue;
        }
        let mut yaml = format!(
            "settings:\n  models_root: {}\n  components_dir: {}\n  ort_threads: {threads}\nmodels:\n",
            root.display(),
            root.join("components").display()
        );
        for (port, name, backend) in [(1, "ort", "onnxruntime"), (2, "ov", "openvino")] {
            yaml.push_str(&format!(
                "  {name}:\n    implementation: {implementation}\n    port: {port}\n    backend: {backend}\n    config: {{weights: {weights}}}\n"
            ));
            if !classes.is_empty() {
                yaml.push_str(&format!("    classes: {classes}\n"));
            }
        }
        let file = ModelsFile::parse(&yaml, &dir).unwrap();
        assert!(file.broken.is_empty(), "{:?}", file.broken);
        let times: Vec<f64> = file
            .instances
            .iter()
            .map(|spec| {
                let (mut loaded, _) =
                    Loaded::load(&runtime, spec, &file.settings, Default::default()).unwrap();
                measure(Duration::from_secs(4), || {
                    let req = host::cvat::payload::DetectorRequest::parse(body.as_bytes()).unwrap();
                    let frame = host::serve::frame::decode("image", &req.image, u64::MAX).unwrap();
                    let dets = loaded.detect(frame, req.threshold).unwrap();
                    std::hint::black_box(host::cvat::payload::detections_json(&dets).to_string());
                })
            })
            .collect();
        println!(
            "{:<40} {:>9.2} {:>9.2} {:>8.2}",
            format!("{implementation} ({weights})"),
            times[0],
            times[1],
            times[0] / times[1]
        );
    }
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(cache);
}

fn compare_graph(path: &Path, label: &str, threads: usize, libraries: &Libraries) {
    let load = |backend| {
        let started = Instant::now();
        let g = graph::load(path, options(backend, threads), libraries).unwrap();
        (g, started.elapsed().as_secs_f64() * 1e3)
    };
    // Load time matters: instances load lazily and unload when idle.
    let (ort, ort_load) = load(Backend::OnnxRuntime);
    let (ov, ov_load) = load(Backend::OpenVino);
    // Loaded again, as after an idle unload: the compiled model comes from the cache.
    let ov_cached = load(Backend::OpenVino).1;
    assert!(
        ort.signature()
            .inputs
            .iter()
            .all(|i| i.ty == Some(ElementType::F32)),
        "{label}: f32 inputs only"
    );
    let inputs = host::probe::inputs(ort.as_ref()).unwrap();
    let run = |g: &std::sync::Arc<dyn graph::Graph>| {
        measure(Duration::from_secs(3), || {
            std::hint::black_box(g.run(inputs.clone()).unwrap());
        })
    };
    let (a, b) = (run(&ort), run(&ov));
    let (oa, ob) = (
        ort.run(inputs.clone()).unwrap(),
        ov.run(inputs.clone()).unwrap(),
    );
    let diff = oa
        .iter()
        .zip(&ob)
        .filter(|(x, _)| x.1.ty == ElementType::F32)
        .flat_map(|(x, y)| {
            floats(&x.1)
                .into_iter()
                .zip(floats(&y.1))
                .map(|(p, q)| (p - q).abs())
                .collect::<Vec<_>>()
        })
        .fold(0f32, f32::max);
    println!(
        "{label:<40} {a:>9.2} {b:>9.2} {:>8.2} {diff:>10.2e} {ort_load:>9.0} {ov_load:>9.0} {ov_cached:>9.0}",
        a / b
    );
}
