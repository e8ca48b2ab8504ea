//! The command line: no subcommand opens the window; `generate`, `tokenize`, `history`,
//! `import`, `models` and `bench` work headless.

pub mod bench;
pub mod generate;
pub mod history;
pub mod models;
pub mod progress;
pub mod tokenize;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "lantern", version, about = "Local text-to-image with Stable Diffusion", long_about = None)]
pub struct Cli {
    /// Open the window with this model folder chosen.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Make images from a prompt (or a start picture), headless.
    Generate(Box<generate::GenerateArgs>),
    /// Print the token ids each text encoder of a model receives for a prompt.
    Tokenize(tokenize::TokenizeArgs),
    /// List past generations (newest first), search them, or export them.
    History(history::HistoryArgs),
    /// Add a folder of PNGs made by Lantern or AUTOMATIC1111 to the history.
    Import(history::ImportArgs),
    /// List local models or download a known one.
    Models(models::ModelsArgs),
    /// Time text encoding, UNet steps, VAE decode and whole generations (see BENCHMARKS.md).
    #[command(hide = true)]
    Bench(bench::BenchArgs),
}

/// Parses the command line, printing clap's help/version as usual but reducing argument
/// errors to one line.
pub fn parse() -> Result<Cli, i32> {
    use clap::{CommandFactory, FromArgMatches};
    // `--version` says what a bug report needs: the build's devices and the data folder.
    // Leaked once per process: clap wants a 'static text for it.
    let long_version: &'static str = Box::leak(crate::build_info::BuildInfo::current().long_version().into_boxed_str());
    let command = Cli::command().long_version(long_version);
    let parsed = command
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches));
    match parsed {
        Ok(cli) => Ok(cli),
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    Err(0)
                }
                _ => {
                    let text = e.render().to_string();
                    let first = text
                        .lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("invalid arguments");
                    eprintln!("{} (see --help)", crate::format::printable(first.trim_end()));
                    Err(2)
                }
            }
        }
    }
}

/// Runs a headless subcommand.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Generate(args) => generate::run(*args),
        Command::Tokenize(args) => tokenize::run(args),
        Command::History(args) => history::run(args),
        Command::Import(args) => history::run_import(args),
        Command::Models(args) => models::run(args),
        Command::Bench(args) => bench::run(args),
    }
}
