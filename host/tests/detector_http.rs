//! The detector slice end to end: real binary, real components, real ONNX Runtime, real
//! HTTP on loopback.

mod common;

use common::*;
use serde_json::json;

const RED: [u8; 3] = [230, 0, 0]; // score 0.902 in the synthetic model
const GREEN: [u8; 3] = [0, 102, 0]; // score 0.4

fn yolo(
    name: &'static str,
    port: u16,
    weights: &'static [&'static str],
    classes: Option<&'static [&'static str]>,
) -> Inst<'static> {
    Inst {
        name,
        implementation: "yolo",
        port,
        config: weights,
        classes,
        extra: &[],
    }
}

#[test]
fn synthetic_yolo_gives_exact_boxes_after_letterboxing() {
    let (v8, v5) = (free_port(), free_port());
    let _host = Host::start(
        &[],
        &[
            yolo(
                "yolo-v8",
                v8,
                &["weights: tests/fixtures/yolo_v8_test.onnx"],
                Some(&["red", "green"]),
            ),
            // No classes configured: names come from the graph's Ultralytics metadata.
            yolo(
                "yolo-v5",
                v5,
                &["weights: tests/fixtures/yolo_v5_test.onnx"],
                None,
            ),
        ],
    );
    // Non-square 640x320: scale 0.1, 16 px of padding above and below in the 64x64 input.
    let wide = frame_png(
        640,
        320,
        &[(100, 60, 299, 159, RED), (400, 200, 499, 279, GREEN)],
    );
    // Square 320x320: scale 0.2, no padding.
    let square = frame_png(320, 320, &[(100, 50, 199, 149, RED)]);
    for port in [v8, v5] {
        let (status, body) = post(port, &json!({"image": wide, "threshold": 0.3}));
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            boxes(&body),
            vec![
                ("red".into(), vec![100.0, 60.0, 300.0, 160.0]),
                ("green".into(), vec![400.0, 200.0, 500.0, 280.0])
            ],
            "port {port}: {body}"
        );
        let first = &body[0];
        assert_eq!(first["type"], "rectangle");
        assert_eq!(first["confidence"], "0.902");
        let (_, body) = post(port, &json!({"image": square}));
        assert_eq!(
            boxes(&body),
            vec![("red".into(), vec![100.0, 50.0, 200.0, 150.0])],
            "{body}"
        );
    }
}

#[test]
fn threshold_is_honoured() {
    let port = free_port();
    let host = Host::start(
        &[],
        &[yolo(
            "yolo",
            port,
            &[
                "weights: tests/fixtures/yolo_v8_test.onnx",
                "threshold: 0.95",
            ],
            Some(&["red", "green"]),
        )],
    );
    let img = frame_png(
        640,
        320,
        &[(100, 60, 299, 159, RED), (400, 200, 499, 279, GREEN)],
    );
    let labels = |t: Option<f64>| {
        let body = match t {
            Some(t) => json!({"image": img, "threshold": t}),
            None => json!({"image": img}),
        };
        let (status, v) = post(port, &body);
        assert_eq!(status, 200, "{v}");
        boxes(&v).into_iter().map(|(l, _)| l).collect::<Vec<_>>()
    };
    assert_eq!(
        labels(None),
        Vec::<String>::new(),
        "config default 0.95 applies without a threshold"
    );
    assert_eq!(labels(Some(0.5)), vec!["red"]);
    assert_eq!(labels(Some(0.3)), vec!["red", "green"]);
    assert_eq!(labels(Some(0.91)), Vec::<String>::new());
    drop(host);
}

#[test]
fn bad_input_gets_a_json_4xx_naming_the_field() {
    let port = free_port();
    let host = Host::start(
        &["max_body_mb: 1"],
        &[yolo(
            "yolo",
            port,
            &["weights: tests/fixtures/yolo_v8_test.onnx"],
            Some(&["red", "green"]),
        )],
    );
    let png = frame_png(64, 64, &[]);
    let truncated = {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&png)
            .unwrap();
        base64::engine::general_purpose::STANDARD.encode(&bytes[..bytes.len() / 2])
    };
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "invalid base64",
            json!({"image": "***"}).to_string().into_bytes(),
            400,
            "image",
        ),
        (
            "not an image",
            json!({"image": "aGVsbG8gd29ybGQ="})
                .to_string()
                .into_bytes(),
            400,
            "image",
        ),
        (
            "truncated image",
            json!({"image": truncated}).to_string().into_bytes(),
            400,
            "image",
        ),
        (
            "missing image",
            json!({"threshold": 0.5}).to_string().into_bytes(),
            400,
            "image",
        ),
        (
            "image not a string",
            json!({"image": 42}).to_string().into_bytes(),
            400,
            "image",
        ),
        (
            "threshold not a number",
            json!({"image": png, "threshold": "high"})
                .to_string()
                .into_bytes(),
            400,
            "threshold",
        ),
        (
            "threshold out of range",
            json!({"image": png, "threshold": 3})
                .to_string()
                .into_bytes(),
            400,
            "threshold",
        ),
        ("not JSON", b"image=abc".to_vec(), 400, "body"),
        ("JSON array", b"[1,2]".to_vec(), 400, "body"),
        (
            "not UTF-8",
            b"{\"image\": \"\xff\xfe\"}".to_vec(),
            400,
            "body",
        ),
    ];
    for (what, body, status, field) in cases {
        let (got, v) = post_raw(port, "/", &body);
        assert_eq!(got, status, "{what}: {v}");
        assert_eq!(v["field"], field, "{what}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: {v}"
        );
    }
    // Over the 1 MiB body limit. The host answers 413 without reading the rest, so send it
    // over a raw socket that tolerates the early close.
    let big = json!({"image": "A".repeat(2 << 20)}).to_string();
    let (got, v) = post_tolerating_early_answer(port, big.as_bytes());
    assert_eq!(got, 413, "{v}");
    assert!(v["error"].as_str().unwrap().contains("limit"), "{v}");
    // Unknown path and method: JSON too.
    let (got, v) = post_raw(port, "/nope", b"{}");
    assert_eq!((got, v["error"].is_string()), (404, true));
    // After all that, a good request still works.
    let (got, _) = post(port, &json!({"image": png}));
    assert_eq!(got, 200, "{}", host.log());
}

#[test]
fn face_detector_finds_the_astronaut() {
    let port = free_port();
    let host = Host::start(
        &[],
        &[Inst {
            name: "face",
            implementation: "blazeface",
            port,
            config: &["weights: models/face_detection_short_range.onnx"],
            classes: Some(&["face"]),
            extra: &[],
        }],
    );
    // /health answers without loading anything.
    let health: serde_json::Value = ureq::get(&format!("http://127.0.0.1:{port}/health"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(health["state"], "unloaded");
    assert_eq!(host.instance_status("face")["state"], "unloaded");
    for image in [
        "tests/fixtures/astronaut.png",
        "tests/fixtures/astronaut.jpg",
    ] {
        let (status, body) = post_raw(
            port,
            "/infer",
            json!({"image": b64_file(&need(image))})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(status, 200, "{body}");
        let found = boxes(&body);
        assert_eq!(found.len(), 1, "exactly one face in {image}: {body}");
        let (label, p) = &found[0];
        assert_eq!(label, "face");
        let near = |got: f64, want: f64| (got - want).abs() <= 6.0;
        assert!(
            near(p[0], 177.0) && near(p[1], 81.0) && near(p[2], 272.0) && near(p[3], 175.0),
            "face box {p:?} not near x 177-272, y 81-175"
        );
        let conf: f64 = body[0]["confidence"].as_str().unwrap().parse().unwrap();
        assert!(conf > 0.85, "{conf}");
    }
    let s = host.instance_status("face");
    assert_eq!(
        (
            s["state"].as_str(),
            s["kind"].as_str(),
            s["requests"].as_u64()
        ),
        (Some("ready"), Some("detector"), Some(2))
    );
}

#[test]
fn misbehaving_component_fails_only_its_own_request() {
    let (bad, good) = (free_port(), free_port());
    let host = Host::start(
        &["request_timeout: 2s", "memory_limit_mb: 64"],
        &[
            Inst {
                name: "hostile",
                implementation: "hostile",
                port: bad,
                config: &[],
                classes: None,
                extra: &[],
            },
            yolo(
                "yolo",
                good,
                &["weights: tests/fixtures/yolo_v8_test.onnx"],
                Some(&["red", "green"]),
            ),
        ],
    );
    let img = frame_png(64, 48, &[(10, 10, 20, 20, RED)]);
    let ok = |port: u16| {
        let (s, v) = post(port, &json!({"image": img}));
        assert_eq!(s, 200, "{v}\n{}", host.log());
        v
    };
    assert_eq!(boxes(&ok(bad))[0].0, "ok");
    for (threshold, expect) in [
        (0.91, "trapped"),
        (0.92, "deadline"),
        (0.93, "memory limit of 64 MiB"),
        (0.94, "trapped"),
    ] {
        // While the attack runs, the other instance answers.
        let other = std::thread::spawn({
            let img = img.clone();
            move || post(good, &json!({"image": img}))
        });
        let started = std::time::Instant::now();
        let (s, v) = post(bad, &json!({"image": img, "threshold": threshold}));
        assert_eq!(s, 500, "attack {threshold}: {v}");
        let err = v["error"].as_str().unwrap();
        assert!(err.contains(expect), "attack {threshold}: {err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "attack {threshold} took {:?}",
            started.elapsed()
        );
        assert_eq!(
            other.join().unwrap().0,
            200,
            "the other instance failed during attack {threshold}"
        );
        // The instance recovers: the next request loads a fresh one and succeeds.
        assert_eq!(boxes(&ok(bad))[0].0, "ok", "after attack {threshold}");
    }
    assert!(host.log().contains("dropping instance after trap"));
    let s = host.instance_status("hostile");
    assert_eq!(s["failures"].as_u64(), Some(4));
}

#[test]
fn status_command_reads_the_running_host() {
    let port = free_port();
    let host = Host::start(
        &[],
        &[yolo(
            "yolo",
            port,
            &["weights: tests/fixtures/yolo_v8_test.onnx"],
            Some(&["red", "green"]),
        )],
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_host"))
        .arg("--root")
        .arg(&host.dir)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let inst = &v["instances"][0];
    assert_eq!(
        (
            inst["name"].as_str(),
            inst["kind"].as_str(),
            inst["state"].as_str()
        ),
        (Some("yolo"), Some("detector"), Some("unloaded"))
    );
    assert_eq!(inst["port"].as_u64(), Some(port as u64));
    drop(host);
    // With the host gone, status says so and fails.
    let dir = std::env::temp_dir().join(format!("host-status-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("config")).unwrap();
    // Port 1: nothing listens there (a released free port could be reused by a parallel test).
    std::fs::write(
        dir.join("config/models.yaml"),
        "settings:\n  gateway_port: 1\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_host"))
        .arg("--root")
        .arg(&dir)
        .arg("status")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
    std::fs::remove_dir_all(dir).unwrap();
}
