//! Turning a decoded RGB frame into a model input tensor.

/// Where the channel axis sits in the model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `[1, 3, H, W]`
    Nchw,
    /// `[1, H, W, 3]`
    Nhwc,
}

/// How a letterboxed input maps back to the original frame:
/// `original = (input - pad) / scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub scale: f32,
    pub pad_x: f32,
    pub pad_y: f32,
}

impl Letterbox {
    /// Map an input-space point back to original-frame pixels.
    pub fn to_original(&self, x: f32, y: f32) -> (f32, f32) {
        ((x - self.pad_x) / self.scale, (y - self.pad_y) / self.scale)
    }
}

/// Pixel normalisation: `value = byte * mul + add`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalize {
    pub mul: f32,
    pub add: f32,
}

impl Normalize {
    /// Bytes to [0, 1].
    pub const UNIT: Normalize = Normalize {
        mul: 1.0 / 255.0,
        add: 0.0,
    };
    /// Bytes to [-1, 1].
    pub const SIGNED: Normalize = Normalize {
        mul: 2.0 / 255.0,
        add: -1.0,
    };
    /// Bytes as they are (0-255).
    pub const RAW: Normalize = Normalize { mul: 1.0, add: 0.0 };
}

/// The order of the colour channels a model reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Channels {
    #[default]
    Rgb,
    /// OpenCV-trained models (YOLOX, SiamTrackers).
    Bgr,
}

/// Where a letterboxed image sits in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Place {
    /// Centred, padding split on both sides (Ultralytics).
    #[default]
    Centre,
    /// In the top-left corner, padding right and below (YOLOX, SAM).
    TopLeft,
}

/// A model's image input: size, layout, pixel normalisation, the padding byte value,
/// channel order and where the letterboxed image sits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputSpec {
    pub width: u32,
    pub height: u32,
    pub layout: Layout,
    pub norm: Normalize,
    pub pad: u8,
    pub channels: Channels,
    pub place: Place,
}

impl InputSpec {
    /// Tensor dimensions for a batch of one.
    pub fn dims(&self) -> Vec<u32> {
        match self.layout {
            Layout::Nchw => vec![1, 3, self.height, self.width],
            Layout::Nhwc => vec![1, self.height, self.width, 3],
        }
    }
}

/// Resize `rgb` (`width` x `height`) into the input tensor keeping the aspect ratio,
/// placed as `input.place` says, padded with `input.pad` (a byte value, normalised like the
/// pixels), channels in `input.channels` order. Bilinear sampling. Returns the f32 tensor
/// data and the mapping back to the frame.
pub fn letterbox(rgb: &[u8], width: u32, height: u32, input: &InputSpec) -> (Vec<f32>, Letterbox) {
    let (dw, dh) = (input.width as usize, input.height as usize);
    let scale = (input.width as f32 / width as f32).min(input.height as f32 / height as f32);
    let new_w = ((width as f32 * scale).round() as usize).clamp(1, dw);
    let new_h = ((height as f32 * scale).round() as usize).clamp(1, dh);
    let (pad_x, pad_y) = match input.place {
        Place::Centre => ((dw - new_w) / 2, (dh - new_h) / 2),
        Place::TopLeft => (0, 0),
    };
    let out = draw(rgb, width, height, input, (new_w, new_h), (pad_x, pad_y));
    (
        out,
        Letterbox {
            scale,
            pad_x: pad_x as f32,
            pad_y: pad_y as f32,
        },
    )
}

/// Resize `rgb` to fill the whole input, ignoring the aspect ratio (SSD-style models):
/// bilinear, channels in `input.channels` order, normalised. A point `(x, y)` of the input
/// is `(x * width / input.width, y * height / input.height)` in the frame.
pub fn resize(rgb: &[u8], width: u32, height: u32, input: &InputSpec) -> Vec<f32> {
    let size = (input.width as usize, input.height as usize);
    draw(rgb, width, height, input, size, (0, 0))
}

/// The input tensor with the frame resized (bilinear) to `new` and placed at `pad`; the
/// rest is `input.pad`.
fn draw(
    rgb: &[u8],
    width: u32,
    height: u32,
    input: &InputSpec,
    (new_w, new_h): (usize, usize),
    (pad_x, pad_y): (usize, usize),
) -> Vec<f32> {
    let InputSpec {
        width: dst_w,
        height: dst_h,
        layout,
        norm,
        pad: pad_value,
        channels,
        ..
    } = *input;
    let (w, h) = (width as usize, height as usize);
    let (dw, dh) = (dst_w as usize, dst_h as usize);
    // Output channel c reads source channel order[c].
    let order = match channels {
        Channels::Rgb => [0, 1, 2],
        Channels::Bgr => [2, 1, 0],
    };
    let pad = pad_value as f32 * norm.mul + norm.add;
    let plane = dw * dh;
    let mut out = vec![pad; plane * 3];

    // Precompute horizontal sample positions and weights once per column.
    let sx = w as f32 / new_w as f32;
    let sy = h as f32 / new_h as f32;
    let cols: Vec<(usize, usize, f32)> = (0..new_w)
        .map(|x| {
            let fx = ((x as f32 + 0.5) * sx - 0.5).max(0.0);
            let x0 = (fx as usize).min(w - 1);
            let x1 = (x0 + 1).min(w - 1);
            (x0 * 3, x1 * 3, fx - x0 as f32)
        })
        .collect();

    for y in 0..new_h {
        let fy = ((y as f32 + 0.5) * sy - 0.5).max(0.0);
        let y0 = (fy as usize).min(h - 1);
        let y1 = (y0 + 1).min(h - 1);
        let wy = fy - y0 as f32;
        let r0 = &rgb[y0 * w * 3..(y0 + 1) * w * 3];
        let r1 = &rgb[y1 * w * 3..(y1 + 1) * w * 3];
        let oy = y + pad_y;
        for (x, &(c0, c1, wx)) in cols.iter().enumerate() {
            let ox = x + pad_x;
            for (c, &src) in order.iter().enumerate() {
                let top = r0[c0 + src] as f32 * (1.0 - wx) + r0[c1 + src] as f32 * wx;
                let bot = r1[c0 + src] as f32 * (1.0 - wx) + r1[c1 + src] as f32 * wx;
                let v = (top * (1.0 - wy) + bot * wy) * norm.mul + norm.add;
                let idx = match layout {
                    Layout::Nchw => c * plane + oy * dw + ox,
                    Layout::Nhwc => (oy * dw + ox) * 3 + c,
                };
                out[idx] = v;
            }
        }
    }
    out
}

/// Resample an RGB image to `out_w` x `out_h` with a triangle (bilinear) filter whose
/// support widens when shrinking, as PIL's `resize(..., BILINEAR)` does: every source
/// pixel contributes, so a large crop shrunk to a small input is not aliased. Returns
/// interleaved RGB f32 (0-255), row-major. Use it where a model was trained on PIL-resized
/// images (torchreid); plain [`resize`] matches OpenCV and TensorFlow.
pub fn resample(rgb: &[u8], width: u32, height: u32, out_w: u32, out_h: u32) -> Vec<f32> {
    let (w, h, ow, oh) = (
        width as usize,
        height as usize,
        out_w as usize,
        out_h as usize,
    );
    // Horizontal pass: h rows of ow pixels; then vertical: oh rows.
    let xs = triangle_weights(w, ow);
    let mut mid = vec![0f32; h * ow * 3];
    for y in 0..h {
        for (ox, (start, ws)) in xs.iter().enumerate() {
            for c in 0..3 {
                let mut acc = 0.0;
                for (k, wt) in ws.iter().enumerate() {
                    acc += rgb[(y * w + start + k) * 3 + c] as f32 * wt;
                }
                mid[(y * ow + ox) * 3 + c] = acc;
            }
        }
    }
    let ys = triangle_weights(h, oh);
    let mut out = vec![0f32; oh * ow * 3];
    for (oy, (start, ws)) in ys.iter().enumerate() {
        for i in 0..ow * 3 {
            let mut acc = 0.0;
            for (k, wt) in ws.iter().enumerate() {
                acc += mid[(start + k) * ow * 3 + i] * wt;
            }
            out[oy * ow * 3 + i] = acc;
        }
    }
    out
}

/// For each of `n_out` output positions along an axis of `n_in` pixels: the first source
/// pixel and the normalised triangle-filter weights of the pixels from there.
fn triangle_weights(n_in: usize, n_out: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = n_in as f32 / n_out as f32;
    let support = scale.max(1.0);
    (0..n_out)
        .map(|i| {
            let centre = (i as f32 + 0.5) * scale;
            let lo = ((centre - support).floor().max(0.0)) as usize;
            let hi = ((centre + support).ceil() as usize).min(n_in);
            let mut ws: Vec<f32> = (lo..hi)
                .map(|j| (1.0 - ((j as f32 + 0.5 - centre) / support).abs()).max(0.0))
                .collect();
            let sum: f32 = ws.iter().sum();
            if sum > 0.0 {
                ws.iter_mut().for_each(|v| *v /= sum);
            }
            (lo, ws)
        })
        .collect()
}

/// Bilinear sample of a `w` x `h` map at (`u`, `v`) in map cells (cell centres at
/// integers), clamped to the map.
pub fn sample(map: &[f32], w: usize, h: usize, u: f32, v: f32) -> f32 {
    let u = u.clamp(0.0, (w - 1) as f32);
    let v = v.clamp(0.0, (h - 1) as f32);
    let (u0, v0) = (u as usize, v as usize);
    let (u1, v1) = ((u0 + 1).min(w - 1), (v0 + 1).min(h - 1));
    let (fu, fv) = (u - u0 as f32, v - v0 as f32);
    let top = map[v0 * w + u0] * (1.0 - fu) + map[v0 * w + u1] * fu;
    let bot = map[v1 * w + u0] * (1.0 - fu) + map[v1 * w + u1] * fu;
    top * (1.0 - fv) + bot * fv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letterbox_maps_back() {
        let rgb = vec![255u8; 200 * 100 * 3];
        let spec = InputSpec {
            width: 64,
            height: 64,
            layout: Layout::Nchw,
            norm: Normalize::UNIT,
            pad: 114,
            channels: Channels::Rgb,
            place: Place::Centre,
        };
        let (t, lb) = letterbox(&rgb, 200, 100, &spec);
        assert_eq!(spec.dims(), vec![1, 3, 64, 64]);
        assert_eq!(t.len(), 64 * 64 * 3);
        assert_eq!(lb.scale, 0.32);
        assert_eq!(lb.pad_y, 16.0);
        assert_eq!(lb.to_original(64.0, 48.0), (200.0, 100.0));
        assert!((t[20 * 64 + 5] - 1.0).abs() < 1e-6);
        assert!((t[5] - 114.0 / 255.0).abs() < 1e-6);
    }

    #[test]
    fn top_left_bgr_letterbox() {
        // A 2x1 frame: red, then blue. Into 4x4 top-left, BGR, raw bytes, NCHW.
        let rgb = [255, 0, 0, 0, 0, 255];
        let spec = InputSpec {
            width: 4,
            height: 4,
            layout: Layout::Nchw,
            norm: Normalize::RAW,
            pad: 114,
            channels: Channels::Bgr,
            place: Place::TopLeft,
        };
        let (t, lb) = letterbox(&rgb, 2, 1, &spec);
        assert_eq!((lb.scale, lb.pad_x, lb.pad_y), (2.0, 0.0, 0.0));
        // Channel 0 is blue: 0 at the left (red pixel), 255 at the right (blue pixel).
        assert_eq!((t[0], t[3]), (0.0, 255.0));
        // Channel 2 is red.
        assert_eq!((t[2 * 16], t[2 * 16 + 3]), (255.0, 0.0));
        // Rows 2 and 3 are padding.
        assert!(t[8..16].iter().all(|&v| v == 114.0));
    }

    #[test]
    fn resample_averages_when_shrinking_and_keeps_flat_images_flat() {
        // 4x1 black/white stripes shrunk to 1x1: the mean, not one sampled stripe.
        let rgb = [0u8, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255];
        let out = resample(&rgb, 4, 1, 1, 1);
        assert!(out.iter().all(|&v| (v - 127.5).abs() < 1e-3), "{out:?}");
        // A flat image stays flat, shrinking or growing.
        let flat = vec![90u8; 5 * 3 * 3];
        for (w, h) in [(2, 7), (9, 1)] {
            assert!(resample(&flat, 5, 3, w, h)
                .iter()
                .all(|&v| (v - 90.0).abs() < 1e-3));
        }
    }

    #[test]
    fn resize_stretches_to_the_whole_input() {
        // 4x2 frame, left half black, right half white, into 2x2 NHWC raw.
        let mut rgb = vec![0u8; 4 * 2 * 3];
        for y in 0..2 {
            for x in 2..4 {
                rgb[(y * 4 + x) * 3..(y * 4 + x) * 3 + 3].fill(255);
            }
        }
        let spec = InputSpec {
            width: 2,
            height: 2,
            layout: Layout::Nhwc,
            norm: Normalize::RAW,
            pad: 0,
            channels: Channels::Rgb,
            place: Place::Centre,
        };
        let t = resize(&rgb, 4, 2, &spec);
        assert_eq!(
            t,
            vec![0.0, 0.0, 0.0, 255.0, 255.0, 255.0, 0.0, 0.0, 0.0, 255.0, 255.0, 255.0]
        );
    }
}
