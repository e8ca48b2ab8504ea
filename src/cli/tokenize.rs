//! `lantern tokenize`: the 77 ids each text encoder of a model receives.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::model::ModelFolder;

#[derive(Args, Debug)]
pub struct TokenizeArgs {
    /// A diffusers model folder or a single-file checkpoint.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The text to tokenize.
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    pub prompt: String,
}

/// One line per tokenizer, each a JSON array of ids.
pub fn run(args: TokenizeArgs) -> Result<()> {
    let folder = ModelFolder::open(&args.model)?;
    for tokenizer in folder.tokenizers()? {
        let ids = tokenizer.encode_for_model(&args.prompt);
        println!("{}", serde_json::to_string(&ids)?);
    }
    Ok(())
}
