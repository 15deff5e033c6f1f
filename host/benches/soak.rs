//! Load and soak on loopback: concurrent CVAT-shaped requests at four instances (face
//! detector, synthetic YOLO, tracker, SAM-shaped interactor) for a bounded time, with a 2 s
//! idle timeout so instances unload and reload during the run. Reports throughput, p50/p99
//! latency, errors (503 backpressure counted apart) and RSS over time.
//!
//! Run: `scripts/soak.sh [SECONDS] [CLIENTS]` (defaults 60 s, 6 clients).

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::free_port;
use serde_json::json;

fn main() {
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let clients: usize = std::env::var("SOAK_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let repo = common::repo();
    let root = repo
        .join("target/bench-roots")
        .join(format!("soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("config")).unwrap();
    std::fs::create_dir_all(root.join("components")).unwrap();
    for c in ["yolo", "blazeface", "ncc-tracker", "sam"] {
        std::os::unix::fs::symlink(
            repo.join("components").join(c),
            root.join("components").join(c),
        )
        .unwrap();
    }
    let gateway = free_port();
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let yaml = format!(
        "settings:\n  bind: 127.0.0.1\n  gateway_port: {gateway}\n  models_root: {}\n  idle_timeout: 2s\n  ort_threads: 1\nmodels:\n  face:\n    implementation: blazeface\n    port: {}\n    config: {{weights: models/face_detection_short_range.onnx}}\n  yolo:\n    implementation: yolo\n    port: {}\n    config: {{weights: tests/fixtures/yolo_v8_test.onnx}}\n    max_queue: 4\n  trk:\n    implementation: ncc-tracker\n    port: {}\n  sam:\n    implementation: sam\n    port: {}\n    config: {{encoder: tests/fixtures/sam_encoder_test.onnx, decoder: tests/fixtures/sam_decoder_test.onnx}}\n",
        repo.display(), ports[0], ports[1], ports[2], ports[3]
    );
    std::fs::write(root.join("config/models.yaml"), yaml).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_host"))
        .arg("--root")
        .arg(&root)
        .arg("up")
        .env(
            "ORT_DYLIB_PATH",
            repo.join(".deps/onnxruntime/libonnxruntime.so"),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while ureq::get(&format!("http://127.0.0.1:{gateway}/readyz"))
        .call()
        .is_err()
    {
        assert!(start.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let astro = b64.encode(
        std::fs::read(repo.join("tests/fixtures/astronaut.jpg")).expect("run scripts/setup.sh"),
    );
    let bodies = Arc::new(vec![
        json!({"image": astro}).to_string(),
        json!({"image": astro, "threshold": 0.3}).to_string(),
        json!({"image": astro, "shapes": [{"type": "rectangle", "points": [170, 70, 280, 180]}], "states": []}).to_string(),
        json!({"image": astro, "pos_points": [[220, 120]], "neg_points": [], "obj_bbox": []}).to_string(),
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::<(usize, u16, Duration)>::new()));
    let mut threads = Vec::new();
    for c in 0..clients {
        let (stop, samples, bodies, ports) =
            (stop.clone(), samples.clone(), bodies.clone(), ports.clone());
        threads.push(std::thread::spawn(move || {
            let mut seed = 0x1234_5678_9abc_def0u64 ^ ((c as u64 + 1) * 0x9e37_79b9);
            let mut next = move || {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed
            };
            while !stop.load(Ordering::Relaxed) {
                // Bursts, then pauses long enough for idle unloads to happen now and then.
                for _ in 0..(1 + next() % 20) {
                    let k = (next() % 4) as usize;
                    let t = Instant::now();
                    let status = match ureq::post(&format!("http://127.0.0.1:{}/", ports[k]))
                        .send_string(&bodies[k])
                    {
                        Ok(r) => r.status(),
                        Err(ureq::Error::Status(s, _)) => s,
                        Err(_) => 0,
                    };
                    samples.lock().unwrap().push((k, status, t.elapsed()));
                }
                std::thread::sleep(Duration::from_millis(next() % 6000));
            }
        }));
    }
    let mut rss = Vec::new();
    let run = Instant::now();
    while run.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(1));
        if let Ok(r) = ureq::get(&format!("http://127.0.0.1:{gateway}/api/status")).call() {
            let v: serde_json::Value = r.into_json().unwrap();
            rss.push(v["rss_bytes"].as_u64().unwrap_or(0) as f64 / (1 << 20) as f64);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let metrics = ureq::get(&format!("http://127.0.0.1:{gateway}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let count = |name: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let (loads, unloads) = (count("host_loads_total"), count("host_unloads_total"));
    let _ = child.kill();
    let _ = child.wait();
    let samples = samples.lock().unwrap();
    let elapsed = run.elapsed().as_secs_f64();
    let mut lat: Vec<Duration> = samples.iter().filter(|s| s.1 == 200).map(|s| s.2).collect();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(0.0)
    };
    let busy = samples.iter().filter(|s| s.1 == 503).count();
    let errors = samples.iter().filter(|s| s.1 != 200 && s.1 != 503).count();
    println!("soak: {seconds} s, {clients} clients, 4 instances, idle timeout 2 s");
    println!(
        "requests {} ({:.1}/s), ok {}, 503 backpressure {busy}, errors {errors}",
        samples.len(),
        samples.len() as f64 / elapsed,
        lat.len()
    );
    println!(
        "latency p50 {:.1} ms, p99 {:.1} ms; loads {loads}, idle unloads {unloads}",
        pct(0.5),
        pct(0.99)
    );
    let warm = rss.len() / 4;
    let after: &[f64] = &rss[warm..];
    println!(
        "RSS MiB: start {:.1}, after warm-up min {:.1} max {:.1}, end {:.1}",
        rss.first().copied().unwrap_or(0.0),
        after.iter().copied().fold(f64::MAX, f64::min),
        after.iter().copied().fold(0.0, f64::max),
        rss.last().copied().unwrap_or(0.0)
    );
    let _ = std::fs::remove_dir_all(&root);
    assert_eq!(errors, 0, "errors other than deliberate 503 backpressure");
}
