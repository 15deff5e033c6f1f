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

/// The output of [`fit`] and [`crops`] while it is written: `n` images of the spec's size.
struct Out<'a> {
    spec: &'a Spec,
    data: Vec<u8>,
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
            data: vec![0; bytes],
        };
        let pad: [f32; 3] =
            std::array::from_fn(|c| spec.value(c, spec.pad[spec.source_channel(c)]));
        if pad.iter().any(|&v| v != 0.0) {
            for i in 0..elements {
                let c = if spec.nchw { (i / (w * h)) % 3 } else { i % 3 };
                out.put(i, pad[c]);
            }
        }
        Ok(out)
    }

    #[inline]
    fn put(&mut self, index: usize, v: f32) {
        if self.spec.bytes {
            self.data[index] = v as u8;
        } else {
            self.data[index * 4..index * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
    }

    /// Write one resampled row (`row`: interleaved RGB byte values of `row.len() / 3`
    /// pixels) at (`x`, `y`) of image `b`.
    fn row(&mut self, b: usize, x: usize, y: usize, row: &[f32]) {
        let (w, h) = (self.spec.width as usize, self.spec.height as usize);
        let spec = *self.spec;
        let n = row.len() / 3;
        for c in 0..3 {
            let src = spec.source_channel(c);
            for (i, px) in row.chunks_exact(3).enumerate().take(n) {
                let index = if spec.nchw {
                    ((b * 3 + c) * h + y) * w + x + i
                } else {
                    ((b * h + y) * w + x + i) * 3 + c
                };
                self.put(index, spec.value(c, px[src]));
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
        HostTensor {
            dims,
            ty: self.spec.element(),
            data: self.data,
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
    mut emit: impl FnMut(usize, &[f32]),
) {
    let xs = axis(region.x1, region.x2, nw, spec.antialias);
    let ys = axis(region.y1, region.y2, nh, spec.antialias);
    let (w, h) = (frame.width as i64, frame.height as i64);
    // One source row resampled horizontally.
    let source_row = |j: i64, out: &mut Vec<f32>| {
        out.clear();
        let inside = (0..h).contains(&j);
        let line = if inside {
            &frame.rgb[(j * w * 3) as usize..((j + 1) * w * 3) as usize]
        } else {
            &[][..]
        };
        for taps in &xs {
            let mut acc = [0f32; 3];
            for &(i, wt) in taps {
                if inside && (0..w).contains(&i) {
                    let p = &line[(i * 3) as usize..(i * 3 + 3) as usize];
                    for (a, &v) in acc.iter_mut().zip(p) {
                        *a += v as f32 * wt;
                    }
                } else {
                    for (a, &v) in acc.iter_mut().zip(&spec.pad) {
                        *a += v * wt;
                    }
                }
            }
            out.extend_from_slice(&acc);
        }
    };
    // Source rows resampled so far, by row index: consecutive output rows share them.
    let mut cache: Vec<(i64, Vec<f32>)> = Vec::new();
    let mut row = vec![0f32; nw * 3];
    for (y, taps) in ys.iter().enumerate() {
        cache.retain(|(j, _)| taps.iter().any(|&(t, _)| t == *j));
        for &(j, _) in taps {
            if !cache.iter().any(|(k, _)| *k == j) {
                let mut v = Vec::with_capacity(nw * 3);
                source_row(j, &mut v);
                cache.push((j, v));
            }
        }
        row.iter_mut().for_each(|v| *v = 0.0);
        for &(j, wt) in taps {
            let src = &cache.iter().find(|(k, _)| *k == j).expect("cached above").1;
            for (o, s) in row.iter_mut().zip(src) {
                *o += s * wt;
            }
        }
        emit(y, &row);
    }
}

/// The taps of each of `n` output pixels over the source span `[start, end)`: source pixel
/// indices (possibly outside the frame) and weights summing to 1.
fn axis(start: f32, end: f32, n: usize, antialias: bool) -> Vec<Vec<(i64, f32)>> {
    let extent = end - start;
    let scale = extent / n as f32;
    (0..n)
        .map(|u| {
            if antialias && scale > 1.0 {
                // Triangle filter of half-width `scale` around the output pixel's centre.
                let centre = start + (u as f32 + 0.5) * scale;
                let lo = (centre - scale).floor() as i64;
                let hi = (centre + scale).ceil() as i64;
                let lo = lo.max(start.floor() as i64);
                let hi = hi.min(end.ceil() as i64);
                let mut taps: Vec<(i64, f32)> = (lo..hi)
                    .map(|j| {
                        (
                            j,
                            (1.0 - ((j as f32 + 0.5 - centre) / scale).abs()).max(0.0),
                        )
                    })
                    .filter(|&(_, w)| w > 0.0)
                    .collect();
                let sum: f32 = taps.iter().map(|t| t.1).sum();
                taps.iter_mut().for_each(|t| t.1 /= sum);
                taps
            } else {
                // Bilinear, pixel centres aligned, clamped to the span's pixels.
                let f =
                    (start + (u as f32 + 0.5) * scale - 0.5).clamp(start, (end - 1.0).max(start));
                let i0 = f.floor();
                let w1 = f - i0;
                let i0 = i0 as i64;
                if w1 > 0.0 {
                    vec![(i0, 1.0 - w1), (i0 + 1, w1)]
                } else {
                    vec![(i0, 1.0)]
                }
            }
        })
        .collect()
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
