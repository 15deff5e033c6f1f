//! SSD anchors of MediaPipe's short-range face detector.

/// Anchor centres, normalised to [0, 1], for an input of `w` x `h`: strides 8, 16, 16, 16
/// with two anchors per layer per cell, offset 0.5, fixed size (896 for 128x128).
pub fn short_range(w: u32, h: u32) -> Vec<(f32, f32)> {
    let strides = [8u32, 16, 16, 16];
    let mut anchors = Vec::new();
    let mut layer = 0;
    while layer < strides.len() {
        // Consecutive layers with the same stride share one grid.
        let stride = strides[layer];
        let mut per_cell = 0;
        while layer < strides.len() && strides[layer] == stride {
            per_cell += 2;
            layer += 1;
        }
        let (gw, gh) = (w.div_ceil(stride), h.div_ceil(stride));
        for y in 0..gh {
            for x in 0..gw {
                let c = ((x as f32 + 0.5) / gw as f32, (y as f32 + 0.5) / gh as f32);
                anchors.extend(std::iter::repeat_n(c, per_cell));
            }
        }
    }
    anchors
}

#[cfg(test)]
mod tests {
    #[test]
    fn count() {
        assert_eq!(super::short_range(128, 128).len(), 896);
    }
}
