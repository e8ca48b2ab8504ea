//! `lantern models list [--json]` and `lantern models download NAME_OR_REPO`.
//!
//! The top-level CLI embeds [`ModelsArgs`] as its `models` subcommand and calls [`run`].

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::error::Error;
use crate::format::{ByteSize, printable};
use crate::hub::{
    CancelFlag, Catalog, DiscoveryRoots, DownloadEvent, DownloadRequest, HubConfig, LocalModel, ModelStatus, Progress,
    discover, download,
};

#[derive(Args, Debug, Clone)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub command: ModelsCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum ModelsCommand {
    /// List the models on disk: weights/, the data dir, the Hugging Face cache, given folders.
    List(ListArgs),
    /// Download a known model (sd-turbo, sd15, sd21, sdxl, sdxl-turbo) or any diffusers repo
    /// into the Hugging Face cache. Ctrl+C stops; running it again resumes.
    Download(DownloadArgs),
}

#[derive(Args, Debug, Clone, Default)]
pub struct ListArgs {
    /// Print JSON (one array of models) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also look in this folder (a model folder or a folder of them). Repeatable.
    #[arg(long = "folder", value_name = "DIR")]
    pub folders: Vec<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct DownloadArgs {
    /// A catalog name (`sd-turbo`) or a Hugging Face repo id (`org/name`).
    #[arg(value_name = "NAME_OR_REPO")]
    pub name_or_repo: String,
    /// Branch, tag or commit to download (default: the catalog's, else `main`).
    #[arg(long)]
    pub revision: Option<String>,
    /// The Hugging Face cache folder (default: HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: ModelsArgs) -> anyhow::Result<()> {
    match args.command {
        ModelsCommand::List(list) => run_list(&list, &mut std::io::stdout().lock()),
        ModelsCommand::Download(dl) => run_download(&dl).map(|_| ()),
    }
}

/// Prints the local models (table or JSON) to `out`.
pub fn run_list(args: &ListArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let models = discover(&DiscoveryRoots::standard(args.folders.clone()));
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &models)?;
        writeln!(out)?;
        return Ok(());
    }
    if models.is_empty() {
        writeln!(out, "No models found.")?;
        if let Ok(catalog) = Catalog::builtin()
            && let Some(first) = catalog.suggested(true)
        {
            writeln!(
                out,
                "Get one with `lantern models download {}` ({}, {}), or pass --folder DIR.",
                first.id,
                first.name,
                first.size()
            )?;
        }
        return Ok(());
    }
    print_table(&models, out)?;
    let roots = DiscoveryRoots::standard(args.folders.clone());
    let loras: Vec<_> = crate::hub::discover_loras(&roots, &[])
        .iter()
        .map(|f| crate::hub::describe_lora(f))
        .filter(|l| l.kind != crate::hub::LoraKind::NotALora)
        .collect();
    if !loras.is_empty() {
        writeln!(out)?;
        print_loras(&loras, out)?;
    }
    let taesds = crate::hub::discover_taesds(&roots);
    if !taesds.is_empty() {
        writeln!(out)?;
        writeln!(out, "Preview decoders (TAESD: live previews and --draft-decode):")?;
        for t in &taesds {
            let family = match t.space {
                crate::hub::TaesdSpace::Sd => "SD 1.x/2.x",
                crate::hub::TaesdSpace::Sdxl => "SDXL",
            };
            writeln!(out, "  {}  {family}", printable(&t.name))?;
            writeln!(out, "    {}", printable(&t.path.display().to_string()))?;
        }
    }
    Ok(())
}

/// The LoRAs a prompt can name with `<lora:NAME:WEIGHT>`.
fn print_loras(loras: &[crate::hub::LoraInfo], out: &mut dyn Write) -> std::io::Result<()> {
    use crate::hub::{BaseArch, LoraKind};
    let width = loras
        .iter()
        .map(|l| printable(&l.name).chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        out,
        "{:width$}  {:10}  {:>8}  PATH (use as <lora:NAME:1>)",
        "LORA", "FAMILY", "SIZE"
    )?;
    for l in loras {
        let family = match l.kind {
            LoraKind::For(BaseArch::Sd1) => "SD 1.x",
            LoraKind::For(BaseArch::Sd2) => "SD 2.x",
            LoraKind::For(BaseArch::Sdxl) => "SDXL",
            LoraKind::Unknown | LoraKind::NotALora => "unknown",
        };
        writeln!(
            out,
            "{:width$}  {family:10}  {:>8}  {}",
            printable(&l.name),
            crate::format::ByteSize(l.size).to_string(),
            printable(&l.path.display().to_string())
        )?;
    }
    Ok(())
}

/// Names, paths and problems come from folders and files on disk: shown through
/// [`printable`], so no control sequence reaches the terminal.
fn print_table(models: &[LocalModel], out: &mut dyn Write) -> std::io::Result<()> {
    let width = models
        .iter()
        .map(|m| printable(&m.name).chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        out,
        "{:width$}  {:10}  {:9}  {:>8}  {:24}  STATUS",
        "NAME", "FAMILY", "PRECISION", "SIZE", "SOURCE"
    )?;
    for m in models {
        let donor = (m.needs_vae || m.needs_text_encoder)
            .then(|| crate::hub::family_donor(models, m.base))
            .flatten();
        let lacks = match (m.needs_vae, m.needs_text_encoder) {
            (true, true) => "VAE or text encoder",
            (false, true) => "text encoder",
            _ => "VAE",
        };
        let status = match &m.status {
            ModelStatus::Complete if donor.is_some() => format!(
                "ok: no {lacks} in the file, uses {}'s",
                printable(donor.map(|d| d.name.as_str()).unwrap_or_default())
            ),
            ModelStatus::Complete if m.needs_vae => "needs a VAE: no VAE in the file (--vae FILE)".to_owned(),
            ModelStatus::Complete => "ok".to_owned(),
            ModelStatus::Incomplete(problems) => format!("incomplete: {}", printable(&problems.join("; "))),
        };
        writeln!(
            out,
            "{:width$}  {:10}  {:9}  {:>8}  {:24}  {status}",
            printable(&m.name),
            m.family_label,
            m.precision.to_string(),
            m.size.to_string(),
            m.source.label()
        )?;
        writeln!(out, "{:width$}  {}", "", printable(&m.path.display().to_string()))?;
    }
    Ok(())
}

/// Downloads with a progress bar on stderr; prints the snapshot folder on stdout.
pub fn run_download(args: &DownloadArgs) -> anyhow::Result<PathBuf> {
    let catalog = Catalog::builtin()?;
    let mut request = DownloadRequest::resolve(&args.name_or_repo, &catalog)?;
    if let Some(revision) = &args.revision {
        request.revision = revision.clone();
    }
    let mut config = HubConfig::from_env()?;
    if let Some(dir) = &args.cache_dir {
        config.cache_dir = dir.clone();
    }
    let cancel = ctrl_c_flag();
    let mut bar = TerminalProgress::new(args.quiet, &request.repo_id);
    let result = download(&config, &request, &cancel, &mut |event| bar.event(&event));
    bar.clear();
    match result {
        Ok(snapshot) => {
            eprintln!("Downloaded {} to the Hugging Face cache.", printable(&request.repo_id));
            println!("{}", printable(&snapshot.display().to_string()));
            Ok(snapshot)
        }
        Err(Error::Cancelled) => anyhow::bail!(
            "download cancelled; run `lantern models download {}` again to resume",
            args.name_or_repo
        ),
        Err(e) => Err(e).with_context(|| format!("downloading {}", request.repo_id)),
    }
}

/// A cancel flag set by Ctrl+C. The handler is installed once per process; a second Ctrl+C
/// while the first is still being honoured exits at once.
fn ctrl_c_flag() -> CancelFlag {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    let flag = FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let handler_flag = flag.clone();
        let installed = ctrlc::set_handler(move || {
            if handler_flag.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
        if let Err(e) = installed {
            tracing::warn!("Ctrl+C will not stop the download cleanly: {e}");
        }
        flag
    });
    flag.store(false, Ordering::SeqCst);
    CancelFlag::from_arc(flag.clone())
}

/// A one-line progress bar on stderr when it is a terminal; plain per-file lines otherwise.
struct TerminalProgress {
    quiet: bool,
    tty: bool,
    drawn: bool,
    label: String,
    last_plain: Option<Instant>,
}

impl TerminalProgress {
    fn new(quiet: bool, label: &str) -> Self {
        TerminalProgress {
            quiet,
            tty: std::io::stderr().is_terminal(),
            drawn: false,
            label: label.to_owned(),
            last_plain: None,
        }
    }

    fn event(&mut self, event: &DownloadEvent) {
        if self.quiet {
            return;
        }
        match event {
            DownloadEvent::Planned {
                commit,
                files,
                total,
                already,
                size_only,
                ..
            } => {
                let resume = if *already > 0 {
                    format!(", {} already here", ByteSize(*already))
                } else {
                    String::new()
                };
                let size_only = match size_only {
                    0 => String::new(),
                    n => format!("; {n} without a hash from the Hub, checked by size only"),
                };
                self.line(&format!(
                    "{}: {files} files, {} (commit {}){resume}{size_only}",
                    self.label,
                    ByteSize(*total),
                    &commit[..commit.len().min(12)]
                ));
            }
            DownloadEvent::FileStarted { path, resume_from, .. } if *resume_from > 0 => {
                self.line(&format!("resuming {path} from {}", ByteSize(*resume_from)));
            }
            DownloadEvent::Progress(p) => self.draw(p),
            DownloadEvent::FileDone { path, skipped } if !self.tty => {
                let verb = if *skipped { "already present" } else { "done" };
                self.line(&format!("{path}: {verb}"));
            }
            _ => {}
        }
    }

    fn draw(&mut self, p: &Progress) {
        if !self.tty {
            // Logs get a line every 10 s at most.
            if self.last_plain.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                self.last_plain = Some(Instant::now());
                eprintln!("{}", progress_line(p));
            }
            return;
        }
        eprint!("\r{}\x1b[K", progress_line(p));
        let _ = std::io::stderr().flush();
        self.drawn = true;
    }

    fn line(&mut self, text: &str) {
        self.clear();
        eprintln!("{}", printable(text));
    }

    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[K");
            let _ = std::io::stderr().flush();
            self.drawn = false;
        }
    }
}

/// `45% [#############-----------------] 1.2 GB / 2.6 GB  12.3 MB/s  ETA 1m52s  unet/…`
pub fn progress_line(p: &Progress) -> String {
    const WIDTH: usize = 30;
    let fraction = p.fraction().clamp(0.0, 1.0);
    let filled = ((fraction * WIDTH as f64) as usize).min(WIDTH);
    let eta = p.eta.map(format_eta).unwrap_or_else(|| "--".into());
    format!(
        "{:3.0}% [{}{}] {} / {}  {}/s  ETA {eta}  {}",
        fraction * 100.0,
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        ByteSize(p.done),
        ByteSize(p.total),
        ByteSize(p.bytes_per_sec as u64),
        printable(&p.file)
    )
}

fn format_eta(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        models: ModelsCommand,
    }

    #[test]
    fn commands_parse() {
        let cli = Cli::try_parse_from(["lantern", "list", "--json", "--folder", "/a"]).unwrap();
        assert!(
            matches!(cli.models, ModelsCommand::List(ListArgs { json: true, ref folders }) if folders == &[PathBuf::from("/a")])
        );
        let cli = Cli::try_parse_from(["lantern", "download", "sd-turbo", "--revision", "v2"]).unwrap();
        match cli.models {
            ModelsCommand::Download(d) => {
                assert_eq!(d.name_or_repo, "sd-turbo");
                assert_eq!(d.revision.as_deref(), Some("v2"));
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["lantern", "download"]).is_err());
    }

    #[test]
    fn progress_line_shows_percent_sizes_speed_and_eta() {
        let p = Progress {
            file: "unet/diffusion_pytorch_model.fp16.safetensors".into(),
            file_done: 0,
            file_size: 1,
            done: 1_200_000_000,
            total: 2_600_000_000,
            bytes_per_sec: 12_300_000.0,
            eta: Some(Duration::from_secs(112)),
        };
        let line = progress_line(&p);
        assert!(line.starts_with(" 46% [#############"), "{line}");
        assert!(line.contains("1.2 GB / 2.6 GB  12.3 MB/s  ETA 1m52s  unet/"), "{line}");
        assert_eq!(format_eta(Duration::from_secs(3700)), "1h01m");
    }
}
