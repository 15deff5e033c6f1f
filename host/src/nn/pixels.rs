//! Frames and the `cvat:model/pixels` imports: the host turns a request's frame into graph
//! inputs natively (resampling, placement, channel order, layout, element type and
//! normalisation in one pass), straight into a wasi-nn tensor, so the frame's pixels never
//! cross into a component's memory unless it asks for them (`frame.rgb`).
//!
//! Resampling is bilinear with pixel centres aligned (OpenCV's and TensorFlow's resize, what
//! the components did in wasm), or antialiased (a triangle filter whose support widens when
//! shrinking, as PIL resizes). Pixels outside the frame (crops past its edges) and letterbox
//! padding take the spec's pad colour.

use super::tensor::{ElementType, HostTensor};

/// A decoded RGB8 frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    /// Row-major RGB, `width * height * 3` bytes.
    pub rgb: Vec<u8>,
}

/// How the values of a tensor are made (the WIT `tensor-spec`, checked).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec {
    pub width: u32,
    pub height: u32,
    /// `[n, 3, h, w]` (else `[n, h, w, 3]`).
    pub nchw: bool,
    /// Tensor channel `c` holds frame channel `2 - c` (else `c`).
    pub bgr: bool,
    /// u8 values (the resampled bytes); else f32 `(byte - mean) * scale`.
    pub bytes: bool,
    pub mean: [f32; 3],
    pub scale: [f32; 3],
    /// RGB, 0-255.
    pub pad: [f32; 3],
    pub antialias: bool,
}

/// How a frame fills the tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    LetterboxCentre,
    LetterboxTopLeft,
    Stretch,
}

/// Tensor pixel = frame pixel * scale + offset, per axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mapping {
    pub scale_x: f32,
    pub scale_y: f32,
    pub offset_x: f32,
    pub offset_y: f32,
}

/// A region of a frame, in continuous pixel coordinates (may extend past the frame).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl Frame {
    /// A 64-bit hash of the size and pixels (FNV-1a over 8-byte words: about 0.5 ms for a
    /// 1080p frame), equal for equal frames.
    pub fn digest(&self) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        let mut eat = |v: u64| {
            h ^= v;
            h = h.wrapping_mul(0x100_0000_01b3);
        };
        eat(u64::from(self.width) << 32 | u64::from(self.height));
        let words = self.rgb.chunks_exact(8);
        let tail = words.remainder();
        for w in words {
            eat(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let mut last = [0u8; 8];
        last[..tail.len()].copy_from_slice(tail);
        eat(u64::from_le_bytes(last));
        h
    }
}

impl Spec {
    fn element(&self) -> ElementType {
        if self.bytes {
            ElementType::U8
        } else {
            ElementType::F32
        }
    }

    /// The value stored for a resampled byte value `v` of tensor channel `c`.
    #[inline]
    fn value(&self, c: usize, v: f32) -> f32 {
        if self.bytes {
            v.round().clamp(0.0, 255.0)
        } else {
            (v - self.mean[c]) * self.scale[c]
        }
    }

    /// The frame channel tensor channel `c` reads.
    #[inline]
    fn source_channel(&self, c: usize) -> usize {
        if self.bgr {
            2 - c
        } else {
            c
        }
    }
}

/// The output of [`fit`] and [`crops`] while it is written: `n` images of the spec's size,
/// as f32 values, written in place in the tensor's own bytes when they are aligned for f32
/// (as the allocator gives them), else in a separate buffer copied at the end.
struct Out<'a> {
    spec: &'a Spec,
    /// The tensor's bytes (f32 tensors: the values themselves when `floats` is empty).
    data: Vec<u8>,
    /// The values, for u8 tensors and for misaligned byte buffers.
    floats: Vec<f32>,
}

impl<'a> Out<'a> {
    /// `n` images filled with the pad colour, or an error when over `max_bytes`.
    fn new(spec: &'a Spec, n: usize, max_bytes: usize) -> Result<Self, String> {
        let (w, h) = (spec.width as usize, spec.height as usize);
        if w == 0 || h == 0 {
            return Err("tensor-spec: width and height must be at least 1".into());
        }
        let elements = n.checked_mul(w * h * 3).ok_or("tensor size overflows")?;
        let bytes = elements * spec.element().size();
        if bytes > max_bytes {
            return Err(format!(
                "a tensor of {bytes} bytes exceeds the limit of {max_bytes} bytes"
            ));
        }
        let mut out = Self {
            spec,
            data: vec![0; if spec.bytes { 0 } else { bytes }],
            floats: vec![],
        };
        if spec.bytes || super::tensor::as_f32_mut(&mut out.data).is_none() {
            out.data = vec![];
            out.floats = vec![0.0; elements];
        }
        let pad: [f32; 3] =
            std::array::from_fn(|c| spec.value(c, spec.pad[spec.source_channel(c)]));
        let values = out.values();
        if spec.nchw {
            for (i, plane) in values.chunks_exact_mut(w * h).enumerate() {
                plane.fill(pad[i % 3]);
            }
        } else {
            for px in values.chunks_exact_mut(3) {
                px.copy_from_slice(&pad);
            }
        }
        Ok(out)
    }

    /// The values being written.
    fn values(&mut self) -> &mut [f32] {
        if self.floats.is_empty() {
            super::tensor::as_f32_mut(&mut self.data).expect("checked aligned in new")
        } else {
            &mut self.floats
        }
    }

    /// Write one resampled row (`row`: interleaved RGB byte values of `row.len() / 3`
    /// pixels) at (`x`, `y`) of image `b`.
    fn row(&mut self, b: usize, x: usize, y: usize, row: &[f32]) {
        let (w, h) = (self.spec.width as usize, self.spec.height as usize);
        let spec = *self.spec;
        let n = row.len() / 3;
        let values = self.values();
        if spec.nchw {
            // One contiguous run per channel plane.
            for c in 0..3 {
                let src = spec.source_channel(c);
                let start = ((b * 3 + c) * h + y) * w + x;
                let dst = &mut values[start..start + n];
                let (mean, scale) = (spec.mean[c], spec.scale[c]);
                if spec.bytes {
                    for (d, px) in dst.iter_mut().zip(row.chunks_exact(3)) {
                        *d = px[src].round().clamp(0.0, 255.0);
                    }
                } else {
                    for (d, px) in dst.iter_mut().zip(row.chunks_exact(3)) {
                        *d = (px[src] - mean) * scale;
                    }
                }
            }
        } else {
            let start = ((b * h + y) * w + x) * 3;
            for (d, px) in values[start..start + n * 3]
                .chunks_exact_mut(3)
                .zip(row.chunks_exact(3))
            {
                for (c, v) in d.iter_mut().enumerate() {
                    *v = spec.value(c, px[spec.source_channel(c)]);
                }
            }
        }
    }

    fn finish(self, n: usize) -> HostTensor {
        let (w, h) = (self.spec.width, self.spec.height);
        let dims = if self.spec.nchw {
            vec![n as u32, 3, h, w]
        } else {
            vec![n as u32, h, w, 3]
        };
        let data = if self.spec.bytes {
            self.floats.iter().map(|&v| v as u8).collect()
        } else if self.floats.is_empty() {
            self.data
        } else {
            super::tensor::f32_bytes(&self.floats)
        };
        HostTensor {
            dims,
            ty: self.spec.element(),
            data,
        }
    }
}

/// The whole frame in a `[1, ...]` tensor, fitted as `fit` says, and where its pixels are.
pub fn fit(
    frame: &Frame,
    fit: Fit,
    spec: &Spec,
    max_bytes: usize,
) -> Result<(HostTensor, Mapping), String> {
    let mut out = Out::new(spec, 1, max_bytes)?;
    let (fw, fh) = (frame.width as f32, frame.height as f32);
    let (tw, th) = (spec.width as f32, spec.height as f32);
    let (nw, nh, mapping) = match fit {
        Fit::Stretch => (
            spec.width,
            spec.height,
            Mapping {
                scale_x: tw / fw,
                scale_y: th / fh,
                offset_x: 0.0,
                offset_y: 0.0,
            },
        ),
        Fit::LetterboxCentre | Fit::LetterboxTopLeft => {
            let s = (tw / fw).min(th / fh);
            let nw = ((fw * s).round() as u32).clamp(1, spec.width);
            let nh = ((fh * s).round() as u32).clamp(1, spec.height);
            let (ox, oy) = match fit {
                Fit::LetterboxCentre => ((spec.width - nw) / 2, (spec.height - nh) / 2),
                _ => (0, 0),
            };
            (
                nw,
                nh,
                Mapping {
                    scale_x: s,
                    scale_y: s,
                    offset_x: ox as f32,
                    offset_y: oy as f32,
                },
            )
        }
    };
    let whole = Region {
        x1: 0.0,
        y1: 0.0,
        x2: fw,
        y2: fh,
    };
    let at = (mapping.offset_x as usize, mapping.offset_y as usize);
    resample(frame, whole, (nw as usize, nh as usize), spec, |y, row| {
        out.row(0, at.0, at.1 + y, row)
    });
    Ok((out.finish(1), mapping))
}

/// Regions of the frame, each stretched to the spec's size: an `[n, ...]` tensor.
pub fn crops(
    frame: &Frame,
    regions: &[Region],
    spec: &Spec,
    max_bytes: usize,
) -> Result<HostTensor, String> {
    for (i, r) in regions.iter().enumerate() {
        let finite = [r.x1, r.y1, r.x2, r.y2].iter().all(|v| v.is_finite());
        if !finite || r.x2 - r.x1 < 1.0 || r.y2 - r.y1 < 1.0 {
            return Err(format!(
                "region {i}: [{}, {}, {}, {}] is not a finite box of at least one pixel",
                r.x1, r.y1, r.x2, r.y2
            ));
        }
        // Far past the frame there is nothing to sample: refuse absurd regions.
        let limit = 16.0 * (frame.width.max(frame.height) as f32 + 1.0);
        if [r.x1, r.y1, r.x2, r.y2].iter().any(|v| v.abs() > limit) {
            return Err(format!("region {i} lies too far outside the frame"));
        }
    }
    let mut out = Out::new(spec, regions.len(), max_bytes)?;
    let size = (spec.width as usize, spec.height as usize);
    for (b, r) in regions.iter().enumerate() {
        resample(frame, *r, size, spec, |y, row| out.row(b, 0, y, row));
    }
    Ok(out.finish(regions.len()))
}

/// Resample `region` of the frame to `nw` x `nh` pixels, calling `emit(y, row)` with each
/// output row as interleaved RGB byte values (pixels outside the frame take `spec.pad`).
fn resample(
    frame: &Frame,
    region: Region,
    (nw, nh): (usize, usize),
    spec: &Spec,
    emit: impl FnMut(usize, &[f32]),
) {
    let shrinking = (region.x2 - region.x1) > nw as f32 || (region.y2 - region.y1) > nh as f32;
    if spec.antialias && shrinking {
        resample_filtered(frame, region, (nw, nh), spec, emit);
    } else {
        resample_bilinear(frame, region, (nw, nh), spec, emit);
    }
}

/// Bilinear taps along one axis: for each output pixel the two source pixels (indices,
/// possibly outside the frame) and the second one's weight.
struct Bilinear {
    i0: Vec<i64>,
    i1: Vec<i64>,
    w1: Vec<f32>,
}

impl Bilinear {
    /// Pixel centres aligned, clamped to the span's pixels.
    fn new(start: f32, end: f32, n: usize) -> Self {
        let scale = (end - start) / n as f32;
        let mut t = Bilinear {
            i0: Vec::with_capacity(n),
            i1: Vec::with_capacity(n),
            w1: Vec::with_capacity(n),
        };
        for u in 0..n {
            let f = (start + (u as f32 + 0.5) * scale - 0.5).clamp(start, (end - 1.0).max(start));
            let i0 = f.floor();
            t.i0.push(i0 as i64);
            t.i1.push(i0 as i64 + 1);
            t.w1.push(f - i0);
        }
        t
    }
}

fn resample_bilinear(
    frame: &Frame,
    region: Region,
    (nw, nh): (usize, usize),
    spec: &Spec,
    mut emit: impl FnMut(usize, &[f32]),
) {
    let xs = Bilinear::new(region.x1, region.x2, nw);
    let ys = Bilinear::new(region.y1, region.y2, nh);
    let (w, h) = (frame.width as i64, frame.height as i64);
    let pad = spec.pad;
    // A column whose two taps lie inside the frame (the whole row, for fits).
    let inside: Vec<bool> = (0..nw)
        .map(|u| (0..w).contains(&xs.i0[u]) && (xs.w1[u] == 0.0 || (0..w).contains(&xs.i1[u])))
        .collect();
    let line = |j: i64| -> Option<&[u8]> {
        (0..h)
            .contains(&j)
            .then(|| &frame.rgb[(j * w * 3) as usize..((j + 1) * w * 3) as usize])
    };
    let tap = |row: Option<&[u8]>, i: i64, c: usize| -> f32 {
        match row {
            Some(r) if (0..w).contains(&i) => r[i as usize * 3 + c] as f32,
            _ => pad[c],
        }
    };
    let mut out = vec![0f32; nw * 3];
    for y in 0..nh {
        let (r0, wy) = (line(ys.i0[y]), ys.w1[y]);
        let r1 = if wy > 0.0 { line(ys.i1[y]) } else { r0 };
        for u in 0..nw {
            let (i0, i1, wx) = (xs.i0[u], xs.i1[u], xs.w1[u]);
            let o = &mut out[u * 3..u * 3 + 3];
            match (r0, r1) {
                (Some(a), Some(b)) if inside[u] => {
                    let (p0, p1) = (i0 as usize * 3, i1.min(w - 1) as usize * 3);
                    for (c, v) in o.iter_mut().enumerate() {
                        let top = a[p0 + c] as f32 + (a[p1 + c] as f32 - a[p0 + c] as f32) * wx;
                        let bot = b[p0 + c] as f32 + (b[p1 + c] as f32 - b[p0 + c] as f32) * wx;
                        *v = top + (bot - top) * wy;
                    }
                }
                _ => {
                    for (c, v) in o.iter_mut().enumerate() {
                        let top = tap(r0, i0, c) * (1.0 - wx) + tap(r0, i1, c) * wx;
                        let bot = tap(r1, i0, c) * (1.0 - wx) + tap(r1, i1, c) * wx;
                        *v = top * (1.0 - wy) + bot * wy;
                    }
                }
            }
        }
        emit(y, &out);
    }
}

/// Triangle-filter taps along one axis, flattened: output pixel `u` uses source pixels
/// `start[u]..start[u] + len[u]` with weights `w[off[u]..off[u] + len[u]]` (summing to 1).
struct Filtered {
    first: Vec<i64>,
    off: Vec<usize>,
    len: Vec<usize>,
    w: Vec<f32>,
}

impl Filtered {
    /// The support widens with the shrink factor, as PIL's bilinear resize does.
    fn new(start: f32, end: f32, n: usize) -> Self {
        let scale = (end - start) / n as f32;
        let support = scale.max(1.0);
        let mut t = Filtered {
            first: Vec::with_capacity(n),
            off: Vec::with_capacity(n),
            len: Vec::with_capacity(n),
            w: Vec::new(),
        };
        for u in 0..n {
            let centre = start + (u as f32 + 0.5) * scale;
            let lo = ((centre - support).floor() as i64).max(start.floor() as i64);
            let hi = ((centre + support).ceil() as i64).min(end.ceil() as i64);
            let off = t.w.len();
            t.w.extend(
                (lo..hi).map(|j| (1.0 - ((j as f32 + 0.5 - centre) / support).abs()).max(0.0)),
            );
            let sum: f32 = t.w[off..].iter().sum();
            if sum > 0.0 {
                t.w[off..].iter_mut().for_each(|v| *v /= sum);
            }
            t.first.push(lo);
            t.off.push(off);
            t.len.push(t.w.len() - off);
        }
        t
    }
}

fn resample_filtered(
    frame: &Frame,
    region: Region,
    (nw, nh): (usize, usize),
    spec: &Spec,
    mut emit: impl FnMut(usize, &[f32]),
) {
    let xs = Filtered::new(region.x1, region.x2, nw);
    let ys = Filtered::new(region.y1, region.y2, nh);
    let (w, h) = (frame.width as i64, frame.height as i64);
    // Horizontal pass over every source row the vertical taps use, once each.
    let (j_lo, j_hi) = (
        ys.first.iter().copied().min().unwrap_or(0),
        (0..nh)
            .map(|v| ys.first[v] + ys.len[v] as i64)
            .max()
            .unwrap_or(0),
    );
    let mut rows = vec![0f32; (j_hi - j_lo).max(0) as usize * nw * 3];
    for j in j_lo..j_hi {
        let line = (0..h)
            .contains(&j)
            .then(|| &frame.rgb[(j * w * 3) as usize..((j + 1) * w * 3) as usize]);
        let dst = &mut rows[(j - j_lo) as usize * nw * 3..(j - j_lo + 1) as usize * nw * 3];
        for u in 0..nw {
            let mut acc = [0f32; 3];
            for k in 0..xs.len[u] {
                let (i, wt) = (xs.first[u] + k as i64, xs.w[xs.off[u] + k]);
                match line {
                    Some(l) if (0..w).contains(&i) => {
                        for (a, &v) in acc.iter_mut().zip(&l[i as usize * 3..i as usize * 3 + 3]) {
                            *a += v as f32 * wt;
                        }
                    }
                    _ => {
                        for (a, &v) in acc.iter_mut().zip(&spec.pad) {
                            *a += v * wt;
                        }
                    }
                }
            }
            dst[u * 3..u * 3 + 3].copy_from_slice(&acc);
        }
    }
    let mut out = vec![0f32; nw * 3];
    for v in 0..nh {
        out.iter_mut().for_each(|o| *o = 0.0);
        for k in 0..ys.len[v] {
            let (j, wt) = (ys.first[v] + k as i64, ys.w[ys.off[v] + k]);
            let src = &rows[(j - j_lo) as usize * nw * 3..(j - j_lo + 1) as usize * nw * 3];
            for (o, s) in out.iter_mut().zip(src) {
                *o += s * wt;
            }
        }
        emit(v, &out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Frame {
        let mut rgb = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                rgb.extend_from_slice(&f(x, y));
            }
        }
        Frame {
            width: w,
            height: h,
            rgb,
        }
    }

    fn spec(w: u32, h: u32) -> Spec {
        Spec {
            width: w,
            height: h,
            nchw: true,
            bgr: false,
            bytes: false,
            mean: [0.0; 3],
            scale: [1.0; 3],
            pad: [114.0; 3],
            antialias: false,
        }
    }

    fn floats(t: &HostTensor) -> Vec<f32> {
        t.data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    /// The straightforward per-pixel bilinear the components used (model-sdk's letterbox).
    fn reference_bilinear(f: &Frame, nw: usize, nh: usize, x: usize, y: usize, c: usize) -> f32 {
        let (w, h) = (f.width as usize, f.height as usize);
        let (sx, sy) = (w as f32 / nw as f32, h as f32 / nh as f32);
        let fx = ((x as f32 + 0.5) * sx - 0.5).max(0.0);
        let fy = ((y as f32 + 0.5) * sy - 0.5).max(0.0);
        let (x0, y0) = ((fx as usize).min(w - 1), (fy as usize).min(h - 1));
        let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
        let (wx, wy) = (fx - x0 as f32, fy - y0 as f32);
        let p = |xx: usize, yy: usize| f.rgb[(yy * w + xx) * 3 + c] as f32;
        (p(x0, y0) * (1.0 - wx) + p(x1, y0) * wx) * (1.0 - wy)
            + (p(x0, y1) * (1.0 - wx) + p(x1, y1) * wx) * wy
    }

    #[test]
    fn letterbox_matches_the_per_pixel_bilinear_at_odd_sizes() {
        let f = frame(37, 23, |x, y| {
            [(x * 7) as u8, (y * 11) as u8, (x * y) as u8]
        });
        for (tw, th, fit_, ox, oy) in [
            (64, 64, Fit::LetterboxCentre, 0, 12),
            (64, 64, Fit::LetterboxTopLeft, 0, 0),
        ] {
            let (t, m) = fit(&f, fit_, &spec(tw, th), usize::MAX).unwrap();
            assert_eq!(t.dims, vec![1, 3, th, tw]);
            let (nw, nh) = (64usize, 40usize); // 37x23 * 64/37 = 64 x 39.8 -> 40
            assert_eq!((m.offset_x as usize, m.offset_y as usize), (ox, oy));
            let v = floats(&t);
            for c in 0..3 {
                for y in 0..nh {
                    for x in 0..nw {
                        let got = v[(c * th as usize + y + oy) * tw as usize + x + ox];
                        let want = reference_bilinear(&f, nw, nh, x, y, c);
                        assert!((got - want).abs() < 1e-3, "c{c} ({x},{y}): {got} vs {want}");
                    }
                }
            }
            // Outside the image: the pad.
            let pad_row = if oy > 0 { 0 } else { th as usize - 1 };
            assert_eq!(v[pad_row * tw as usize], 114.0);
        }
    }

    #[test]
    fn channels_layout_bytes_and_normalisation() {
        let f = frame(
            2,
            1,
            |x, _| if x == 0 { [200, 100, 50] } else { [0, 10, 20] },
        );
        let mut s = spec(2, 1);
        s.nchw = false;
        s.bgr = true;
        s.mean = [10.0, 20.0, 30.0];
        s.scale = [0.5, 0.25, 2.0];
        let (t, _) = fit(&f, Fit::Stretch, &s, usize::MAX).unwrap();
        assert_eq!(t.dims, vec![1, 1, 2, 3]);
        // Pixel 0, BGR: (50 - 10) * 0.5, (100 - 20) * 0.25, (200 - 30) * 2.
        assert_eq!(&floats(&t)[..3], &[20.0, 20.0, 340.0]);
        s.bytes = true;
        let (t, _) = fit(&f, Fit::Stretch, &s, usize::MAX).unwrap();
        assert_eq!(t.ty, ElementType::U8);
        assert_eq!(t.data, vec![50, 100, 200, 20, 10, 0]);
    }

    #[test]
    fn one_pixel_frames_and_huge_aspect_ratios() {
        let dot = frame(1, 1, |_, _| [9, 8, 7]);
        let (t, m) = fit(&dot, Fit::LetterboxCentre, &spec(5, 3), usize::MAX).unwrap();
        assert_eq!(m.scale_x, 3.0);
        let v = floats(&t);
        // 3x3 of the pixel in the middle of 5x3, pad at the sides.
        assert_eq!((v[0], v[1], v[2]), (114.0, 9.0, 9.0));
        let strip = frame(4000, 1, |x, _| [(x % 256) as u8, 0, 0]);
        let (t, m) = fit(&strip, Fit::LetterboxCentre, &spec(64, 64), usize::MAX).unwrap();
        assert_eq!((m.offset_y, t.dims), (31.5f32.floor(), vec![1, 3, 64, 64]));
        let (t, _) = fit(&strip, Fit::Stretch, &spec(1, 1), usize::MAX).unwrap();
        assert_eq!(t.data.len(), 12);
        // Limits hold.
        assert!(fit(&strip, Fit::Stretch, &spec(640, 640), 1000)
            .unwrap_err()
            .contains("limit"));
        assert!(fit(&strip, Fit::Stretch, &spec(0, 4), usize::MAX).is_err());
    }

    #[test]
    fn crops_fill_outside_the_frame_and_stack_as_a_batch() {
        let f = frame(4, 4, |_, _| [200, 10, 20]);
        let mut s = spec(4, 4);
        s.pad = [1.0, 2.0, 3.0];
        let regions = [
            Region {
                x1: -2.0,
                y1: -2.0,
                x2: 2.0,
                y2: 2.0,
            },
            Region {
                x1: 0.0,
                y1: 0.0,
                x2: 4.0,
                y2: 4.0,
            },
        ];
        let t = crops(&f, &regions, &s, usize::MAX).unwrap();
        assert_eq!(t.dims, vec![2, 3, 4, 4]);
        let v = floats(&t);
        // Crop 0: top-left outside (pad), bottom-right inside.
        assert_eq!((v[0], v[15]), (1.0, 200.0));
        // Crop 1 is the frame.
        assert!(v[48..64].iter().all(|&x| x == 200.0));
        let bad = [Region {
            x1: 0.0,
            y1: 0.0,
            x2: f32::NAN,
            y2: 1.0,
        }];
        assert!(crops(&f, &bad, &s, usize::MAX)
            .unwrap_err()
            .contains("region 0"));
        let far = [Region {
            x1: 1e9,
            y1: 0.0,
            x2: 1e9 + 5.0,
            y2: 5.0,
        }];
        assert!(crops(&f, &far, &s, usize::MAX).is_err());
    }

    #[test]
    fn digests_tell_frames_apart() {
        let a = frame(3, 2, |x, y| [x as u8, y as u8, 0]);
        let mut b = a.clone();
        assert_eq!(a.digest(), b.digest());
        b.rgb[17] ^= 1;
        assert_ne!(a.digest(), b.digest());
        let c = frame(2, 3, |x, y| [y as u8, x as u8, 0]);
        assert_ne!(a.digest(), c.digest(), "same bytes, another size");
    }

    #[test]
    fn antialiasing_averages_what_it_shrinks() {
        // 3 pixels (0, 255, 255) into 1: the triangle filter weighs them 2/3, 1, 2/3; plain
        // bilinear samples the middle pixel alone.
        let f = frame(3, 1, |x, _| if x == 0 { [0; 3] } else { [255; 3] });
        let mut s = spec(1, 1);
        s.antialias = true;
        let (t, _) = fit(&f, Fit::Stretch, &s, usize::MAX).unwrap();
        let want = 255.0 * (1.0 + 2.0 / 3.0) / (1.0 + 4.0 / 3.0);
        assert!(
            floats(&t).iter().all(|&v| (v - want).abs() < 1e-3),
            "{:?}",
            floats(&t)
        );
        s.antialias = false;
        let (t, _) = fit(&f, Fit::Stretch, &s, usize::MAX).unwrap();
        assert!(floats(&t).iter().all(|&v| v == 255.0), "{:?}", floats(&t));
    }
}
