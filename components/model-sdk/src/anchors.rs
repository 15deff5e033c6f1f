//! SSD anchors as MediaPipe's `SsdAnchorsCalculator` makes them with fixed anchor sizes.

/// Normalised anchor centres for an input of `w` x `h`: one grid per stride, two anchors
/// per layer per cell, offset 0.5. Consecutive layers with the same stride share one grid
/// (so BlazeFace's strides 8, 16, 16, 16 give 896 anchors at 128x128, BlazePose's 8, 16,
/// 32, 32, 32 give 2254 at 224x224).
pub fn ssd(strides: &[u32], w: u32, h: u32) -> Vec<(f32, f32)> {
    let mut anchors = Vec::new();
    let mut layer = 0;
    while layer < strides.len() {
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
    fn mediapipe_counts() {
        assert_eq!(super::ssd(&[8, 16, 16, 16], 128, 128).len(), 896);
        assert_eq!(super::ssd(&[8, 16, 32, 32, 32], 224, 224).len(), 2254);
    }
}
