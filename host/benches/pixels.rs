//! The host's pixel primitives (`cvat:model/pixels`) on the sizes the built-in components
//! ask for, against a straightforward per-pixel bilinear in the same process (the loop the
//! components ran in wasm before, here native), medians of repeated runs:
//!   cargo bench -p host --bench pixels

use std::time::Instant;

use host::nn::pixels::{crops, fit, Fit, Frame, Region, Spec};

fn frame(w: u32, h: u32) -> Frame {
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            rgb.extend_from_slice(&[(x % 256) as u8, (y % 256) as u8, ((x ^ y) % 256) as u8]);
        }
    }
    Frame {
        width: w,
        height: h,
        rgb,
    }
}

fn spec(w: u32, h: u32) -> Spec {
    Spec {
        width: w,
        height: h,
        nchw: true,
        bgr: false,
        bytes: false,
        mean: [0.0; 3],
        scale: [1.0 / 255.0; 3],
        pad: [114.0; 3],
        antialias: false,
    }
}

/// The per-pixel letterbox (model-sdk's former wasm code, native here): the baseline.
fn per_pixel(f: &Frame, s: &Spec) -> Vec<f32> {
    let (w, h) = (f.width as usize, f.height as usize);
    let (dw, dh) = (s.width as usize, s.height as usize);
    let scale = (dw as f32 / w as f32).min(dh as f32 / h as f32);
    let nw = ((w as f32 * scale).round() as usize).clamp(1, dw);
    let nh = ((h as f32 * scale).round() as usize).clamp(1, dh);
    let (px, py) = ((dw - nw) / 2, (dh - nh) / 2);
    let plane = dw * dh;
    let mut out = vec![114.0 / 255.0; plane * 3];
    let (sx, sy) = (w as f32 / nw as f32, h as f32 / nh as f32);
    for y in 0..nh {
        let fy = ((y as f32 + 0.5) * sy - 0.5).max(0.0);
        let y0 = (fy as usize).min(h - 1);
        let y1 = (y0 + 1).min(h - 1);
        let wy = fy - y0 as f32;
        for x in 0..nw {
            let fx = ((x as f32 + 0.5) * sx - 0.5).max(0.0);
            let x0 = (fx as usize).min(w - 1);
            let x1 = (x0 + 1).min(w - 1);
            let wx = fx - x0 as f32;
            for c in 0..3 {
                let p = |xx: usize, yy: usize| f.rgb[(yy * w + xx) * 3 + c] as f32;
                let v = (p(x0, y0) * (1.0 - wx) + p(x1, y0) * wx) * (1.0 - wy)
                    + (p(x0, y1) * (1.0 - wx) + p(x1, y1) * wx) * wy;
                out[c * plane + (y + py) * dw + x + px] = v / 255.0;
            }
        }
    }
    out
}

fn median_ms(mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..15)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    println!(
        "{:<44} {:>10} {:>12} {:>8}",
        "case", "host", "per-pixel", "ratio"
    );
    for (what, fw, fh, tw, th) in [
        ("1080p -> 640x640 (YOLO, full decode)", 1920, 1080, 640, 640),
        ("960x540 -> 640x640 (YOLO, 1/2 decode)", 960, 540, 640, 640),
        ("480x270 -> 416x416 (YOLOX, 1/4 decode)", 480, 270, 416, 416),
        ("240x135 -> 128x128 (BlazeFace, 1/8)", 240, 135, 128, 128),
        ("1080p -> 1024x1024 (SAM encoder)", 1920, 1080, 1024, 1024),
    ] {
        let f = frame(fw, fh);
        let s = spec(tw, th);
        let host = median_ms(|| {
            std::hint::black_box(fit(&f, Fit::LetterboxCentre, &s, usize::MAX).unwrap());
        });
        let base = median_ms(|| {
            std::hint::black_box(per_pixel(&f, &s));
        });
        println!(
            "{what:<44} {host:>7.2} ms {base:>9.2} ms {:>8.2}",
            base / host
        );
    }
    let f = frame(1920, 1080);
    let mut s = spec(255, 255);
    s.bgr = true;
    let nano = median_ms(|| {
        std::hint::black_box(
            crops(
                &f,
                &[Region {
                    x1: 700.0,
                    y1: 300.0,
                    x2: 1210.0,
                    y2: 810.0,
                }],
                &s,
                usize::MAX,
            )
            .unwrap(),
        );
    });
    println!(
        "{:<44} {nano:>7.2} ms",
        "crop 510x510 -> 255x255 (NanoTrack search)"
    );
    let mut s = spec(128, 256);
    s.antialias = true;
    let people: Vec<Region> = (0..8)
        .map(|i| Region {
            x1: 100.0 + 200.0 * i as f32,
            y1: 200.0,
            x2: 250.0 + 200.0 * i as f32,
            y2: 700.0,
        })
        .collect();
    let reid = median_ms(|| {
        std::hint::black_box(crops(&f, &people, &s, usize::MAX).unwrap());
    });
    println!(
        "{:<44} {reid:>7.2} ms",
        "8 crops 150x500 -> 128x256 antialiased (re-id)"
    );
}
