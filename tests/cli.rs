//! `lantern` as a user runs it: generate, tokenize, and one clear line for every bad input.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::*;

fn lantern(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lantern"));
    cmd.env("LANTERN_DATA_DIR", data_dir)
        .env_remove("RUST_BACKTRACE")
        .env("NO_COLOR", "1");
    cmd
}

fn sd1() -> PathBuf {
    fixtures().join("sd1-tiny")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failure must be exactly one line on stderr, with no panic or backtrace.
fn assert_one_line_error(o: &Output, expect: &str) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure, stderr: {err}");
    let lines: Vec<_> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
    assert!(
        err.to_lowercase().contains(&expect.to_lowercase()),
        "expected `{expect}` in: {err}"
    );
}

#[test]
fn generate_matches_diffusers_and_writes_metadata_and_history() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fox.png");
    let o = lantern(tmp.path())
        .args(["generate", "--model"])
        .arg(sd1())
        .args([
            "--prompt",
            "a lighthouse at dusk, oil painting",
            "--negative-prompt",
            "blurry, low quality",
        ])
        .args([
            "--steps",
            "6",
            "--guidance",
            "7.5",
            "--width",
            "64",
            "--height",
            "64",
            "--scheduler",
            "euler",
            "--seed",
            "42",
            // diffusers' reference reads the prompt as plain text.
            "--prompt-syntax",
            "plain",
        ])
        .arg("--init-latents")
        .arg(fixtures().join("latents/64x64.safetensors"))
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let ours = read_png(&out);
    let reference = read_png(&fixtures().join("reference/sd1/euler-sq-g7.png"));
    let (max, mean) = pixel_diff(&ours, &reference);
    assert!(max <= 3 && mean <= 0.5, "max {max} mean {mean}");

    let text = lantern::output::read_parameters_file(&out)
        .unwrap()
        .expect("parameters chunk");
    assert!(
        text.starts_with("a lighthouse at dusk, oil painting\nNegative prompt: blurry, low quality\n"),
        "{text}"
    );
    for field in [
        "Steps: 6",
        "Sampler: Euler",
        "CFG scale: 7.5",
        "Seed: 42",
        "Size: 64x64",
        "Model: sd1-tiny",
    ] {
        assert!(text.contains(field), "missing `{field}` in {text}");
    }
    // Recorded in the history under LANTERN_DATA_DIR.
    let o = lantern(tmp.path()).args(["history", "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("a lighthouse at dusk") && stdout.contains("fox.png"),
        "{stdout}"
    );
}

#[test]
fn seeds_repeat_and_batches_count_up() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| -> Output {
        lantern(tmp.path())
            .args(["generate", "--model"])
            .arg(sd1())
            .args([
                "--prompt",
                "a red fox",
                "--steps",
                "3",
                "--width",
                "64",
                "--height",
                "48",
                "--no-history",
            ])
            .args(extra)
            .arg("--output")
            .arg(tmp.path().join(name))
            .output()
            .unwrap()
    };
    assert!(run("a.png", &["--seed", "7"]).status.success());
    assert!(run("b.png", &["--seed", "7"]).status.success());
    assert_eq!(read_png(&tmp.path().join("a.png")), read_png(&tmp.path().join("b.png")));

    let o = run("batch.png", &["--seed", "7", "--batch", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = read_png(&tmp.path().join("batch.png"));
    let second = read_png(&tmp.path().join("batch-1.png"));
    assert_eq!(first, read_png(&tmp.path().join("a.png")), "batch image 0 uses seed S");
    assert_ne!(first, second, "batch image 1 uses seed S+1");
    let p = lantern::output::read_parameters_file(&tmp.path().join("batch-1.png"))
        .unwrap()
        .unwrap();
    assert!(p.contains("Seed: 8"), "{p}");

    // No seed, or A1111's -1: a random one is chosen and reported.
    for (name, extra) in [("random.png", &[][..]), ("minus-one.png", &["--seed", "-1"][..])] {
        let o = run(name, extra);
        assert!(o.status.success(), "{}", stderr(&o));
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(stdout.contains("seed "), "{stdout}");
    }

    // The noise source: gpu (A1111's default) unless asked; each source its own picture, and
    // the PNG says which.
    let rng_of = |name: &str| {
        let p = lantern::output::read_parameters_file(&tmp.path().join(name))
            .unwrap()
            .unwrap();
        lantern::output::parse_parameters(&p).unwrap().to_recipe().rng
    };
    assert_eq!(rng_of("a.png"), lantern::recipe::NoiseKind::Gpu);
    for (name, rng) in [("cpu.png", "cpu"), ("lantern.png", "lantern")] {
        let o = run(name, &["--seed", "7", "--rng", rng]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_ne!(read_png(&tmp.path().join(name)), first, "--rng {rng}");
        assert_eq!(rng_of(name).cli_name(), rng);
    }
}

#[test]
fn unusual_prompts_work() {
    let tmp = tempfile::tempdir().unwrap();
    let long = "a very long prompt with many words ".repeat(300);
    for (i, prompt) in ["", "一只红色的狐狸在雪地里 🦊✨", long.as_str(), "-starts with a dash"]
        .iter()
        .enumerate()
    {
        let out = tmp.path().join(format!("p{i}.png"));
        let o = lantern(tmp.path())
            .args(["generate", "--model"])
            .arg(sd1())
            .args([
                "--prompt",
                prompt,
                "--steps",
                "2",
                "--width",
                "64",
                "--height",
                "64",
                "--no-history",
            ])
            .arg("--output")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "prompt {i}: {}", stderr(&o));
        assert!(out.is_file());
        let text = lantern::output::read_parameters_file(&out).unwrap().unwrap();
        assert!(
            text.starts_with(prompt.trim_end()) || prompt.is_empty(),
            "prompt {i} not kept"
        );
    }
}

#[test]
fn tokenize_prints_77_ids_per_tokenizer() {
    let tmp = tempfile::tempdir().unwrap();
    let o = lantern(tmp.path())
        .args(["tokenize", "--model"])
        .arg(sd1())
        .args(["--prompt", "hello world!"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Vec<u32>> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].len(), 77);
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("tokenizer_cases.json")).unwrap()).unwrap();
    let expected = cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["prompt"] == "hello world!")
        .unwrap()["ids"]["sd1-tiny/tokenizer"]
        .clone();
    assert_eq!(serde_json::to_value(&lines[0]).unwrap(), expected);

    let o = lantern(tmp.path())
        .args(["tokenize", "--model"])
        .arg(fixtures().join("sdxl-tiny"))
        .args(["--prompt", "wow!"])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().count(),
        2,
        "SDXL has two tokenizers"
    );
}

/// Copies a fixture model so a test can break it.
fn copy_model(src: &Path, dst: &Path) {
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            copy_model(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

#[test]
fn prompt_syntax_and_clip_skip_reach_the_png() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| -> String {
        let out = tmp.path().join(name);
        let o = lantern(tmp.path())
            .args(["generate", "--model"])
            .arg(sd1())
            .args(["--prompt", "a (red:1.4) fox BREAK snow", "--steps", "2", "--seed", "3"])
            .args(["--width", "64", "--height", "64", "--no-history"])
            .args(extra)
            .arg("--output")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        lantern::output::read_parameters_file(&out).unwrap().unwrap()
    };
    let a1111 = run("a.png", &[]);
    assert!(
        a1111.contains("Prompt syntax: a1111") && !a1111.contains("Clip skip"),
        "{a1111}"
    );
    let plain = run("p.png", &["--prompt-syntax", "plain", "--clip-skip", "2"]);
    assert!(plain.contains("Clip skip: 2, Prompt syntax: plain"), "{plain}");
    assert_ne!(
        read_png(&tmp.path().join("a.png")),
        read_png(&tmp.path().join("p.png")),
        "weights, BREAK and clip skip change the picture"
    );
}

/// `<lora:NAME:W>` finds the file in `--lora-dir` or the data folder's `loras/`, changes the
/// picture, and the PNG records A1111's `Lora hashes`; a missing or malformed tag is one line
/// (the malformed one before the model loads).
#[test]
fn a_lora_tag_is_applied_and_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let loras = fixtures().join("loras");
    let run = |name: &str, prompt: &str, extra: &[&str]| -> Output {
        lantern(tmp.path())
            .args(["generate", "--model"])
            .arg(sd1())
            .args(["--prompt", prompt, "--steps", "2", "--seed", "3"])
            .args(["--width", "64", "--height", "64", "--no-history"])
            .args(extra)
            .arg("--output")
            .arg(tmp.path().join(name))
            .output()
            .unwrap()
    };
    let dir = loras.to_str().unwrap();
    let o = run("lora.png", "a red fox <lora:sd1-kohya:0.8>", &["--lora-dir", dir]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = lantern::output::read_parameters_file(&tmp.path().join("lora.png"))
        .unwrap()
        .unwrap();
    assert!(
        text.starts_with("a red fox <lora:sd1-kohya:0.8>") && text.contains("Lora hashes: \"sd1-kohya: 82bd49700770\""),
        "{text}"
    );
    // The data folder's loras/ is looked in without --lora-dir.
    std::fs::create_dir(tmp.path().join("loras")).unwrap();
    std::fs::copy(
        loras.join("sd1-peft.safetensors"),
        tmp.path().join("loras/peft.safetensors"),
    )
    .unwrap();
    let o = run("peft.png", "a red fox <lora:peft:1>", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run("none.png", "a red fox", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(
        read_png(&tmp.path().join("peft.png")),
        read_png(&tmp.path().join("none.png"))
    );

    assert_one_line_error(
        &run("x.png", "a fox <lora:nowhere:1>", &[]),
        "LoRA `nowhere`: not found",
    );
    assert_one_line_error(
        &run("x.png", "a fox <lora:peft:lots>", &[]),
        "weight `lots` is not a number",
    );
    assert_one_line_error(
        &run("x.png", "a fox <lora:sdxl-kohya:1>", &["--lora-dir", dir]),
        "LoRA `sdxl-kohya`: made for",
    );
    assert!(!tmp.path().join("x.png").exists());
}

/// An embedding's name in the prompt uses it (found in `--embedding-dir`), and the PNG
/// records A1111's `TI hashes` (12 hex digits of the file's SHA-256).
#[test]
fn an_embedding_name_is_used_and_recorded() {
    use sha2::Digest;
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixtures().join("embeddings");
    let out = tmp.path().join("ti.png");
    let o = lantern(tmp.path())
        .args(["generate", "--model"])
        .arg(sd1())
        .args([
            "--prompt",
            "a lighthouse in lanternstyle",
            "--negative-prompt",
            "lanternone",
        ])
        .args([
            "--steps",
            "2",
            "--seed",
            "3",
            "--width",
            "64",
            "--height",
            "64",
            "--no-history",
        ])
        .arg("--embedding-dir")
        .arg(&dir)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = lantern::output::read_parameters_file(&out).unwrap().unwrap();
    let hash = |name: &str| {
        let bytes = std::fs::read(dir.join(format!("{name}.safetensors"))).unwrap();
        let digest = sha2::Sha256::digest(&bytes);
        digest.iter().map(|b| format!("{b:02x}")).collect::<String>()[..12].to_string()
    };
    let expected = format!(
        "TI hashes: \"lanternone: {}, lanternstyle: {}\"",
        hash("lanternone"),
        hash("lanternstyle")
    );
    assert!(text.contains(&expected), "{text}");
}

#[test]
fn bad_input_gives_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let gen_with = |model: &Path, extra: &[&str]| -> Output {
        lantern(tmp.path())
            .args(["generate", "--model"])
            .arg(model)
            .args(["--prompt", "a fox", "--steps", "2", "--no-history"])
            .args(extra)
            .output()
            .unwrap()
    };
    let m = sd1();
    assert_one_line_error(&gen_with(&m, &["--width", "500", "--height", "64"]), "multiple of 8");
    assert_one_line_error(&gen_with(&m, &["--width", "0", "--height", "64"]), "multiple of 8");
    assert_one_line_error(
        &gen_with(&m, &["--width", "64", "--height", "64", "--steps", "0"]),
        "steps",
    );
    assert_one_line_error(
        &gen_with(&m, &["--width", "64", "--height", "64", "--guidance", "NaN"]),
        "guidance",
    );
    assert_one_line_error(&gen_with(&m, &["--width", "99999", "--height", "64"]), "width");
    // Clip skip: checked before loading, then against the encoder's depth (3 layers here).
    assert_one_line_error(
        &gen_with(&m, &["--width", "64", "--height", "64", "--clip-skip", "0"]),
        "clip skip",
    );
    assert_one_line_error(
        &gen_with(&m, &["--width", "64", "--height", "64", "--clip-skip", "13"]),
        "clip skip 13 is beyond this model's text encoder depth: it allows 1 to 3",
    );
    assert_one_line_error(
        &gen_with(&m, &["--width", "64", "--height", "64", "--prompt-syntax", "rst"]),
        "prompt syntax",
    );
    assert_one_line_error(
        &gen_with(&m, &["--width", "64", "--height", "64", "--scheduler", "bogus"]),
        "scheduler",
    );
    for seed in ["18446744073709551616", "-5", "99999999999999999999999999"] {
        assert_one_line_error(&gen_with(&m, &["--seed", seed]), "0 to 18446744073709551615");
    }
    assert_one_line_error(&gen_with(&m, &["--seed", "12abc"]), "whole number");
    assert_one_line_error(&gen_with(&m, &["--rng", "quantum"]), "cpu, gpu, lantern");
    assert_one_line_error(&gen_with(&tmp.path().join("nope"), &[]), "does not exist");
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert_one_line_error(&gen_with(&empty, &[]), "model_index.json");

    // A truncated weight file (an interrupted download).
    let truncated = tmp.path().join("truncated");
    copy_model(&m, &truncated);
    let unet = truncated.join("unet/diffusion_pytorch_model.safetensors");
    let len = std::fs::metadata(&unet).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&unet)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    assert_one_line_error(&gen_with(&truncated, &["--width", "64", "--height", "64"]), "truncated");

    // A config with a block type we do not implement names the file and the field.
    let odd = tmp.path().join("odd");
    copy_model(&m, &odd);
    let cfg_path = odd.join("unet/config.json");
    let cfg = std::fs::read_to_string(&cfg_path)
        .unwrap()
        .replace("\"DownBlock2D\"", "\"AttnDownBlock2D\"");
    std::fs::write(&cfg_path, cfg).unwrap();
    let o = gen_with(&odd, &["--width", "64", "--height", "64"]);
    assert_one_line_error(&o, "down_block_types");
    assert!(stderr(&o).contains("config.json"));

    // Init latents of the wrong shape.
    let o = gen_with(
        &m,
        &[
            "--width",
            "64",
            "--height",
            "48",
            "--init-latents",
            fixtures().join("latents/64x64.safetensors").to_str().unwrap(),
        ],
    );
    assert_one_line_error(&o, "shape");

    // Init latents holding NaN: refused before any step, not a garbage picture.
    let nan_file = tmp.path().join("nan-latents.safetensors");
    let mut values = vec![0.5f32; 4 * 8 * 8];
    values[17] = f32::NAN;
    let nan = candle_core::Tensor::from_vec(values, (1, 4, 8, 8), &candle_core::Device::Cpu).unwrap();
    candle_core::safetensors::save(&std::collections::HashMap::from([("latents", nan)]), &nan_file).unwrap();
    let o = gen_with(
        &m,
        &[
            "--width",
            "64",
            "--height",
            "64",
            "--init-latents",
            nan_file.to_str().unwrap(),
        ],
    );
    assert_one_line_error(&o, "NaN");

    // An output path in a folder that does not exist, and nothing written.
    let o = gen_with(
        &m,
        &[
            "--width",
            "64",
            "--height",
            "64",
            "--output",
            tmp.path().join("no/such/dir/x.png").to_str().unwrap(),
        ],
    );
    assert_one_line_error(&o, "does not exist");
    assert!(!tmp.path().join("no").exists());

    // An argument clap rejects is one line too.
    assert_one_line_error(&gen_with(&m, &["--steps", "many"]), "steps");
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_cleanly_without_half_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let child = lantern(tmp.path())
        .args(["generate", "--model"])
        .arg(sd1())
        .args([
            "--prompt",
            "a fox",
            "--steps",
            "500",
            "--width",
            "256",
            "--height",
            "256",
            "--no-history",
        ])
        .arg("--output")
        .arg(out_dir.join("x.png"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("cancelled"), "{err}");
    assert_eq!(
        std::fs::read_dir(&out_dir).unwrap().count(),
        0,
        "nothing may be left in the output folder"
    );
}

/// Output that a terminal shows as text: no ESC, BEL or other C0/C1 control character (other
/// than the newlines that end lines).
#[track_caller]
fn assert_no_control_codes(what: &str, bytes: &[u8]) {
    assert!(
        !bytes.contains(&0x1b) && !bytes.contains(&0x07),
        "{what}: raw ESC/BEL in {:?}",
        String::from_utf8_lossy(bytes)
    );
    let text = String::from_utf8_lossy(bytes);
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{what}: control character in {text:?}"
    );
}

#[cfg(unix)]
#[test]
fn hostile_text_never_reaches_the_terminal() {
    // An imported PNG whose prompt sets the window title, writes the clipboard (OSC 52) and
    // clears the screen with a C1 CSI; its model name and its file name carry more.
    const PROMPT: &str = "a fox \x1b]0;pwned\x07 in the snow \x1b]52;c;cHduZWQ=\x07 \u{9b}2J end";
    const MODEL: &str = "model\x1b]0;pwned\x07";
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let pngs = tmp.path().join("pngs");
    std::fs::create_dir_all(&pngs).unwrap();
    let text = format!(
        "{PROMPT}\nNegative prompt: blurry\nSteps: 2, Sampler: Euler, CFG scale: 7, Seed: 5, Size: 64x64, Model: {MODEL}"
    );
    let png = lantern::output::png::encode_png(&lantern::output::RgbImage::new(64, 64), Some(&text)).unwrap();
    std::fs::write(pngs.join("evil\x1b]0;file\x07.png"), &png).unwrap();
    // A file that cannot be read as a PNG, so `import` reports its (hostile) name.
    std::fs::write(pngs.join("broken\x1b]0;x\x07.png"), b"not a png").unwrap();

    let o = lantern(&data).arg("import").arg(&pngs).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_no_control_codes("import stdout", &o.stdout);
    assert_no_control_codes("import stderr", &o.stderr);
    assert!(String::from_utf8_lossy(&o.stdout).contains("added 1"), "{o:?}");

    let o = lantern(&data).arg("history").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_no_control_codes("history stdout", &o.stdout);
    assert_no_control_codes("history stderr", &o.stderr);
    let table = String::from_utf8_lossy(&o.stdout);
    // Shown, visibly escaped, not dropped.
    assert!(table.contains("a fox \\x1b]0;pwned\\x07 in"), "{table}");
    assert!(table.contains("model\\x1b]0;"), "{table}");

    // JSON stays exact.
    let o = lantern(&data).args(["history", "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let entries: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let entry = &entries.as_array().unwrap()[0];
    let json_text = serde_json::to_string(entry).unwrap();
    assert!(
        json_text.contains(&serde_json::to_string(PROMPT).unwrap()),
        "{json_text}"
    );
    assert!(
        json_text.contains(&serde_json::to_string(MODEL).unwrap()),
        "{json_text}"
    );
    let export = tmp.path().join("export.json");
    let o = lantern(&data)
        .args(["history", "export"])
        .arg(&export)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let exported = std::fs::read_to_string(&export).unwrap();
    assert!(exported.contains(&serde_json::to_string(PROMPT).unwrap()), "{exported}");

    // An error line quoting a hostile path.
    let o = lantern(&data)
        .arg("import")
        .arg(tmp.path().join("no\x1b]0;such\x07dir"))
        .output()
        .unwrap();
    assert_one_line_error(&o, "not a folder");
    assert_no_control_codes("error line", &o.stderr);

    // A model folder with a hostile name.
    let models = tmp.path().join("models");
    let odd = models.join("sd\x1b]0;pwned\x07");
    std::fs::create_dir_all(&odd).unwrap();
    copy_model(&sd1(), &odd);
    let o = lantern(&data)
        .args(["models", "list", "--folder"])
        .arg(&models)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_no_control_codes("models list", &o.stdout);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("sd\\x1b]0;pwned\\x07"),
        "{o:?}"
    );
}

#[test]
fn output_names_past_the_limit_are_refused_before_loading() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |model: &Path, output: &Path, extra: &[&str]| -> Output {
        lantern(tmp.path())
            .args(["generate", "--model"])
            .arg(model)
            .args([
                "--prompt",
                "a fox",
                "--steps",
                "2",
                "--width",
                "64",
                "--height",
                "64",
                "--no-history",
            ])
            .args(extra)
            .arg("--output")
            .arg(output)
            .output()
            .unwrap()
    };
    let too_long = tmp.path().join(format!("{}.png", "a".repeat(296)));
    // Refused before the model is even looked at: a missing model is not what is reported.
    let o = run(&tmp.path().join("no-such-model"), &too_long, &[]);
    assert_one_line_error(&o, "300 bytes long");
    let o = run(&sd1(), &too_long, &[]);
    assert_one_line_error(&o, "at most 255");
    // The last image of a batch gets `-1`: 254 + 2 bytes is too long too.
    let o = run(
        &sd1(),
        &tmp.path().join(format!("{}.png", "b".repeat(250))),
        &["--batch", "2"],
    );
    assert_one_line_error(&o, "256 bytes long");
    let written: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".png") || n.to_string_lossy().contains(".tmp"))
        .collect();
    assert!(written.is_empty(), "{written:?}");

    // A legal 250-byte name is written (its temp file no longer pushes it over the limit).
    let long = tmp.path().join(format!("{}.png", "c".repeat(246)));
    let o = run(&sd1(), &long, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(long.is_file());
}

#[test]
fn a_long_chinese_prompt_gives_a_legal_generated_name() {
    let tmp = tempfile::tempdir().unwrap();
    let prompt: String = "一只红色的狐狸在雪地里🦊".chars().cycle().take(2000).collect();
    let o = lantern(tmp.path())
        .current_dir(tmp.path())
        .args(["generate", "--model"])
        .arg(sd1())
        .args([
            "--prompt",
            &prompt,
            "--steps",
            "2",
            "--width",
            "64",
            "--height",
            "64",
            "--no-history",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let pngs: Vec<PathBuf> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    assert_eq!(pngs.len(), 1, "{pngs:?}");
    let name = pngs[0].file_name().unwrap().to_str().unwrap();
    assert!(name.is_ascii() && name.len() <= 255, "{name}");
    assert!(name.ends_with("-image.png"), "{name}");
    let text = lantern::output::read_parameters_file(&pngs[0]).unwrap().unwrap();
    assert!(text.starts_with(&prompt), "prompt not kept");
}

#[test]
fn a_search_of_a_thousand_words_answers_once() {
    // 1200 distinct short words (each a LIKE term) nested SQLite's query past its depth limit
    // of 1000, and the error line printed SQLite's message twice.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let pngs = tmp.path().join("pngs");
    std::fs::create_dir_all(&pngs).unwrap();
    let text = "a red fox 狐\nSteps: 2, Sampler: Euler, CFG scale: 7, Seed: 5, Size: 64x64, Model: m";
    let png = lantern::output::png::encode_png(&lantern::output::RgbImage::new(64, 64), Some(text)).unwrap();
    std::fs::write(pngs.join("a.png"), &png).unwrap();
    let o = lantern(&data).arg("import").arg(&pngs).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    let mut words: Vec<String> = (0..1200)
        .map(|i| char::from_u32(0x4e00 + i).unwrap().to_string())
        .collect();
    let o = lantern(&data)
        .args(["history", "--search", &words.join(" ")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 of 0"), "{o:?}");
    // The same wall of words that does match: only 狐 and fox, each repeated.
    words = [vec!["狐"; 600], vec!["fox"; 600]]
        .concat()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let o = lantern(&data)
        .args(["history", "--search", &words.join(" ")])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("a red fox"), "{o:?}");
}

/// `--init-image`, `--mask`, `--strength` from the command line give diffusers' inpainting
/// picture (the sd1 regular-model case of tests/img2img.rs), keep the start pictures beside
/// the history, and write A1111's fields; without a size the init image's is used.
#[test]
fn generate_inpaints_from_files_like_diffusers() {
    let tmp = tempfile::tempdir().unwrap();
    let refs = fixtures().join("reference/img2img");
    let out = tmp.path().join("boat.png");
    let o = lantern(tmp.path())
        .args(["generate", "--model"])
        .arg(sd1())
        .args(["--prompt", "a small boat on a calm lake", "--negative-prompt", "blurry"])
        .args([
            "--steps",
            "10",
            "--guidance",
            "7.5",
            "--scheduler",
            "euler",
            "--seed",
            "3",
        ])
        .args(["--rng", "cpu", "--prompt-syntax", "plain", "--strength", "0.75"])
        .args(["--mask-blur", "0", "--keep-unmasked", "false"])
        .arg("--init-image")
        .arg(refs.join("square.png"))
        .arg("--mask")
        .arg(refs.join("square-mask.png"))
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let (max, mean) = pixel_diff(&read_png(&out), &read_png(&refs.join("sd1-inpaint-euler-75.png")));
    assert!(max <= 3 && mean <= 0.5, "max {max} mean {mean}");
    let text = lantern::output::read_parameters_file(&out).unwrap().unwrap();
    for field in [
        "Size: 64x64",
        "Denoising strength: 0.75",
        "Mask blur: 0",
        "Init image hash: ",
        "Mask hash: ",
        "Keep unmasked: false",
    ] {
        assert!(text.contains(field), "missing `{field}` in {text}");
    }
    let kept = std::fs::read_dir(tmp.path().join("inputs")).unwrap().count();
    assert_eq!(kept, 2, "the init image and the mask are kept");
}

#[test]
fn bad_start_pictures_and_strengths_are_one_line_each() {
    let tmp = tempfile::tempdir().unwrap();
    let refs = fixtures().join("reference/img2img");
    let pics = fixtures().join("pictures");
    let base = |extra: &[&std::ffi::OsStr]| {
        lantern(tmp.path())
            .args(["generate", "--model"])
            .arg(sd1())
            .args(["--prompt", "a boat", "--steps", "4", "--no-history", "-q"])
            .args(extra)
            .arg("--output")
            .arg(tmp.path().join("x.png"))
            .output()
            .unwrap()
    };
    let os = |s: &str| std::ffi::OsString::from(s);
    let init = |p: PathBuf| vec![os("--init-image"), p.into_os_string()];
    let not_a_picture = init(pics.join("not-a-picture.png"));
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (not_a_picture, "not a picture"),
        (init(tmp.path().join("missing.png")), "missing.png"),
        (
            [init(refs.join("square.png")), vec![os("--strength"), os("0")]].concat(),
            "above 0",
        ),
        (
            [init(refs.join("square.png")), vec![os("--strength"), os("1.5")]].concat(),
            "at most 1",
        ),
        (
            [init(refs.join("square.png")), vec![os("--strength"), os("0.1")]].concat(),
            "runs no step",
        ),
        (
            [
                init(refs.join("square.png")),
                vec![os("--mask"), pics.join("black.png").into_os_string()],
            ]
            .concat(),
            "covers nothing",
        ),
        (
            vec![os("--mask"), refs.join("square-mask.png").into_os_string()],
            "--init-image",
        ),
    ];
    for (args, expect) in cases {
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        assert_one_line_error(&base(&refs), expect);
    }
}

/// `--hires-scale` from the command line: diffusers' pipelines composed as A1111's hires fix
/// (tests/img2img.rs has every case), the bigger picture written, A1111's fields in the PNG.
#[test]
fn generate_with_hires_fix_like_a1111() {
    let tmp = tempfile::tempdir().unwrap();
    let refs = fixtures().join("reference/hires");
    let out = tmp.path().join("hires.png");
    let o = lantern(tmp.path())
        .args(["generate", "--model"])
        .arg(sd1())
        .args(["--prompt", "a small boat on a calm lake", "--negative-prompt", "blurry"])
        .args([
            "--steps",
            "6",
            "--guidance",
            "7.5",
            "--scheduler",
            "euler-a",
            "--seed",
            "7",
        ])
        .args([
            "--width",
            "64",
            "--height",
            "48",
            "--rng",
            "cpu",
            "--prompt-syntax",
            "plain",
        ])
        .args(["--hires-scale", "1.5", "--hires-steps", "4", "--strength", "0.6"])
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let ours = read_png(&out);
    assert_eq!((ours.width, ours.height), (96, 72));
    let (max, mean) = pixel_diff(&ours, &read_png(&refs.join("sd1-euler-a-latent.png")));
    assert!(max <= 3 && mean <= 0.5, "max {max} mean {mean}");
    let text = lantern::output::read_parameters_file(&out).unwrap().unwrap();
    for field in [
        "Size: 64x48",
        "Denoising strength: 0.6",
        "Hires upscale: 1.5",
        "Hires steps: 4",
        "Hires upscaler: Latent",
    ] {
        assert!(text.contains(field), "missing `{field}` in {text}");
    }
    // Hires settings without a scale, a scale out of range, hires with a start picture.
    for (args, expect) in [
        (vec!["--hires-steps", "4"], "need --hires-scale"),
        (vec!["--hires-scale", "5"], "at most 4"),
        (vec!["--hires-scale", "1"], "above 1"),
    ] {
        let o = lantern(tmp.path())
            .args(["generate", "--model"])
            .arg(sd1())
            .args(["--prompt", "x", "--no-history", "-q"])
            .args(&args)
            .output()
            .unwrap();
        assert_one_line_error(&o, expect);
    }
    let o = lantern(tmp.path())
        .args(["generate", "--model"])
        .arg(sd1())
        .args([
            "--prompt",
            "x",
            "--no-history",
            "-q",
            "--hires-scale",
            "2",
            "--init-image",
        ])
        .arg(fixtures().join("reference/img2img/square.png"))
        .output()
        .unwrap();
    assert_one_line_error(&o, "hires fix is for text-to-image");
}

/// `--outpaint right=32`: the canvas grows, the new band is painted by an inpainting model,
/// the original (away from the seam) stays exactly as it was.
#[test]
fn generate_outpaints_a_wider_canvas() {
    let tmp = tempfile::tempdir().unwrap();
    let square = fixtures().join("reference/img2img/square.png");
    let out = tmp.path().join("wider.png");
    let o = lantern(tmp.path())
        .args(["generate", "--model"])
        .arg(fixtures().join("sd1-inpaint-tiny"))
        .args([
            "--prompt",
            "a small boat on a calm lake",
            "--steps",
            "4",
            "--seed",
            "3",
            "--strength",
            "1",
        ])
        // The tiny model's native area is 64×64: without a size the wider canvas would be
        // scaled down to it.
        .args(["--width", "96", "--height", "64"])
        .arg("--init-image")
        .arg(&square)
        .args(["--outpaint", "right=32"])
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let ours = read_png(&out);
    assert_eq!((ours.width, ours.height), (96, 64));
    let original = read_png(&square);
    for y in [0u32, 31, 63] {
        for x in [0u32, 20, 40] {
            assert_eq!(ours.pixel(x, y), original.pixel(x, y), "({x}, {y}) is kept");
        }
    }
    // The new band is painted, not the repeated edge column.
    let repeated = (0..64).filter(|&y| ours.pixel(90, y) == original.pixel(63, y)).count();
    assert!(repeated < 8, "{repeated} rows of the band still repeat the edge");
    let text = lantern::output::read_parameters_file(&out).unwrap().unwrap();
    assert!(text.contains("Size: 96x64") && text.contains("Mask hash: "), "{text}");
    let o = lantern(tmp.path())
        .args(["generate", "--model"])
        .arg(sd1())
        .args(["--prompt", "x", "--no-history", "-q", "--outpaint", "up=3"])
        .output()
        .unwrap();
    assert!(
        !o.status.success() && stderr(&o).contains("not a side"),
        "{}",
        stderr(&o)
    );
}

/// `--draft-decode`: the picture from the TAESD installed for the model's family (found in the
/// data folder's models/, like a downloaded one), as diffusers' pipeline with that TAESD as its
/// VAE makes it; the PNG says `VAE Decoder: TAESD`. Without one installed: one line saying
/// which to get, before sampling; `--taesd` names one.
#[test]
fn draft_decode_uses_the_installed_taesd_of_the_family() {
    let tmp = tempfile::tempdir().unwrap();
    let hf = tmp.path().join("hf");
    std::fs::create_dir(&hf).unwrap();
    copy_dir(
        &fixtures().join("taesd/taesd-tiny"),
        &tmp.path().join("models").join("taesd-tiny"),
    );
    let generate = |model: &str, size: (&str, &str), extra: &[&str], out: &Path| -> Output {
        lantern(tmp.path())
            .env("HF_HUB_CACHE", &hf)
            .args(["generate", "--model"])
            .arg(fixtures().join(model))
            .args(["--steps", "6", "--scheduler", "default", "--prompt-syntax", "plain"])
            .args(["--width", size.0, "--height", size.1, "--no-history", "--draft-decode"])
            .args(extra)
            .arg("--init-latents")
            .arg(fixtures().join(format!("latents/{}x{}.safetensors", size.1, size.0)))
            .arg("--output")
            .arg(out)
            .output()
            .unwrap()
    };
    let out = tmp.path().join("sd1.png");
    let o = generate(
        "sd1-tiny",
        ("64", "64"),
        &[
            "--prompt",
            "a lighthouse at dusk, oil painting",
            "--negative-prompt",
            "blurry, low quality",
            "--guidance",
            "7.5",
        ],
        &out,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let (max, mean) = pixel_diff(
        &read_png(&out),
        &read_png(&fixtures().join("taesd/pipeline/sd1-sq-g7.png")),
    );
    assert!(max <= 3 && mean <= 0.5, "max {max} mean {mean}");
    let text = lantern::output::read_parameters_file(&out).unwrap().unwrap();
    assert!(text.contains("VAE Decoder: TAESD"), "{text}");

    // SDXL's latents need taesdxl, which is not installed: taesd is not taken for it.
    let sdxl_args = ["--prompt", "a city of glass towers", "--guidance", "5"];
    let out = tmp.path().join("sdxl.png");
    let o = generate("sdxl-tiny", ("72", "40"), &sdxl_args, &out);
    assert_one_line_error(&o, "madebyollin/taesdxl");
    assert!(!out.exists());
    let mut with = sdxl_args.to_vec();
    let taesdxl = fixtures().join("taesd/taesdxl-tiny");
    with.extend(["--taesd", taesdxl.to_str().unwrap()]);
    let o = generate("sdxl-tiny", ("72", "40"), &with, &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let (max, _) = pixel_diff(
        &read_png(&out),
        &read_png(&fixtures().join("taesd/pipeline/sdxl-wide-g5.png")),
    );
    assert!(max <= 3, "max {max}");
}
