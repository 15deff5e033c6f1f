//! Detectors that declare their input size get large JPEG frames decoded at a reduced DCT
//! scale, and their answers mapped back to the original frame exactly; everything else
//! (PNG, components that declare nothing, the first request before the component reported
//! its size) gets the full frame.

mod common;

use std::io::Cursor;

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

fn jpeg_b64(img: &image::RgbImage) -> String {
    let mut jpeg = Vec::new();
    img.write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(jpeg)
}

fn echo(port: u16, image: &str) -> Value {
    let (s, v) = post(port, &json!({"image": image, "threshold": 0.90}));
    assert_eq!(s, 200, "{v}");
    v
}

/// The frame size the component saw, and the rectangle it drew over all of it.
fn seen(v: &Value) -> (String, Vec<f64>) {
    let rect = &v[0];
    (
        rect["attributes"][0]["value"].as_str().unwrap().to_string(),
        rect["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect(),
    )
}

#[test]
fn declared_input_size_gets_a_reduced_jpeg_and_answers_map_back_exactly() {
    let (fit, full) = (free_port(), free_port());
    let _host = Host::start(
        &[],
        &[
            inst("fit", "hostile", fit, &["input_size: 128x128"], &[]),
            inst("full", "hostile", full, &[], &[]),
        ],
    );
    let img = texture(1920, 1080, 3);
    let (jpeg, png) = (jpeg_b64(&img), png_b64(&img));

    // The first request loads the component; its size is not known yet: full frame.
    assert_eq!(seen(&echo(fit, &jpeg)).0, "1920x1080");
    // Then: fitted into 128x128 the frame becomes 128x72, so 1/8 (240x135) loses nothing.
    let v = echo(fit, &jpeg);
    let (frame, rect) = seen(&v);
    assert_eq!(frame, "240x135");
    assert_eq!(rect, vec![0.0, 0.0, 1920.0, 1080.0], "{v}");
    // The mask over reduced pixels 60..=120 x 33..=67 (a checkerboard) covers original
    // pixels 480..=967 x 264..=543, each reduced pixel an 8x8 block.
    let mask: Vec<u64> = v[1]["mask"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    let (bits, bbox) = mask.split_at(mask.len() - 4);
    assert_eq!(bbox, [480, 264, 967, 543]);
    let bw = 967 - 480 + 1;
    assert_eq!(bits.len(), bw * (543 - 264 + 1));
    for (i, &b) in bits.iter().enumerate() {
        let (x, y) = (480 + i % bw, 264 + i / bw);
        assert_eq!(b, ((x / 8 + y / 8) % 2) as u64, "pixel ({x}, {y})");
    }
    // A point on the last reduced pixel and a skeleton element at the centre.
    assert_eq!(v[2]["points"], json!([1912.0, 1072.0]));
    assert_eq!(v[3]["elements"][0]["points"], json!([960.0, 540.0]));

    // PNG frames and components that declare nothing always get the full frame.
    assert_eq!(seen(&echo(fit, &png)).0, "1920x1080");
    echo(full, &jpeg);
    assert_eq!(seen(&echo(full, &jpeg)).0, "1920x1080");
}

#[test]
fn the_scale_keeps_every_pixel_the_fitted_input_needs() {
    let (small, big) = (free_port(), free_port());
    let _host = Host::start(
        &[],
        &[
            inst("small", "hostile", small, &["input_size: 128x128"], &[]),
            inst("big", "hostile", big, &["input_size: 640x640"], &[]),
        ],
    );
    // 1001x667 into 128x128: 128x86 needed; 1/8 gives 126x84 (too small), 1/4 gives 251x167.
    let odd = jpeg_b64(&texture(1001, 667, 5));
    echo(small, &odd);
    let v = echo(small, &odd);
    assert_eq!(seen(&v).0, "251x167");
    assert_eq!(seen(&v).1, vec![0.0, 0.0, 1001.0, 667.0], "{v}");
    // 1920x1080 into 640x640: 640x360 needed, so 1/2 (960x540); a 640x480 frame needs all
    // of itself.
    let hd = jpeg_b64(&texture(1920, 1080, 6));
    echo(big, &hd);
    assert_eq!(seen(&echo(big, &hd)).0, "960x540");
    assert_eq!(
        seen(&echo(big, &jpeg_b64(&texture(640, 480, 7)))).0,
        "640x480"
    );
}

#[test]
fn a_real_detector_finds_the_same_face_in_a_reduced_frame() {
    let face = free_port();
    let _host = Host::start(
        &[],
        &[Inst {
            name: "face",
            implementation: "blazeface",
            port: face,
            config: &["weights: models/face_detection_short_range.onnx"],
            classes: Some(&["face"]),
            extra: &[],
        }],
    );
    // The astronaut photo at 1536x1536: BlazeFace fits it into 128x128, so it is decoded at
    // 1/8 (192x192) from the JPEG, and in full from the PNG.
    let photo = image::open(need("tests/fixtures/astronaut.jpg"))
        .unwrap()
        .to_rgb8();
    let big = image::imageops::resize(&photo, 1536, 1536, image::imageops::FilterType::Triangle);
    let (s, full) = post(face, &json!({"image": png_b64(&big)}));
    assert_eq!(s, 200, "{full}");
    let (s, reduced) = post(face, &json!({"image": jpeg_b64(&big)}));
    assert_eq!(s, 200, "{reduced}");
    let (a, b) = (boxes(&full), boxes(&reduced));
    assert_eq!((a.len(), b.len()), (1, 1), "{full} {reduced}");
    let size = a[0].1[2] - a[0].1[0];
    for (p, q) in a[0].1.iter().zip(&b[0].1) {
        assert!(
            (p - q).abs() < 0.03 * size,
            "full {full} vs reduced {reduced}"
        );
    }
}
