//! SSD anchors of MediaPipe's pose detector.

/// Normalised anchor centres for strides 8, 16, 32, 32, 32 with two anchors per layer per
/// cell, offset 0.5, fixed size (2254 for 224x224). Consecutive layers with one stride
/// share a grid.
pub fn pose(w: u32, h: u32) -> Vec<(f32, f32)> {
    let strides = [8u32, 16, 32, 32, 32];
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
