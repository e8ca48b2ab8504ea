//! `lantern`: the window by default, headless subcommands otherwise (see `lantern --help`).

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    lantern::logging::init();
    let cli = match lantern::cli::parse() {
        Ok(cli) => cli,
        Err(code) => return ExitCode::from(code as u8),
    };
    let result = match cli.command {
        Some(command) => lantern::cli::run(command),
        None => lantern::gui::run(cli.model),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", lantern::logging::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
