//! CLIP's byte-level BPE tokenizer, matching Hugging Face's `CLIPTokenizer` id for id.

/// Placeholder until the tokenizer lands.
pub struct ClipTokenizer;
