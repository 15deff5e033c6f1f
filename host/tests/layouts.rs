//! Today's export layouts, served from synthetic graphs with their exporters' inputs,
//! outputs and metadata (scripts/layouts.py) and known objects planted in them, checked
//! over HTTP as CVAT calls: DETR-family detectors, SAM2 interactors, and Ultralytics'
//! NMS-free, NMS-in-graph, oriented-box, RT-DETR and classification exports.

mod common;

use common::*;
use serde_json::{json, Value};

const RED: [u8; 3] = [230, 20, 20];
const GREEN: [u8; 3] = [20, 200, 20];

/// A 320x320 frame (the 64-pixel test inputs see it at 1/5) with a red and a green box.
fn scene() -> (String, [f64; 4], [f64; 4]) {
    let (red, green) = ([50.0, 60.0, 150.0, 120.0], [200.0, 210.0, 300.0, 290.0]);
    let rect = |b: [f64; 4], c| {
        (
            b[0] as u32,
            b[1] as u32,
            b[2] as u32 - 1,
            b[3] as u32 - 1,
            c,
        )
    };
    (
        frame_png(320, 320, &[rect(red, RED), rect(green, GREEN)]),
        red,
        green,
    )
}

/// `got` is `want` to within `tol` pixels on every coordinate.
fn near(got: &[f64], want: &[f64], tol: f64) -> bool {
    got.len() == want.len() && got.iter().zip(want).all(|(g, w)| (g - w).abs() <= tol)
}

fn detect(port: u16, image: &str) -> Value {
    let (s, v) = post(port, &json!({"image": image}));
    assert_eq!(s, 200, "{v}");
    v
}

/// One input pixel of the 64-pixel test graphs, in frame pixels, plus resampling's blur.
const TOL: f64 = 7.5;

#[test]
fn detr_family_layouts_answer_without_nms_in_frame_pixels() {
    let (rt, rf) = (free_port(), free_port());
    let host = Host::start(
        &[],
        &[
            Inst {
                classes: Some(&["red", "green"]),
                ..inst(
                    "rtdetr",
                    "detr",
                    rt,
                    &["weights: tests/fixtures/rtdetr_test.onnx"],
                    &[],
                )
            },
            // RF-DETR's class ids start at 1 (COCO's category ids).
            Inst {
                classes: Some(&["none", "red", "green"]),
                ..inst(
                    "rfdetr",
                    "detr",
                    rf,
                    &["weights: tests/fixtures/rfdetr_test.onnx"],
                    &[],
                )
            },
        ],
    );
    let (img, red, green) = scene();
    for port in [rt, rf] {
        let got = boxes(&detect(port, &img));
        // Red, green and the decoy one pixel right of red: the model's queries, no NMS.
        assert_eq!(got.len(), 3, "{got:?}");
        let find = |label: &str| got.iter().filter(|(l, _)| l == label).collect::<Vec<_>>();
        assert_eq!((find("red").len(), find("green").len()), (2, 1), "{got:?}");
        assert!(near(&find("green")[0].1, &green, TOL), "{got:?}");
        assert!(
            find("red").iter().any(|(_, b)| near(b, &red, TOL)),
            "{got:?}"
        );
    }
    // Listed as rectangles with the configured names.
    let spec = host.spec("rtdetr");
    assert_eq!(spec[0]["name"], "red");
    assert_eq!(spec[0]["type"], "rectangle");
    // A threshold over the decoy's score (0.8 x red's 0.90) and under green's (0.78) leaves
    // red and green.
    let (s, v) = post(rt, &json!({"image": img, "threshold": 0.75}));
    assert_eq!((s, boxes(&v).len()), (200, 2), "{v}");
}

#[test]
fn a_detr_instance_without_classes_and_an_unknown_layout_say_what_is_wrong() {
    let (a, b) = (free_port(), free_port());
    let host = Host::start(
        &[],
        &[
            inst(
                "nameless",
                "detr",
                a,
                &["weights: tests/fixtures/rtdetr_test.onnx"],
                &[],
            ),
            Inst {
                classes: Some(&["red", "green"]),
                ..inst(
                    "yolo-as-detr",
                    "detr",
                    b,
                    &["weights: tests/fixtures/yolo_v8_test.onnx"],
                    &[],
                )
            },
        ],
    );
    let (img, _, _) = scene();
    let (s, v) = post(a, &json!({"image": img}));
    assert_eq!(s, 500, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("carry no class names"),
        "{v}"
    );
    let (s, v) = post(b, &json!({"image": img}));
    assert_eq!(s, 500, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("output0 [1, 6, 3]") && e.contains("RF-DETR"),
        "{e}"
    );
    drop(host);
}

#[test]
fn sam2_exports_segment_from_clicks_with_all_three_maps_cached() {
    let port = free_port();
    let host = Host::start(
        &[],
        &[inst(
            "sam2",
            "sam",
            port,
            &[
                "encoder: tests/fixtures/sam2_encoder_test.onnx",
                "decoder: tests/fixtures/sam2_decoder_test.onnx",
            ],
            &[],
        )],
    );
    let (w, h) = (256u32, 128u32);
    let img = png_b64(&texture(w, h, 9));
    let click = (100.0, 70.0);
    let (s, v) = post(
        port,
        &json!({"image": img, "pos_points": [[click.0, click.1]], "neg_points": []}),
    );
    assert_eq!(s, 200, "{v}");
    let shape = &v["shapes"][0];
    // The best of the three masks (predicted IoU 0.9), upsampled to the frame.
    assert_eq!(shape["attributes"][0]["value"], "0.9");
    let got = mask_from_rle(&shape["points"], w as usize, h as usize);
    // SAM2 stretches the frame to its 64x64 input: a disc of radius 20 there is an ellipse
    // of radii 80 and 40 here.
    let want: Vec<bool> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .map(|(x, y)| {
            let dx = (x as f64 + 0.5 - click.0) * 64.0 / w as f64;
            let dy = (y as f64 + 0.5 - click.1) * 64.0 / h as f64;
            dx * dx + dy * dy < 400.0
        })
        .collect();
    let inter = got.iter().zip(&want).filter(|(a, b)| **a && **b).count();
    let union = got.iter().zip(&want).filter(|(a, b)| **a || **b).count();
    assert!(inter as f64 / union as f64 > 0.9, "IoU {inter}/{union}");
    // More clicks on the frame: the cached maps, one encoder run.
    let (s, _) = post(
        port,
        &json!({"image": img, "pos_points": [[30, 30]], "neg_points": []}),
    );
    assert_eq!(s, 200);
    assert_eq!(
        host.log().matches("embedding computed").count(),
        1,
        "{}",
        host.log()
    );
}

/// An Ultralytics test export (scripts/layouts.py) as an instance: names from its metadata.
fn ultralytics(name: &'static str, port: u16, file: &'static str) -> Inst<'static> {
    let weights: &'static str =
        Box::leak(format!("weights: tests/fixtures/{file}").into_boxed_str());
    let config: &'static [&'static str] = Box::leak(vec![weights].into_boxed_slice());
    inst(name, "yolo", port, config, &[])
}

#[test]
fn ultralytics_end_to_end_nms_in_graph_obb_and_rtdetr_exports_are_served() {
    let kinds = [
        "e2e",
        "nms",
        "seg",
        "pose",
        "obb",
        "obb_raw",
        "rtdetr",
        "rtdetr_old",
    ];
    let ports: Vec<u16> = kinds.iter().map(|_| free_port()).collect();
    let insts: Vec<Inst> = kinds
        .iter()
        .zip(&ports)
        .map(|(k, &p)| {
            let file: &'static str =
                Box::leak(format!("ultralytics_{k}_test.onnx").into_boxed_str());
            ultralytics(k, p, file)
        })
        .collect();
    let host = Host::start(&[], &insts);
    let port = |k: &str| ports[kinds.iter().position(|x| *x == k).unwrap()];
    let (img, red, green) = scene();
    let labels = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|d| d["label"].as_str().unwrap().to_string())
            .collect()
    };

    // Rows the model already suppressed are used as they are: the decoy stays (no second
    // NMS), best first; boxes from letterboxed pixels to the frame's.
    for k in ["e2e", "nms", "rtdetr", "rtdetr_old"] {
        let v = detect(port(k), &img);
        assert_eq!(labels(&v), ["red", "green", "red"], "{k}: {v}");
        let b = boxes(&v);
        assert!(
            near(&b[0].1, &red, TOL) && near(&b[1].1, &green, TOL),
            "{k}: {v}"
        );
        assert!(
            near(&b[2].1, &[red[0] + 5.0, red[1], red[2] + 5.0, red[3]], TOL),
            "{k}: {v}"
        );
    }
    // Segmentation rows: masks from the rows' coefficients and the prototypes.
    let v = detect(port("seg"), &img);
    assert_eq!(labels(&v), ["red", "green", "red"], "{v}");
    assert!(
        v.as_array().unwrap().iter().all(|d| d["type"] == "mask"),
        "{v}"
    );
    let m = &v[1]["mask"];
    let n = m.as_array().unwrap().len();
    assert_eq!(
        &m.as_array().unwrap()[n - 4..],
        &[json!(200), json!(210), json!(299), json!(289)],
        "green's box"
    );
    // Pose rows: one class, keypoints on red's corners.
    let v = detect(port("pose"), &img);
    assert_eq!(labels(&v), ["red", "red"], "{v}");
    let kp = &v[0]["elements"];
    assert_eq!(v[0]["type"], "skeleton");
    let at = |i: usize| {
        [
            kp[i]["points"][0].as_f64().unwrap(),
            kp[i]["points"][1].as_f64().unwrap(),
        ]
    };
    assert!(
        near(&at(0), &red[..2], TOL) && near(&at(1), &red[2..], TOL),
        "{v}"
    );

    // Oriented boxes: CVAT rectangles with `rotation` in degrees (the unrotated box around
    // the centre); rows keep the decoy, the raw head's rotated NMS drops it.
    let deg = |d: &Value| d["rotation"].as_f64().unwrap();
    for (k, n) in [("obb", 3), ("obb_raw", 2)] {
        let v = detect(port(k), &img);
        assert_eq!(v.as_array().unwrap().len(), n, "{k}: {v}");
        assert_eq!(
            (v[0]["label"].as_str(), v[0]["type"].as_str()),
            (Some("red"), Some("rectangle"))
        );
        assert!(near(&boxes(&v)[0].1, &red, TOL), "{k}: {v}");
        assert!((deg(&v[0]) - 0.3f64.to_degrees()).abs() < 0.01, "{k}: {v}");
        assert!(near(&boxes(&v)[1].1, &green, TOL), "{k}: {v}");
        assert!(
            (deg(&v[1]) - (360.0 - 0.2f64.to_degrees())).abs() < 0.01,
            "{k}: {v}"
        );
    }
    // Listed with the export's names, OBB as rectangles.
    let spec = host.spec("obb");
    assert_eq!(
        spec,
        json!([{"id": 0, "name": "red", "type": "rectangle"}, {"id": 1, "name": "green", "type": "rectangle"}])
    );
}

#[test]
fn classification_centre_crops_like_ultralytics_and_refusals_name_what_was_found() {
    let (cls, bad) = (free_port(), free_port());
    let host = Host::start(
        &[],
        &[
            inst(
                "cls",
                "yolo",
                cls,
                &["weights: tests/fixtures/yolo_cls_test.onnx"],
                &[],
            ),
            inst(
                "bad",
                "yolo",
                bad,
                &["weights: tests/fixtures/yolo_cls_test.onnx", "task: obb"],
                &[],
            ),
        ],
    );
    // Red thirds left and right, green in the middle: the centre crop sees green only (a
    // letterbox would see mostly red and grey padding).
    let img = frame_png(
        192,
        64,
        &[
            (0, 0, 63, 63, RED),
            (64, 0, 127, 63, GREEN),
            (128, 0, 191, 63, RED),
        ],
    );
    let (s, v) = post(cls, &json!({"image": img}));
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!([{"label": "green", "type": "tag", "confidence": "0.7843"}])
    );
    let (s, v) = post(bad, &json!({"image": img}));
    assert_eq!(s, 500, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("outputs output0 [1, 2]")
            && e.contains("metadata: task classify")
            && e.contains("layouts read here"),
        "{e}"
    );
    drop(host);
}
