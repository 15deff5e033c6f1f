//! CVAT's mask format (shared/docs/cvat-protocol.md §5): run lengths over the mask's bbox,
//! row-major, alternating and starting with a run of zeros, then the inclusive bbox.

/// Runs of `bitmap` (`width` x `height`, row-major, non-zero = object): alternating zeros
/// and ones, starting with zeros (so a mask whose first pixel is set starts with 0); the
/// runs sum to `width * height`.
pub fn encode(bitmap: &[u8]) -> Vec<u32> {
    let mut runs = Vec::new();
    let mut current = false;
    let mut len = 0u32;
    for &px in bitmap {
        let on = px != 0;
        if on != current {
            runs.push(len);
            len = 0;
            current = on;
        }
        len += 1;
    }
    runs.push(len);
    runs
}

/// CVAT `points` for a mask over the inclusive box `(x1, y1)`–`(x2, y2)`.
pub fn points(bitmap: &[u8], x1: u32, y1: u32, x2: u32, y2: u32) -> Vec<u32> {
    let mut p = encode(bitmap);
    p.extend([x1, y1, x2, y2]);
    p
}

/// Decode CVAT mask `points` into a full-image bitmap; errors name what is wrong.
pub fn decode(points: &[u32], width: u32, height: u32) -> Result<Vec<u8>, String> {
    if points.len() < 5 {
        return Err("fewer than 5 numbers".into());
    }
    let (runs, bbox) = points.split_at(points.len() - 4);
    let (x1, y1, x2, y2) = (bbox[0], bbox[1], bbox[2], bbox[3]);
    if x2 < x1 || y2 < y1 || x2 >= width || y2 >= height {
        return Err(format!(
            "bbox {x1},{y1},{x2},{y2} is not inside {width}x{height}"
        ));
    }
    let (bw, bh) = ((x2 - x1 + 1) as usize, (y2 - y1 + 1) as usize);
    let total: u64 = runs.iter().map(|&r| r as u64).sum();
    if total != (bw * bh) as u64 {
        return Err(format!("runs sum to {total}, the bbox holds {}", bw * bh));
    }
    let mut full = vec![0u8; (width * height) as usize];
    let mut i = 0usize;
    for (k, &r) in runs.iter().enumerate() {
        if k % 2 == 1 {
            for j in i..i + r as usize {
                let (x, y) = (x1 as usize + j % bw, y1 as usize + j / bw);
                full[y * width as usize + x] = 1;
            }
        }
        i += r as usize;
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_examples() {
        // §5 worked example: 3x2 region at (10,20)-(12,21), rows 0 1 1 / 1 1 0.
        assert_eq!(
            points(&[0, 1, 1, 1, 1, 0], 10, 20, 12, 21),
            vec![1, 4, 1, 10, 20, 12, 21]
        );
        // CVAT's unit test: [255,255,0,0, 255,255,0,0, 255,255,0,0] -> [0,2,2,2,2,2,2].
        assert_eq!(
            encode(&[255, 255, 0, 0, 255, 255, 0, 0, 255, 255, 0, 0]),
            vec![0, 2, 2, 2, 2, 2, 2]
        );
        assert_eq!(encode(&[0, 0, 0]), vec![3]);
    }

    /// Property: for random masks of random sizes, the encoding starts with a zero run,
    /// alternates, sums to w*h, and decodes back to the same pixels (row-major, inclusive
    /// bbox).
    #[test]
    fn round_trip_property() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for case in 0..2000 {
            let (w, h) = (1 + (next() % 40) as u32, 1 + (next() % 30) as u32);
            let (x1, y1) = ((next() % w as u64) as u32, (next() % h as u64) as u32);
            let (x2, y2) = (
                x1 + (next() % (w - x1) as u64) as u32,
                y1 + (next() % (h - y1) as u64) as u32,
            );
            let (bw, bh) = (x2 - x1 + 1, y2 - y1 + 1);
            let density = next() % 100;
            let bitmap: Vec<u8> = (0..bw * bh)
                .map(|_| u8::from(next() % 100 < density))
                .collect();
            let p = points(&bitmap, x1, y1, x2, y2);
            let runs = &p[..p.len() - 4];
            assert_eq!(
                runs.iter().map(|&r| r as u64).sum::<u64>(),
                (bw * bh) as u64,
                "case {case}"
            );
            assert!(
                runs.iter().skip(1).all(|&r| r > 0),
                "only the first run may be empty, case {case}"
            );
            assert_eq!(
                runs[0] == 0,
                bitmap[0] != 0,
                "starts with zeros, case {case}"
            );
            let full = decode(&p, w, h).unwrap();
            for y in 0..h {
                for x in 0..w {
                    let inside = (x1..=x2).contains(&x) && (y1..=y2).contains(&y);
                    let want = inside && bitmap[((y - y1) * bw + (x - x1)) as usize] != 0;
                    assert_eq!(
                        full[(y * w + x) as usize] != 0,
                        want,
                        "case {case} at {x},{y}"
                    );
                }
            }
        }
    }
}
