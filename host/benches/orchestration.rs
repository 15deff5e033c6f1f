//! Orchestration figures, measured on the real binary:
//!   - start-up of `host up` with 20 instances configured (nothing loaded): process start
//!     to `/readyz` = 200;
//!   - first-request latency with an empty compile cache vs a warm one;
//!   - RSS before the first load, loaded, and after the idle unload.
//!
//! Run: `scripts/setup.sh && cargo bench -p host --bench orchestration`.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::free_port;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(root: &Path, gateway: u16) -> (Running, Duration) {
    let repo = common::repo();
    let started = Instant::now();
    let running = Running(
        Command::new(env!("CARGO_BIN_EXE_host"))
            .arg("--root")
            .arg(root)
            .arg("up")
            .env(
                "ORT_DYLIB_PATH",
                repo.join(".deps/onnxruntime/libonnxruntime.so"),
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    loop {
        if let Ok(r) = ureq::get(&format!("http://127.0.0.1:{gateway}/readyz")).call() {
            if r.status() == 200 {
                return (running, started.elapsed());
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "host did not start"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn rss(gateway: u16) -> f64 {
    let v: serde_json::Value = ureq::get(&format!("http://127.0.0.1:{gateway}/api/status"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    v["rss_bytes"].as_u64().unwrap() as f64 / (1 << 20) as f64
}

fn main() {
    let repo = common::repo();
    let root = repo
        .join("target/bench-roots")
        .join(format!("orch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("config")).unwrap();
    std::fs::create_dir_all(root.join("components")).unwrap();
    for c in ["yolo", "blazeface"] {
        std::os::unix::fs::symlink(
            repo.join("components").join(c),
            root.join("components").join(c),
        )
        .unwrap();
    }
    let gateway = free_port();
    let mut yaml = format!("settings:\n  bind: 127.0.0.1\n  gateway_port: {gateway}\n  models_root: {}\n  idle_timeout: 2s\n  ort_threads: 2\nmodels:\n", repo.display());
    let mut ports = Vec::new();
    for i in 0..20 {
        let port = free_port();
        ports.push(port);
        let (imp, weights) = if i == 0 {
            ("blazeface", "models/face_detection_short_range.onnx")
        } else {
            ("yolo", "tests/fixtures/yolo_v8_test.onnx")
        };
        yaml.push_str(&format!("  m{i:02}:\n    implementation: {imp}\n    port: {port}\n    config: {{weights: {weights}}}\n"));
    }
    std::fs::write(root.join("config/models.yaml"), yaml).unwrap();
    let jpeg =
        std::fs::read(repo.join("tests/fixtures/frame_1080p.jpg")).expect("run scripts/setup.sh");
    let body = serde_json::json!({"image": base64::engine::general_purpose::STANDARD.encode(jpeg)})
        .to_string();
    let request = |port: u16| {
        let t = Instant::now();
        let r = ureq::post(&format!("http://127.0.0.1:{port}/"))
            .send_string(&body)
            .unwrap();
        assert_eq!(r.status(), 200);
        t.elapsed()
    };

    let mut startups = Vec::new();
    for _ in 0..5 {
        let (h, t) = start(&root, gateway);
        startups.push(t);
        drop(h);
    }
    startups.sort();
    println!(
        "start-up, 20 instances, nothing loaded: median {:.0} ms (min {:.0}, max {:.0})",
        startups[2].as_secs_f64() * 1e3,
        startups[0].as_secs_f64() * 1e3,
        startups[4].as_secs_f64() * 1e3
    );

    // First request with an empty compile cache, then after a restart with a warm one.
    let _ = std::fs::remove_dir_all(root.join(".state/cache"));
    let (h, _) = start(&root, gateway);
    let before = rss(gateway);
    let cold = request(ports[0]);
    let loaded = rss(gateway);
    let steady: Vec<Duration> = (0..10).map(|_| request(ports[0])).collect();
    // Wait for the idle unload (idle_timeout 2 s).
    std::thread::sleep(Duration::from_secs(4));
    let after = rss(gateway);
    drop(h);
    let (h, _) = start(&root, gateway);
    let warm = request(ports[0]);
    drop(h);
    let mut steady = steady;
    steady.sort();
    println!("first request (BlazeFace, 1080p JPEG): compile cache empty {:.0} ms, cache warm {:.0} ms; steady state median {:.1} ms",
        cold.as_secs_f64() * 1e3, warm.as_secs_f64() * 1e3, steady[5].as_secs_f64() * 1e3);
    println!("RSS: before first load {before:.1} MiB, loaded {loaded:.1} MiB, after idle unload {after:.1} MiB");
    let _ = std::fs::remove_dir_all(&root);
}
