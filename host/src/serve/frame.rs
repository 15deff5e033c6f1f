//! Frames from CVAT payloads: base64 → bytes → decoded RGB8, refusing decode bombs by
//! their header before any pixel buffer is allocated.
//!
//! JPEGs are decoded by libjpeg-turbo ([`super::jpeg`]); other formats, and JPEGs it cannot
//! decode cleanly, by the `image` crate. A detector that declares the input it fits frames
//! into (`input-size` in the WIT) may get a JPEG frame decoded at 1/2, 1/4 or 1/8 scale, in
//! the DCT (the smallest that keeps every pixel the fitted input needs): on a 1080p frame that
//! is about half the cost of a full decode, and the decode is most of a small model's request. Its answer is then mapped back to the original frame with
//! [`Reduced::map_back`].

use std::io::Cursor;

use base64::Engine as _;
use image::{ImageFormat, ImageReader, Limits};

use crate::nn::pixels::Frame;
use crate::serve::api_error::ApiError;

/// Decode the base64 image in request field `field`.
pub fn decode(field: &str, b64: &str, max_pixels: u64) -> Result<Frame, ApiError> {
    decode_bytes(field, &base64_bytes(field, b64)?, max_pixels)
}

fn base64_bytes(field: &str, b64: &str) -> Result<Vec<u8>, ApiError> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    let trimmed = b64.trim();
    STANDARD
        .decode(trimmed)
        .or_else(|_| STANDARD_NO_PAD.decode(trimmed))
        .map_err(|e| ApiError::field(field, format!("invalid base64: {e}")))
}

/// A frame decoded smaller than the image sent: its size, and the original's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reduced {
    pub width: u32,
    pub height: u32,
    pub original: (u32, u32),
}

/// Decode the base64 image in `field` for a detector that fits frames into `fit`
/// (width, height), keeping aspect: a JPEG is decoded at the smallest DCT scale at which the
/// fitted image still gets every pixel it would get from the full frame. Returns the frame
/// and, when it is reduced, how to map answers back.
pub fn decode_fitted(
    field: &str,
    b64: &str,
    max_pixels: u64,
    fit: Option<(u32, u32)>,
) -> Result<(Frame, Option<Reduced>), ApiError> {
    let bytes = base64_bytes(field, b64)?;
    if let Some(fit) = fit.filter(|_| image::guess_format(&bytes).ok() == Some(ImageFormat::Jpeg)) {
        if let Some(reduced) = decode_jpeg_reduced(&bytes, fit, max_pixels) {
            return Ok(reduced);
        }
    }
    Ok((decode_bytes(field, &bytes, max_pixels)?, None))
}

/// The reduced decode, or `None` to fall back to the full one (no useful scale, or
/// anything libjpeg-turbo cannot decode cleanly: the full decoder reports errors).
fn decode_jpeg_reduced(
    bytes: &[u8],
    (fit_w, fit_h): (u32, u32),
    max_pixels: u64,
) -> Option<(Frame, Option<Reduced>)> {
    let (w, h) = super::jpeg::size(bytes)?;
    if u64::from(w) * u64::from(h) > max_pixels || fit_w == 0 || fit_h == 0 {
        return None;
    }
    // The fitted image is the frame times `fit`; any decode at least that large loses
    // nothing the model would see.
    let fit = (fit_w as f64 / w as f64).min(fit_h as f64 / h as f64);
    // 1/8, 1/4 and 1/2 only: libjpeg-turbo's other scaled IDCTs (3/8, 5/8...) have no SIMD
    // and decode slower than 1/2 (cargo bench -p host --bench decode: 3/8 3.1 ms, 4/8 2.5).
    let num = [1u32, 2, 4].into_iter().find(|&n| {
        let (sw, sh) = super::jpeg::scaled((w, h), n);
        sw as f64 >= w as f64 * fit && sh as f64 >= h as f64 * fit
    })?;
    let frame = super::jpeg::decode(bytes, num, max_pixels)?;
    let reduced = Reduced {
        width: frame.width,
        height: frame.height,
        original: (w, h),
    };
    Some((frame, Some(reduced)))
}

impl Reduced {
    /// Map detections made on the reduced frame to the original frame: points and skeleton
    /// elements scale per axis (clamped to the frame); masks are scaled up by nearest
    /// neighbour over the pixels their box covers.
    pub fn map_back(&self, dets: &mut [crate::runtime::loaded::Detection]) {
        let (ow, oh) = self.original;
        let fx = ow as f32 / self.width as f32;
        let fy = oh as f32 / self.height as f32;
        for d in dets {
            for (i, p) in d.points.iter_mut().enumerate() {
                *p = if i % 2 == 0 {
                    (*p * fx).clamp(0.0, ow as f32)
                } else {
                    (*p * fy).clamp(0.0, oh as f32)
                };
            }
            for e in &mut d.elements {
                e.x = (e.x * fx).clamp(0.0, ow as f32);
                e.y = (e.y * fy).clamp(0.0, oh as f32);
            }
            if let Some(m) = &mut d.mask {
                *m = self.map_mask(m);
            }
        }
    }

    fn map_mask(&self, m: &crate::runtime::loaded::Mask) -> crate::runtime::loaded::Mask {
        let (ow, oh) = self.original;
        // Original pixel X belongs to reduced pixel floor(X * width / ow).
        let to_reduced_x = |x: u32| (u64::from(x) * u64::from(self.width) / u64::from(ow)) as u32;
        let to_reduced_y = |y: u32| (u64::from(y) * u64::from(self.height) / u64::from(oh)) as u32;
        // The first original pixel of reduced pixel r: ceil(r * ow / width).
        let first_x =
            |r: u32| (u64::from(r) * u64::from(ow)).div_ceil(u64::from(self.width)) as u32;
        let first_y =
            |r: u32| (u64::from(r) * u64::from(oh)).div_ceil(u64::from(self.height)) as u32;
        let (x1, y1) = (first_x(m.x1), first_y(m.y1));
        let (x2, y2) = (
            (first_x(m.x2 + 1).max(1) - 1).min(ow - 1),
            (first_y(m.y2 + 1).max(1) - 1).min(oh - 1),
        );
        let src_w = (m.x2 - m.x1 + 1) as usize;
        let cols: Vec<usize> = (x1..=x2)
            .map(|x| (to_reduced_x(x).clamp(m.x1, m.x2) - m.x1) as usize)
            .collect();
        let mut bitmap = Vec::with_capacity(cols.len() * (y2 - y1 + 1) as usize);
        for y in y1..=y2 {
            let row = (to_reduced_y(y).clamp(m.y1, m.y2) - m.y1) as usize * src_w;
            bitmap.extend(cols.iter().map(|&c| m.bitmap[row + c]));
        }
        crate::runtime::loaded::Mask {
            x1,
            y1,
            x2,
            y2,
            bitmap,
        }
    }
}

/// Decode image bytes (JPEG, PNG, BMP or WebP, sniffed from the content).
pub fn decode_bytes(field: &str, bytes: &[u8], max_pixels: u64) -> Result<Frame, ApiError> {
    if image::guess_format(bytes).ok() == Some(ImageFormat::Jpeg) {
        if let Some(frame) = super::jpeg::decode(bytes, 8, max_pixels) {
            return Ok(frame);
        }
    }
    let format = image::guess_format(bytes)
        .ok()
        .filter(|f| {
            matches!(
                f,
                ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Bmp | ImageFormat::WebP
            )
        })
        .ok_or_else(|| ApiError::field(field, "not a JPEG, PNG, BMP or WebP image"))?;
    let reader = || ImageReader::with_format(Cursor::new(bytes), format);
    let (w, h) = reader()
        .into_dimensions()
        .map_err(|e| ApiError::field(field, format!("unreadable {format:?} header: {e}")))?;
    if w == 0 || h == 0 {
        return Err(ApiError::field(field, format!("image is {w}x{h}")));
    }
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(ApiError::field(
            field,
            format!(
                "image is {w}x{h} = {} pixels, over the limit of {max_pixels}",
                u64::from(w) * u64::from(h)
            ),
        ));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    limits.max_alloc = Some(max_pixels.saturating_mul(8));
    let mut r = reader();
    r.limits(limits);
    let img = r
        .decode()
        .map_err(|e| ApiError::field(field, format!("cannot decode the {format:?} image: {e}")))?;
    let rgb = img.into_rgb8();
    Ok(Frame {
        width: rgb.width(),
        height: rgb.height(),
        rgb: rgb.into_raw(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 7 % 256) as u8,
                (y * 5 % 256) as u8,
                ((x ^ y) % 256) as u8,
            ])
        });
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
            .unwrap();
        out
    }

    #[test]
    fn reduced_decode_matches_the_frame_and_survives_damaged_jpegs() {
        use base64::Engine as _;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let good = jpeg(320, 200);
        let (f, r) = decode_fitted("image", &b64(&good), 1 << 30, Some((32, 32))).unwrap();
        assert_eq!((f.width, f.height), (40, 25));
        assert_eq!(f.rgb.len(), 40 * 25 * 3);
        assert_eq!(r.unwrap().original, (320, 200));
        // A frame over the pixel limit is refused by the full decoder's header check.
        let e = decode_fitted("image", &b64(&good), 1000, Some((32, 32))).unwrap_err();
        assert!(e.error.contains("over the limit"), "{}", e.error);
        // Flipped bytes and truncations: an answer or a 400, never a panic.
        let mut seed = 99u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (seed >> 8) as usize
        };
        for i in 0..400 {
            let mut bad = good.clone();
            if i % 3 == 0 {
                bad.truncate(next() % good.len());
            } else {
                for _ in 0..1 + next() % 8 {
                    let at = next() % bad.len();
                    bad[at] ^= 1 << (next() % 8);
                }
            }
            if let Ok((f, _)) = decode_fitted("image", &b64(&bad), 1 << 30, Some((32, 32))) {
                assert_eq!(f.rgb.len(), f.width as usize * f.height as usize * 3);
            }
        }
    }

    #[test]
    fn refuses_non_images_and_bombs() {
        assert_eq!(
            decode("image", "!!!", 100).unwrap_err().field.as_deref(),
            Some("image")
        );
        let e = decode("image", "aGVsbG8=", 100).unwrap_err();
        assert!(e.error.contains("not a JPEG"), "{}", e.error);
        // A PNG header claiming 100000 x 100000 pixels, with no pixel data.
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&100_000u32.to_be_bytes());
        png.extend_from_slice(&100_000u32.to_be_bytes());
        png.extend_from_slice(&[8, 2, 0, 0, 0]);
        let crc = 0u32; // wrong CRC: the decoder may complain either way, never allocate
        png.extend_from_slice(&crc.to_be_bytes());
        let e = decode_bytes("image", &png, 50_000_000).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("image"));
    }
}
