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
}

/// A model's image input: size, layout, pixel normalisation and the padding byte value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputSpec {
    pub width: u32,
    pub height: u32,
    pub layout: Layout,
    pub norm: Normalize,
    pub pad: u8,
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
/// centred, padded with `input.pad` (a byte value, normalised like the pixels). Bilinear
/// sampling. Returns the f32 tensor data and the mapping back to the frame.
pub fn letterbox(rgb: &[u8], width: u32, height: u32, input: &InputSpec) -> (Vec<f32>, Letterbox) {
    let InputSpec {
        width: dst_w,
        height: dst_h,
        layout,
        norm,
        pad: pad_value,
    } = *input;
    let (w, h) = (width as usize, height as usize);
    let (dw, dh) = (dst_w as usize, dst_h as usize);
    let scale = (dst_w as f32 / width as f32).min(dst_h as f32 / height as f32);
    let new_w = ((width as f32 * scale).round() as usize).clamp(1, dw);
    let new_h = ((height as f32 * scale).round() as usize).clamp(1, dh);
    let pad_x = (dw - new_w) / 2;
    let pad_y = (dh - new_h) / 2;
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
            for c in 0..3 {
                let top = r0[c0 + c] as f32 * (1.0 - wx) + r0[c1 + c] as f32 * wx;
                let bot = r1[c0 + c] as f32 * (1.0 - wx) + r1[c1 + c] as f32 * wx;
                let v = (top * (1.0 - wy) + bot * wy) * norm.mul + norm.add;
                let idx = match layout {
                    Layout::Nchw => c * plane + oy * dw + ox,
                    Layout::Nhwc => (oy * dw + ox) * 3 + c,
                };
                out[idx] = v;
            }
        }
    }
    (
        out,
        Letterbox {
            scale,
            pad_x: pad_x as f32,
            pad_y: pad_y as f32,
        },
    )
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
}
