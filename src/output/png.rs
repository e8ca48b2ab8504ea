//! PNG encode/decode with the A1111 `parameters` text chunk, through the `png` crate only.
//!
//! Writing: tEXt when the text is Latin-1 (what A1111/PIL write, and what the oldest readers
//! understand), iTXt (UTF-8, uncompressed, so naive readers still find it) otherwise.
//! Reading: tEXt, zTXt or iTXt, compressed or not, before or after the image data; compressed
//! text is inflated up to [`MAX_TEXT_BYTES`] only.

use std::io::{BufRead, BufReader, Cursor, Seek};
use std::path::Path;

use png::{BitDepth, ColorType, Decoder, Encoder, Limits, Transformations};

use crate::error::{Error, Result};
use crate::output::image::RgbImage;

/// The keyword A1111 (and every tool that reads its PNGs) uses.
pub const PARAMETERS_KEYWORD: &str = "parameters";

/// Largest decoded image we accept (RGBA8 of 16384×16384 is 1 GiB; a hostile header must not
/// make us allocate more than this).
const MAX_DECODED_BYTES: usize = 512 * 1024 * 1024;

/// Largest `parameters` text we inflate from a zTXt/iTXt chunk. A1111 texts are a few KB; a
/// hostile PNG can inflate a few KB to gigabytes, so decompression stops at this size and the
/// file is reported as unreadable instead.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;

/// Whether `text` can go in a tEXt chunk (Latin-1, no NUL).
pub fn is_latin1(text: &str) -> bool {
    text.chars().all(|c| (c as u32) <= 0xFF && c != '\0')
}

/// Encodes `image` as a PNG carrying `parameters` (when given) as a text chunk.
pub fn encode_png(image: &RgbImage, parameters: Option<&str>) -> Result<Vec<u8>> {
    image.validate()?;
    let mut out = Vec::with_capacity(image.data.len() / 2 + 1024);
    {
        let mut encoder = Encoder::new(&mut out, image.width, image.height);
        encoder.set_color(ColorType::Rgb);
        encoder.set_depth(BitDepth::Eight);
        encoder.set_compression(png::Compression::Balanced);
        if let Some(text) = parameters {
            let added = if is_latin1(text) {
                encoder.add_text_chunk(PARAMETERS_KEYWORD.into(), text.into())
            } else {
                encoder.add_itxt_chunk(PARAMETERS_KEYWORD.into(), text.into())
            };
            added.map_err(|e| Error::png(None, format!("cannot add the parameters chunk: {e}")))?;
        }
        let mut writer = encoder
            .write_header()
            .map_err(|e| Error::png(None, format!("cannot encode: {e}")))?;
        writer
            .write_image_data(&image.data)
            .map_err(|e| Error::png(None, format!("cannot encode: {e}")))?;
        writer
            .finish()
            .map_err(|e| Error::png(None, format!("cannot encode: {e}")))?;
    }
    Ok(out)
}

/// The `parameters` text of a PNG in memory; `Ok(None)` when it has none.
pub fn read_parameters(bytes: &[u8]) -> Result<Option<String>> {
    read_parameters_from(Cursor::new(bytes), None)
}

/// The `parameters` text of a PNG file; reads only up to the image data when the text comes
/// first (as it does in ours and A1111's), which keeps importing thousands of files quick.
pub fn read_parameters_file(path: &Path) -> Result<Option<String>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    read_parameters_from(BufReader::new(file), Some(path))
}

fn read_parameters_from<R: BufRead + Seek>(reader: R, path: Option<&Path>) -> Result<Option<String>> {
    let bad = |e: png::DecodingError| Error::png(path, format!("not a readable PNG: {e}"));
    let decoder = Decoder::new_with_limits(
        reader,
        Limits {
            bytes: MAX_DECODED_BYTES,
        },
    );
    let mut reader = decoder.read_info().map_err(bad)?;
    if let Some(text) = find_parameters(reader.info(), path)? {
        return Ok(Some(text));
    }
    // Text chunks may also follow the image data; read on to the end to see them.
    reader.finish().map_err(bad)?;
    find_parameters(reader.info(), path)
}

fn find_parameters(info: &png::Info<'_>, path: Option<&Path>) -> Result<Option<String>> {
    if let Some(c) = info
        .uncompressed_latin1_text
        .iter()
        .find(|c| c.keyword == PARAMETERS_KEYWORD)
    {
        return Ok(Some(c.text.clone()));
    }
    if let Some(c) = info
        .compressed_latin1_text
        .iter()
        .find(|c| c.keyword == PARAMETERS_KEYWORD)
    {
        let mut c = c.clone();
        return c
            .decompress_text_with_limit(MAX_TEXT_BYTES)
            .and_then(|()| c.get_text())
            .map_err(|e| text_error(path, "zTXt", &e))
            .map(Some);
    }
    if let Some(c) = info.utf8_text.iter().find(|c| c.keyword == PARAMETERS_KEYWORD) {
        let mut c = c.clone();
        return c
            .decompress_text_with_limit(MAX_TEXT_BYTES)
            .and_then(|()| c.get_text())
            .map_err(|e| text_error(path, "iTXt", &e))
            .map(Some);
    }
    Ok(None)
}

/// The error for a compressed `parameters` chunk that does not inflate (within the cap).
fn text_error(path: Option<&Path>, kind: &str, e: &png::DecodingError) -> Error {
    // The png crate has no public kind for "over the limit"; its message names it.
    if e.to_string().contains("decompression space") {
        Error::png(
            path,
            format!(
                "the {kind} parameters text is larger than {} MiB once decompressed; ignored",
                MAX_TEXT_BYTES / (1024 * 1024)
            ),
        )
    } else {
        Error::png(path, format!("unreadable {kind} parameters: {e}"))
    }
}

/// Decodes any PNG (grey, grey+alpha, palette, RGB, RGBA; 1–16 bits) to 8-bit RGB.
/// Transparent pixels are composited over white, as an image viewer shows them.
pub fn decode_png(bytes: &[u8]) -> Result<RgbImage> {
    decode_png_from(Cursor::new(bytes), None)
}

/// [`decode_png`] for a file.
pub fn decode_png_file(path: &Path) -> Result<RgbImage> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    decode_png_from(BufReader::new(file), Some(path))
}

fn decode_png_from<R: BufRead + Seek>(reader: R, path: Option<&Path>) -> Result<RgbImage> {
    let bad = |e: png::DecodingError| Error::png(path, format!("not a readable PNG: {e}"));
    let mut decoder = Decoder::new_with_limits(
        reader,
        Limits {
            bytes: MAX_DECODED_BYTES,
        },
    );
    decoder.set_transformations(Transformations::normalize_to_color8());
    decoder.set_ignore_text_chunk(true);
    let mut reader = decoder.read_info().map_err(bad)?;
    let size = reader
        .output_buffer_size()
        .filter(|&n| n <= MAX_DECODED_BYTES)
        .ok_or_else(|| Error::png(path, "image is too large to open"))?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf).map_err(bad)?;
    let (width, height) = (frame.width, frame.height);
    let pixels = width as usize * height as usize;
    let src = &buf[..frame.buffer_size()];
    let (color, depth) = (frame.color_type, frame.bit_depth);
    if depth != BitDepth::Eight {
        return Err(Error::png(
            path,
            format!("unexpected bit depth {depth:?} after conversion"),
        ));
    }
    let channels = match color {
        ColorType::Grayscale => 1,
        ColorType::GrayscaleAlpha => 2,
        ColorType::Rgb => 3,
        ColorType::Rgba => 4,
        ColorType::Indexed => return Err(Error::png(path, "palette was not expanded")),
    };
    if src.len() < pixels * channels {
        return Err(Error::png(path, "image data is shorter than its size"));
    }
    let over_white = |v: u8, a: u8| -> u8 {
        let (v, a) = (v as u32, a as u32);
        ((v * a + 255 * (255 - a) + 127) / 255) as u8
    };
    let mut data = Vec::with_capacity(pixels * 3);
    for px in src.chunks_exact(channels).take(pixels) {
        match channels {
            1 => data.extend_from_slice(&[px[0], px[0], px[0]]),
            2 => {
                let g = over_white(px[0], px[1]);
                data.extend_from_slice(&[g, g, g]);
            }
            3 => data.extend_from_slice(px),
            _ => data.extend_from_slice(&[
                over_white(px[0], px[3]),
                over_white(px[1], px[3]),
                over_white(px[2], px[3]),
            ]),
        }
    }
    RgbImage::from_raw(width, height, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        let mut img = RgbImage::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let i = ((y * w + x) * 3) as usize;
                img.data[i] = (x * 255 / w.max(1)) as u8;
                img.data[i + 1] = (y * 255 / h.max(1)) as u8;
                img.data[i + 2] = ((x + y) % 256) as u8;
            }
        }
        img
    }

    /// Encodes with the png crate in another colour type, for decode tests.
    fn encode_other(
        w: u32,
        h: u32,
        color: ColorType,
        depth: BitDepth,
        data: &[u8],
        palette: Option<Vec<u8>>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut e = Encoder::new(&mut out, w, h);
            e.set_color(color);
            e.set_depth(depth);
            if let Some(p) = palette {
                e.set_palette(p);
            }
            let mut w = e.write_header().unwrap();
            w.write_image_data(data).unwrap();
            w.finish().unwrap();
        }
        out
    }

    #[test]
    fn rgb_round_trip_and_chunk_kind() {
        let img = gradient(7, 5);
        let latin = encode_png(&img, Some("café, naïve")).unwrap();
        assert!(latin.windows(4).any(|w| w == b"tEXt"));
        assert!(!latin.windows(4).any(|w| w == b"iTXt"));
        assert_eq!(read_parameters(&latin).unwrap().as_deref(), Some("café, naïve"));
        assert_eq!(decode_png(&latin).unwrap(), img);

        let utf8 = encode_png(&img, Some("狐狸 🦊")).unwrap();
        assert!(utf8.windows(4).any(|w| w == b"iTXt"));
        assert!(!utf8.windows(4).any(|w| w == b"tEXt"));
        assert_eq!(read_parameters(&utf8).unwrap().as_deref(), Some("狐狸 🦊"));

        let none = encode_png(&img, None).unwrap();
        assert_eq!(read_parameters(&none).unwrap(), None);
    }

    #[test]
    fn other_colour_types_become_rgb() {
        // Grey 8-bit.
        let g = encode_other(2, 1, ColorType::Grayscale, BitDepth::Eight, &[0, 200], None);
        assert_eq!(decode_png(&g).unwrap().data, vec![0, 0, 0, 200, 200, 200]);
        // Grey 16-bit (big-endian samples), stripped to the high byte.
        let g16 = encode_other(
            2,
            1,
            ColorType::Grayscale,
            BitDepth::Sixteen,
            &[0x12, 0x34, 0xFF, 0xFF],
            None,
        );
        assert_eq!(decode_png(&g16).unwrap().data, vec![0x12, 0x12, 0x12, 255, 255, 255]);
        // RGBA: opaque kept, transparent becomes white, half over white.
        let rgba = encode_other(
            3,
            1,
            ColorType::Rgba,
            BitDepth::Eight,
            &[10, 20, 30, 255, 1, 2, 3, 0, 0, 0, 0, 128],
            None,
        );
        assert_eq!(
            decode_png(&rgba).unwrap().data,
            vec![10, 20, 30, 255, 255, 255, 127, 127, 127]
        );
        // Palette, 2 bits per pixel.
        let pal = encode_other(
            4,
            1,
            ColorType::Indexed,
            BitDepth::Two,
            &[0b00_01_10_00],
            Some(vec![1, 2, 3, 40, 50, 60, 70, 80, 90]),
        );
        assert_eq!(
            decode_png(&pal).unwrap().data,
            vec![1, 2, 3, 40, 50, 60, 70, 80, 90, 1, 2, 3]
        );
        // Grey + alpha 16-bit.
        let ga = encode_other(
            1,
            1,
            ColorType::GrayscaleAlpha,
            BitDepth::Sixteen,
            &[0, 0, 0xFF, 0xFF],
            None,
        );
        assert_eq!(decode_png(&ga).unwrap().data, vec![0, 0, 0]);
    }

    #[test]
    fn garbage_and_truncated_files_are_errors() {
        assert!(decode_png(b"").is_err());
        assert!(decode_png(b"not a png at all").is_err());
        assert!(read_parameters(b"\x89PNG\r\n\x1a\n").is_err());
        let good = encode_png(&gradient(16, 16), Some("x")).unwrap();
        for cut in [8, 20, 33, good.len() / 2, good.len() - 13] {
            let _ = read_parameters(&good[..cut]);
            assert!(decode_png(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(
            encode_png(
                &RgbImage {
                    width: 2,
                    height: 2,
                    data: vec![0; 5]
                },
                None
            )
            .is_err()
        );
    }
}
