//! Textual-inversion embeddings: a few learned token vectors saved under a name, used by
//! writing the name in a prompt (A1111's `embeddings/` folder).
//!
//! Formats read (`.safetensors` only, as everywhere in Lantern): SD 1.x/2.x files hold one
//! tensor, [vectors, width] (A1111 and kohya name it `emb_params`; any single tensor is taken
//! as A1111 does); SDXL files hold `clip_l` [n, 768] for the first encoder and `clip_g`
//! [n, 1280] for the second.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::model::weights::Weights;

/// One embedding, its vectors per text encoder of the model it is for.
#[derive(Clone, Debug)]
pub struct TextualInversion {
    /// The name a prompt writes (the file stem).
    pub name: String,
    pub path: PathBuf,
    /// Per text encoder, in the model's order: [vectors, width], f32 on the CPU.
    pub vectors: Vec<Tensor>,
}

/// At most this many vectors: an embedding must fit in one 75-token chunk.
const MAX_VECTORS: usize = 75;

fn family_of(widths: &[usize]) -> String {
    match widths {
        [768] => "SD 1.x".into(),
        [1024] => "SD 2.x".into(),
        [768, 1280] => "SDXL".into(),
        [w] => format!("a model with a {w}-wide text encoder"),
        ws => format!("a model with {} text encoders", ws.len()),
    }
}

impl TextualInversion {
    /// Reads `path` for a model whose text encoders are `widths` wide (in order).
    pub fn open(path: &Path, name: &str, widths: &[usize]) -> Result<TextualInversion> {
        let refuse = |message: String| Error::embedding(name, message);
        let w = Weights::from_files(&[path.to_path_buf()], DType::F32, &Device::Cpu)
            .map_err(|e| refuse(format!("cannot read {}: {e}", path.display())))?;
        let mut names: Vec<&str> = w.stored_names().collect();
        names.sort();
        let read = |n: &str| -> Result<Tensor> {
            let t = w.get_unchecked(n).map_err(|e| refuse(format!("tensor `{n}`: {e}")))?;
            Ok(if t.rank() == 1 { t.unsqueeze(0)? } else { t })
        };
        let vectors = if names.contains(&"clip_l") && names.contains(&"clip_g") {
            vec![read("clip_l")?, read("clip_g")?]
        } else if let [only] = names.as_slice() {
            vec![read(only)?]
        } else if names.contains(&"emb_params") {
            vec![read("emb_params")?]
        } else {
            return Err(refuse(format!(
                "{} is not a textual-inversion embedding (expected one tensor, or clip_l and clip_g; it has {})",
                path.display(),
                names.len()
            )));
        };
        let file_widths: Vec<usize> = vectors.iter().map(|v| v.dims().last().copied().unwrap_or(0)).collect();
        for v in &vectors {
            let (n, _) = v
                .dims2()
                .map_err(|_| refuse(format!("its vectors have shape {:?}, not [count, width]", v.dims())))?;
            if n == 0 || n > MAX_VECTORS {
                return Err(refuse(format!(
                    "it has {n} vectors; an embedding may have 1 to {MAX_VECTORS}"
                )));
            }
        }
        if file_widths != widths {
            return Err(refuse(format!(
                "made for {} ({} wide); this model is {} ({} wide)",
                family_of(&file_widths),
                join(&file_widths),
                family_of(widths),
                join(widths)
            )));
        }
        if vectors.iter().any(|v| v.dim(0).ok() != vectors[0].dim(0).ok()) {
            return Err(refuse("its clip_l and clip_g have different vector counts".into()));
        }
        Ok(TextualInversion {
            name: name.to_string(),
            path: path.to_path_buf(),
            vectors,
        })
    }

    /// How many tokens it takes in a prompt.
    pub fn token_count(&self) -> usize {
        self.vectors.first().and_then(|v| v.dim(0).ok()).unwrap_or(0)
    }
}

fn join(widths: &[usize]) -> String {
    widths.iter().map(ToString::to_string).collect::<Vec<_>>().join("+")
}
