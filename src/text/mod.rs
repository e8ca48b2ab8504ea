//! Text: the CLIP tokenizer and prompt encoding.

pub mod tokenizer;

pub use tokenizer::ClipTokenizer;
