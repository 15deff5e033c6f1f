//! MediaPipe's selfie segmentation and BlazePose on the astronaut photo (real pretrained
//! models). They need TensorFlow to convert (scripts/tf-models.sh, an optional setup step
//! that CI runs); without the converted files these tests say so and check nothing, unless
//! REQUIRE_TF_MODELS=1 makes their absence a failure.

mod common;

use common::*;
use serde_json::{json, Value};

fn mediapipe_present() -> bool {
    models_present(
        &[
            "models/selfie_segmentation.onnx",
            "models/pose_detection.onnx",
            "models/pose_landmark_full.onnx",
        ],
        "run scripts/tf-models.sh",
        "REQUIRE_TF_MODELS",
    )
}

#[test]
fn selfie_segmentation_masks_the_astronaut_and_blazepose_finds_her_pose() {
    if !mediapipe_present() {
        return;
    }
    let (seg, pose) = (free_port(), free_port());
    let host = Host::start(
        &[],
        &[
            Inst {
                name: "selfie",
                implementation: "selfie",
                port: seg,
                config: &["weights: models/selfie_segmentation.onnx"],
                classes: None,
                extra: &[],
            },
            Inst {
                name: "pose",
                implementation: "blazepose",
                port: pose,
                config: &[
                    "detector: models/pose_detection.onnx",
                    "landmarks: models/pose_landmark_full.onnx",
                ],
                classes: None,
                extra: &[],
            },
        ],
    );
    let img = json!({"image": b64_file(&need("tests/fixtures/astronaut.png"))});

    let (s, v) = post(seg, &img);
    assert_eq!(s, 200, "{v}");
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 1, "one person mask: {v}");
    assert_eq!(
        (items[0]["label"].as_str(), items[0]["type"].as_str()),
        (Some("person"), Some("mask"))
    );
    let mask: Vec<u64> = items[0]["mask"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    let (x1, y1, x2, y2) = (
        mask[mask.len() - 4],
        mask[mask.len() - 3],
        mask[mask.len() - 2],
        mask[mask.len() - 1],
    );
    let on = mask[..mask.len() - 4].iter().filter(|&&b| b == 1).count() as f64;
    let fraction = on / (512.0 * 512.0);
    println!(
        "selfie mask: bbox {x1},{y1}-{x2},{y2}, {:.1}% of the image",
        fraction * 100.0
    );
    assert!(
        (0.40..0.70).contains(&fraction),
        "the person covers {:.1}% of the image",
        fraction * 100.0
    );
    let at = |x: u64, y: u64| {
        (x1..=x2).contains(&x)
            && (y1..=y2).contains(&y)
            && mask[((y - y1) * (x2 - x1 + 1) + (x - x1)) as usize] == 1
    };
    assert!(
        at(250, 300) && at(215, 130),
        "the body and the face are in the mask"
    );

    let (s, v) = post(pose, &img);
    assert_eq!(s, 200, "{v}");
    let people = v.as_array().unwrap();
    assert_eq!(people.len(), 1, "one pose: {v}");
    assert_eq!(people[0]["type"], "skeleton");
    let el = |name: &str| -> (f64, f64) {
        let e = people[0]["elements"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["label"] == name)
            .unwrap();
        (
            e["points"][0].as_f64().unwrap(),
            e["points"][1].as_f64().unwrap(),
        )
    };
    let near = |p: (f64, f64), q: (f64, f64), r: f64| {
        ((p.0 - q.0).powi(2) + (p.1 - q.1).powi(2)).sqrt() <= r
    };
    let (nose, ls, rs) = (el("nose"), el("left_shoulder"), el("right_shoulder"));
    println!("nose {nose:?}, shoulders {ls:?} {rs:?}");
    assert!(near(nose, (215.0, 123.0), 25.0), "nose at {nose:?}");
    let shoulders_ok = (near(ls, (300.0, 242.0), 30.0) && near(rs, (111.0, 223.0), 30.0))
        || (near(rs, (300.0, 242.0), 30.0) && near(ls, (111.0, 223.0), 30.0));
    assert!(shoulders_ok, "shoulders at {ls:?} and {rs:?}");
    let f: Value = ureq::get(&format!(
        "http://127.0.0.1:{}/api/functions/pose",
        host.gateway
    ))
    .call()
    .unwrap()
    .into_json()
    .unwrap();
    let spec: Value =
        serde_json::from_str(f["metadata"]["annotations"]["spec"].as_str().unwrap()).unwrap();
    assert_eq!(spec[0]["sublabels"].as_array().unwrap().len(), 33);
    assert!(spec[0]["svg"]
        .as_str()
        .unwrap()
        .contains(r#"data-label-name="left_shoulder""#));
}
