//! JPEG decoding of the 1920x1080 benchmark frame: libjpeg-turbo (what the host uses), in
//! full and at the DCT scales the reduced decode picks, against zune-jpeg (the `image`
//! crate's decoder, the host's fallback), medians of repeated runs:
//!   cargo bench -p host --bench decode

use std::time::Instant;

fn median_ms(mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut n = f();
    let mut t: Vec<f64> = (0..31)
        .map(|_| {
            let s = Instant::now();
            n = f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[t.len() / 2], n)
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let data = std::fs::read(root.join("tests/fixtures/frame_1080p.jpg"))
        .expect("tests/fixtures/frame_1080p.jpg: run scripts/setup.sh");
    let (zune, _) = median_ms(|| {
        image::load_from_memory_with_format(&data, image::ImageFormat::Jpeg)
            .unwrap()
            .into_rgb8()
            .len()
    });
    println!("1920x1080 JPEG, {} KB", data.len() / 1024);
    println!(
        "{:<22} {:>12} {:>14} {:>8}",
        "scale", "zune-jpeg", "libjpeg-turbo", "ratio"
    );
    for num in [8u32, 5, 4, 3, 2, 1] {
        let (turbo, bytes) = median_ms(|| {
            host::serve::jpeg::decode(&data, num, u64::MAX)
                .expect("libjpeg-turbo decodes it")
                .rgb
                .len()
        });
        let (w, h) = host::serve::jpeg::scaled((1920, 1080), num);
        assert_eq!(bytes, (w * h * 3) as usize);
        let label = format!("{num}/8 ({w}x{h})");
        if num == 8 {
            println!(
                "{label:<22} {zune:>9.2} ms {turbo:>11.2} ms {:>8.2}",
                zune / turbo
            );
        } else {
            println!(
                "{label:<22} {:>12} {turbo:>11.2} ms {:>8.2}",
                "(full only)",
                zune / turbo
            );
        }
    }
}
