//! `lantern`: the generator Lantern used before it could draw torch's noise (xoshiro256**
//! seeded through SplitMix64, then Box–Muller in f64), kept unchanged so that pictures made
//! with it come out the same again. Values are drawn in pairs; a draw of odd length keeps
//! the spare for the next draw.

#[derive(Clone, Debug)]
pub struct SeededNoise {
    state: [u64; 4],
    spare: Option<f32>,
}

impl SeededNoise {
    pub fn new(seed: u64) -> SeededNoise {
        let mut sm = seed;
        let mut next = || {
            sm = sm.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = sm;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        SeededNoise {
            state: [next(), next(), next(), next()],
            spare: None,
        }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in (0, 1], never 0 (Box–Muller takes its log).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    pub fn standard_normal(&mut self) -> f32 {
        if let Some(v) = self.spare.take() {
            return v;
        }
        let (u1, u2) = (self.uniform(), self.uniform());
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        self.spare = Some((r * theta.sin()) as f32);
        (r * theta.cos()) as f32
    }

    /// One draw of `n` values.
    pub fn draw(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.standard_normal()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_noise_and_roughly_standard() {
        let a: Vec<f32> = (0..4)
            .map({
                let mut n = SeededNoise::new(42);
                move |_| n.standard_normal()
            })
            .collect();
        let mut n = SeededNoise::new(42);
        let b: Vec<f32> = (0..4).map(|_| n.standard_normal()).collect();
        assert_eq!(a, b);
        let mut n = SeededNoise::new(7);
        let xs: Vec<f64> = (0..100_000).map(|_| n.standard_normal() as f64).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
        assert_ne!(SeededNoise::new(1).next_u64(), SeededNoise::new(2).next_u64());
    }
}
