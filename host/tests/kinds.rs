//! The other CVAT kinds end to end over HTTP: a weightless tracker on a synthetic video, a
//! SAM-shaped interactor whose masks are known functions of the clicks, and reid.

mod common;

use common::*;
use serde_json::{json, Value};

fn iou(a: &[f64], b: &[f64]) -> f64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

/// Frame `i` of a 60-frame sequence: a textured 40x30 object moving (3, 1.5) px/frame and
/// growing 15% over a different texture. Returns the frame and the true box.
fn frame(i: u32, background: &image::RgbImage, object: &image::RgbImage) -> (String, [f64; 4]) {
    let mut img = background.clone();
    let scale = 1.0 + 0.15 * i as f64 / 59.0;
    let (w, h) = (40.0 * scale, 30.0 * scale);
    let (cx, cy) = (60.0 + 3.0 * i as f64, 80.0 + 1.5 * i as f64);
    let b = [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0];
    for y in b[1].ceil() as u32..b[3].floor() as u32 {
        for x in b[0].ceil() as u32..b[2].floor() as u32 {
            let u = ((x as f64 - b[0]) / scale).min(39.0) as u32;
            let v = ((y as f64 - b[1]) / scale).min(29.0) as u32;
            img.put_pixel(x, y, *object.get_pixel(u, v));
        }
    }
    (png_b64(&img), b)
}

fn points(shape: &Value) -> Vec<f64> {
    let p = if shape.is_array() {
        shape
    } else {
        &shape["points"]
    };
    p.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn tracker_follows_a_moving_scaling_object_for_60_frames() {
    let port = free_port();
    let host = Host::start(
        &[],
        &[Inst {
            name: "trk",
            implementation: "ncc-tracker",
            port,
            config: &[],
            classes: None,
            extra: &[],
        }],
    );
    let background = texture(320, 240, 1);
    let object = texture(40, 30, 99);
    let (f0, b0) = frame(0, &background, &object);
    // New flavour (shape dicts), as CVAT >= 2.40 sends with supported_shape_types.
    let (s, v) = post(
        port,
        &json!({"image": f0, "shapes": [{"type": "rectangle", "points": b0}], "states": []}),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["shapes"][0]["type"], "rectangle");
    let mut state = v["states"][0].clone();
    assert!(state.is_object(), "states always present: {v}");
    assert!(
        state.to_string().len() < 2000,
        "state stays compact: {} bytes",
        state.to_string().len()
    );
    let mut worst = 1.0f64;
    for i in 1..60 {
        let (fi, truth) = frame(i, &background, &object);
        let (s, v) = post(
            port,
            &json!({"image": fi, "shapes": [null], "states": [state]}),
        );
        assert_eq!(s, 200, "frame {i}: {v}");
        let got = points(&v["shapes"][0]);
        let score = iou(&got, &truth);
        worst = worst.min(score);
        assert!(
            score >= 0.7,
            "frame {i}: IoU {score:.3}, got {got:?}, truth {truth:?}"
        );
        state = v["states"][0].clone();
    }
    println!("worst IoU over 60 frames: {worst:.3}");
    // Legacy flavour: bare point lists in, bare point lists out.
    let (_, v) = post(port, &json!({"image": f0, "shapes": [b0], "states": []}));
    assert!(v["shapes"][0].is_array(), "{v}");
    // A state that is not ours is a 400, not a crash.
    let (s, v) = post(
        port,
        &json!({"image": f0, "shapes": [null], "states": [{"v": 1}]}),
    );
    assert_eq!(s, 400, "{v}");
    let (s, _) = post(
        port,
        &json!({"image": f0, "shapes": [{"type": "polygon", "points": [1, 2, 3, 4, 5, 6]}], "states": []}),
    );
    assert_eq!(s, 400);
    drop(host);
}

/// What the SAM-shaped test decoder answers: a disc of radius 20 around each positive
/// click, minus discs of radius 10 around negative clicks.
fn expected_mask(w: u32, h: u32, pos: &[(f64, f64)], neg: &[(f64, f64)]) -> Vec<u8> {
    let mut m = vec![0u8; (w * h) as usize];
    for y in 0..h {
        for x in 0..w {
            let d2 = |p: &(f64, f64)| (x as f64 - p.0).powi(2) + (y as f64 - p.1).powi(2);
            let inside = pos.iter().any(|p| d2(p) < 400.0) && !neg.iter().any(|p| d2(p) <= 100.0);
            m[(y * w + x) as usize] = u8::from(inside);
        }
    }
    m
}

#[test]
fn interactor_masks_follow_the_clicks_and_embeddings_are_cached_per_frame() {
    let (port, legacy) = (free_port(), free_port());
    let cfg: &[&str] = &[
        "encoder: tests/fixtures/sam_encoder_test.onnx",
        "decoder: tests/fixtures/sam_decoder_test.onnx",
    ];
    let legacy_cfg: &[&str] = &[
        "encoder: tests/fixtures/sam_encoder_test.onnx",
        "decoder: tests/fixtures/sam_decoder_test.onnx",
        "response_format: legacy",
    ];
    let host = Host::start(
        &[],
        &[
            Inst {
                name: "sam",
                implementation: "sam",
                port,
                config: cfg,
                classes: None,
                extra: &[],
            },
            Inst {
                name: "sam-legacy",
                implementation: "sam",
                port: legacy,
                config: legacy_cfg,
                classes: None,
                extra: &[],
            },
        ],
    );
    let (w, h) = (256u32, 128u32);
    let img = png_b64(&texture(w, h, 5));
    let ask = |pos: &[(f64, f64)], neg: &[(f64, f64)], bbox: Value| {
        let body = json!({"image": img, "pos_points": pos.iter().map(|p| [p.0, p.1]).collect::<Vec<_>>(),
                          "neg_points": neg.iter().map(|p| [p.0, p.1]).collect::<Vec<_>>(), "obj_bbox": bbox});
        let (s, v) = post(port, &body);
        assert_eq!(s, 200, "{v}");
        v
    };
    for (pos, neg, bbox) in [
        (vec![(50.0, 60.0)], vec![(60.0, 60.0)], json!([])),
        (vec![(50.0, 60.0), (120.0, 40.0)], vec![], Value::Null),
        (vec![(200.0, 100.0)], vec![], json!([[150, 50], [250, 120]])),
    ] {
        let v = ask(&pos, &neg, bbox);
        let shape = &v["shapes"][0];
        assert_eq!(shape["type"], "mask");
        assert_eq!(shape["attributes"], json!([{"spec_id": 0, "value": "0.9"}]));
        let pts: Vec<u32> = shape["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_u64().unwrap() as u32)
            .collect();
        let got = host::cvat::rle::decode(&pts, w, h).unwrap();
        assert_eq!(
            got,
            expected_mask(w, h, &pos, &neg),
            "mask for clicks {pos:?} / {neg:?}"
        );
    }
    // Three prompts on one frame: one embedding. A new frame: a second one.
    host.wait_log("embedding computed", 1, std::time::Duration::from_secs(1));
    assert_eq!(
        host.log().matches("embedding computed").count(),
        1,
        "{}",
        host.log()
    );
    let other = png_b64(&texture(w, h, 6));
    let (s, _) = post(
        port,
        &json!({"image": other, "pos_points": [[10, 10]], "neg_points": []}),
    );
    assert_eq!(s, 200);
    assert_eq!(host.log().matches("embedding computed").count(), 2);

    // Legacy answer: the full-image 2-D mask.
    let (s, v) = post(
        legacy,
        &json!({"image": img, "pos_points": [[50, 60]], "neg_points": []}),
    );
    assert_eq!(s, 200, "{v}");
    let rows = v["mask"].as_array().unwrap();
    assert_eq!(
        (rows.len(), rows[0].as_array().unwrap().len()),
        (h as usize, w as usize)
    );
    let flat: Vec<u8> = rows
        .iter()
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u8)
        })
        .collect();
    assert_eq!(flat, expected_mask(w, h, &[(50.0, 60.0)], &[]));

    // Bad prompts.
    let (s, v) = post(port, &json!({"image": img, "neg_points": []}));
    assert_eq!((s, v["field"].as_str()), (400, Some("pos_points")));
    let (s, v) = post(
        port,
        &json!({"image": img, "pos_points": [[5000, 1]], "neg_points": []}),
    );
    assert_eq!((s, v["field"].as_str()), (400, Some("pos_points")));
    let (s, v) = post(
        port,
        &json!({"image": img, "pos_points": [[1, 1]], "neg_points": [], "obj_bbox": [[1, 2]]}),
    );
    assert_eq!((s, v["field"].as_str()), (400, Some("obj_bbox")));

    // CVAT sees an interactor it can use (version 2, the hints as strings).
    let f: Value = ureq::get(&format!(
        "http://127.0.0.1:{}/api/functions/sam",
        host.gateway
    ))
    .call()
    .unwrap()
    .into_json()
    .unwrap();
    let a = &f["metadata"]["annotations"];
    assert_eq!(
        (
            a["type"].as_str(),
            a["version"].as_str(),
            a["startswith_box_optional"].as_str()
        ),
        (Some("interactor"), Some("2"), Some("true"))
    );
    assert!(a.get("startswith_box").is_none());
}

#[test]
fn reid_matches_boxes_across_frames() {
    let port = free_port();
    let host = Host::start(
        &[],
        &[Inst {
            name: "reid",
            implementation: "reid",
            port,
            config: &["weights: tests/fixtures/reid_test.onnx"],
            classes: None,
            extra: &[],
        }],
    );
    let paint = |rects: &[([u32; 4], [u8; 3])]| {
        let mut img = image::RgbImage::from_pixel(300, 120, image::Rgb([40, 40, 40]));
        for (r, c) in rects {
            for y in r[1]..r[3] {
                for x in r[0]..r[2] {
                    img.put_pixel(x, y, image::Rgb(*c));
                }
            }
        }
        png_b64(&img)
    };
    let (red, green, blue) = ([220, 10, 10], [10, 220, 10], [10, 10, 220]);
    let f0 = paint(&[
        ([10, 10, 50, 90], red),
        ([100, 10, 140, 90], green),
        ([200, 10, 240, 90], blue),
    ]);
    let f1 = paint(&[([105, 12, 145, 92], green), ([14, 10, 54, 90], red)]);
    // CVAT shape dicts, with the extra keys it sends.
    let shape = |id: u32, p: [u32; 4]| json!({"id": id, "type": "rectangle", "frame": 0, "label_id": 8, "group": null, "source": "auto", "occluded": false, "z_order": 0, "points": p, "attributes": [], "path_id": 0});
    let boxes0 = json!([
        shape(1, [10, 10, 50, 90]),
        shape(2, [100, 10, 140, 90]),
        shape(3, [200, 10, 240, 90])
    ]);
    let boxes1 = json!([shape(4, [105, 12, 145, 92]), shape(5, [14, 10, 54, 90])]);
    let (s, v) = post(
        port,
        &json!({"image0": f0, "image1": f1, "boxes0": boxes0, "boxes1": boxes1, "threshold": 0.5, "max_distance": 50}),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v, json!([1, 0, -1]));
    // Defaults (threshold and max_distance absent) give the same; a tight distance none.
    assert_eq!(
        post(
            port,
            &json!({"image0": f0, "image1": f1, "boxes0": boxes0, "boxes1": boxes1})
        )
        .1,
        json!([1, 0, -1])
    );
    assert_eq!(post(port, &json!({"image0": f0, "image1": f1, "boxes0": boxes0, "boxes1": boxes1, "max_distance": 2})).1, json!([-1, -1, -1]));
    let (s, v) = post(
        port,
        &json!({"image0": f0, "image1": f1, "boxes0": [{"points": [1, 2]}], "boxes1": []}),
    );
    assert_eq!((s, v["field"].as_str()), (400, Some("boxes0")));
    drop(host);
}

#[test]
fn a_component_built_for_another_contract_version_is_refused_with_a_rebuild_hint() {
    let wasm = std::fs::read(need("components/yolo/component.wasm")).unwrap();
    assert_eq!(
        host::runtime::kind::kind_of(&wasm),
        Ok(host::runtime::kind::Kind::Detector)
    );
    // The same component as if built against cvat:model@0.1.0 (same-length rename).
    let now = format!(
        "cvat:model/detector@{}",
        host::runtime::kind::CONTRACT_VERSION
    );
    let (old, new) = (now.as_bytes(), b"cvat:model/detector@0.1.0".as_slice());
    assert_eq!(old.len(), new.len());
    let mut patched = wasm.clone();
    let mut hits = 0;
    let mut i = 0;
    while i + old.len() <= patched.len() {
        if &patched[i..i + old.len()] == old {
            patched[i..i + old.len()].copy_from_slice(new);
            hits += 1;
        }
        i += 1;
    }
    assert!(hits > 0);
    let e = host::runtime::kind::kind_of(&patched).unwrap_err();
    assert!(
        e.contains("cvat:model@0.1.0") && e.contains("rebuild"),
        "{e}"
    );
}
