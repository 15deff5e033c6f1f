//! How a model's image input looks (size, layout, normalisation, channel order, placement)
//! and how its pixels map back to the frame; the host does the resampling
//! ([`crate::pixels`]).

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
    fn letterbox_mapping_and_sampling() {
        let lb = Letterbox {
            scale: 0.32,
            pad_x: 0.0,
            pad_y: 16.0,
        };
        assert_eq!(lb.to_original(64.0, 48.0), (200.0, 100.0));
        let spec = InputSpec {
            width: 64,
            height: 32,
            layout: Layout::Nhwc,
            norm: Normalize::UNIT,
            pad: 114,
            channels: Channels::Rgb,
            place: Place::Centre,
        };
        assert_eq!(spec.dims(), vec![1, 32, 64, 3]);
        // A 2x2 map sampled between its cells.
        let map = [0.0, 1.0, 2.0, 3.0];
        assert_eq!(sample(&map, 2, 2, 0.5, 0.5), 1.5);
        assert_eq!(sample(&map, 2, 2, -4.0, 9.0), 2.0);
    }
}
