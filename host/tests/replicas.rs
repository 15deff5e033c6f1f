//! `replicas: N`: an instance serves N requests side by side (each replica a component
//! instance of its own), sharing one session per model file; queue, status and unload stay
//! per instance.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// Whether a fast request finishes while a slow one (1.5 s in the component) still runs.
/// The fast one is sent once the slow one is admitted (the in-flight gauge), so a loaded
/// machine cannot reorder them. Serialized, the fast one is answered the moment the slow one
/// is, so the two threads may note their times in either order: overlapping means the fast
/// one finished clearly (half a second) earlier, which a queued call cannot.
fn overlaps(host: &Host, name: &str, port: u16) -> bool {
    let img = frame_png(16, 16, &[]);
    let slow_body = json!({"image": img, "threshold": 0.98});
    let slow = std::thread::spawn(move || {
        let (s, _) = post(port, &slow_body);
        (s, Instant::now())
    });
    let gauge = format!("host_instance_in_flight{{instance=\"{name}\"}} 1");
    wait_until(
        "the slow request is in flight",
        Duration::from_secs(30),
        || host.metrics().contains(&gauge),
    );
    std::thread::sleep(Duration::from_millis(100));
    let (s, _) = post(port, &json!({"image": img, "threshold": 0.5}));
    let fast_done = Instant::now();
    let (slow_status, slow_done) = slow.join().unwrap();
    assert_eq!((s, slow_status), (200, 200));
    fast_done + Duration::from_millis(500) < slow_done
}

#[test]
fn replicas_serve_side_by_side_and_share_the_model_session() {
    let (two, one, face) = (free_port(), free_port(), free_port());
    let host = Host::start(
        &[],
        &[
            inst("two", "hostile", two, &[], &["replicas: 2"]),
            inst("one", "hostile", one, &[], &[]),
            inst(
                "face",
                "blazeface",
                face,
                &["weights: models/face_detection_short_range.onnx"],
                &["replicas: 2"],
            ),
        ],
    );
    assert!(
        overlaps(&host, "two", two),
        "two replicas: the fast request should not wait"
    );
    assert!(
        !overlaps(&host, "one", one),
        "one replica: calls are serialized"
    );

    // Many requests at once: both replicas load, the model file is loaded once.
    let photo = json!({"image": b64_file(&need("tests/fixtures/astronaut.jpg"))});
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let body = photo.clone();
            std::thread::spawn(move || post(face, &body))
        })
        .collect();
    for t in threads {
        let (s, v) = t.join().unwrap();
        assert_eq!(s, 200, "{v}");
        assert_eq!(boxes(&v).len(), 1, "{v}");
    }
    let metrics = host.metrics();
    assert!(
        metrics.contains("host_loads_total{instance=\"face\"} 2"),
        "{metrics}"
    );
    let log = host.log();
    let graph_loads = log
        .lines()
        .filter(|l| l.contains("graph loaded") && l.contains("face_detection_short_range"))
        .count();
    assert_eq!(graph_loads, 1, "one session for both replicas:\n{log}");
    let st = host.instance_status("face");
    assert_eq!(st["requests"], 8);
    assert_eq!(st["state"], "ready");
    assert!(st["wasm_memory_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn replicas_are_checked_and_default_by_device() {
    let spec = |extra: &str| {
        let dir = std::env::temp_dir().join(format!("replicas-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("components/c")).unwrap();
        std::fs::write(dir.join("components/c/component.wasm"), b"").unwrap();
        let yaml = format!("models:\n  a:\n    implementation: c\n    port: 5001\n{extra}");
        host::config::ModelsFile::parse(&yaml, &dir).unwrap()
    };
    assert_eq!(spec("").instances[0].replicas, 1);
    assert_eq!(spec("    device: cuda:0\n").instances[0].replicas, 2);
    assert_eq!(spec("    replicas: 4\n").instances[0].replicas, 4);
    let f = spec("    replicas: 0\n");
    assert!(
        f.broken[0].error.contains("replicas: 0: expected 1 to 16"),
        "{}",
        f.broken[0].error
    );
}
