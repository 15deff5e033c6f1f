//! Detector shapes beyond rectangles (Ultralytics segment, pose and classify exports):
//! CVAT masks, skeletons with their label spec, and tags.

mod common;

use common::*;
use serde_json::json;

const RED: [u8; 3] = [230, 0, 0];
const GREEN: [u8; 3] = [0, 102, 0];

#[test]
fn segmentation_pose_and_classification_exports() {
    let (seg, pose, cls) = (free_port(), free_port(), free_port());
    let host = Host::start(
        &[],
        &[
            Inst {
                name: "seg",
                implementation: "yolo",
                port: seg,
                config: &["weights: tests/fixtures/yolo_seg_test.onnx"],
                classes: None,
                extra: &[],
            },
            Inst {
                name: "pose",
                implementation: "yolo",
                port: pose,
                config: &["weights: tests/fixtures/yolo_pose_test.onnx"],
                classes: None,
                extra: &[],
            },
            Inst {
                name: "cls",
                implementation: "yolo",
                port: cls,
                config: &["weights: tests/fixtures/yolo_cls_test.onnx"],
                classes: None,
                extra: &[],
            },
        ],
    );
    // 640x640 -> 64x64 input (scale 0.1) -> 16x16 prototypes: rectangles on 40-pixel cells.
    let img = frame_png(
        640,
        640,
        &[(120, 80, 279, 239, RED), (400, 400, 479, 479, GREEN)],
    );

    let (s, v) = post(seg, &json!({"image": img, "threshold": 0.3}));
    assert_eq!(s, 200, "{v}");
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 2, "{v}");
    for (item, label, (x1, y1, x2, y2)) in [
        (&items[0], "red", (120, 80, 279, 239)),
        (&items[1], "green", (400, 400, 479, 479)),
    ] {
        assert_eq!(
            (item["label"].as_str(), item["type"].as_str()),
            (Some(label), Some("mask"))
        );
        // The host adds the mask's outline as `points`, which CVAT turns into a polygon when
        // "convert masks to polygons" is asked: a closed outline hugging the box.
        let poly: Vec<f64> = item["points"]
            .as_array()
            .unwrap_or_else(|| panic!("no polygon: {}", item["label"]))
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect();
        assert!(poly.len() >= 8 && poly.len().is_multiple_of(2), "{poly:?}");
        let (xs, ys): (Vec<f64>, Vec<f64>) = poly.chunks(2).map(|p| (p[0], p[1])).unzip();
        let span = |v: &[f64]| {
            (
                v.iter().cloned().fold(f64::MAX, f64::min),
                v.iter().cloned().fold(f64::MIN, f64::max),
            )
        };
        assert_eq!(span(&xs), (x1 as f64, (x2 + 1) as f64), "{poly:?}");
        assert_eq!(span(&ys), (y1 as f64, (y2 + 1) as f64), "{poly:?}");
        let mask: Vec<u64> = item["mask"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        let n = ((x2 - x1 + 1) * (y2 - y1 + 1)) as usize;
        assert_eq!(mask.len(), n + 4);
        // Bilinear upsampling of 1/4-resolution logits rounds the corners (as Ultralytics'
        // does); everything else of the box is mask, nothing outside it is.
        let w = (x2 - x1 + 1) as usize;
        let zeros: Vec<(usize, usize)> = mask[..n]
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == 0)
            .map(|(i, _)| (i % w, i / w))
            .collect();
        let h = n / w;
        let near_corner =
            |&(x, y): &(usize, usize)| (x < 20 || x >= w - 20) && (y < 20 || y >= h - 20);
        assert!(
            zeros.iter().all(near_corner),
            "{label}: holes away from the corners: {:?}",
            zeros
                .iter()
                .filter(|z| !near_corner(z))
                .take(5)
                .collect::<Vec<_>>()
        );
        assert!(
            zeros.len() * 8 < n,
            "{label}: {} of {n} pixels missing",
            zeros.len()
        );
        assert_eq!(&mask[n..], &[x1, y1, x2, y2], "{label}: inclusive bbox");
    }
    assert_eq!(
        host.spec("seg"),
        json!([{"id": 0, "name": "red", "type": "mask"}, {"id": 1, "name": "green", "type": "mask"}])
    );

    let (s, v) = post(pose, &json!({"image": img}));
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!([{"label": "red", "type": "skeleton", "confidence": "0.902", "elements": [
            {"label": "kp0", "type": "points", "points": [120.0, 80.0], "outside": 0},
            {"label": "kp1", "type": "points", "points": [280.0, 240.0], "outside": 0}]}])
    );
    let pose_spec = host.spec("pose");
    assert_eq!(pose_spec[0]["type"], "skeleton");
    assert_eq!(
        pose_spec[0]["sublabels"],
        json!([{"id": 0, "name": "kp0", "type": "points"}, {"id": 1, "name": "kp1", "type": "points"}])
    );
    let svg = pose_spec[0]["svg"].as_str().unwrap();
    assert!(
        svg.contains(r#"data-label-name="kp0""#) && svg.contains(r#"data-label-name="kp1""#),
        "{svg}"
    );

    let red = frame_png(64, 64, &[(0, 0, 63, 63, RED)]);
    let (s, v) = post(cls, &json!({"image": red}));
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!([{"label": "red", "type": "tag", "confidence": "0.902"}])
    );
    assert_eq!(
        post(cls, &json!({"image": red, "threshold": 0.95})).1,
        json!([])
    );
    assert_eq!(
        host.spec("cls")[1],
        json!({"id": 1, "name": "green", "type": "tag"})
    );
}
