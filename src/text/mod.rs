//! Text: the CLIP tokenizer and the prompt syntax (A1111 emphasis and chunks, or plain);
//! encoding with the text encoders lives in the pipeline.

pub mod extra_networks;
pub mod prompt;
pub mod tokenizer;

pub use prompt::{PromptSyntax, TokenCount, count_tokens};
pub use tokenizer::ClipTokenizer;
