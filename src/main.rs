//! `lantern`: the window by default, headless subcommands otherwise (see `lantern --help`).

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: lantern::alloc::CachingAllocator = lantern::alloc::CachingAllocator;

fn main() -> ExitCode {
    // Before any other thread exists: mimalloc's options are read once.
    lantern::alloc::configure();
    lantern::logging::init();
    // One compute thread per physical core unless LANTERN_THREADS says otherwise.
    lantern::threads::init();
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
            // The message may quote a file's text or name: no control sequence gets through.
            eprintln!("error: {}", lantern::format::printable(&lantern::logging::one_line(&e)));
            ExitCode::FAILURE
        }
    }
}
