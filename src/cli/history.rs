//! `lantern history [--search TEXT] [--limit N] [--json]`, `lantern history export FILE.json`
//! and `lantern import DIR`.
//!
//! Wiring into the top-level CLI:
//!
//! ```ignore
//! enum Command { History(cli::history::HistoryArgs), Import(cli::history::ImportArgs), … }
//! Command::History(a) => cli::history::run(a),
//! Command::Import(a) => cli::history::run_import(a),
//! ```

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::format::printable;
use crate::history::{Entry, EntryJson, History, Opened, Query};

/// `lantern history`: list recent generations, or export them.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub command: Option<HistoryCommand>,
    #[command(flatten)]
    pub list: ListArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum HistoryCommand {
    /// Write the whole history to a JSON file (an array of objects, newest first).
    Export(ExportArgs),
}

/// Options of the listing (`lantern history` without a subcommand).
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Only entries whose prompt or negative prompt contains every word of TEXT (it may
    /// start with `-`: `--search -neg`).
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    pub search: Option<String>,
    /// Most entries to show (0 for all).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: u64,
    /// Print a JSON array of objects instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only entries made with this model.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Only favourites.
    #[arg(long)]
    pub favourites: bool,
    /// Only entries with this seed.
    #[arg(long, value_name = "SEED")]
    pub seed: Option<u64>,
}

impl Default for ListArgs {
    fn default() -> Self {
        ListArgs {
            search: None,
            limit: 20,
            json: false,
            model: None,
            favourites: false,
            seed: None,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The JSON file to write (its folder must exist).
    #[arg(value_name = "FILE.json")]
    pub file: PathBuf,
}

/// `lantern import DIR`: add a folder of PNGs made by Lantern or AUTOMATIC1111.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// Folder to scan (sub-folders too).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Opens the default history, telling the user on stderr if it had to be rebuilt.
fn open_default() -> anyhow::Result<History> {
    let Opened { history, notice } = History::open_default()?;
    if let Some(notice) = notice {
        eprintln!("warning: {}", printable(&notice.to_string()));
    }
    Ok(history)
}

/// Runs `lantern history …` against the default history, printing to stdout.
pub fn run(args: HistoryArgs) -> anyhow::Result<()> {
    let history = open_default()?;
    let stdout = std::io::stdout();
    run_with(&history, &args, &mut stdout.lock())
}

/// Runs `lantern import DIR` against the default history.
pub fn run_import(args: ImportArgs) -> anyhow::Result<()> {
    let mut history = open_default()?;
    let stdout = std::io::stdout();
    import_with(&mut history, &args, &mut stdout.lock())
}

/// `lantern history …` against a given history and output.
pub fn run_with(history: &History, args: &HistoryArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    match &args.command {
        Some(HistoryCommand::Export(export)) => {
            let n = history
                .export_json(&export.file)
                .with_context(|| format!("cannot export the history to {}", export.file.display()))?;
            writeln!(
                out,
                "exported {n} entries to {}",
                printable(&export.file.display().to_string())
            )?;
        }
        None => list(history, &args.list, out)?,
    }
    Ok(())
}

/// `lantern import DIR` against a given history and output.
pub fn import_with(history: &mut History, args: &ImportArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if !args.dir.is_dir() {
        anyhow::bail!("{} is not a folder", args.dir.display());
    }
    let report = history.import_dir(&args.dir)?;
    writeln!(out, "{}: {report}", printable(&args.dir.display().to_string()))?;
    for (path, why) in report.failed.iter().chain(&report.skipped) {
        writeln!(
            out,
            "  skipped {}: {}",
            printable(&path.display().to_string()),
            printable(why)
        )?;
    }
    Ok(())
}

fn list(history: &History, args: &ListArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let query = Query {
        search: args.search.clone().filter(|s| !s.trim().is_empty()),
        model: args.model.clone(),
        favourites_only: args.favourites,
        seed: args.seed,
        limit: (args.limit > 0).then_some(args.limit),
        ..Query::default()
    };
    let entries = history.list(&query)?;
    if args.json {
        let objects: Vec<EntryJson> = entries.iter().map(EntryJson::from).collect();
        serde_json::to_writer_pretty(&mut *out, &objects)?;
        writeln!(out)?;
        return Ok(());
    }
    let total = history.count(&query)?;
    write_table(&entries, out)?;
    writeln!(out, "{} of {total} entries", entries.len())?;
    Ok(())
}

/// A fixed-width table, one line per entry (prompt shortened to one line). Text from the
/// history (prompts, model names: an imported PNG's text is anyone's) goes through
/// [`printable`], so no control sequence reaches the terminal.
fn write_table(entries: &[Entry], out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:>6}  {:<16}  {:>9}  {:>5}  {:>4}  {:>20}  {:<16}  {:<16}  PROMPT",
        "ID", "CREATED", "SIZE", "STEPS", "CFG", "SEED", "SAMPLER", "MODEL"
    )?;
    let tz = jiff::tz::TimeZone::system();
    for e in entries {
        let p = &e.params;
        let created = e
            .created_at
            .to_zoned_datetime(tz.clone())
            .strftime("%Y-%m-%d %H:%M")
            .to_string();
        writeln!(
            out,
            "{:>6}  {:<16}  {:>9}  {:>5}  {:>4}  {:>20}  {:<16}  {:<16}  {}{}",
            e.id,
            created,
            format!("{}x{}", p.width, p.height),
            p.steps,
            crate::output::parameters::format_guidance(p.guidance),
            p.seed,
            shorten(&crate::history::entry::a1111_display(p.sampler), 16),
            shorten(&printable(&p.model), 16),
            if e.favourite { "★ " } else { "" },
            shorten(&printable(&p.prompt.replace(['\n', '\r'], " ")), 60),
        )?;
    }
    Ok(())
}

/// At most `max` characters, with `…` when cut.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct TestCli {
        #[command(subcommand)]
        cmd: TestCmd,
    }

    #[derive(clap::Subcommand, Debug)]
    enum TestCmd {
        History(HistoryArgs),
        Import(ImportArgs),
    }

    #[test]
    fn parses_like_the_contract() {
        let cli = TestCli::try_parse_from(["lantern", "history", "--search", "fox", "--limit", "5", "--json"]).unwrap();
        let hyphen = TestCli::try_parse_from(["lantern", "history", "--search", "-neg"]).unwrap();
        let TestCmd::History(h) = hyphen.cmd else { panic!() };
        assert_eq!(
            h.list.search.as_deref(),
            Some("-neg"),
            "a search may start with a hyphen"
        );
        let TestCmd::History(h) = cli.cmd else { panic!() };
        assert!(h.command.is_none());
        assert_eq!(
            (h.list.search.as_deref(), h.list.limit, h.list.json),
            (Some("fox"), 5, true)
        );

        let cli = TestCli::try_parse_from(["lantern", "history", "export", "out.json"]).unwrap();
        let TestCmd::History(h) = cli.cmd else { panic!() };
        assert!(matches!(h.command, Some(HistoryCommand::Export(ref e)) if e.file == std::path::Path::new("out.json")));

        let cli = TestCli::try_parse_from(["lantern", "import", "some/dir"]).unwrap();
        assert!(matches!(cli.cmd, TestCmd::Import(ref i) if i.dir == std::path::Path::new("some/dir")));

        assert!(TestCli::try_parse_from(["lantern", "history", "--limit", "x"]).is_err());
    }

    #[test]
    fn shorten_counts_characters() {
        assert_eq!(shorten("狐狸狐狸", 3), "狐狸…");
        assert_eq!(shorten("abc", 3), "abc");
    }
}
