//! What a large mask costs to answer: the outline (`contour::add_polygons`) and the JSON,
//! written straight from the detections (what the server does) against building a
//! `serde_json::Value` first (the baseline, one value per pixel). Both JSON texts must be
//! identical. The mask is a 1100x1080 ellipse, as a person segmenter gives on a 1080p frame.
//!
//! Run: `cargo bench -p host --bench masks`.

use std::time::{Duration, Instant};

use host::runtime::loaded::{Detection, Mask, WitShapeType};

fn median(mut f: impl FnMut() -> Duration) -> f64 {
    let mut v: Vec<f64> = (0..15).map(|_| f().as_secs_f64() * 1e3).collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (w, h) = (1100u32, 1080u32);
    let bitmap: Vec<u8> = (0..h)
        .flat_map(|y| {
            (0..w).map(move |x| {
                let (dx, dy) = (x as f32 - 550.0, y as f32 - 600.0);
                u8::from(dx * dx / 250_000.0 + dy * dy / 230_400.0 <= 1.0)
            })
        })
        .collect();
    let det = Detection {
        label: "person".into(),
        confidence: 0.9,
        shape: WitShapeType::Mask,
        points: vec![],
        mask: Some(Mask {
            x1: 400,
            y1: 0,
            x2: 400 + w - 1,
            y2: h - 1,
            bitmap,
        }),
        rotation: None,
        attributes: vec![],
        elements: vec![],
    };
    let contour = median(|| {
        let mut dets = vec![det.clone()];
        let t = Instant::now();
        host::cvat::contour::add_polygons(&mut dets, 100_000);
        t.elapsed()
    });
    let mut dets = vec![det.clone()];
    host::cvat::contour::add_polygons(&mut dets, 100_000);
    let via_value = median(|| {
        let t = Instant::now();
        std::hint::black_box(
            serde_json::to_vec(&host::cvat::payload::detections_json(&dets)).unwrap(),
        );
        t.elapsed()
    });
    let direct = median(|| {
        let t = Instant::now();
        std::hint::black_box(serde_json::to_vec(&host::cvat::payload::Detections(&dets)).unwrap());
        t.elapsed()
    });
    let a = serde_json::to_vec(&host::cvat::payload::detections_json(&dets)).unwrap();
    let b = serde_json::to_vec(&host::cvat::payload::Detections(&dets)).unwrap();
    assert_eq!(a, b, "the two renderings differ");
    println!(
        "{w}x{h} mask, {} KB of JSON, {} outline vertices; medians in ms",
        b.len() / 1024,
        dets[0].points.len() / 2
    );
    println!("outline (runs + union-find, trace, Douglas-Peucker): {contour:.2}");
    println!("JSON via serde_json::Value (baseline): {via_value:.2}");
    println!(
        "JSON written directly: {direct:.2}  ({:.1}x faster)",
        via_value / direct
    );
}
