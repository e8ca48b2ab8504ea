//! Text: the CLIP tokenizer and prompt encoding.

pub mod encode;
pub mod tokenizer;

pub use encode::{PromptEmbeddings, encode_prompt, encode_prompts};
pub use tokenizer::ClipTokenizer;
