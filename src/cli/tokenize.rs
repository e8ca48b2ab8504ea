//! `lantern tokenize`: the 77 ids each text encoder of a model receives.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::model::{ModelFolder, PipelineKind};
use crate::text::ClipTokenizer;

#[derive(Args, Debug)]
pub struct TokenizeArgs {
    /// A diffusers model folder.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The text to tokenize.
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    pub prompt: String,
}

/// One line per tokenizer, each a JSON array of ids.
pub fn run(args: TokenizeArgs) -> Result<()> {
    let folder = ModelFolder::open(&args.model)?;
    let dirs: &[&str] = match folder.kind {
        PipelineKind::StableDiffusion => &["tokenizer"],
        PipelineKind::StableDiffusionXl if folder.has("tokenizer") => &["tokenizer", "tokenizer_2"],
        PipelineKind::StableDiffusionXl => &["tokenizer_2"],
    };
    for dir in dirs {
        let tokenizer = ClipTokenizer::from_folder(&folder.root.join(dir))?;
        let ids = tokenizer.encode_for_model(&args.prompt);
        println!("{}", serde_json::to_string(&ids)?);
    }
    Ok(())
}
