//! The Siamese tracking step of NanoTrack (SiamTrackers' `nanotrack_tracker.py`, the loop
//! OpenCV's TrackerNano ports): square windows around the target with context (cropped by
//! the host), the head's
//! scores and box offsets on a grid over the search crop, scale/ratio penalties, a cosine
//! window and a smoothed size.

/// Tracking parameters (SiamTrackers' NanoTrack v2 configuration).
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Context added around the box, as a fraction of (w + h).
    pub context: f32,
    /// Scale/ratio change penalty.
    pub penalty_k: f32,
    /// Weight of the cosine window against the penalised score.
    pub window_influence: f32,
    /// Size update rate (times the best candidate's penalised score).
    pub lr: f32,
    /// Backbone stride: grid spacing in search-crop pixels.
    pub stride: f32,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            context: 0.5,
            penalty_k: 0.15,
            window_influence: 0.49,
            lr: 0.385,
            stride: 16.0,
        }
    }
}

/// Side of the template crop and of the search crop, in model pixels.
pub const EXEMPLAR: u32 = 127;
pub const INSTANCE: u32 = 255;

/// The target: centre and size in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub cx: f32,
    pub cy: f32,
    pub w: f32,
    pub h: f32,
}

impl Target {
    /// Side of the square around the target with context (SiamFC's s_z).
    pub fn context_side(&self, p: &Params) -> f32 {
        let pad = p.context * (self.w + self.h);
        ((self.w + pad) * (self.h + pad)).sqrt()
    }
}

/// The `side` x `side` square centred on (`cx`, `cy`) that SiamFC crops, in frame pixels
/// `[x1, y1, x2, y2]`: the side rounded, the corner on a pixel (`floor(c - (side + 1) / 2 +
/// 0.5)`). It may extend past the frame.
pub fn window((cx, cy): (f32, f32), side: f32) -> [f32; 4] {
    let side = side.round().max(1.0);
    let c = (side + 1.0) / 2.0;
    let x0 = (cx - c + 0.5).floor();
    let y0 = (cy - c + 0.5).floor();
    [x0, y0, x0 + side, y0 + side]
}

/// The mean colour of a frame (RGB), which fills crops past its edges.
pub fn mean_colour(rgb: &[u8]) -> [f32; 3] {
    let mut sum = [0f64; 3];
    for px in rgb.chunks_exact(3) {
        for c in 0..3 {
            sum[c] += px[c] as f64;
        }
    }
    let n = (rgb.len() / 3).max(1) as f64;
    sum.map(|s| (s / n) as f32)
}

/// Hann window over an `n` x `n` grid (outer product), flattened row-major.
pub fn hanning(n: usize) -> Vec<f32> {
    let h: Vec<f32> = (0..n)
        .map(|i| {
            if n == 1 {
                1.0
            } else {
                0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / (n - 1) as f32).cos()
            }
        })
        .collect();
    h.iter()
        .flat_map(|a| h.iter().map(move |b| a * b))
        .collect()
}

/// One tracking step: from the head's `cls` (`[1, 2, n, n]` logits) and `loc`
/// (`[1, 4, n, n]`: distances to the left, top, right and bottom edges in search-crop
/// pixels) on the crop of side `search_side` taken around `target`, the new target and
/// the chosen candidate's score.
pub fn step(cls: &[f32], loc: &[f32], n: usize, target: &Target, p: &Params) -> (Target, f32) {
    let cells = n * n;
    let window = hanning(n);
    let s_z = target.context_side(p);
    let scale_z = EXEMPLAR as f32 / s_z;
    let (tw, th) = (target.w * scale_z, target.h * scale_z);
    let size = |w: f32, h: f32| {
        let pad = (w + h) * 0.5;
        ((w + pad) * (h + pad)).sqrt()
    };
    let change = |r: f32| r.max(1.0 / r);
    let origin = -((n / 2) as f32) * p.stride;
    let mut best = (f32::MIN, 0usize, [0f32; 4], 0f32, 0f32);
    for k in 0..cells {
        let (row, col) = (k / n, k % n);
        let (px, py) = (
            origin + col as f32 * p.stride,
            origin + row as f32 * p.stride,
        );
        // Softmax over the two classes: the foreground probability.
        let score = 1.0 / (1.0 + (cls[k] - cls[cells + k]).exp());
        let x1 = px - loc[k];
        let y1 = py - loc[cells + k];
        let x2 = px + loc[2 * cells + k];
        let y2 = py + loc[3 * cells + k];
        let (w, h) = (x2 - x1, y2 - y1);
        let s_c = change(size(w, h) / size(tw, th));
        let r_c = change((tw / th) / (w / h));
        let penalty = (-(r_c * s_c - 1.0) * p.penalty_k).exp();
        let pscore = penalty * score * (1.0 - p.window_influence) + window[k] * p.window_influence;
        if pscore.is_finite() && pscore > best.0 {
            best = (
                pscore,
                k,
                [(x1 + x2) / 2.0, (y1 + y2) / 2.0, w, h],
                penalty,
                score,
            );
        }
    }
    let (_, _, b, penalty, score) = best;
    let lr = penalty * score * p.lr;
    let next = Target {
        cx: target.cx + b[0] / scale_z,
        cy: target.cy + b[1] / scale_z,
        w: target.w * (1.0 - lr) + b[2] / scale_z * lr,
        h: target.h * (1.0 - lr) + b[3] / scale_z * lr,
    };
    (next, score)
}

/// Keep the target inside the frame and at least 10 pixels on a side (as SiamTrackers).
pub fn clip(t: Target, width: u32, height: u32) -> Target {
    let (fw, fh) = (width as f32, height as f32);
    Target {
        cx: t.cx.clamp(0.0, fw),
        cy: t.cy.clamp(0.0, fh),
        w: t.w.clamp(10.0_f32.min(fw), fw),
        h: t.h.clamp(10.0_f32.min(fh), fh),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hann_window_peaks_in_the_middle() {
        let w = hanning(5);
        assert_eq!(w.len(), 25);
        assert_eq!(w[0], 0.0);
        assert!((w[12] - 1.0).abs() < 1e-6);
        assert!((w[11] - 0.5).abs() < 1e-6);
    }

    #[test]
    fn the_window_is_the_rounded_square_on_pixel_corners() {
        assert_eq!(window((10.0, 20.0), 4.0), [8.0, 18.0, 12.0, 22.0]);
        assert_eq!(window((10.3, 20.0), 4.6), [7.0, 17.0, 12.0, 22.0]);
        assert_eq!(window((0.0, 0.0), 0.2), [-1.0, -1.0, 0.0, 0.0]);
    }

    #[test]
    fn a_peak_at_the_centre_keeps_the_target_and_an_offset_peak_moves_it() {
        let n = 16;
        let cells = n * n;
        let p = Params::default();
        let target = Target {
            cx: 100.0,
            cy: 80.0,
            w: 40.0,
            h: 20.0,
        };
        let scale_z = EXEMPLAR as f32 / target.context_side(&p);
        // Every cell predicts the target's own size around itself; one cell is sure.
        let run = |peak: usize| {
            let mut cls = vec![0f32; 2 * cells];
            cls[cells + peak] = 8.0;
            let mut loc = vec![0f32; 4 * cells];
            for k in 0..cells {
                loc[k] = 20.0 * scale_z;
                loc[2 * cells + k] = 20.0 * scale_z;
                loc[cells + k] = 10.0 * scale_z;
                loc[3 * cells + k] = 10.0 * scale_z;
            }
            step(&cls, &loc, n, &target, &p)
        };
        // Cell (8, 8) sits at offset 0: the target stays, same size.
        let (t, score) = run(8 * n + 8);
        assert!(score > 0.99);
        assert!(
            (t.cx - 100.0).abs() < 1e-3 && (t.cy - 80.0).abs() < 1e-3,
            "{t:?}"
        );
        assert!(
            (t.w - 40.0).abs() < 1e-3 && (t.h - 20.0).abs() < 1e-3,
            "{t:?}"
        );
        // Cell (8, 10): two strides right, in crop pixels, i.e. 32 / scale_z frame pixels.
        let (t, _) = run(8 * n + 10);
        assert!((t.cx - (100.0 + 32.0 / scale_z)).abs() < 1e-3, "{t:?}");
        assert!((t.cy - 80.0).abs() < 1e-3);
    }
}
