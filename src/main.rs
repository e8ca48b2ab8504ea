//! `lantern`: the window by default, headless subcommands otherwise (see `lantern --help`).

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: lantern::alloc::CachingAllocator = lantern::alloc::CachingAllocator;

unsafe extern "C" {
    /// mimalloc's runtime options (the library is linked in by the `mimalloc` crate).
    fn mi_option_set(option: i32, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc 2's option list.
const MI_OPTION_PURGE_DELAY: i32 = 15;

fn main() -> ExitCode {
    // Keep freed memory for a second before returning it to the OS: a UNet step frees and
    // reallocates the same large buffers many times, and each return costs page faults and
    // zeroing (about a tenth of a step) when they come back.
    // SAFETY: a plain option setter, called before any other thread exists.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 1000) };
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
