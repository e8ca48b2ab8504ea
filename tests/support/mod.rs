//! Shared helpers for the integration tests: fixture paths, running the pipeline on a
//! fixture model, and comparing pixels with diffusers' references.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use candle_core::{DType, Device, Tensor};
use lantern::model::{LoadOptions, LoadedModel};
use lantern::output::RgbImage;
use lantern::pipeline::{self, Event, Request};
use lantern::recipe::{PromptSyntax, Recipe};
use lantern::schedulers::SamplerKind;
use serde::Deserialize;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures")
}

#[derive(Debug, Deserialize, Clone)]
pub struct ReferenceCase {
    pub file: String,
    pub scheduler: String,
    pub height: u32,
    pub width: u32,
    pub guidance: f64,
    pub prompt: String,
    pub negative_prompt: Option<String>,
    pub steps: u32,
    pub latents: String,
}

#[derive(Debug, Deserialize)]
pub struct ReferenceSet {
    pub family: String,
    pub model: String,
    pub cases: Vec<ReferenceCase>,
}

pub fn reference_set(family: &str) -> ReferenceSet {
    let path = fixtures().join("reference").join(family).join("cases.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

pub fn load_model(rel: &str) -> LoadedModel {
    LoadedModel::load(&fixtures().join(rel), LoadOptions::default(), &mut |_| {}).unwrap()
}

pub fn load_latents(rel: &str) -> Tensor {
    let t = candle_core::safetensors::load(fixtures().join(rel), &Device::Cpu).unwrap();
    t["latents"].to_dtype(DType::F32).unwrap()
}

pub fn request_for(case: &ReferenceCase) -> Request {
    Request {
        init_latents: Some(load_latents(&case.latents)),
        ..Request::new(Recipe {
            prompt: case.prompt.clone(),
            negative_prompt: case.negative_prompt.clone().unwrap_or_default(),
            steps: case.steps,
            guidance: case.guidance,
            width: case.width,
            height: case.height,
            seed: 0,
            sampler: SamplerKind::from_cli_name(&case.scheduler).unwrap(),
            // diffusers' references: the prompt as plain text.
            prompt_syntax: PromptSyntax::Plain,
            ..Recipe::default()
        })
    }
}

/// Runs a request and returns its images.
pub fn run(model: &LoadedModel, req: &Request) -> Vec<RgbImage> {
    let cancel = AtomicBool::new(false);
    let mut images = Vec::new();
    pipeline::generate(model, req, &cancel, &mut |e| {
        if let Event::ImageReady(g) = e {
            images.push(g.image);
        }
    })
    .unwrap();
    images
}

pub fn read_png(path: &Path) -> RgbImage {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let data = match info.color_type {
        png::ColorType::Rgb => buf[..info.buffer_size()].to_vec(),
        png::ColorType::Rgba => buf[..info.buffer_size()]
            .chunks(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        other => panic!("unexpected colour type {other:?}"),
    };
    RgbImage {
        width: info.width,
        height: info.height,
        data,
    }
}

/// (max abs diff, mean abs diff) in 8-bit levels.
pub fn pixel_diff(a: &RgbImage, b: &RgbImage) -> (u8, f64) {
    assert_eq!((a.width, a.height), (b.width, b.height), "image sizes differ");
    let mut max = 0u8;
    let mut sum = 0u64;
    for (x, y) in a.data.iter().zip(&b.data) {
        let d = x.abs_diff(*y);
        max = max.max(d);
        sum += d as u64;
    }
    (max, sum as f64 / a.data.len() as f64)
}

/// Runs a request and returns what it made: each image with its own recipe.
pub fn run_generated(model: &LoadedModel, req: &Request) -> Vec<pipeline::Generated> {
    let cancel = AtomicBool::new(false);
    let mut out = Vec::new();
    pipeline::generate(model, req, &cancel, &mut |e| {
        if let Event::ImageReady(g) = e {
            out.push(*g);
        }
    })
    .unwrap();
    out
}

/// `src` rewritten to `dst` with only the tensors `keep` accepts, renamed as it says (a
/// checkpoint without its VAE, a VAE file cut out of a checkpoint, …).
pub fn rewrite_safetensors(src: &Path, dst: &Path, keep: impl Fn(&str) -> Option<String>) {
    let bytes = std::fs::read(src).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let views: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .filter_map(|(n, v)| keep(&n).map(|n| (n, v)))
        .collect();
    safetensors::serialize_to_file(views, None, dst).unwrap();
}

/// Copies the folder `from` to `to`, subfolders included (a fixture model to edit or install).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dst = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dst);
        } else {
            std::fs::copy(entry.path(), dst).unwrap();
        }
    }
}
