//! Thumbnails for the result grid: upright (EXIF applied by the decoder), transparency flattened
//! onto white, the longest side shrunk to `size` with the same antialiased bicubic as CLIP's
//! preprocessing, saved as baseline JPEG (every browser, deterministic bytes).

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageResult};

/// Bumped when thumbnails change, so cached ones are remade.
pub(crate) const VERSION: u32 = 1;
const QUALITY: u8 = 82;

/// Makes the JPEG thumbnail of a decoded, oriented image.
pub(crate) fn make(image: &DynamicImage, size: u32) -> ImageResult<Vec<u8>> {
    let rgba = image.to_rgba8();
    let (w, h) = rgba.dimensions();
    let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
    for px in rgba.pixels() {
        let a = u32::from(px[3]);
        for c in 0..3 {
            // Over white: c·a + 255·(1 − a), rounded.
            rgb.push(((u32::from(px[c]) * a + 255 * (255 - a) + 127) / 255) as u8);
        }
    }
    let scale = f64::from(size) / f64::from(w.max(h));
    let (tw, th) = if scale < 1.0 {
        (
            ((f64::from(w) * scale).round() as u32).max(1),
            ((f64::from(h) * scale).round() as u32).max(1),
        )
    } else {
        (w, h)
    };
    let pixels = if (tw, th) == (w, h) {
        rgb
    } else {
        vitrine_clip::resize_rgb8(&rgb, w as usize, h as usize, tw as usize, th as usize)
    };
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, QUALITY).encode(
        &pixels,
        tw,
        th,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

/// Whether cached bytes are a whole JPEG (start and end markers), not a torn write.
pub(crate) fn looks_complete(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8]) && bytes.ends_with(&[0xFF, 0xD9])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_fit_the_size_keep_the_aspect_and_flatten_alpha_on_white() {
        let mut img = image::RgbaImage::new(600, 300);
        for p in img.pixels_mut() {
            *p = image::Rgba([0, 0, 0, 0]);
        }
        let jpeg = make(&DynamicImage::ImageRgba8(img), 256).unwrap();
        assert!(looks_complete(&jpeg));
        let back = image::load_from_memory(&jpeg).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), (256, 128));
        assert!(
            back.pixels()
                .all(|p| p[0] > 250 && p[1] > 250 && p[2] > 250)
        );
        let small = make(&DynamicImage::ImageRgb8(image::RgbImage::new(40, 20)), 256).unwrap();
        assert_eq!(image::load_from_memory(&small).unwrap().width(), 40);
    }
}
