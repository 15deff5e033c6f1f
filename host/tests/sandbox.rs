//! The sandbox holds: hostile components fail their own request only, the host's memory
//! stays bounded, broken files and shutdowns are handled, paths and names cannot escape.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn rss_mib(host: &Host) -> f64 {
    host.status()["rss_bytes"].as_u64().unwrap() as f64 / (1 << 20) as f64
}

/// Send each `(threshold, expected error)` attack to the hostile instance on `bad` while an
/// ordinary request runs on `good`: the attack fails with a 500 naming the cause, the
/// bystander answers, and the hostile instance answers an ordinary request afterwards.
fn attacks_fail_alone(bad: u16, good: u16, attacks: &[(f64, &str)]) {
    let img = frame_png(64, 48, &[]);
    for &(threshold, expect) in attacks {
        let other = std::thread::spawn({
            let img = img.clone();
            move || post(good, &json!({"image": img}))
        });
        let (s, v) = post(bad, &json!({"image": img, "threshold": threshold}));
        println!("attack {threshold}: {v}");
        assert_eq!(s, 500, "attack {threshold}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains(expect),
            "attack {threshold}: {v}"
        );
        assert_eq!(
            other.join().unwrap().0,
            200,
            "bystander during attack {threshold}"
        );
        assert_eq!(
            post(bad, &json!({"image": img})).0,
            200,
            "recovers after attack {threshold}"
        );
    }
}

#[test]
fn more_attacks_fail_their_request_and_memory_stays_bounded() {
    let (bad, good) = (free_port(), free_port());
    let host = Host::start(
        // A generous deadline: each attack must hit its own limit, not the clock, even on a
        // loaded machine.
        &[
            "request_timeout: 10s",
            "memory_limit_mb: 256",
            "max_nn_memory_mb: 64",
        ],
        &[
            Inst {
                name: "hostile",
                implementation: "hostile",
                port: bad,
                config: &[],
                classes: None,
                extra: &[],
            },
            Inst {
                name: "yolo",
                implementation: "yolo",
                port: good,
                config: &["weights: tests/fixtures/yolo_v8_test.onnx"],
                classes: Some(&["red", "green"]),
                extra: &[],
            },
        ],
    );
    attacks_fail_alone(
        bad,
        good,
        &[
            (0.95, "over the limit of 10000"),
            (0.96, "no graph named `../../etc/passwd`"),
            (0.97, "exceeds the limit"),
            (0.93, "memory limit of 256 MiB"),
            (0.99, "tensors would hold more than 67108864 bytes"),
        ],
    );
    let rss = rss_mib(&host);
    println!("host RSS after the attacks: {rss:.0} MiB");
    assert!(rss < 700.0, "host RSS {rss:.0} MiB after the attacks");
}

#[test]
fn a_hostile_python_component_fails_only_its_own_request() {
    let (bad, good) = (free_port(), free_port());
    let host = Host::start(
        &["request_timeout: 10s", "memory_limit_mb: 256"],
        &[
            inst("hostile-py", "hostile-py", bad, &[], &[]),
            Inst {
                classes: Some(&["red", "green"]),
                ..inst(
                    "yolo",
                    "yolo",
                    good,
                    &["weights: tests/fixtures/yolo_v8_test.onnx"],
                    &[],
                )
            },
        ],
    );
    // A first ordinary request: CPython's instance is up (compiling 18 MB takes a while).
    let (s, v) = post(bad, &json!({"image": frame_png(64, 48, &[])}));
    assert_eq!(s, 200, "{v}");
    assert_eq!(boxes(&v)[0].0, "ok");
    attacks_fail_alone(
        bad,
        good,
        &[
            (0.92, "exceeded its deadline"),
            (0.93, "memory limit of 256 MiB"),
            (0.95, "over the limit of 10000"),
            // Sockets are linked so that CPython instantiates, and refuse every use.
            (0.96, "socket refused: PermissionError"),
            (0.97, "file refused: FileNotFoundError"),
        ],
    );
    let rss = rss_mib(&host);
    println!("host RSS after the Python attacks: {rss:.0} MiB");
    assert!(rss < 900.0, "host RSS {rss:.0} MiB after the attacks");
}

#[test]
fn an_init_that_never_returns_is_cut_off() {
    let (bad, good) = (free_port(), free_port());
    let host = Host::start(
        &["request_timeout: 1s"],
        &[
            Inst {
                name: "stuck",
                implementation: "hostile",
                port: bad,
                config: &["hang_in_init: true"],
                classes: None,
                extra: &[],
            },
            Inst {
                name: "fine",
                implementation: "hostile",
                port: good,
                config: &[],
                classes: None,
                extra: &[],
            },
        ],
    );
    let img = frame_png(8, 8, &[]);
    let started = Instant::now();
    let (s, v) = post(bad, &json!({"image": img}));
    assert_eq!(s, 500, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(e.contains("init") && e.contains("deadline"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "cut off, not left hanging"
    );
    assert_eq!(host.instance_status("stuck")["state"], "error");
    assert_eq!(post(good, &json!({"image": img})).0, 200);
}

#[test]
fn corrupted_or_deleted_weights_fail_clearly_and_recover() {
    let (port, other) = (free_port(), free_port());
    let dir = repo().join("target/test-models");
    std::fs::create_dir_all(&dir).unwrap();
    let weights = dir.join(format!("fault-{}.onnx", std::process::id()));
    std::fs::copy(need("tests/fixtures/yolo_v8_test.onnx"), &weights).unwrap();
    let cfg = format!(
        "weights: {}",
        weights.strip_prefix(repo()).unwrap().display()
    );
    let _host = Host::start(
        &[],
        &[
            Inst {
                name: "victim",
                implementation: "yolo",
                port,
                config: &[&cfg],
                classes: Some(&["red", "green"]),
                extra: &[],
            },
            Inst {
                name: "bystander",
                implementation: "yolo",
                port: other,
                config: &["weights: tests/fixtures/yolo_v8_test.onnx"],
                classes: Some(&["red", "green"]),
                extra: &[],
            },
        ],
    );
    let img = json!({"image": frame_png(64, 64, &[])});
    assert_eq!(post(port, &img).0, 200);
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&weights, b"this is not an onnx model").unwrap();
    let (s, v) = post(port, &img);
    assert_eq!(s, 500, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("failed to load"),
        "{v}"
    );
    assert_eq!(post(other, &img).0, 200);
    std::fs::remove_file(&weights).unwrap();
    let (s, v) = post(port, &img);
    assert_eq!(s, 500, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("fault-"),
        "names the file: {v}"
    );
    std::fs::copy(need("tests/fixtures/yolo_v8_test.onnx"), &weights).unwrap();
    assert_eq!(post(port, &img).0, 200, "recovers once the file is back");
    std::fs::remove_file(weights).unwrap();
}

#[test]
fn shutdown_finishes_the_request_in_flight() {
    let port = free_port();
    let mut host = Host::start(
        &[],
        &[Inst {
            name: "slow",
            implementation: "hostile",
            port,
            config: &[],
            classes: None,
            extra: &[],
        }],
    );
    let img = frame_png(8, 8, &[]);
    assert_eq!(post(port, &json!({"image": img})).0, 200, "loaded first");
    let inflight =
        std::thread::spawn(move || post(port, &json!({"image": img, "threshold": 0.98})));
    std::thread::sleep(Duration::from_millis(400));
    let started = Instant::now();
    host.terminate();
    let (s, v) = inflight.join().unwrap();
    assert_eq!(s, 200, "the in-flight request completes: {v}");
    assert!(host.wait_exit(Duration::from_secs(15)), "the host exits");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "it waited for the request"
    );
    assert!(host.log().contains("stopped"));
}

/// GET `/readyz`: its status code (0 when nothing answers).
fn readyz(gateway: u16) -> u16 {
    match ureq::get(&format!("http://127.0.0.1:{gateway}/readyz")).call() {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(_) => 0,
    }
}

#[test]
fn sigterm_turns_readyz_false_first_then_drains_within_the_grace_period() {
    let port = free_port();
    let mut host = Host::start(
        &[
            "drain_delay: 1s",
            "drain_timeout: 3s",
            "request_timeout: 30s",
        ],
        &[inst("slow", "hostile", port, &[], &[])],
    );
    let img = frame_png(8, 8, &[]);
    assert_eq!(post(port, &json!({"image": img})).0, 200, "loaded first");
    assert_eq!(readyz(host.gateway), 200);
    // A request that takes 1.5 s, then SIGTERM while it runs.
    let slow = std::thread::spawn({
        let img = img.clone();
        move || post(port, &json!({"image": img, "threshold": 0.98}))
    });
    std::thread::sleep(Duration::from_millis(200));
    // What an autoscaler reads: one request in flight.
    let metrics = host.metrics();
    assert!(
        metrics.contains("host_instance_in_flight{instance=\"slow\"} 1"),
        "{metrics}"
    );
    let started = Instant::now();
    host.terminate();
    // Not ready at once, while the ports still accept during drain_delay.
    wait_until("readyz answers 503", Duration::from_millis(500), || {
        readyz(host.gateway) == 503
    });
    assert_eq!(
        post(port, &json!({"image": img})).0,
        200,
        "still accepting during the delay"
    );
    let (s, v) = slow.join().unwrap();
    assert_eq!(s, 200, "the in-flight request completes: {v}");
    assert!(host.wait_exit(Duration::from_secs(10)), "the host exits");
    // After the delay, no new connections.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "drain_delay was kept"
    );
    assert!(host.log().contains("draining: /readyz answers 503"));

    // A request that would outlive the grace period does not hold the exit.
    let port = free_port();
    let mut host = Host::start(
        &["drain_timeout: 2s", "request_timeout: 60s"],
        &[inst("stuck", "hostile", port, &[], &[])],
    );
    assert_eq!(post(port, &json!({"image": img})).0, 200, "loaded first");
    // Sent and never read: the host must not wait for it past the grace period.
    let body = json!({"image": img, "threshold": 0.92}).to_string();
    let mut stuck = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(
        &mut stuck,
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    host.terminate();
    assert!(host.wait_exit(Duration::from_secs(10)), "the host exits");
    let took = started.elapsed();
    println!("exited {took:?} after SIGTERM with a request stuck in flight (drain_timeout 2s)");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(
        host.log().contains("the drain timeout ran out"),
        "{}",
        host.log()
    );
    assert!(host.log().contains("stuck (1 in flight)"), "{}", host.log());
}

#[test]
fn preloaded_instances_load_before_readyz_and_stay_loaded() {
    let (warm, cold, stuck) = (free_port(), free_port(), free_port());
    let weights = ["weights: tests/fixtures/yolo_v8_test.onnx"];
    let started = Instant::now();
    let host = Host::start(
        &["request_timeout: 2s", "idle_timeout: 1s"],
        &[
            inst("warm", "yolo", warm, &weights, &["preload: true"]),
            inst("cold", "yolo", cold, &weights, &[]),
            // Its init never returns: readiness waits for its deadline, then goes on.
            Inst {
                name: "stuck",
                implementation: "hostile",
                port: stuck,
                config: &["hang_in_init: true"],
                classes: None,
                extra: &["preload: true"],
            },
        ],
    );
    let ready_after = started.elapsed();
    println!("ready after {ready_after:?} (a preload hangs until its 2 s init deadline)");
    assert!(
        ready_after >= Duration::from_millis(1900),
        "{ready_after:?}"
    );
    assert_eq!(readyz(host.gateway), 200);
    assert_eq!(host.instance_status("warm")["state"], "ready");
    assert_eq!(host.instance_status("warm")["requests"], 0);
    assert_eq!(host.instance_status("cold")["state"], "unloaded");
    assert_eq!(host.instance_status("stuck")["state"], "error");
    // Both used, then idle: past the idle timeout one unloads, the preloaded one stays.
    let img = frame_png(32, 32, &[]);
    assert_eq!(post(cold, &json!({"image": img})).0, 200);
    assert_eq!(post(warm, &json!({"image": img})).0, 200);
    wait_until("cold unloads when idle", Duration::from_secs(10), || {
        host.instance_status("cold")["state"] == "unloaded"
    });
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(host.instance_status("warm")["state"], "ready");
    assert!(host.log().contains("preloaded"));
    assert!(host.log().contains("preload failed"));
}

#[test]
fn paths_and_names_cannot_escape() {
    let root = repo()
        .join("target/test-roots")
        .join(format!("paths-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("components")).unwrap();
    std::fs::create_dir_all(root.join("models")).unwrap();
    std::os::unix::fs::symlink(repo().join("components/yolo"), root.join("components/yolo"))
        .unwrap();
    let outside = std::env::temp_dir().join(format!("outside-{}.onnx", std::process::id()));
    std::fs::copy(need("tests/fixtures/yolo_v8_test.onnx"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("models/link.onnx")).unwrap();
    std::fs::copy(
        need("tests/fixtures/yolo_v8_test.onnx"),
        root.join("models/ok.onnx"),
    )
    .unwrap();
    let text = format!(
        "models:\n  dots:\n    implementation: yolo\n    port: 6101\n    config: {{weights: ../../etc/x.onnx}}\n  absolute:\n    implementation: yolo\n    port: 6102\n    config: {{weights: {}}}\n  symlink:\n    implementation: yolo\n    port: 6103\n    config: {{weights: models/link.onnx}}\n  \"x; rm -rf /\":\n    implementation: yolo\n    port: 6104\n  escape-impl:\n    implementation: ../yolo\n    port: 6105\n  fine:\n    implementation: yolo\n    port: 6106\n    config: {{weights: models/ok.onnx}}\n    description: \"evil\\nmetadata:\\n  name: hijacked\"\n",
        outside.display()
    );
    let file = host::config::ModelsFile::parse(&text, &root).unwrap();
    let err = |n: &str| {
        file.broken
            .iter()
            .find(|b| b.name == n)
            .map(|b| b.error.clone())
            .unwrap_or_default()
    };
    assert!(err("dots").contains("config.weights"), "{}", err("dots"));
    assert!(
        err("absolute").contains("outside the models root"),
        "{}",
        err("absolute")
    );
    assert!(
        err("symlink").contains("outside the models root"),
        "{}",
        err("symlink")
    );
    assert!(
        err("x; rm -rf /").contains("invalid instance name"),
        "{}",
        err("x; rm -rf /")
    );
    assert!(
        err("escape-impl").contains("implementation"),
        "{}",
        err("escape-impl")
    );
    assert_eq!(file.instances.len(), 1);
    // A hostile description cannot inject keys into the generated function.yaml.
    let spec = &file.instances[0];
    let f = host::cvat::nuclio::Function {
        spec,
        kind: host::runtime::kind::Kind::Detector,
        labels: vec![],
        description: spec.description.clone().unwrap(),
    };
    let yaml =
        host::cvat::nuclio::function_yaml(&f, &host::cvat::nuclio::Options::default()).unwrap();
    let v: serde_norway::Value = serde_norway::from_str(&yaml).unwrap();
    assert_eq!(v["metadata"]["name"].as_str(), Some("fine"));
    assert_eq!(
        v["spec"]["description"].as_str(),
        Some("evil\nmetadata:\n  name: hijacked")
    );
    std::fs::remove_dir_all(root).unwrap();
    std::fs::remove_file(outside).unwrap();
}
