//! Text: the CLIP tokenizer (prompt encoding with the text encoders lives in the pipeline).

pub mod tokenizer;

pub use tokenizer::ClipTokenizer;
