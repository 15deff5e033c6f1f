//! Run-time orchestration: lazy single-flight load, idle unload giving memory back, bounded
//! queues, reload on changed files, one instance's broken port not stopping the others.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const RED: [u8; 3] = [230, 0, 0];

#[test]
fn concurrent_first_requests_cause_exactly_one_load() {
    let port = free_port();
    let host = Host::start(
        &[],
        &[Inst {
            name: "face",
            implementation: "blazeface",
            port,
            config: &["weights: models/face_detection_short_range.onnx"],
            classes: None,
            extra: &[],
        }],
    );
    assert_eq!(
        host.instance_status("face")["state"],
        "unloaded",
        "nothing loads at start-up"
    );
    let body = json!({"image": b64_file(&need("tests/fixtures/astronaut.jpg"))});
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let body = body.clone();
            std::thread::spawn(move || post(port, &body))
        })
        .collect();
    for t in threads {
        let (s, v) = t.join().unwrap();
        assert_eq!(s, 200, "{v}");
        assert_eq!(boxes(&v).len(), 1);
    }
    assert_eq!(
        host.log().matches("instance loaded").count(),
        1,
        "{}",
        host.log()
    );
    assert_eq!(host.instance_status("face")["requests"].as_u64(), Some(6));
}

#[test]
fn idle_instances_unload_and_give_memory_back() {
    let port = free_port();
    let host = Host::start(
        &["idle_timeout: 1s"],
        &[Inst {
            name: "face",
            implementation: "blazeface",
            port,
            config: &["weights: models/face_detection_short_range.onnx"],
            classes: None,
            extra: &[],
        }],
    );
    let rss = |h: &Host| h.status()["rss_bytes"].as_u64().unwrap() as f64 / (1 << 20) as f64;
    let before = rss(&host);
    let body = json!({"image": b64_file(&need("tests/fixtures/frame_1080p.jpg"))});
    let mut figures = Vec::new();
    for cycle in 1..=3 {
        for _ in 0..3 {
            assert_eq!(post(port, &body).0, 200);
        }
        let loaded = rss(&host);
        assert_eq!(host.instance_status("face")["state"], "ready");
        wait_until("idle unload", Duration::from_secs(60), || {
            host.instance_status("face")["state"] == "unloaded"
        });
        let after = rss(&host);
        figures.push((loaded, after));
        println!("cycle {cycle}: RSS MiB before first load {before:.1}, loaded {loaded:.1}, after unload {after:.1}");
        assert!(
            after < loaded,
            "cycle {cycle}: unloading released nothing ({loaded:.1} -> {after:.1} MiB)"
        );
    }
    assert_eq!(
        host.log().matches("instance loaded").count(),
        3,
        "loads again on demand after each unload"
    );
    // The first load also maps ONNX Runtime's code and creates its process-wide environment
    // and thread pools; those stay. After that, a load/unload cycle must not accumulate.
    let (first, last) = (figures[0].1, figures[2].1);
    // An instance (store, session, buffers) is ~25 MiB here; two leaked would exceed this.
    assert!(
        last - first < 16.0,
        "RSS after unload grows across cycles: {first:.1} -> {last:.1} MiB"
    );
}

#[test]
fn a_saturated_instance_answers_503_with_retry_after() {
    let port = free_port();
    let host = Host::start(
        &["request_timeout: 2s"],
        &[Inst {
            name: "slow",
            implementation: "hostile",
            port,
            config: &[],
            classes: None,
            extra: &["max_queue: 1"],
        }],
    );
    let img = frame_png(32, 32, &[]);
    let busy = std::thread::spawn({
        let img = img.clone();
        move || post(port, &json!({"image": img, "threshold": 0.92}))
    });
    std::thread::sleep(Duration::from_millis(500));
    let decodes = || {
        let m = host.metrics();
        let key = "host_request_duration_seconds_count{instance=\"slow\",stage=\"decode\"} ";
        m.lines()
            .find_map(|l| l.strip_prefix(key))
            .map_or(0, |v| v.trim().parse::<u64>().unwrap())
    };
    let decoded_before = decodes();
    // A 12 Mpx frame: refused before it is decoded, so the answer costs nothing.
    let big = frame_png(4000, 3000, &[]);
    let resp = ureq::post(&format!("http://127.0.0.1:{port}/"))
        .send_string(&json!({"image": big}).to_string());
    let Err(ureq::Error::Status(503, r)) = resp else {
        panic!("expected 503 while saturated")
    };
    assert_eq!(decodes(), decoded_before, "the refused frame was decoded");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.into_json::<serde_json::Value>().unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("busy"));
    assert_eq!(
        busy.join().unwrap().0,
        500,
        "the looping request hits its deadline"
    );
    assert_eq!(post(port, &json!({"image": img})).0, 200, "free again");
    drop(host);
}

#[test]
fn changed_weights_reload_on_the_next_request() {
    let port = free_port();
    let dir = repo().join("target/test-models");
    std::fs::create_dir_all(&dir).unwrap();
    let weights = dir.join(format!("swap-{}.onnx", std::process::id()));
    std::fs::copy(need("tests/fixtures/yolo_v8_test.onnx"), &weights).unwrap();
    let rel = weights.strip_prefix(repo()).unwrap().display().to_string();
    let cfg = format!("weights: {rel}");
    let host = Host::start(
        &[],
        &[Inst {
            name: "yolo",
            implementation: "yolo",
            port,
            config: &[&cfg],
            classes: None,
            extra: &[],
        }],
    );
    let img = json!({"image": frame_png(640, 320, &[(100, 60, 299, 159, RED)])});
    // v8 graph has no names metadata: labels are class_N.
    assert_eq!(boxes(&post(port, &img).1)[0].0, "class_0");
    // Replace the weights with the v5 graph, which names its classes.
    std::thread::sleep(Duration::from_millis(20));
    let tmp = weights.with_extension("tmp");
    std::fs::copy(need("tests/fixtures/yolo_v5_test.onnx"), &tmp).unwrap();
    std::fs::rename(&tmp, &weights).unwrap();
    let (s, v) = post(port, &img);
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        boxes(&v),
        vec![("red".to_string(), vec![100.0, 60.0, 300.0, 160.0])]
    );
    assert!(host.log().contains("reloading"));
    std::fs::remove_file(weights).unwrap();
}

#[test]
fn a_taken_port_fails_only_its_instance() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = taken.local_addr().unwrap().port();
    let good = free_port();
    let host = Host::start(
        &[],
        &[
            Inst {
                name: "blocked",
                implementation: "yolo",
                port: busy_port,
                config: &["weights: tests/fixtures/yolo_v8_test.onnx"],
                classes: None,
                extra: &[],
            },
            Inst {
                name: "fine",
                implementation: "yolo",
                port: good,
                config: &["weights: tests/fixtures/yolo_v8_test.onnx"],
                classes: None,
                extra: &[],
            },
        ],
    );
    let s = host.instance_status("blocked");
    assert_eq!(s["state"], "error");
    assert!(
        s["error"].as_str().unwrap().contains("cannot listen"),
        "{s}"
    );
    assert_eq!(post(good, &json!({"image": frame_png(64, 64, &[])})).0, 200);
    drop(taken);
}

#[test]
fn a_cuda_instance_without_cuda_fails_loudly_instead_of_running_on_cpu() {
    let (gpu, cpu) = (free_port(), free_port());
    let host = Host::start(
        &[],
        &[
            Inst {
                name: "gpu",
                implementation: "yolo",
                port: gpu,
                config: &["weights: tests/fixtures/yolo_v8_test.onnx"],
                classes: None,
                extra: &["device: cuda:0"],
            },
            Inst {
                name: "cpu",
                implementation: "yolo",
                port: cpu,
                config: &["weights: tests/fixtures/yolo_v8_test.onnx", "device: cpu"],
                classes: None,
                extra: &[],
            },
        ],
    );
    assert_eq!(host.instance_status("gpu")["device"], "cuda:0");
    let img = json!({"image": frame_png(64, 64, &[])});
    let (s, v) = post(gpu, &img);
    assert_eq!(s, 500, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(e.contains("cuda:0 requested") && e.contains("CUDA"), "{e}");
    assert_eq!(host.instance_status("gpu")["state"], "error");
    assert_eq!(post(cpu, &img).0, 200);
    // A device that is not cpu or cuda:N is a config error naming the field.
    let f = host::config::ModelsFile::parse(
        "models:\n  x:\n    implementation: yolo\n    port: 7001\n    device: gpu\n",
        &host.dir,
    )
    .unwrap();
    assert!(
        f.broken[0].error.contains("device"),
        "{}",
        f.broken[0].error
    );
}
