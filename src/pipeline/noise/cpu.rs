//! `cpu`: the numbers `torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))`
//! gives for float32 — what diffusers and ComfyUI draw on a CPU — written from torch's
//! `CPUGeneratorImpl`, `at::mt19937`, `DistributionsHelper.h` and the CPU `normal_kernel`
//! (`native/cpu/DistributionTemplates.h`).
//!
//! - **Seeding**: `manual_seed(s)` seeds mt19937 with the low 32 bits of the 64-bit seed
//!   (Knuth's initialisation, `state[0] = s & 0xffffffff`), so seeds `s` and `s + 2^32`
//!   draw the same numbers; a negative Python seed is its two's complement. It also clears
//!   the cached second normal of the double path below.
//! - **16 or more values** (one `randn` call): first one 24-bit uniform per element,
//!   `(mt() & 0xffffff) · 2⁻²⁴`, written in place; then Box–Muller over each whole block of 16
//!   (element `j` and `j + 8` of a block make a pair: `u1 = 1 − x[j]`, `u2 = x[j+8]`,
//!   `r = √(−2 ln u1)`, `x[j] = r cos 2πu2`, `x[j+8] = r sin 2πu2`); when the count is not a
//!   multiple of 16 the **last 16** elements get 16 fresh uniforms and are transformed again,
//!   overwriting the tail of the last whole block.
//! - **Fewer than 16 values**: each value from `normal_distribution<double>`: two 53-bit
//!   uniforms (`random64` = two mt outputs, first in the high word), `r = √(−2 log1p(−u2))`,
//!   θ = 2πu1, returns `r cos θ` and keeps `r sin θ` in the generator for the next such value
//!   (also across calls, and across the ≥16 path, which neither uses nor clears it).
//!
//! The ≥16 transform exists in two builds of torch: the AVX2 one (`normal_fill_16_AVX2`, used
//! by every x86-64 torch on an AVX2 CPU — AVX-512 CPUs too, torch does not dispatch this
//! kernel to AVX-512) computes in f32 with Cephes-style `log256_ps`/`sincos256_ps`
//! polynomials (each multiply-then-add fused, as GCC compiles them with `-mfma`) and
//! θ = `(float)2π · u2`; the scalar one (`normal_fill_16<float>`, used where
//! AVX2 is absent, e.g. ARM builds) uses libm `logf`/`cosf`/`sinf` with θ rounded from a
//! double product. They differ in the last bits of some values; [`Kernel::Avx2`] is the
//! default, and both are checked against real torch in `tests/noise.rs`.

/// Which of torch's two float32 `normal_fill` builds to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Kernel {
    /// `normal_fill_16_AVX2`: x86-64 torch on any AVX2 CPU (what diffusers users on PCs get).
    #[default]
    Avx2,
    /// `normal_fill_16<float>`: torch without AVX2 (`ATEN_CPU_CAPABILITY=default`, ARM).
    Scalar,
}

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER: u32 = 0x8000_0000;
const LOWER: u32 = 0x7fff_ffff;

/// torch's `at::mt19937`: the reference mt19937, seeded from the low 32 bits.
#[derive(Clone)]
struct Mt19937 {
    state: Box<[u32; N]>,
    next: usize,
}

impl Mt19937 {
    fn new(seed: u64) -> Mt19937 {
        let mut state = Box::new([0u32; N]);
        state[0] = seed as u32;
        for j in 1..N {
            let prev = state[j - 1];
            state[j] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(j as u32);
        }
        Mt19937 { state, next: N }
    }

    fn twist(&mut self) {
        let s = &mut self.state;
        for i in 0..N {
            let y = (s[i] & UPPER) | (s[(i + 1) % N] & LOWER);
            let mag = if s[(i + 1) % N] & 1 == 1 { MATRIX_A } else { 0 };
            s[i] = s[(i + M) % N] ^ (y >> 1) ^ mag;
        }
        self.next = 0;
    }

    fn next_u32(&mut self) -> u32 {
        if self.next >= N {
            self.twist();
        }
        let mut y = self.state[self.next];
        self.next += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }
}

/// torch's CPU generator after `manual_seed(seed)`; each [`TorchCpu::draw`] is one
/// `torch.randn` call, so successive draws continue the stream exactly as diffusers'
/// pipeline and its ancestral samplers consume one `torch.Generator`.
#[derive(Clone)]
pub struct TorchCpu {
    mt: Mt19937,
    /// `next_double_normal_sample_`: the sine half of the last double Box–Muller pair.
    cached_normal: Option<f64>,
    kernel: Kernel,
}

impl TorchCpu {
    pub fn new(seed: u64) -> TorchCpu {
        TorchCpu::with_kernel(seed, Kernel::default())
    }

    pub fn with_kernel(seed: u64, kernel: Kernel) -> TorchCpu {
        TorchCpu {
            mt: Mt19937::new(seed),
            cached_normal: None,
            kernel,
        }
    }

    /// `uniform_real_distribution<float>(0, 1)`: the low 24 bits of one draw, exact in f32.
    fn uniform_f32(&mut self) -> f32 {
        (self.mt.next_u32() & 0x00ff_ffff) as f32 * (1.0 / 16_777_216.0)
    }

    /// `uniform_real_distribution<double>(0, 1)`: the low 53 bits of `random64()`.
    fn uniform_f64(&mut self) -> f64 {
        let hi = u64::from(self.mt.next_u32());
        let lo = u64::from(self.mt.next_u32());
        (((hi << 32) | lo) & ((1u64 << 53) - 1)) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `normal_distribution<double>(0, 1)` with the generator's cached second value.
    fn normal_f64(&mut self) -> f64 {
        if let Some(v) = self.cached_normal.take() {
            return v;
        }
        let u1 = self.uniform_f64();
        let u2 = self.uniform_f64();
        let r = (-2.0 * (-u2).ln_1p()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u1;
        self.cached_normal = Some(r * theta.sin());
        r * theta.cos()
    }

    /// One `torch.randn(n)` call (any shape with `n` elements, contiguous, float32).
    pub fn draw(&mut self, n: usize) -> Vec<f32> {
        if n < 16 {
            return (0..n).map(|_| self.normal_f64() as f32).collect();
        }
        let mut data: Vec<f32> = (0..n).map(|_| self.uniform_f32()).collect();
        for block in data.chunks_exact_mut(16) {
            self.fill_16(block);
        }
        if !n.is_multiple_of(16) {
            let tail = &mut data[n - 16..];
            for v in tail.iter_mut() {
                *v = self.uniform_f32();
            }
            self.fill_16(tail);
        }
        data
    }

    fn fill_16(&self, block: &mut [f32]) {
        match self.kernel {
            Kernel::Avx2 => fill_16_avx2(block),
            Kernel::Scalar => fill_16_scalar(block),
        }
    }
}

/// `normal_fill_16<float>` (mean 0, std 1).
fn fill_16_scalar(block: &mut [f32]) {
    for j in 0..8 {
        let u1 = 1.0 - block[j];
        let u2 = block[j + 8];
        let radius = (-2.0 * u1.ln()).sqrt();
        let theta = (2.0f32 as f64 * std::f64::consts::PI * u2 as f64) as f32;
        block[j] = radius * theta.cos();
        block[j + 8] = radius * theta.sin();
    }
}

/// `normal_fill_16_AVX2` (mean 0, std 1: its final `fmadd(n, 1, 0)` is exact), lane by lane.
fn fill_16_avx2(block: &mut [f32]) {
    let two_pi = (2.0f32 as f64 * std::f64::consts::PI) as f32;
    for j in 0..8 {
        let u1 = 1.0 - block[j];
        let u2 = block[j + 8];
        let radius = (-2.0 * log_ps(u1)).sqrt();
        let (sin, cos) = sincos_ps(two_pi * u2);
        block[j] = radius * cos;
        block[j + 8] = radius * sin;
    }
}

/// One lane of `log256_ps` (avx_mathfun.h, after Cephes `logf`) as torch's binary computes
/// it (a multiply feeding an add becomes one fused multiply-add), for the arguments
/// `normal_fill` gives it: u1 in (0, 1], never zero, negative, NaN or denormal.
#[allow(clippy::excessive_precision)] // the source's literals, digit for digit
fn log_ps(x: f32) -> f32 {
    // The constants as avx_mathfun.h writes them: double literals rounded to float.
    const SQRTHF: f32 = std::f64::consts::FRAC_1_SQRT_2 as f32; // 0.707106781186547524
    const P: [f32; 9] = [
        7.0376836292E-2f64 as f32,
        -1.1514610310E-1f64 as f32,
        1.1676998740E-1f64 as f32,
        -1.2420140846E-1f64 as f32,
        1.4249322787E-1f64 as f32,
        -1.6668057665E-1f64 as f32,
        2.0000714765E-1f64 as f32,
        -2.4999993993E-1f64 as f32,
        3.3333331174E-1f64 as f32,
    ];
    const Q1: f32 = -2.12194440e-4f64 as f32;
    const Q2: f32 = 0.693359375;
    let x = x.max(f32::MIN_POSITIVE);
    let bits = x.to_bits();
    let mut e = ((bits >> 23) as i32 - 0x7f) as f32 + 1.0;
    // The mantissa as a number in [0.5, 1).
    let mut m = f32::from_bits((bits & !0x7f80_0000) | 0.5f32.to_bits());
    let below = m < SQRTHF;
    let tmp = if below { m } else { 0.0 };
    m -= 1.0;
    if below {
        e -= 1.0;
    }
    m += tmp;
    // torch's build contracts each multiply-then-add of the source into one fused
    // multiply-add (GCC's default floating-point contraction with `-mfma`); so do we.
    let z = m * m;
    let mut y = P[0];
    for p in &P[1..] {
        y = y.mul_add(m, *p);
    }
    y *= m;
    y = y.mul_add(z, e * Q1);
    y = (-z).mul_add(0.5, y);
    e.mul_add(Q2, m + y)
}

/// One lane of `sincos256_ps` (avx_mathfun.h, after Cephes `sinf`/`cosf`), multiply-adds
/// fused as in torch's binary: (sin, cos) for θ in [0, 2π).
#[allow(clippy::excessive_precision)] // the source's literals, digit for digit
fn sincos_ps(x: f32) -> (f32, f32) {
    const FOPI: f32 = 1.27323954473516f64 as f32; // 4 / π
    const DP1: f32 = -0.78515625;
    const DP2: f32 = -2.4187564849853515625e-4f64 as f32;
    const DP3: f32 = -3.77489497744594108e-8f64 as f32;
    const SINCOF: [f32; 3] = [
        -1.9515295891E-4f64 as f32,
        8.3321608736E-3f64 as f32,
        -1.6666654611E-1f64 as f32,
    ];
    const COSCOF: [f32; 3] = [
        2.443315711809948E-005f64 as f32,
        -1.388731625493765E-003f64 as f32,
        4.166664568298827E-002f64 as f32,
    ];
    let sign_in = x.to_bits() & 0x8000_0000;
    let mut x = f32::from_bits(x.to_bits() & 0x7fff_ffff);
    // j = (int(x · 4/π) + 1) & ~1, as `cvttps` (truncation) gives it.
    let mut j = (x * FOPI) as i32;
    j = (j + 1) & !1;
    let y = j as f32;
    let swap_sin = ((j & 4) as u32) << 29;
    let poly_sin = (j & 2) == 0;
    x = y.mul_add(DP1, x);
    x = y.mul_add(DP2, x);
    x = y.mul_add(DP3, x);
    let sign_cos = ((!(j - 2) & 4) as u32) << 29;
    let sign_sin = sign_in ^ swap_sin;

    let z = x * x;
    let mut c = COSCOF[0].mul_add(z, COSCOF[1]);
    c = c.mul_add(z, COSCOF[2]);
    c *= z;
    c = c.mul_add(z, -(z * 0.5));
    c += 1.0;

    let mut s = SINCOF[0].mul_add(z, SINCOF[1]);
    s = s.mul_add(z, SINCOF[2]);
    s *= z;
    s = s.mul_add(x, x);

    // poly_sin: sin takes the sine polynomial and cos the cosine one; otherwise swapped.
    let (sin, cos) = if poly_sin { (s, c) } else { (c, s) };
    (
        f32::from_bits(sin.to_bits() ^ sign_sin),
        f32::from_bits(cos.to_bits() ^ sign_cos),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_the_reference_stream() {
        // The 10000th output of mt19937 seeded with 5489 is 4123659995 (C++ [rand.predef]).
        let mut mt = Mt19937::new(5489);
        let v = (0..10_000).map(|_| mt.next_u32()).last().unwrap();
        assert_eq!(v, 4_123_659_995);
    }

    #[test]
    fn polynomials_are_close_to_libm() {
        for i in 1..=4096 {
            let u = i as f32 / 4096.0;
            assert!((log_ps(u) - u.ln()).abs() <= 2e-7 * u.ln().abs().max(1.0), "{u}");
            let t = u * std::f32::consts::TAU * 0.99999;
            let (s, c) = sincos_ps(t);
            assert!((s - t.sin()).abs() < 3e-7 && (c - t.cos()).abs() < 3e-7, "{t}");
        }
    }
}
