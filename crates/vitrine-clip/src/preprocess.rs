//! Image bytes → the model's input, equal to Hugging Face's `CLIPImageProcessor`: decode (see
//! `decode`; the format is sniffed from the bytes, not the file name), convert to RGB as PIL's `convert("RGB")`
//! does, bicubic resize of the shortest edge with Pillow's antialiasing, centre crop, /255,
//! mean/std. One deliberate deviation: EXIF orientation is applied first, as browsers show photos;
//! `transformers` ignores it, so a rotated phone photo would otherwise be embedded sideways.

use image::{DynamicImage, RgbImage};

use crate::Result;
use crate::config::PreprocessConfig;
use crate::decode::decode_image;
use crate::resample::resize_rgb8;

/// Bumped whenever preprocessing changes what the model sees, so cached embeddings are redone.
pub const PREPROCESS_VERSION: u32 = 1;

/// `convert("RGB")`: alpha dropped (not composited), grey expanded, 16-bit scaled to 8-bit.
pub fn to_rgb(image: &DynamicImage) -> RgbImage {
    image.to_rgb8()
}

/// Turns decoded images into the vision tower's input.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessor {
    config: PreprocessConfig,
}

impl Preprocessor {
    /// A preprocessor following `preprocessor_config.json`.
    pub fn new(config: PreprocessConfig) -> Self {
        Self { config }
    }

    /// The configuration in use.
    pub fn config(&self) -> &PreprocessConfig {
        &self.config
    }

    /// Resize and centre-crop, still as 8-bit RGB: what the model sees before rescaling.
    pub fn resize_and_crop(&self, rgb: &RgbImage) -> RgbImage {
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let (w, h, data) = match self.config.shortest_edge {
            Some(edge) => {
                let (nw, nh) = shortest_edge_size(w, h, edge);
                (nw, nh, resize_rgb8(rgb.as_raw(), w, h, nw, nh))
            }
            None => (w, h, rgb.as_raw().clone()),
        };
        let (ch, cw) = self.config.crop.unwrap_or((h, w));
        let out = center_crop(&data, w, h, cw, ch);
        RgbImage::from_raw(cw as u32, ch as u32, out).expect("crop buffer has the crop's size")
    }

    /// The normalised `3 x H x W` (channel-major) input of one image.
    pub fn pixels(&self, rgb: &RgbImage) -> Vec<f32> {
        let cropped = self.resize_and_crop(rgb);
        let plane = cropped.width() as usize * cropped.height() as usize;
        let scale = self.config.rescale_factor.unwrap_or(1.0);
        let mut out = vec![0f32; 3 * plane];
        for (i, px) in cropped.pixels().enumerate() {
            for c in 0..3 {
                let v = (f64::from(px[c]) * scale) as f32;
                out[c * plane + i] = match self.config.mean_std {
                    Some((mean, std)) => (v - mean[c] as f32) / std[c] as f32,
                    None => v,
                };
            }
        }
        out
    }

    /// Decodes image bytes and preprocesses them.
    pub fn pixels_from_bytes(&self, bytes: &[u8], max_pixels: u64) -> Result<Vec<f32>> {
        let image = decode_image(bytes, max_pixels)?;
        Ok(self.pixels(&to_rgb(&image)))
    }
}

/// `get_resize_output_image_size(default_to_square=False)`: the short side becomes `edge`, the
/// long side `int(edge * long / short)`.
fn shortest_edge_size(w: usize, h: usize, edge: usize) -> (usize, usize) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = ((edge * long) as f64 / short as f64) as usize;
    if w <= h {
        (edge, new_long)
    } else {
        (new_long, edge)
    }
}

/// `transformers.image_transforms.center_crop`: offsets `(orig - crop) // 2`, zero-filled where
/// the crop reaches past a smaller image.
fn center_crop(src: &[u8], w: usize, h: usize, cw: usize, ch: usize) -> Vec<u8> {
    let top = (h as i64 - ch as i64).div_euclid(2);
    let left = (w as i64 - cw as i64).div_euclid(2);
    let mut out = vec![0u8; cw * ch * 3];
    for y in 0..ch {
        let sy = y as i64 + top;
        if sy < 0 || sy >= h as i64 {
            continue;
        }
        for x in 0..cw {
            let sx = x as i64 + left;
            if sx < 0 || sx >= w as i64 {
                continue;
            }
            let s = (sy as usize * w + sx as usize) * 3;
            out[(y * cw + x) * 3..(y * cw + x) * 3 + 3].copy_from_slice(&src[s..s + 3]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_edge_follows_transformers_rounding() {
        assert_eq!(shortest_edge_size(120, 80, 64), (96, 64));
        assert_eq!(shortest_edge_size(80, 120, 64), (64, 96));
        assert_eq!(shortest_edge_size(90, 70, 64), (82, 64));
        assert_eq!(shortest_edge_size(451, 300, 224), (336, 224));
    }

    #[test]
    fn crop_of_a_small_image_is_zero_padded_like_transformers() {
        // 2x1 image cropped to 4x3: offsets (1-3)//2 = -1 and (2-4)//2 = -1.
        let src = [1, 1, 1, 2, 2, 2];
        let out = center_crop(&src, 2, 1, 4, 3);
        let row1: Vec<u8> = out[12..24].to_vec();
        assert_eq!(row1, [0, 0, 0, 1, 1, 1, 2, 2, 2, 0, 0, 0]);
        assert!(out[..12].iter().chain(&out[24..]).all(|&v| v == 0));
    }
}
