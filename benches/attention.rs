//! Attention kernel benchmark at the shapes a 512×512 SD 1.5 step uses (batch 2 for CFG):
//! self-attention over 4,096 and 1,024 tokens and cross-attention over 77 text tokens.
//! Prints milliseconds and GFLOP/s (2·Nq·Nk·D·2 per head) for each.
//!
//! `cargo bench --bench attention`. Without `--bench` (as under `cargo test --all-targets`)
//! it runs each shape once, as a smoke test.

use std::time::Instant;

use candle_core::{Device, Tensor};
use lantern::model::cpu::attention::attention;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let shapes = [
        ("self 64x64, 8x40", 4096, 4096, 8, 40),
        ("self 32x32, 8x80", 1024, 1024, 8, 80),
        ("self 16x16, 8x160", 256, 256, 8, 160),
        ("cross 64x64 <- 77, 8x40", 4096, 77, 8, 40),
    ];
    for (name, nq, nk, heads, d) in shapes {
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1.0, (2, nq, heads * d), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (2, nk, heads * d), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (2, nk, heads * d), &dev).unwrap();
        let scale = (d as f32).powf(-0.5);
        let repeats = if full { 5 } else { 1 };
        let mut best = f64::INFINITY;
        for _ in 0..repeats {
            let t = Instant::now();
            std::hint::black_box(attention(&q, &k, &v, heads, scale).unwrap());
            best = best.min(t.elapsed().as_secs_f64());
        }
        let gflop = 2.0 * 2.0 * (2 * heads * nq * nk * d) as f64 / 1e9;
        println!("{name:26} {:8.2} ms  {:6.1} GFLOP/s", best * 1e3, gflop / best);
    }
}
