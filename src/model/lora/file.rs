//! Reading a LoRA file: its layers (a down and an up matrix, and an optional alpha, per
//! patched weight), in any of the layouts people have.
//!
//! - kohya / A1111: `lora_unet_<module>` / `lora_te_<module>` (`lora_te1_`/`lora_te2_` for
//!   SDXL's two encoders) with `.lora_down.weight`, `.lora_up.weight` and `.alpha`; the module
//!   path has its dots written as `_`. LoCon files use the same names for convolutions.
//! - diffusers / PEFT: `unet.<module>.lora_A.weight` / `.lora_B.weight`, `text_encoder.…`,
//!   `text_encoder_2.…`; older diffusers files say `.lora.down.weight` / `.lora.up.weight` or
//!   `.lora_linear_layer.down.weight`, and `processor.to_q_lora` for `to_q`.
//!
//! LyCORIS' other kinds (LoHa, LoKr, Tucker `lora_mid`, DoRA) are refused by name: their
//! product is not `up @ down`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::model::weights::Weights;

/// One patched weight: `delta = up.flatten(1) @ down.flatten(1)` reshaped to the weight, times
/// `multiplier × alpha / rank`.
pub struct Layer {
    /// The layer's name in the file, without the `.lora_down.weight`-style suffix.
    pub key: String,
    pub down: Tensor,
    pub up: Tensor,
    pub alpha: Option<f32>,
}

impl Layer {
    pub fn rank(&self) -> usize {
        self.down.dim(0).unwrap_or(1)
    }

    /// `alpha / rank`, with alpha = rank when the file gives none.
    pub fn alpha_scale(&self) -> f64 {
        let rank = self.rank().max(1) as f64;
        self.alpha.map_or(1.0, |a| a as f64 / rank)
    }

    /// Output rows and input size (flattened over a convolution's kernel) of the delta.
    pub fn delta_shape(&self) -> (usize, usize) {
        let out = self.up.dim(0).unwrap_or(0);
        let input = self.down.dims().iter().skip(1).product();
        (out, input)
    }
}

/// A LoRA file's layers.
pub struct LoraFile {
    pub path: PathBuf,
    pub layers: Vec<Layer>,
}

/// Which half of a layer a tensor name is, and the layer's key.
enum Part<'a> {
    Down(&'a str),
    Up(&'a str),
    Alpha(&'a str),
}

const DOWN: [&str; 4] = [
    ".lora_down.weight",
    ".lora_A.weight",
    ".lora.down.weight",
    ".lora_linear_layer.down.weight",
];
const UP: [&str; 4] = [
    ".lora_up.weight",
    ".lora_B.weight",
    ".lora.up.weight",
    ".lora_linear_layer.up.weight",
];

fn part(name: &str) -> Option<Part<'_>> {
    if let Some(key) = DOWN.iter().find_map(|s| name.strip_suffix(s)) {
        return Some(Part::Down(key));
    }
    if let Some(key) = UP.iter().find_map(|s| name.strip_suffix(s)) {
        return Some(Part::Up(key));
    }
    name.strip_suffix(".alpha").map(Part::Alpha)
}

/// The LyCORIS kinds whose layers are not `up @ down`, by a tensor name that only they use.
fn unsupported_kind(name: &str) -> Option<&'static str> {
    if name.contains(".hada_") {
        Some("a LoHa (LyCORIS)")
    } else if name.contains(".lokr_") {
        Some("a LoKr (LyCORIS)")
    } else if name.ends_with(".lora_mid.weight") {
        Some("a LoCon with Tucker decomposition (lora_mid)")
    } else if name.ends_with(".dora_scale") {
        Some("a DoRA")
    } else {
        None
    }
}

impl LoraFile {
    /// Reads `path` (memory-mapped; every layer widened to f32 on the CPU, where deltas are
    /// computed). `name` is what errors call it.
    pub fn open(path: &Path, name: &str) -> Result<LoraFile> {
        let refuse = |message: String| Error::lora(name, message);
        let weights = Weights::from_files(&[path.to_path_buf()], DType::F32, &Device::Cpu)
            .map_err(|e| refuse(format!("cannot read {}: {e}", path.display())))?;
        let mut downs = BTreeMap::new();
        let mut ups = BTreeMap::new();
        let mut alphas = BTreeMap::new();
        let names: Vec<String> = weights.stored_names().map(str::to_string).collect();
        for n in &names {
            if let Some(kind) = unsupported_kind(n) {
                return Err(refuse(format!(
                    "is {kind}; Lantern applies LoRA and LoCon files (lora_down/lora_up or lora_A/lora_B layers)"
                )));
            }
            match part(n) {
                Some(Part::Down(k)) => downs.insert(k.to_string(), n.clone()),
                Some(Part::Up(k)) => ups.insert(k.to_string(), n.clone()),
                Some(Part::Alpha(k)) => alphas.insert(k.to_string(), n.clone()),
                None => None,
            };
        }
        if downs.is_empty() {
            return Err(refuse(format!(
                "{} is not a LoRA (no lora_down/lora_up or lora_A/lora_B tensors)",
                path.display()
            )));
        }
        let read = |n: &str| {
            weights
                .get_unchecked(n)
                .map_err(|e| refuse(format!("tensor `{n}`: {e}")))
        };
        let mut layers = Vec::with_capacity(downs.len());
        for (key, down_name) in &downs {
            let up_name = ups
                .get(key)
                .ok_or_else(|| refuse(format!("layer `{key}` has a down matrix but no up matrix")))?;
            let down = read(down_name)?;
            let up = read(up_name)?;
            let alpha = match alphas.get(key) {
                Some(n) => Some(scalar(&read(n)?).map_err(|e| refuse(format!("`{n}`: {e}")))?),
                None => None,
            };
            let layer = Layer {
                key: key.clone(),
                down,
                up,
                alpha,
            };
            check_layer(&layer).map_err(|m| refuse(format!("layer `{key}`: {m}")))?;
            layers.push(layer);
        }
        Ok(LoraFile {
            path: path.to_path_buf(),
            layers,
        })
    }
}

fn scalar(t: &Tensor) -> Result<f32> {
    let values = t.flatten_all()?.to_vec1::<f32>()?;
    match values.as_slice() {
        [v] if v.is_finite() => Ok(*v),
        [_] => Err(Error::invalid("alpha is not a finite number")),
        _ => Err(Error::invalid(format!("alpha has {} values, not one", values.len()))),
    }
}

/// The down and up matrices must chain: up [out, rank, (1, 1)] after down [rank, in, (k, k)].
fn check_layer(l: &Layer) -> std::result::Result<(), String> {
    let (d, u) = (l.down.dims(), l.up.dims());
    let rank_ok = d.len() >= 2 && u.len() >= 2 && u[1] == d[0] && d[0] > 0;
    let up_is_matrix = u.iter().skip(2).all(|&s| s == 1);
    if !rank_ok || !up_is_matrix || !matches!(d.len(), 2 | 4) {
        return Err(format!("down {d:?} and up {u:?} do not form a LoRA product"));
    }
    Ok(())
}
