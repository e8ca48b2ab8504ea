//! Seeded Gaussian noise: the initial latents and the ancestral samplers' fresh noise, from
//! one of three sources (the recipe's [`NoiseKind`], `--rng`):
//!
//! - [`cpu`]: torch's CPU generator, `torch.randn(…, generator=torch.Generator("cpu")
//!   .manual_seed(seed))` — what diffusers and ComfyUI draw on a CPU;
//! - [`gpu`]: torch's CUDA generator (Philox), as AUTOMATIC1111's default and its "NV" source
//!   compute it — what A1111 users with an NVIDIA card get;
//! - [`lantern`]: Lantern's own first generator, for pictures made with it.
//!
//! One [`Noise`] is made per image from that image's seed (`seed + i` for image `i` of a batch,
//! A1111's convention); the pipeline draws the initial latents from it, then hands it to the
//! sampler, whose every `randn_like` is the next draw of the same generator — the order in
//! which diffusers' pipeline and A1111's samplers consume theirs.

pub mod cpu;
pub mod gpu;
pub mod lantern;

use candle_core::{Device, Tensor};

pub use self::cpu::TorchCpu;
pub use self::gpu::Philox;
pub use self::lantern::SeededNoise;
use crate::error::Result;
pub use crate::recipe::NoiseKind;
use crate::schedulers::NoiseSource;

/// One image's noise generator.
pub enum Noise {
    Cpu(TorchCpu),
    Gpu(Philox),
    Lantern(SeededNoise),
}

impl Noise {
    pub fn new(kind: NoiseKind, seed: u64) -> Noise {
        match kind {
            NoiseKind::Cpu => Noise::Cpu(TorchCpu::new(seed)),
            NoiseKind::Gpu => Noise::Gpu(Philox::new(seed)),
            NoiseKind::Lantern => Noise::Lantern(SeededNoise::new(seed)),
        }
    }

    /// One `randn` call's worth of standard normal values, in row-major order.
    pub fn draw(&mut self, n: usize) -> Vec<f32> {
        match self {
            Noise::Cpu(g) => g.draw(n),
            Noise::Gpu(g) => g.draw(n),
            Noise::Lantern(g) => g.draw(n),
        }
    }

    /// `torch.randn(shape)` from this generator, as f32 on `device`.
    pub fn randn(&mut self, shape: &[usize], device: &Device) -> Result<Tensor> {
        let n = shape.iter().product();
        Ok(Tensor::from_vec(self.draw(n), shape, device)?)
    }
}

impl NoiseSource for Noise {
    fn randn_like(&mut self, like: &Tensor) -> Result<Tensor> {
        self.randn(like.dims(), like.device())
    }
}

/// A fresh random seed for "random" generations (always shown to the user afterwards).
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    // Keep seeds in the range other tools (A1111's 32-bit seeds) display and accept.
    h.finish() % 4_294_967_296
}
