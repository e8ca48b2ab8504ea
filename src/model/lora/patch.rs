//! Merging LoRAs into the loaded weights, and taking them out again exactly.
//!
//! The modules hold their weights as tensors the loader recorded ([`Weights::tracked`]);
//! applying a set of LoRAs writes `W₀ + Σ multiplier · alpha/rank · up @ down` into those
//! tensors in place, where `W₀` is read again from the still-mapped weight file. Going back
//! (another set, other weights, none) writes `W₀` again, so the result never drifts however
//! often the set changes, and nothing but the patched tensors is read. Everything that can be
//! wrong with a LoRA (not a LoRA, another family, shapes that do not fit) is found before the
//! first write, so a refused LoRA leaves the model as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};

use super::file::{Layer, LoraFile};
use super::targets::{Index, Part};
use crate::error::{Error, Result};
use crate::model::single_file::hash;
use crate::model::weights::Weights;

/// A LoRA to apply: which file, and its multipliers.
#[derive(Clone, Debug, PartialEq)]
pub struct LoraChoice {
    /// The name the prompt used (the file's stem).
    pub name: String,
    pub path: PathBuf,
    /// Multiplier for the text-encoder layers.
    pub te: f64,
    /// Multiplier for the UNet layers.
    pub unet: f64,
}

/// What applying one LoRA did.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    pub name: String,
    /// A1111's hash of the file (12 hex digits), for `Lora hashes`.
    pub hash: String,
    /// Layers patched.
    pub layers: usize,
    /// Layers that name no weight of this model (skipped, as A1111 does).
    pub unmatched: usize,
}

/// The LoRA state of one loaded model.
pub struct Patcher {
    parts: Vec<(Part, Weights)>,
    index: Index,
    /// The UNet's cross-attention width: tells a LoRA for another family from a fitting one.
    context_dim: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    applied: Vec<LoraChoice>,
    report: Vec<Applied>,
    /// Weights that currently differ from the file.
    patched: BTreeSet<(Part, String)>,
    /// Time the last change of set took.
    last_switch: Duration,
}

/// One weight's planned change: the layers (with their multipliers) adding to it.
type Plan<'a> = BTreeMap<(Part, String), Vec<(&'a Layer, f64)>>;

/// What the text width of a cross-attention says about the family a LoRA or model is for.
fn family_of_width(width: usize) -> String {
    match width {
        768 => "SD 1.x".into(),
        1024 => "SD 2.x".into(),
        2048 => "SDXL".into(),
        w => format!("a model with {w}-wide text"),
    }
}

impl Patcher {
    /// `parts`: the tracked weight views the modules were loaded through.
    pub fn new(parts: Vec<(Part, Weights)>, layers_per_block: usize, context_dim: usize) -> Patcher {
        let names: Vec<(Part, Vec<String>)> = parts.iter().map(|(p, w)| (*p, w.registered_names())).collect();
        Patcher {
            index: Index::new(&names, layers_per_block),
            parts,
            context_dim,
            state: Mutex::new(State::default()),
        }
    }

    /// The LoRAs applied now.
    pub fn applied(&self) -> Vec<Applied> {
        self.lock().report.clone()
    }

    /// How long the last change of LoRA set took (reading, merging and restoring).
    pub fn last_switch(&self) -> Duration {
        self.lock().last_switch
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the model's weights those of its files plus exactly `choices`. Nothing changes
    /// when the set is the one applied; a LoRA that cannot be used changes nothing at all.
    pub fn apply(&self, choices: &[LoraChoice]) -> Result<Vec<Applied>> {
        let mut state = self.lock();
        if state.applied == choices {
            return Ok(state.report.clone());
        }
        let started = Instant::now();
        let files = choices
            .iter()
            .map(|c| LoraFile::open(&c.path, &c.name))
            .collect::<Result<Vec<_>>>()?;
        let mut plan: Plan = BTreeMap::new();
        let mut report = Vec::new();
        for (choice, file) in choices.iter().zip(&files) {
            report.push(self.plan_one(choice, file, &mut plan)?);
        }
        let targets: BTreeSet<(Part, String)> = plan.keys().cloned().chain(state.patched.iter().cloned()).collect();
        let written = targets.iter().try_for_each(|target| {
            let adds = plan.get(target).map(Vec::as_slice).unwrap_or_default();
            self.write(target, adds)
        });
        if let Err(e) = written {
            // Put back every weight this call may have touched; the model is then as loaded.
            for target in &targets {
                self.write(target, &[])?;
            }
            *state = State::default();
            return Err(e);
        }
        state.applied = choices.to_vec();
        state.report = report.clone();
        state.patched = plan.into_keys().collect();
        state.last_switch = started.elapsed();
        tracing::info!(
            loras = choices.len(),
            weights = state.patched.len(),
            ms = state.last_switch.as_millis() as u64,
            "LoRA set applied"
        );
        Ok(report)
    }

    /// Finds the weights one LoRA patches and checks that each layer fits, adding it to `plan`.
    fn plan_one<'a>(&self, choice: &LoraChoice, file: &'a LoraFile, plan: &mut Plan<'a>) -> Result<Applied> {
        let refuse = |message: String| Error::lora(&choice.name, message);
        if let Some(width) = text_width(file)
            && width != self.context_dim
        {
            return Err(refuse(format!(
                "made for {} (its cross-attention reads {width}-wide text); this model is {} ({})",
                family_of_width(width),
                family_of_width(self.context_dim),
                self.context_dim
            )));
        }
        let mut layers = 0;
        let mut unmatched = Vec::new();
        for layer in &file.layers {
            let Some((part, name)) = self.index.find(&layer.key) else {
                unmatched.push(layer.key.as_str());
                continue;
            };
            let registered = self.weights(part).and_then(|w| w.registered(&name));
            let Some(registered) = registered else {
                unmatched.push(layer.key.as_str());
                continue;
            };
            let shape = registered.shape();
            let (out, input) = layer.delta_shape();
            let fits = shape.len() >= 2 && shape[0] == out && shape[1..].iter().product::<usize>() == input;
            if !fits {
                return Err(refuse(format!(
                    "layer `{}` is {out}×{input} but this model's `{name}` is {shape:?}; the LoRA was made for another model",
                    layer.key
                )));
            }
            let multiplier = match part {
                Part::Unet => choice.unet,
                Part::TextEncoder(_) => choice.te,
            };
            plan.entry((part, name)).or_default().push((layer, multiplier));
            layers += 1;
        }
        if layers == 0 {
            let example = unmatched.first().copied().unwrap_or("");
            return Err(refuse(format!(
                "none of its {} layers matches a weight of this model (first: `{example}`)",
                file.layers.len()
            )));
        }
        if !unmatched.is_empty() {
            tracing::warn!(lora = %choice.name, skipped = unmatched.len(), first = unmatched[0], "LoRA layers that match nothing in this model");
        }
        let hash = hash::lora_hash(&choice.path).map_err(|e| refuse(e.to_string()))?;
        Ok(Applied {
            name: choice.name.clone(),
            hash,
            layers,
            unmatched: unmatched.len(),
        })
    }

    fn weights(&self, part: Part) -> Option<&Weights> {
        self.parts.iter().find(|(p, _)| *p == part).map(|(_, w)| w)
    }

    /// Writes `W₀ + Σ multiplier · alpha/rank · up @ down` (just `W₀` without layers) into the
    /// weight the module holds.
    fn write(&self, (part, name): &(Part, String), adds: &[(&Layer, f64)]) -> Result<()> {
        let weights = self
            .weights(*part)
            .ok_or_else(|| Error::invalid(format!("no weights for {part:?}")))?;
        let registered = weights
            .registered(name)
            .ok_or_else(|| Error::invalid(format!("`{name}` was not recorded at load")))?;
        let original = weights.original(name)?;
        let value = if adds.is_empty() {
            original
        } else {
            let mut sum = original.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
            for (layer, multiplier) in adds {
                let scale = multiplier * layer.alpha_scale();
                sum = (sum + (delta(layer)?.reshape(original.dims())? * scale)?)?;
            }
            sum.to_dtype(original.dtype())?.to_device(original.device())?
        };
        registered.tensor.slice_set(&value, 0, registered.row)?;
        Ok(())
    }
}

/// `up @ down` over the flattened matrices: [out, rank] @ [rank, in·k·k].
fn delta(layer: &Layer) -> Result<Tensor> {
    let up = layer.up.flatten_from(1)?;
    let down = layer.down.flatten_from(1)?;
    Ok(up.matmul(&down)?)
}

/// The text width a LoRA's cross-attention key projections read, if it has any.
fn text_width(file: &LoraFile) -> Option<usize> {
    file.layers
        .iter()
        .find(|l| {
            let k = l.key.replace('.', "_");
            k.contains("attn2_to_k") || k.contains("attn2_to_v")
        })
        .and_then(|l| l.down.dim(1).ok())
}
