//! Reading diffusers/transformers `config.json` files field by field, so that every value we
//! cannot use becomes an error naming the file and the field.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};

/// A parsed JSON config and the file it came from.
pub struct ConfigFile {
    pub path: PathBuf,
    pub json: Value,
}

impl ConfigFile {
    pub fn read(path: &Path) -> Result<ConfigFile> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::model(path, "missing config file")
            } else {
                Error::io(path, e)
            }
        })?;
        let json: Value =
            serde_json::from_str(&text).map_err(|e| Error::config(path, "(file)", format!("not valid JSON: {e}")))?;
        if !json.is_object() {
            return Err(Error::config(path, "(file)", "expected a JSON object"));
        }
        Ok(ConfigFile {
            path: path.to_path_buf(),
            json,
        })
    }

    pub fn from_value(path: &Path, json: Value) -> ConfigFile {
        ConfigFile {
            path: path.to_path_buf(),
            json,
        }
    }

    pub fn error(&self, field: &str, message: impl Into<String>) -> Error {
        Error::config(&self.path, field, message)
    }

    /// The raw value, treating JSON `null` as absent.
    pub fn raw(&self, field: &str) -> Option<&Value> {
        self.json.get(field).filter(|v| !v.is_null())
    }

    pub fn has(&self, field: &str) -> bool {
        self.raw(field).is_some()
    }

    /// One integer value of `field`, refused unless it lies in the field's plausible range
    /// ([`plausible_range`]): checked here, before anything is sized from it.
    pub fn int(&self, field: &str, v: &Value) -> Result<usize> {
        let n = as_usize(v).ok_or_else(|| self.error(field, format!("expected a non-negative integer, got {v}")))?;
        let (min, max) = plausible_range(field);
        if n < min {
            return Err(self.error(field, format!("must be at least {min}, got {n}")));
        }
        if n > max {
            return Err(self.error(field, format!("{n} is not a plausible value (at most {max})")));
        }
        Ok(n)
    }

    pub fn usize_or(&self, field: &str, default: usize) -> Result<usize> {
        match self.raw(field) {
            None => Ok(default),
            Some(v) => self.int(field, v),
        }
    }

    pub fn usize_req(&self, field: &str) -> Result<usize> {
        let v = self
            .raw(field)
            .ok_or_else(|| self.error(field, "required but missing"))?;
        self.int(field, v)
    }

    pub fn opt_usize(&self, field: &str) -> Result<Option<usize>> {
        self.raw(field).map(|v| self.int(field, v)).transpose()
    }

    /// A finite number within the field's plausible range ([`plausible_float`]).
    pub fn f64_or(&self, field: &str, default: f64) -> Result<f64> {
        let Some(v) = self.raw(field) else {
            return Ok(default);
        };
        let x = v
            .as_f64()
            .ok_or_else(|| self.error(field, format!("expected a number, got {v}")))?;
        let (min, max, open_min) = plausible_float(field);
        let low = if open_min { x <= min } else { x < min };
        if !x.is_finite() || low || x > max {
            let bound = if open_min { "above" } else { "at least" };
            return Err(self.error(
                field,
                format!("{x} is not a plausible value ({bound} {min}, at most {max})"),
            ));
        }
        Ok(x)
    }

    pub fn bool_or(&self, field: &str, default: bool) -> Result<bool> {
        match self.raw(field) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.error(field, format!("expected true or false, got {v}"))),
        }
    }

    pub fn str_or<'a>(&'a self, field: &str, default: &'a str) -> Result<&'a str> {
        match self.raw(field) {
            None => Ok(default),
            Some(v) => v
                .as_str()
                .ok_or_else(|| self.error(field, format!("expected a string, got {v}"))),
        }
    }

    pub fn opt_str(&self, field: &str) -> Result<Option<&str>> {
        self.raw(field)
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| self.error(field, format!("expected a string, got {v}")))
            })
            .transpose()
    }

    /// A list of strings (block type lists).
    pub fn str_list(&self, field: &str) -> Result<Option<Vec<String>>> {
        let Some(v) = self.raw(field) else {
            return Ok(None);
        };
        let arr = v
            .as_array()
            .ok_or_else(|| self.error(field, format!("expected a list, got {v}")))?;
        self.check_list_len(field, arr.len())?;
        arr.iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| self.error(field, format!("expected strings, got {x}")))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// A list of integers, required to be non-empty.
    pub fn usize_list(&self, field: &str) -> Result<Option<Vec<usize>>> {
        let Some(v) = self.raw(field) else {
            return Ok(None);
        };
        let arr = v
            .as_array()
            .ok_or_else(|| self.error(field, format!("expected a list of integers, got {v}")))?;
        self.check_list_len(field, arr.len())?;
        let list = arr.iter().map(|x| self.int(field, x)).collect::<Result<Vec<_>>>()?;
        if list.is_empty() {
            return Err(self.error(field, "must not be empty"));
        }
        Ok(Some(list))
    }

    /// An integer or a list with one integer per block (diffusers accepts both forms).
    pub fn per_block(&self, field: &str, n_blocks: usize, default: Option<usize>) -> Result<Vec<usize>> {
        match self.raw(field) {
            None => default
                .map(|d| vec![d; n_blocks])
                .ok_or_else(|| self.error(field, "required but missing")),
            Some(v) if v.is_array() => {
                let list = self.usize_list(field)?.unwrap_or_default();
                if list.len() != n_blocks {
                    return Err(self.error(
                        field,
                        format!("has {} entries but there are {n_blocks} blocks", list.len()),
                    ));
                }
                Ok(list)
            }
            Some(v) if v.is_number() => Ok(vec![self.int(field, v)?; n_blocks]),
            Some(v) => Err(self.error(field, format!("expected an integer or a list, got {v}"))),
        }
    }

    /// Block lists longer than [`MAX_BLOCKS`] are refused before anything is built per block.
    fn check_list_len(&self, field: &str, len: usize) -> Result<()> {
        if len > MAX_BLOCKS {
            return Err(self.error(
                field,
                format!("{len} entries is not plausible (at most {MAX_BLOCKS} blocks)"),
            ));
        }
        Ok(())
    }

    /// Rejects a field unless it is absent or has one of the values we implement.
    pub fn require_default(&self, field: &str, accepted: &[Value]) -> Result<()> {
        match self.raw(field) {
            None => Ok(()),
            Some(v) if accepted.contains(v) => Ok(()),
            Some(v) => Err(self.error(field, format!("value {v} is not supported by Lantern"))),
        }
    }
}

/// The most blocks (entries of a per-block list) a config may declare: SD's UNets have 3–4 and
/// its VAEs 4; each block halves the image, so 16 is already a 65536× reduction.
pub const MAX_BLOCKS: usize = 16;

/// The range of values an integer field may take, by name: far beyond every released model
/// (SDXL's widest layer is 1280 channels, bigG CLIP's MLP 5120, the deepest encoder 32
/// layers), but small enough that nothing sized from it can exhaust memory before the
/// weights are compared with it. Fields not listed may take 0 to 2²⁴.
pub fn plausible_range(field: &str) -> (usize, usize) {
    match field {
        "layers_per_block" | "transformer_layers_per_block" | "reverse_transformer_layers_per_block" => (1, 64),
        "num_hidden_layers" => (1, 256),
        "num_attention_heads" | "attention_head_dim" => (1, 4096),
        "block_out_channels"
        | "cross_attention_dim"
        | "hidden_size"
        | "intermediate_size"
        | "projection_dim"
        | "time_embedding_dim"
        | "addition_time_embed_dim"
        | "projection_class_embeddings_input_dim"
        | "norm_num_groups"
        | "encoder_block_out_channels"
        | "decoder_block_out_channels" => (1, 1 << 16),
        // TAESD's residual blocks per stage (1–3 in the released models; 0 is a valid stage).
        "num_encoder_blocks" | "num_decoder_blocks" => (0, 64),
        // TAESD's upsampling between decoder stages (2).
        "upsampling_scaling_factor" => (1, 8),
        "in_channels" | "out_channels" | "latent_channels" => (1, 1024),
        // 1: symmetric padding; 0: diffusers pads right and bottom by hand. Anything larger
        // would make each downsampled size disagree with its skip connection.
        "downsample_padding" => (0, 1),
        "sample_size" | "max_position_embeddings" => (1, 1 << 14),
        "vocab_size" => (1, 1 << 21),
        "eos_token_id" | "bos_token_id" | "pad_token_id" => (0, 1 << 21),
        _ => (0, 1 << 24),
    }
}

/// The range of a float field, by name: `(min, max, min excluded)`. Epsilons must be positive
/// (a zero one divides by zero on a constant input); every other float finite and moderate.
pub fn plausible_float(field: &str) -> (f64, f64, bool) {
    match field {
        "norm_eps" | "layer_norm_eps" => (0.0, 1.0, true),
        "scaling_factor" => (0.0, 1e3, true),
        _ => (-1e6, 1e6, false),
    }
}

fn as_usize(v: &Value) -> Option<usize> {
    if let Some(u) = v.as_u64() {
        return usize::try_from(u).ok();
    }
    // Some configs write integers as floats (e.g. 8.0).
    v.as_f64()
        .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e15)
        .map(|f| f as usize)
}
