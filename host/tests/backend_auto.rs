//! `backend: auto`: the first load of a model file measures every backend (outputs compared
//! with ONNX Runtime's), picks the cheapest at the instance's requests per load, and keeps
//! the measurements, so a restarted host decides without measuring; status and /metrics
//! show the choice and its figures.

mod common;

use common::*;
use serde_json::{json, Value};

/// `p50 + load / n` for each usable trial of a status graph's choice; the cheapest backend.
fn cheapest(choice: &Value, n: f64) -> String {
    choice["measured"]["trials"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["error"].is_null() && t["max_rel_diff"].as_f64().unwrap() <= 1e-3)
        .map(|t| {
            let cost = t["p50_ms"].as_f64().unwrap() + t["load_ms"].as_f64().unwrap() / n;
            (cost, t["backend"].as_str().unwrap().to_string())
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap()
        .1
}

#[test]
fn auto_measures_once_per_machine_and_picks_the_cheapest_agreeing_backend() {
    let have_openvino = repo().join(".deps/openvino/libopenvino_c.so").is_file();
    let (once, often) = (free_port(), free_port());
    let face = ["weights: models/face_detection_short_range.onnx"];
    let (dir, gateway) = make_root(
        &["backend: auto"],
        &[
            // Unloaded after every request: the load time counts in full.
            inst("once", "blazeface", once, &face, &["requests_per_load: 1"]),
            // Long-lived: the run time decides.
            inst(
                "often",
                "blazeface",
                often,
                &face,
                &["requests_per_load: 100000"],
            ),
        ],
    );
    let photo = json!({"image": b64_file(&need("tests/fixtures/astronaut.jpg"))});

    let host = Host::start_in(dir, gateway);
    for port in [once, often] {
        let (s, v) = post(port, &photo);
        assert_eq!(s, 200, "{v}");
        assert_eq!(boxes(&v).len(), 1, "one face whatever the backend: {v}");
    }
    // The model was measured once, for both instances (same file, same threads).
    assert_eq!(
        host.log().matches("measuring every backend").count(),
        1,
        "{}",
        host.log()
    );
    let mut chosen = vec![];
    for (name, n) in [("once", 1.0), ("often", 100_000.0)] {
        let st = host.instance_status(name);
        assert_eq!(st["backend"], "auto");
        let g = &st["graphs"][0];
        assert_eq!(g["name"], "weights");
        let choice = &g["choice"];
        let trials = choice["measured"]["trials"].as_array().unwrap();
        assert_eq!(trials.len(), if have_openvino { 2 } else { 1 }, "{choice}");
        for t in trials {
            assert!(t["max_rel_diff"].as_f64().unwrap() <= 1e-3, "{t}");
        }
        assert_eq!(g["backend"], cheapest(choice, n), "{name}: {choice}");
        assert_eq!(choice["requests_per_load"].as_f64(), Some(n));
        assert!(choice["why"]
            .as_str()
            .unwrap()
            .contains("load / requests per load"));
        chosen.push(g["backend"].as_str().unwrap().to_string());
    }
    let metrics = host.metrics();
    assert!(
        metrics.contains(&format!(
            "host_graph_backend{{instance=\"often\",graph=\"weights\",backend=\"{}\",precision=",
            chosen[1]
        )),
        "{metrics}"
    );
    assert!(metrics.contains("host_graph_backend_p50_seconds{instance=\"once\",graph=\"weights\",backend=\"onnxruntime\"}"));
    let cached: Vec<_> = std::fs::read_dir(host.dir.join(".state/backends"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(cached.len(), 1, "one measurement file");
    let (dir, gateway) = host.stop_keeping_root();

    // A restarted host decides from the kept measurements, the same way.
    let host = Host::start_in(dir, gateway);
    for port in [once, often] {
        assert_eq!(post(port, &photo).0, 200);
    }
    assert!(
        !host.log().contains("measuring every backend"),
        "{}",
        host.log()
    );
    for (name, backend) in [("once", &chosen[0]), ("often", &chosen[1])] {
        let g = &host.instance_status(name)["graphs"][0];
        assert_eq!(g["choice"]["cached"], true);
        assert_eq!(&g["backend"], backend);
    }
}
