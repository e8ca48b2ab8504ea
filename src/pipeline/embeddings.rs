//! From the names written in a prompt to the textual-inversion embeddings to use: each file's
//! stem among the embedding files the caller found (`hub::discover_embeddings`) is looked for
//! in the prompts' tokens, as A1111 finds embeddings, and only those written are read.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::model::LoadedModel;
use crate::model::embedding::TextualInversion;
use crate::pipeline::loras::lora_name;
use crate::text::prompt::EmbeddingTokens;

/// The embeddings `texts` write, read for `model`.
pub fn choose(model: &LoadedModel, texts: &[&str], files: &[PathBuf]) -> Result<Vec<TextualInversion>> {
    let Some(first) = model.text_encoders.first() else {
        return Ok(Vec::new());
    };
    let tokenizer = &first.tokenizer;
    let written: Vec<Vec<u32>> = texts.iter().map(|t| tokenizer.encode(t)).collect();
    let mut chosen: Vec<TextualInversion> = Vec::new();
    let widths: Vec<usize> = model
        .text_encoders
        .iter()
        .map(|e| e.model.config().hidden_size)
        .collect();
    for file in files {
        let name = lora_name(file);
        let ids = tokenizer.encode(&name);
        let used = !ids.is_empty()
            && written
                .iter()
                .any(|w| w.windows(ids.len()).any(|win| win == ids.as_slice()));
        if !used {
            continue;
        }
        if let Some(other) = chosen.iter().find(|c| c.name.eq_ignore_ascii_case(&name)) {
            return Err(Error::embedding(
                &name,
                format!(
                    "two files have this name ({} and {}); rename or remove one",
                    other.path.display(),
                    file.display()
                ),
            ));
        }
        chosen.push(TextualInversion::open(file, &name, &widths)?);
    }
    Ok(chosen)
}

/// What the chunker of text encoder `encoder` matches: each embedding's name as that
/// encoder's tokenizer spells it.
pub fn tokens_for(model: &LoadedModel, encoder: usize, inversions: &[TextualInversion]) -> Vec<EmbeddingTokens> {
    let tokenizer = &model.text_encoders[encoder].tokenizer;
    inversions
        .iter()
        .enumerate()
        .map(|(index, inv)| EmbeddingTokens {
            ids: tokenizer.encode(&inv.name),
            vectors: inv.token_count(),
            index,
        })
        .collect()
}
