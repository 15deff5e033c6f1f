//! Template matching by normalised cross-correlation over a bilinear-resampled grey image.

/// Template side, in samples.
pub const TEMPLATE: usize = 32;

/// Search settings.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub search: f32,
    pub scale_step: f32,
    pub lost_below: f32,
    pub learning_rate: f32,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            search: 0.75,
            scale_step: 0.05,
            lost_below: 0.2,
            learning_rate: 0.1,
        }
    }
}

/// A grey view of an RGB frame, sampled on demand.
pub struct Gray<'a> {
    rgb: &'a [u8],
    w: usize,
    h: usize,
}

impl<'a> Gray<'a> {
    pub fn new(rgb: &'a [u8], w: u32, h: u32) -> Self {
        Self {
            rgb,
            w: w as usize,
            h: h as usize,
        }
    }

    fn px(&self, x: usize, y: usize) -> f32 {
        let i = (y * self.w + x) * 3;
        0.299 * self.rgb[i] as f32 + 0.587 * self.rgb[i + 1] as f32 + 0.114 * self.rgb[i + 2] as f32
    }

    /// Bilinear sample at (x, y), clamped to the frame.
    pub fn sample(&self, x: f32, y: f32) -> f32 {
        let x = x.clamp(0.0, (self.w - 1) as f32);
        let y = y.clamp(0.0, (self.h - 1) as f32);
        let (x0, y0) = (x as usize, y as usize);
        let (x1, y1) = ((x0 + 1).min(self.w - 1), (y0 + 1).min(self.h - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let top = self.px(x0, y0) * (1.0 - fx) + self.px(x1, y0) * fx;
        let bot = self.px(x0, y1) * (1.0 - fx) + self.px(x1, y1) * fx;
        top * (1.0 - fy) + bot * fy
    }
}

/// The box's content (scaled by `scale` around its centre) resampled to TEMPLATE².
pub fn patch(img: &Gray, bbox: [f32; 4], scale: f32) -> Vec<f32> {
    let (cx, cy) = ((bbox[0] + bbox[2]) / 2.0, (bbox[1] + bbox[3]) / 2.0);
    let (sx, sy) = (
        (bbox[2] - bbox[0]) * scale / TEMPLATE as f32,
        (bbox[3] - bbox[1]) * scale / TEMPLATE as f32,
    );
    let half = TEMPLATE as f32 / 2.0;
    let mut out = Vec::with_capacity(TEMPLATE * TEMPLATE);
    for i in 0..TEMPLATE {
        for j in 0..TEMPLATE {
            out.push(img.sample(
                cx + (j as f32 + 0.5 - half) * sx,
                cy + (i as f32 + 0.5 - half) * sy,
            ));
        }
    }
    out
}

/// Round a template to bytes for the state.
pub fn quantize(t: &[f32]) -> Vec<u8> {
    t.iter()
        .map(|v| v.round().clamp(0.0, 255.0) as u8)
        .collect()
}

/// The best match.
pub struct Found {
    pub bbox: [f32; 4],
    pub score: f32,
}

/// Search around `bbox` at three scales; a lost object is searched in a window twice as
/// wide.
pub fn search(img: &Gray, bbox: [f32; 4], tpl: &[f32], p: &Params, lost: bool) -> Found {
    let n = (TEMPLATE * TEMPLATE) as f32;
    let mean = tpl.iter().sum::<f32>() / n;
    let t: Vec<f32> = tpl.iter().map(|v| v - mean).collect();
    let t_norm = t.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-3);
    let reach = if lost { p.search * 2.0 } else { p.search };
    // Grid side: the template plus `reach` box sizes each way.
    let side = TEMPLATE + 2 * (reach * TEMPLATE as f32).round() as usize;
    let (cx, cy) = ((bbox[0] + bbox[2]) / 2.0, (bbox[1] + bbox[3]) / 2.0);
    let (bw, bh) = (bbox[2] - bbox[0], bbox[3] - bbox[1]);
    let mut best = Found {
        bbox,
        score: f32::MIN,
    };
    for (k, scale) in [1.0, 1.0 - p.scale_step, 1.0 + p.scale_step]
        .into_iter()
        .enumerate()
    {
        let (sx, sy) = (bw * scale / TEMPLATE as f32, bh * scale / TEMPLATE as f32);
        let half = side as f32 / 2.0;
        let mut grid = vec![0f32; side * side];
        for i in 0..side {
            for j in 0..side {
                grid[i * side + j] = img.sample(
                    cx + (j as f32 + 0.5 - half) * sx,
                    cy + (i as f32 + 0.5 - half) * sy,
                );
            }
        }
        // Integral images of the grid and its square for window sums.
        let s1 = side + 1;
        let mut sum = vec![0f64; s1 * s1];
        let mut sq = vec![0f64; s1 * s1];
        for i in 0..side {
            for j in 0..side {
                let v = grid[i * side + j] as f64;
                sum[(i + 1) * s1 + j + 1] =
                    v + sum[i * s1 + j + 1] + sum[(i + 1) * s1 + j] - sum[i * s1 + j];
                sq[(i + 1) * s1 + j + 1] =
                    v * v + sq[i * s1 + j + 1] + sq[(i + 1) * s1 + j] - sq[i * s1 + j];
            }
        }
        let win = |a: &[f64], i: usize, j: usize| {
            a[(i + TEMPLATE) * s1 + j + TEMPLATE]
                - a[i * s1 + j + TEMPLATE]
                - a[(i + TEMPLATE) * s1 + j]
                + a[i * s1 + j]
        };
        // Slight preference for keeping the scale, so noise does not make the box breathe.
        let prior = if k == 0 { 1.0 } else { 0.995 };
        for v in 0..=side - TEMPLATE {
            for u in 0..=side - TEMPLATE {
                let s = win(&sum, v, u);
                let var = (win(&sq, v, u) - s * s / n as f64).max(0.0);
                if var < 1.0 {
                    continue;
                }
                let mut dot = 0f32;
                for r in 0..TEMPLATE {
                    let row = &grid[(v + r) * side + u..(v + r) * side + u + TEMPLATE];
                    let trow = &t[r * TEMPLATE..(r + 1) * TEMPLATE];
                    dot += row.iter().zip(trow).map(|(a, b)| a * b).sum::<f32>();
                }
                let score = dot / (var.sqrt() as f32 * t_norm) * prior;
                if score > best.score {
                    let ox = (u as f32 + TEMPLATE as f32 / 2.0 - half) * sx;
                    let oy = (v as f32 + TEMPLATE as f32 / 2.0 - half) * sy;
                    let (nw, nh) = (bw * scale, bh * scale);
                    let (ncx, ncy) = (cx + ox, cy + oy);
                    best = Found {
                        bbox: [
                            ncx - nw / 2.0,
                            ncy - nh / 2.0,
                            ncx + nw / 2.0,
                            ncy + nh / 2.0,
                        ],
                        score,
                    };
                }
            }
        }
    }
    best
}
