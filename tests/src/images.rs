//! Test images made at run time with the `image`, `png` and `kamadak-exif` crates: plain PNGs, a
//! PNG whose header claims a huge size (a decompression bomb), an EXIF-rotated JPEG, an animated
//! GIF, a 16-bit PNG, a lossless WebP, a JPEG cut short.

use std::io::Cursor;

use image::codecs::gif::GifEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::webp::WebPEncoder;
use image::{
    Delay, DynamicImage, Frame, ImageBuffer, ImageEncoder, Rgb, RgbImage, Rgba, RgbaImage,
};

/// Encodes an image as PNG bytes.
pub fn png(image: &DynamicImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode PNG");
    out.into_inner()
}

/// The mean of each RGB channel.
pub fn mean_rgb(image: &DynamicImage) -> [f64; 3] {
    let rgb = image.to_rgb8();
    let n = f64::from(rgb.width() * rgb.height());
    let mut sum = [0f64; 3];
    for p in rgb.pixels() {
        for c in 0..3 {
            sum[c] += f64::from(p[c]);
        }
    }
    sum.map(|s| s / n)
}

/// A PNG whose header claims `width` x `height` but holds a few bytes of data: a decompression
/// bomb that only a check of the dimensions before decoding stops cheaply.
pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        let mut writer = encoder.write_header().expect("PNG header");
        // A scrap of zlib data; the image is never read that far. Dropping the writer ends the
        // file with IEND.
        writer
            .write_chunk(
                png::chunk::IDAT,
                &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
            )
            .expect("IDAT");
    }
    out
}

/// A 64x32 JPEG, left half red and right half blue, whose EXIF says Orientation = 6 (rotate 90°
/// clockwise to display): shown upright it is 32x64, red on top.
pub fn exif_rotated_jpeg() -> Vec<u8> {
    let img = RgbImage::from_fn(64, 32, |x, _| {
        if x < 32 {
            Rgb([220, 20, 20])
        } else {
            Rgb([20, 20, 220])
        }
    });
    let orientation = exif::Field {
        tag: exif::Tag::Orientation,
        ifd_num: exif::In::PRIMARY,
        value: exif::Value::Short(vec![6]),
    };
    let mut writer = exif::experimental::Writer::new();
    writer.push_field(&orientation);
    let mut tiff = Cursor::new(Vec::new());
    writer.write(&mut tiff, true).expect("write EXIF");
    let mut jpeg = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut jpeg, 95);
    encoder
        .set_exif_metadata(tiff.into_inner())
        .expect("JPEG takes EXIF");
    encoder
        .write_image(img.as_raw(), 64, 32, image::ExtendedColorType::Rgb8)
        .expect("encode JPEG");
    jpeg
}

/// A 2-frame animated GIF: a red frame, then a blue one.
pub fn animated_gif() -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut bytes);
        for colour in [Rgba([230, 10, 10, 255]), Rgba([10, 10, 230, 255])] {
            let frame = Frame::from_parts(
                RgbaImage::from_pixel(40, 30, colour),
                0,
                0,
                Delay::from_numer_denom_ms(100, 1),
            );
            encoder.encode_frame(frame).expect("encode GIF frame");
        }
    }
    bytes
}

/// A 40x30 PNG of 16-bit samples, all of one colour.
pub fn sixteen_bit_png(colour: [u16; 3]) -> Vec<u8> {
    let img: ImageBuffer<Rgb<u16>, Vec<u16>> = ImageBuffer::from_pixel(40, 30, Rgb(colour));
    png(&DynamicImage::ImageRgb16(img))
}

/// A 50x40 lossless WebP with a gradient.
pub fn lossless_webp() -> Vec<u8> {
    let img = RgbaImage::from_fn(50, 40, |x, y| Rgba([10, 200, (x * 5) as u8, 255 - y as u8]));
    let mut bytes = Vec::new();
    WebPEncoder::new_lossless(Cursor::new(&mut bytes))
        .encode(img.as_raw(), 50, 40, image::ExtendedColorType::Rgba8)
        .expect("encode WebP");
    bytes
}

/// A baseline JPEG of a gradient, `width` x `height`.
pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, 90)
        .encode_image(&img)
        .expect("encode JPEG");
    bytes
}
