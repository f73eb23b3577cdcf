//! Image bytes → a decoded, upright image, refusing what Pillow (the reference) refuses and what
//! would take the machine down: a decompression bomb (dimensions checked before any pixel is
//! decoded), a JPEG cut short (decoders quietly fill the rest with grey), and images whose
//! decoded pixels would not fit what the caller can spare ([`Probe::decoded_bytes`]).

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::{Error, Result};

/// The default decompression-bomb guard: 40 megapixels (a 7,300 x 5,500 photo fits).
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;

/// An image whose header has been read: its size is known, no pixel is decoded yet.
pub struct Probe<'a> {
    decoder: Box<dyn ImageDecoder + 'a>,
    width: u32,
    height: u32,
}

impl std::fmt::Debug for Probe<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Probe({}x{})", self.width, self.height)
    }
}

/// Reads an image's header: refuses empty, unknown, truncated (JPEG) or over-`max_pixels` images
/// before decoding anything.
pub fn probe(bytes: &[u8], max_pixels: u64) -> Result<Probe<'_>> {
    if bytes.is_empty() {
        return Err(Error::Image("the file is empty".into()));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Image(format!("cannot read the image: {e}")))?;
    let Some(format) = reader.format() else {
        return Err(Error::Image(
            "not an image vitrine can read (PNG, JPEG, WebP, GIF, BMP or TIFF)".into(),
        ));
    };
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(Error::Truncated(
            "the JPEG ends before its end-of-image marker (truncated)".into(),
        ));
    }
    let decoder = reader.into_decoder().map_err(describe)?;
    let (w, h) = decoder.dimensions();
    let pixels = u64::from(w) * u64::from(h);
    if pixels > max_pixels {
        return Err(Error::Image(format!(
            "the image is {w}x{h} ({pixels} pixels), over the limit of {max_pixels}; \
             shrink it or raise --max-pixels"
        )));
    }
    if pixels == 0 {
        return Err(Error::Image(format!(
            "the image is {w}x{h}, it has no pixels"
        )));
    }
    Ok(Probe {
        decoder: Box::new(decoder),
        width: w,
        height: h,
    })
}

impl Probe<'_> {
    /// Width and height in pixels (before EXIF orientation).
    pub fn dimensions(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Bytes of the decoded pixel buffer (16-bit and alpha images take more per pixel).
    pub fn decoded_bytes(&self) -> u64 {
        self.decoder.total_bytes()
    }

    /// Decodes the pixels and applies the EXIF orientation. The decoder may allocate no more than
    /// the decoded buffer and a little working space.
    pub fn decode(mut self) -> Result<DynamicImage> {
        let mut limits = image::Limits::default();
        limits.max_alloc = Some(self.decoded_bytes().saturating_mul(2).max(64 << 20));
        self.decoder.set_limits(limits).map_err(describe)?;
        let orientation = self.decoder.orientation().ok();
        let mut image = DynamicImage::from_decoder(self.decoder).map_err(describe)?;
        if let Some(o) = orientation {
            image.apply_orientation(o);
        }
        Ok(image)
    }
}

/// Decodes an image and applies its EXIF orientation. The dimensions are checked against
/// `max_pixels` before any pixel is decoded, so a decompression bomb costs nothing.
pub fn decode_image(bytes: &[u8], max_pixels: u64) -> Result<DynamicImage> {
    probe(bytes, max_pixels)?.decode()
}

fn describe(e: image::ImageError) -> Error {
    match e {
        image::ImageError::Unsupported(u) => Error::Image(format!("unsupported image: {u}")),
        image::ImageError::Limits(l) => Error::Image(format!("image too large to decode: {l}")),
        other => Error::Image(format!("the image is damaged or truncated: {other}")),
    }
}

/// Whether a JPEG reaches its end-of-image marker: every marker segment is walked by its length
/// and every entropy-coded scan up to the next marker (stuffed `FF 00` and restart markers are
/// data), so an `FF D9` inside an EXIF thumbnail does not count. Bytes that are not laid out like
/// a JPEG at all are left to the decoder to judge.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return true;
    }
    let mut i = 2;
    loop {
        // A marker: one or more 0xFF fill bytes, then its code.
        if i >= bytes.len() {
            return false;
        }
        if bytes[i] != 0xFF {
            return true;
        }
        while i < bytes.len() && bytes[i] == 0xFF {
            i += 1;
        }
        let Some(&code) = bytes.get(i) else {
            return false;
        };
        i += 1;
        match code {
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = bytes
            .get(i..i + 2)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        else {
            return false;
        };
        i += len;
        if i > bytes.len() {
            return false;
        }
        if code == 0xDA {
            // Entropy-coded data up to the next real marker.
            loop {
                match bytes.get(i..i + 2) {
                    None => return false,
                    Some([0xFF, next]) if *next != 0x00 && !(0xD0..=0xD7).contains(next) => break,
                    Some(_) => i += 1,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg() -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        out
    }

    #[test]
    fn a_jpeg_cut_short_is_truncated_and_a_whole_one_is_not() {
        let whole = jpeg();
        assert!(jpeg_is_complete(&whole));
        let mut trailing = whole.clone();
        trailing.extend_from_slice(b"junk after the end");
        assert!(jpeg_is_complete(&trailing), "data after EOI is fine");
        for cut in [whole.len() - 2, whole.len() * 2 / 3, 200, 3] {
            assert!(!jpeg_is_complete(&whole[..cut]), "cut at {cut}");
            let err = decode_image(&whole[..cut], DEFAULT_MAX_PIXELS).unwrap_err();
            assert!(matches!(err, Error::Truncated(_)), "cut at {cut}: {err}");
        }
        assert_eq!(
            decode_image(&whole, DEFAULT_MAX_PIXELS).unwrap().width(),
            64
        );
    }

    #[test]
    fn a_probe_tells_the_size_and_cost_before_decoding() {
        let whole = jpeg();
        let p = probe(&whole, DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!(p.dimensions(), (64, 48));
        assert_eq!(p.decoded_bytes(), 64 * 48 * 3);
        assert!(matches!(probe(&whole, 100), Err(Error::Image(_))));
    }

    #[test]
    fn bytes_that_are_not_an_image_are_rejected_with_a_reason() {
        let err = decode_image(b"<html>not an image</html>", DEFAULT_MAX_PIXELS).unwrap_err();
        assert!(err.to_string().contains("not an image"), "{err}");
        let err = decode_image(b"", DEFAULT_MAX_PIXELS).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }
}
