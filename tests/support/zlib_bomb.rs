//! Decompression bombs for the PNG text tests: a zlib stream that inflates `len` copies of one
//! byte from about `len / 160` bytes (one literal, then length-258 distance-1 matches in a
//! fixed-Huffman block), and a PNG carrying it as its compressed `parameters` chunk.

#![allow(dead_code)]

struct Bits {
    out: Vec<u8>,
    acc: u32,
    n: u32,
}

impl Bits {
    /// `n` bits of `v`, least significant first (header fields, extra bits).
    fn put(&mut self, v: u32, n: u32) {
        for i in 0..n {
            self.acc |= ((v >> i) & 1) << self.n;
            self.n += 1;
            if self.n == 8 {
                self.out.push(self.acc as u8);
                (self.acc, self.n) = (0, 0);
            }
        }
    }

    /// A Huffman code of `n` bits, most significant first.
    fn code(&mut self, code: u32, n: u32) {
        for i in (0..n).rev() {
            self.put((code >> i) & 1, 1);
        }
    }

    /// A literal byte in the fixed code.
    fn literal(&mut self, b: u8) {
        if b < 144 {
            self.code(0x30 + b as u32, 8);
        } else {
            self.code(0x190 + (b as u32 - 144), 9);
        }
    }
}

/// A zlib stream that inflates to `len` bytes of `byte`.
pub fn zlib_run(byte: u8, len: usize) -> Vec<u8> {
    let mut bits = Bits {
        out: vec![0x78, 0x01],
        acc: 0,
        n: 0,
    };
    bits.put(1, 1); // BFINAL
    bits.put(1, 2); // BTYPE = fixed Huffman
    let mut left = len;
    if left > 0 {
        bits.literal(byte);
        left -= 1;
    }
    while left >= 258 {
        bits.code(0xC5, 8); // length symbol 285 = 258
        bits.code(0, 5); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        bits.literal(byte);
    }
    bits.code(0, 7); // end of block
    if bits.n > 0 {
        bits.out.push(bits.acc as u8);
    }
    let n = len as u128;
    let a = (1 + byte as u128 * n) % 65521;
    let b = (n + byte as u128 * n * (n + 1) / 2) % 65521;
    bits.out.extend_from_slice(&((b << 16 | a) as u32).to_be_bytes());
    bits.out
}

/// A 4×4 RGB PNG whose `parameters` chunk (zTXt, or compressed iTXt) holds `zlib` as is.
pub fn png_with_compressed_parameters(zlib: &[u8], itxt: bool) -> Vec<u8> {
    let mut data = b"parameters\0".to_vec();
    if itxt {
        data.extend_from_slice(&[1, 0, 0, 0]); // compressed, deflate, no language, no translation
    } else {
        data.push(0); // deflate
    }
    data.extend_from_slice(zlib);
    let mut out = Vec::new();
    {
        let mut e = png::Encoder::new(&mut out, 4, 4);
        e.set_color(png::ColorType::Rgb);
        let mut w = e.write_header().unwrap();
        let kind = if itxt { png::chunk::iTXt } else { png::chunk::zTXt };
        w.write_chunk(kind, &data).unwrap();
        w.write_image_data(&[7; 48]).unwrap();
        w.finish().unwrap();
    }
    out
}
