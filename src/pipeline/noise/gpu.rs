//! `gpu`: the noise `torch.randn(..., device="cuda")` gives after `manual_seed(seed)`, as
//! AUTOMATIC1111 computes it without a GPU (its "NV" random number source,
//! `modules/rng_philox.py`), and so on any device here.
//!
//! Element `i` of a draw is Philox 4x32-10 keyed by the 64-bit seed (low word first) at
//! counter `(offset, 0, i, 0)`; the first two output words `x`, `y` go through curand's
//! Box–Muller and the sine half is kept: `u = x·2⁻³² + 2⁻³³`, `v = y·2π·2⁻³² + π·2⁻³²`
//! (curand's float constants), value `√(−2 ln u) · sin v`. A1111 evaluates that last step in
//! double precision and rounds to f32; so do we. Each draw (one `randn` call) advances the
//! offset by one, as A1111's generator does between the initial noise and each ancestral
//! step's noise.
//!
//! A1111's own claim is that this equals CUDA torch for its uses; what we could verify is
//! recorded with the references in `tools/make_noise_refs.py`.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// One Philox 4x32 block of 10 rounds.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let p0 = u64::from(c[0]) * u64::from(M0);
        let p1 = u64::from(c[2]) * u64::from(M1);
        c = [
            (p1 >> 32) as u32 ^ c[1] ^ k[0],
            p1 as u32,
            (p0 >> 32) as u32 ^ c[3] ^ k[1],
            p0 as u32,
        ];
    }
    c
}

/// curand's `CURAND_2POW32_INV` and `CURAND_2POW32_INV_2PI`, as float32 (A1111's values).
fn constants() -> (f64, f64) {
    let inv = 2.3283064e-10f64 as f32;
    let inv_2pi = (2.3283064e-10f64 * 6.2831855) as f32;
    (f64::from(inv), f64::from(inv_2pi))
}

/// A1111's NV generator for one seed.
#[derive(Clone, Debug)]
pub struct Philox {
    key: [u32; 2],
    offset: u32,
}

impl Philox {
    pub fn new(seed: u64) -> Philox {
        Philox {
            key: [seed as u32, (seed >> 32) as u32],
            offset: 0,
        }
    }

    /// One `randn` call of `n` values (the counter's index word is 32 bits: up to 2³² values).
    pub fn draw(&mut self, n: usize) -> Vec<f32> {
        let (inv, inv_2pi) = constants();
        let out = (0..n)
            .map(|i| {
                let [x, y, _, _] = philox4x32_10([self.offset, 0, i as u32, 0], self.key);
                let u = f64::from(x) * inv + inv / 2.0;
                let v = f64::from(y) * inv_2pi + inv_2pi / 2.0;
                ((-2.0 * u.ln()).sqrt() * v.sin()) as f32
            })
            .collect();
        self.offset = self.offset.wrapping_add(1);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_known_answer() {
        // Random123's known-answer vectors for philox4x32_10.
        assert_eq!(
            philox4x32_10([0, 0, 0, 0], [0, 0]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0]
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn a1111_docstring_values() {
        // rng_philox.py's docstring: Generator(seed=0).randn((3, 4)), which are CUDA torch's
        // float32 values; the float64 formula lands within a few float32 ulps of them.
        let got = Philox::new(0).draw(12);
        let want = [
            -0.92466259,
            -0.42534415,
            -2.6438457,
            0.14518388,
            -0.12086647,
            -0.57972564,
            -0.62285122,
            -0.32838709,
            -1.07454231,
            -0.36314407,
            -1.67105067,
            2.26550497,
        ];
        for (g, w) in got.iter().zip(want) {
            assert!((f64::from(*g) - w).abs() < 5e-7, "{got:?}");
        }
    }
}
