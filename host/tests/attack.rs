//! Resource attacks on every kind: request shapes that drive a model's work (clicks, boxes,
//! shapes, states, frame sizes, many distinct frames). Each must get a JSON 4xx naming the
//! field and the bound, or a correct 200; inference past an instance's memory budget fails
//! that request only; the host stays alive and its RSS bounded.

mod common;

use common::*;
use serde_json::{json, Value};

fn rss_mib(host: &Host) -> f64 {
    host.status()["rss_bytes"].as_f64().unwrap() / (1u64 << 20) as f64
}

/// A frame of `w` x `h` cells of `cell` pixels, each a colour of its own (deterministic).
fn mosaic(w: u32, h: u32, cell: (u32, u32), seed: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w * cell.0, h * cell.1, |x, y| {
        let i = (y / cell.1) * w + x / cell.0 + seed + 1;
        let hash = i.wrapping_mul(2_654_435_761);
        image::Rgb([(hash >> 24) as u8, (hash >> 16) as u8, (hash >> 8) as u8])
    })
}

#[test]
fn interactor_clicks_are_bounded_and_inference_past_the_budget_fails_only_that_request() {
    let (bounded, budgeted) = (free_port(), free_port());
    let cfg: &[&str] = &[
        "encoder: tests/fixtures/sam_encoder_test.onnx",
        "decoder: tests/fixtures/sam_decoder_test.onnx",
    ];
    let host = Host::start(
        &[],
        &[
            inst("sam", "sam", bounded, cfg, &[]),
            // A small inference budget.
            inst("tight", "sam", budgeted, cfg, &["inference_memory_mb: 64"]),
        ],
    );
    let img = png_b64(&texture(64, 64, 1));
    let clicks =
        |n: usize, w: usize| -> Vec<[usize; 2]> { (0..n).map(|i| [i % w, i / w % w]).collect() };
    let started = std::time::Instant::now();
    let (s, v) = post(
        bounded,
        &json!({"image": img, "pos_points": clicks(20_000, 64), "neg_points": []}),
    );
    assert_eq!((s, v["field"].as_str()), (400, Some("pos_points")), "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("20000 clicks") && e.contains("settings.max_clicks"),
        "{e}"
    );
    assert!(started.elapsed().as_secs() < 5, "refused before any work");
    let (s, v) = post(
        bounded,
        &json!({"image": img, "pos_points": clicks(60, 64), "neg_points": clicks(40, 64)}),
    );
    assert_eq!(s, 200, "{v}");

    // 100 clicks on a 1024x1024 frame: the test decoder's [clicks, H, W] tensors are 400 MiB
    // each, over the 64 MiB budget. ONNX Runtime is refused the memory; the request fails
    // naming the budget; the instance serves the next request.
    let big = png_b64(&texture(1024, 1024, 2));
    let rss_before = rss_mib(&host);
    let (s, v) = post(
        budgeted,
        &json!({"image": big, "pos_points": clicks(100, 1024), "neg_points": []}),
    );
    assert_eq!(s, 507, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("budget of 64 MiB") && e.contains("inference_memory_mb"),
        "{e}"
    );
    assert!(
        rss_mib(&host) < rss_before + 256.0,
        "the refused run did not take the memory: {rss_before} -> {} MiB",
        rss_mib(&host)
    );
    let st = host.instance_status("tight");
    assert_eq!(st["inference_memory_limit_bytes"], 64u64 << 20);
    assert!(
        st["inference_memory_peak_bytes"].as_u64().unwrap() <= 64 << 20,
        "{st}"
    );
    assert!(host
        .metrics()
        .contains("host_budget_refusals_total{instance=\"tight\"} 1"));
    let (s, v) = post(
        budgeted,
        &json!({"image": img, "pos_points": [[10, 10]], "neg_points": []}),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["shapes"][0]["type"], "mask");
}

#[test]
fn many_distinct_frames_keep_the_interactors_memory_bounded() {
    let port = free_port();
    let host = Host::start(
        &[],
        &[inst(
            "sam",
            "sam",
            port,
            &[
                "encoder: tests/fixtures/sam_encoder_test.onnx",
                "decoder: tests/fixtures/sam_decoder_test.onnx",
            ],
            &[],
        )],
    );
    let ask = |seed: u32| {
        let img = png_b64(&texture(320, 240, seed));
        let (s, v) = post(
            port,
            &json!({"image": img, "pos_points": [[100, 100]], "neg_points": []}),
        );
        assert_eq!(s, 200, "{v}");
    };
    for seed in 0..10 {
        ask(seed);
    }
    let after_few = rss_mib(&host);
    for seed in 10..150 {
        ask(seed);
    }
    let after_many = rss_mib(&host);
    assert!(
        after_many < after_few + 40.0,
        "RSS grew from {after_few:.0} MiB after 10 frames to {after_many:.0} MiB after 150"
    );
    let st = host.instance_status("sam");
    // The embedding cache and the weights: what the sessions hold between requests.
    assert!(
        st["inference_memory_bytes"].as_u64().unwrap() < 1 << 20,
        "{st}"
    );
}

#[test]
fn reid_answers_a_crowded_frame_in_batches_and_bounds_the_boxes() {
    let port = free_port();
    // A 1 MiB tensor limit: 3000 crops in one tensor (4.6 MB) could not pass it; batches of
    // 32 (49 KB) do.
    let host = Host::start(
        &["max_tensor_mb: 1"],
        &[inst(
            "reid",
            "reid",
            port,
            &["weights: tests/fixtures/reid_batch_test.onnx"],
            &[],
        )],
    );
    let (cols, rows, cell) = (60u32, 50u32, (8u32, 16u32));
    let f0 = mosaic(cols, rows, cell, 0);
    // The second frame: the same mosaic moved 3 pixels right and 2 down.
    let mut f1 = image::RgbImage::from_pixel(f0.width(), f0.height(), image::Rgb([0, 0, 0]));
    image::imageops::replace(&mut f1, &f0, 3, 2);
    let boxes = |dx: u32, dy: u32| -> Value {
        let all: Vec<Value> = (0..rows)
            .flat_map(|r| (0..cols).map(move |c| (c, r)))
            .map(|(c, r)| {
                let (x, y) = (c * cell.0 + dx, r * cell.1 + dy);
                json!({"type": "rectangle", "points": [x, y, x + cell.0, y + cell.1]})
            })
            .collect();
        Value::Array(all)
    };
    let started = std::time::Instant::now();
    let (s, v) = post(
        port,
        &json!({"image0": png_b64(&f0), "image1": png_b64(&f1), "boxes0": boxes(0, 0), "boxes1": boxes(3, 2), "max_distance": 20}),
    );
    assert_eq!(s, 200, "{v}");
    let matches: Vec<i64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_i64().unwrap())
        .collect();
    assert_eq!(matches.len(), 3000);
    // Boxes whose moved crop lies inside the second frame match themselves.
    let wrong: Vec<usize> = (0..3000)
        .filter(|&i| {
            let (c, r) = (i as u32 % cols, i as u32 / cols);
            c + 1 < cols && r + 1 < rows && matches[i] != i as i64
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of 3000 boxes matched another: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
    eprintln!("reid, 3000 boxes per frame: {:?}", started.elapsed());

    let (s, v) = post(
        port,
        &json!({"image0": png_b64(&f0), "image1": png_b64(&f1), "boxes0": (0..5001).map(|_| json!({"points": [0, 0, 8, 16]})).collect::<Vec<_>>(), "boxes1": []}),
    );
    assert_eq!((s, v["field"].as_str()), (400, Some("boxes0")), "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("settings.max_reid_boxes"),
        "{v}"
    );
    assert_eq!(host.instance_status("reid")["state"], "ready");
}

#[test]
fn tracker_objects_and_detector_frames_are_bounded() {
    let (tracker, detector) = (free_port(), free_port());
    let host = Host::start(
        &["max_track_objects: 50", "max_image_pixels: 1000000"],
        &[
            inst("track", "ncc-tracker", tracker, &[], &[]),
            Inst {
                classes: Some(&["red", "green"]),
                ..inst(
                    "yolo",
                    "yolo",
                    detector,
                    &["weights: tests/fixtures/yolo_v8_test.onnx"],
                    &[],
                )
            },
        ],
    );
    let img = png_b64(&texture(200, 150, 3));
    let shapes = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"type": "rectangle", "points": [i % 150, 10, i % 150 + 30, 50]}))
            .collect()
    };
    let (s, v) = post(
        tracker,
        &json!({"image": img, "shapes": shapes(51), "states": []}),
    );
    assert_eq!((s, v["field"].as_str()), (400, Some("shapes")), "{v}");
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("settings.max_track_objects"));
    let (s, v) = post(
        tracker,
        &json!({"image": img, "shapes": [null], "states": (0..51).map(|_| json!({})).collect::<Vec<_>>()}),
    );
    assert_eq!((s, v["field"].as_str()), (400, Some("states")), "{v}");
    let (s, v) = post(
        tracker,
        &json!({"image": img, "shapes": shapes(50), "states": []}),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["states"].as_array().unwrap().len(), 50);

    // A frame over max_image_pixels is refused from its header.
    let (s, v) = post(
        detector,
        &json!({"image": png_b64(&texture(1200, 1000, 4))}),
    );
    assert!((400..500).contains(&s), "{s} {v}");
    assert_eq!(v["field"].as_str(), Some("image"), "{v}");
    // Many distinct frames: the detector's memory stays put.
    let ask = |seed: u32| {
        let (s, v) = post(
            detector,
            &json!({"image": png_b64(&texture(640, 480, seed))}),
        );
        assert_eq!(s, 200, "{v}");
    };
    for seed in 0..10 {
        ask(seed);
    }
    let after_few = rss_mib(&host);
    for seed in 10..110 {
        ask(seed);
    }
    let after_many = rss_mib(&host);
    assert!(
        after_many < after_few + 40.0,
        "RSS grew from {after_few:.0} to {after_many:.0} MiB over 100 distinct frames"
    );
    assert_eq!(
        host.status()["instances"].as_array().unwrap().len(),
        2,
        "the host is alive"
    );
}
