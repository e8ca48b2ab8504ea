//! CLIP's byte-level BPE tokenizer, matching Hugging Face's `CLIPTokenizer` id for id.
//! (Being written on the `tokenizer` branch; this placeholder refuses to load.)

use std::path::Path;

use crate::error::{Error, Result};

pub struct ClipTokenizer;

impl ClipTokenizer {
    pub fn from_folder(dir: &Path) -> Result<ClipTokenizer> {
        Err(Error::Tokenizer {
            path: dir.to_path_buf(),
            message: "tokenizer not implemented yet".into(),
        })
    }

    pub fn encode_for_model(&self, _text: &str) -> Vec<u32> {
        Vec::new()
    }

    pub fn count_tokens(&self, _text: &str) -> usize {
        0
    }
}
