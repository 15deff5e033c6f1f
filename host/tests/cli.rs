//! Operating the host like docker compose, through the real binary: up -d, status, logs,
//! down; stale pid files; metrics and readiness.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use serde_json::json;

fn host(root: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env(
            "ORT_DYLIB_PATH",
            need(".deps/onnxruntime/libonnxruntime.so"),
        )
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

#[test]
fn up_detached_status_request_logs_down() {
    let port = free_port();
    let (root, gateway) = make_root(
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
    // `down` when nothing runs.
    let o = host(&root, &["down"]);
    assert!(
        o.status.success() && text(&o).contains("not running"),
        "{}",
        text(&o)
    );

    let o = host(&root, &["up", "-d"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("running in the background"),
        "{}",
        text(&o)
    );
    let pid: i32 = std::fs::read_to_string(root.join(".state/host.pid"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(pid_alive(pid));
    // A second `up -d` refuses.
    let o = host(&root, &["up", "-d"]);
    assert!(
        !o.status.success() && text(&o).contains("already running"),
        "{}",
        text(&o)
    );

    let o = host(&root, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["instances"][0]["name"], "face");
    assert_eq!(v["instances"][0]["state"], "unloaded");

    let (s, _) = post(
        port,
        &json!({"image": b64_file(&need("tests/fixtures/astronaut.jpg"))}),
    );
    assert_eq!(s, 200);
    let o = host(&root, &["status"]);
    let table = text(&o);
    assert!(
        table.contains("face") && table.contains("ready") && table.contains("cpu"),
        "{table}"
    );

    // Metrics and readiness on the management port.
    let metrics = ureq::get(&format!("http://127.0.0.1:{gateway}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics.contains("host_requests_total{instance=\"face\",outcome=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("host_loads_total{instance=\"face\"} 1"));
    assert!(metrics
        .contains("host_request_duration_seconds_count{instance=\"face\",stage=\"inference\"} 1"));
    assert!(metrics.contains("host_instance_state{instance=\"face\",state=\"ready\"} 1"));
    let wasm_mem: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("host_instance_wasm_memory_bytes{instance=\"face\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        wasm_mem > 1 << 20,
        "a loaded instance holds linear memory: {wasm_mem}"
    );
    let ready = ureq::get(&format!("http://127.0.0.1:{gateway}/readyz"))
        .call()
        .unwrap();
    assert_eq!(ready.status(), 200);

    // Logs: the request is there, and the instance filter works.
    let o = host(&root, &["logs", "face"]);
    let log = text(&o);
    assert!(
        log.contains("request") && log.contains("status=200"),
        "{log}"
    );
    assert!(log.lines().all(|l| l.contains("instance=face")), "{log}");
    assert!(!text(&host(&root, &["logs"])).is_empty());

    let o = host(&root, &["down"]);
    assert!(
        o.status.success() && text(&o).contains("stopped"),
        "{}",
        text(&o)
    );
    assert!(!pid_alive(pid), "the process is gone");
    assert!(!root.join(".state/host.pid").exists());
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("instance port is free");
    std::net::TcpListener::bind(("127.0.0.1", gateway)).expect("gateway port is free");
    let o = host(&root, &["down"]);
    assert!(text(&o).contains("not running"));
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_stale_pid_file_never_kills_another_process() {
    let (root, _) = make_root(&[], &[]);
    std::fs::create_dir_all(root.join(".state")).unwrap();
    // A live process (this test) with a start time that is not its own: a reused pid.
    let me = std::process::id();
    std::fs::write(root.join(".state/host.pid"), format!("{me} 12345\n")).unwrap();
    let o = host(&root, &["down"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("stale"), "{}", text(&o));
    assert!(!root.join(".state/host.pid").exists());
    // (This test process is evidently still alive.)
    std::thread::sleep(Duration::from_millis(10));
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn json_logs_are_one_object_per_line() {
    let port = free_port();
    let (root, _) = make_root(
        &[],
        &[Inst {
            name: "y",
            implementation: "yolo",
            port,
            config: &["weights: tests/fixtures/yolo_v8_test.onnx"],
            classes: None,
            extra: &[],
        }],
    );
    let o = host(&root, &["up", "-d", "--log-format", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(post(port, &json!({"image": frame_png(64, 64, &[])})).0, 200);
    let o = host(&root, &["logs", "y"]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "request" && l["fields"]["status"] == 200),
        "{lines:?}"
    );
    assert!(host(&root, &["down"]).status.success());
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn probe_times_a_model_on_each_backend_and_refuses_missing_cuda() {
    let model = need("tests/fixtures/yolo_v5_test.onnx");
    let model = model.to_str().unwrap();
    let mut sums = Vec::new();
    for backend in ["onnxruntime", "openvino"] {
        let o = host(
            &repo(),
            &["probe", model, "--backend", backend, "--runs", "5"],
        );
        let t = text(&o);
        assert!(o.status.success(), "{t}");
        assert!(t.contains(&format!("on {backend} cpu")), "{t}");
        assert!(
            t.contains("input  images") && t.contains("[1, 3, 64, 64]"),
            "{t}"
        );
        assert!(t.contains("5 runs: p50 "), "{t}");
        let sum: f64 = t
            .rsplit("output sum ")
            .next()
            .and_then(|rest| rest.split(',').next())
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(t.contains("computed at "), "{t}");
        sums.push(sum);
    }
    // Same graph, same input, two backends: the same outputs.
    assert!(
        (sums[0] - sums[1]).abs() <= 1e-4 * sums[0].abs().max(1.0),
        "{sums:?}"
    );
    let o = host(&repo(), &["probe", model, "--device", "cuda:0"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("no CUDA execution provider"),
        "{}",
        text(&o)
    );
}

#[test]
fn up_detached_with_its_gateway_port_taken_prints_the_reason_not_a_backtrace() {
    let (root, gateway) = make_root(
        &[],
        &[inst(
            "face",
            "blazeface",
            free_port(),
            &["weights: models/face_detection_short_range.onnx"],
            &[],
        )],
    );
    // A log from an earlier run must not be mistaken for this one's.
    std::fs::create_dir_all(root.join(".state")).unwrap();
    std::fs::write(root.join(".state/host.log"), "error: an old failure\n").unwrap();
    let _taken = std::net::TcpListener::bind(("127.0.0.1", gateway)).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_host"))
        .arg("--root")
        .arg(&root)
        .args(["up", "-d"])
        .env(
            "ORT_DYLIB_PATH",
            need(".deps/onnxruntime/libonnxruntime.so"),
        )
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let t = text(&o);
    let pid_file_left = root.join(".state/host.pid").exists();
    std::fs::remove_dir_all(&root).unwrap();
    assert!(!o.status.success(), "{t}");
    assert!(!pid_file_left);
    assert!(
        t.contains(&format!("binding the gateway port 127.0.0.1:{gateway}"))
            && t.contains("Address already in use"),
        "the reason is missing: {t}"
    );
    assert!(!t.to_lowercase().contains("backtrace"), "{t}");
    assert!(!t.contains("an old failure"), "{t}");
}

#[test]
fn up_detached_restarts_a_killed_serving_process_and_down_stops_both() {
    let port = free_port();
    let (root, gateway) = make_root(
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
    let o = host(&root, &["up", "-d"]);
    assert!(o.status.success(), "{}", text(&o));
    let status = || -> serde_json::Value {
        serde_json::from_slice(&host(&root, &["status", "--json"]).stdout).unwrap()
    };
    let photo = json!({"image": b64_file(&need("tests/fixtures/astronaut.jpg"))});
    assert_eq!(post(port, &photo).0, 200);
    let first = status()["pid"].as_u64().unwrap() as i32;
    let supervisor = status()["supervisor"]["supervisor_pid"].as_u64().unwrap() as i32;
    assert_ne!(first, supervisor);
    assert_eq!(status()["supervisor"]["restarts"], 0);

    // The kernel's kind of death: SIGKILL. A correct answer comes back within seconds.
    unsafe { libc::kill(first, libc::SIGKILL) };
    let killed = std::time::Instant::now();
    let mut answered = None;
    while killed.elapsed() < Duration::from_secs(10) {
        let ok = ureq::post(&format!("http://127.0.0.1:{port}/"))
            .timeout(Duration::from_secs(5))
            .send_json(photo.clone())
            .ok()
            .and_then(|r| r.into_json::<serde_json::Value>().ok());
        if let Some(v) = ok {
            answered = Some(v);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let v = answered.expect("no answer within 10 s of the kill");
    assert_eq!(v[0]["label"], "face", "{v}");
    eprintln!("answered again {:?} after the kill", killed.elapsed());
    assert!(killed.elapsed() < Duration::from_secs(5));
    let s = status();
    assert_ne!(s["pid"].as_u64().unwrap() as i32, first);
    assert_eq!(s["supervisor"]["restarts"], 1);
    let reason = s["supervisor"]["last_exit"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("killed by signal 9 (SIGKILL)"),
        "{reason}"
    );
    let table = text(&host(&root, &["status"]));
    assert!(
        table.contains("restarts 1") && table.contains("SIGKILL"),
        "{table}"
    );
    assert!(text(&host(&root, &["logs"])).contains("supervisor: the serving process ended"));

    let second = s["pid"].as_u64().unwrap() as i32;
    let o = host(&root, &["down"]);
    assert!(
        o.status.success() && text(&o).contains("stopped"),
        "{}",
        text(&o)
    );
    assert!(
        !pid_alive(supervisor) && !pid_alive(second),
        "both are gone"
    );
    assert!(!root.join(".state/supervisor.json").exists());
    std::net::TcpListener::bind(("127.0.0.1", gateway)).expect("gateway port is free");
    std::fs::remove_dir_all(root).unwrap();
}
