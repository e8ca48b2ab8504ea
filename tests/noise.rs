//! The noise sources against their references (`tests/fixtures/noise/refs.json`, written by
//! `tools/make_noise_refs.py`):
//!
//! - `cpu` against real torch 2.15 `torch.randn(shape, generator=manual_seed(seed))`, both
//!   builds of its float32 kernel (AVX2, the default on x86-64; scalar), for many seeds and
//!   shapes and for sequences of draws from one generator: every value bit for bit (small
//!   draws value by value, large ones through the SHA-256 of all their bytes).
//! - `gpu` against a NumPy reimplementation of A1111's NV source (there is no GPU here):
//!   bit for bit as well — both evaluate the same float64 formula with correctly rounded or
//!   nearly so `log`/`sin`, and a last-bit difference in float64 almost never survives the
//!   rounding to float32; should a platform's libm disagree, the test names the value.

use std::path::Path;

use lantern::pipeline::noise::cpu::{Kernel, TorchCpu};
use lantern::pipeline::noise::{Noise, NoiseKind, Philox};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn refs() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/noise/refs.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn seed(v: &Value) -> u64 {
    v.as_str().unwrap().parse().unwrap()
}

fn count(shape: &Value) -> usize {
    shape
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .product()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// Checks one draw against its summary; returns the largest absolute difference found.
fn check(ours: &[f32], want: &Value, what: &str) -> f64 {
    assert_eq!(ours.len() as u64, want["n"].as_u64().unwrap(), "{what}: length");
    let mut worst = 0f64;
    let mut compare = |got: &[f32], expected: &[f32], part: &str| {
        for (i, (g, e)) in got.iter().zip(expected).enumerate() {
            worst = worst.max((f64::from(*g) - f64::from(*e)).abs());
            assert_eq!(
                g.to_bits(),
                e.to_bits(),
                "{what}: {part} value {i}: ours {g:e}, reference {e:e}"
            );
        }
    };
    if let Some(values) = want.get("values") {
        compare(ours, &floats(values), "");
        return worst;
    }
    let (first, last) = (floats(&want["first"]), floats(&want["last"]));
    compare(&ours[..first.len()], &first, "first");
    compare(&ours[ours.len() - last.len()..], &last, "last");
    let bytes: Vec<u8> = ours.iter().flat_map(|v| v.to_le_bytes()).collect();
    let hash: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hash, want["sha256"].as_str().unwrap(), "{what}: SHA-256 of all values");
    let sum: f64 = ours.iter().map(|v| f64::from(*v)).sum();
    assert!(
        (sum - want["sum"].as_f64().unwrap()).abs() < 1e-6 * ours.len() as f64,
        "{what}: sum"
    );
    worst
}

#[test]
fn cpu_noise_equals_torch_for_every_seed_and_shape() {
    let refs = refs();
    let (mut draws, mut values) = (0, 0);
    let mut seeds = std::collections::BTreeSet::new();
    for case in refs["cpu"]["single"].as_array().unwrap() {
        let s = seed(&case["seed"]);
        seeds.insert(s);
        let n = count(&case["shape"]);
        for (kernel, key) in [(Kernel::Avx2, "avx2"), (Kernel::Scalar, "scalar")] {
            let ours = TorchCpu::with_kernel(s, kernel).draw(n);
            check(&ours, &case[key], &format!("seed {s} shape {} {key}", case["shape"]));
            draws += 1;
            values += n;
        }
    }
    println!(
        "cpu: {} seeds, {draws} draws, {values} values equal to torch's bit for bit",
        seeds.len()
    );
    assert!(draws >= 400);
}

#[test]
fn cpu_noise_continues_the_generator_like_torch() {
    let refs = refs();
    for case in refs["cpu"]["sequences"].as_array().unwrap() {
        let s = seed(&case["seed"]);
        for (kernel, key) in [(Kernel::Avx2, "avx2"), (Kernel::Scalar, "scalar")] {
            let mut g = TorchCpu::with_kernel(s, kernel);
            for (i, (shape, want)) in case["shapes"]
                .as_array()
                .unwrap()
                .iter()
                .zip(case[key].as_array().unwrap())
                .enumerate()
            {
                check(&g.draw(count(shape)), want, &format!("seed {s} {key} draw {i} {shape}"));
            }
        }
    }
}

#[test]
fn the_two_torch_kernels_really_differ() {
    // Otherwise the test above would not tell them apart.
    let refs = refs();
    assert!(refs["cpu"]["kernels_differ_in"].as_u64().unwrap() > 1000);
    let a = TorchCpu::with_kernel(0, Kernel::Avx2).draw(4096);
    let b = TorchCpu::with_kernel(0, Kernel::Scalar).draw(4096);
    assert_ne!(a, b);
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5));
}

#[test]
fn torch_seeds_keep_their_low_32_bits() {
    let a = TorchCpu::new(5).draw(40);
    assert_eq!(a, TorchCpu::new(5 + (1 << 32)).draw(40));
    assert_ne!(a, TorchCpu::new(6).draw(40));
}

#[test]
fn gpu_noise_equals_a1111_nv_for_every_seed_and_shape() {
    let refs = refs();
    let mut worst = 0f64;
    let mut draws = 0;
    for case in refs["gpu"]["single"].as_array().unwrap() {
        let s = seed(&case["seed"]);
        let ours = Philox::new(s).draw(count(&case["shape"]));
        worst = worst.max(check(
            &ours,
            &case["values"],
            &format!("seed {s} shape {}", case["shape"]),
        ));
        draws += 1;
    }
    for case in refs["gpu"]["sequences"].as_array().unwrap() {
        let s = seed(&case["seed"]);
        let mut g = Noise::new(NoiseKind::Gpu, s);
        for (i, (shape, want)) in case["shapes"]
            .as_array()
            .unwrap()
            .iter()
            .zip(case["draws"].as_array().unwrap())
            .enumerate()
        {
            worst = worst.max(check(&g.draw(count(shape)), want, &format!("seed {s} draw {i}")));
            draws += 1;
        }
    }
    println!("gpu: {draws} draws equal to the NV reference, worst difference {worst:e}");
    // A1111's docstring values (stated to be CUDA torch's) agree to float32 rounding noise.
    let doc: Vec<f64> = refs["gpu"]["a1111_docstring_seed0"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let ours = Philox::new(0).draw(12);
    for (o, d) in ours.iter().zip(&doc) {
        assert!((f64::from(*o) - d).abs() < 5e-7, "{ours:?}");
    }
}

#[test]
fn noise_dispatches_by_kind() {
    let n = 37;
    assert_eq!(Noise::new(NoiseKind::Cpu, 9).draw(n), TorchCpu::new(9).draw(n));
    assert_eq!(Noise::new(NoiseKind::Gpu, 9).draw(n), Philox::new(9).draw(n));
    let mut old = lantern::pipeline::noise::SeededNoise::new(9);
    let want: Vec<f32> = (0..n).map(|_| old.standard_normal()).collect();
    assert_eq!(Noise::new(NoiseKind::Lantern, 9).draw(n), want);
}
