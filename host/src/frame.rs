//! Frames from CVAT payloads: base64 → bytes → decoded RGB8, refusing decode bombs by
//! their header before any pixel buffer is allocated.

use std::io::Cursor;

use base64::Engine as _;
use image::{ImageFormat, ImageReader, Limits};

use crate::api_error::ApiError;
use crate::runtime::loaded::Frame;

/// Decode the base64 image in request field `field`.
pub fn decode(field: &str, b64: &str, max_pixels: u64) -> Result<Frame, ApiError> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    let trimmed = b64.trim();
    let bytes = STANDARD
        .decode(trimmed)
        .or_else(|_| STANDARD_NO_PAD.decode(trimmed))
        .map_err(|e| ApiError::field(field, format!("invalid base64: {e}")))?;
    decode_bytes(field, &bytes, max_pixels)
}

/// Decode image bytes (JPEG, PNG, BMP or WebP, sniffed from the content).
pub fn decode_bytes(field: &str, bytes: &[u8], max_pixels: u64) -> Result<Frame, ApiError> {
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
