//! PNG metadata end to end: every parameter through save → file → read → parse, real-looking
//! AUTOMATIC1111 texts, every text-chunk flavour, and the file-writing rules.
//!
//! Set `LANTERN_KEEP_TEST_PNGS=DIR` to keep the PNGs the round-trip tests write (for
//! `tools/check_png_metadata.py`).

use std::path::{Path, PathBuf};

use lantern::Error;
use lantern::output::parameters::{format_parameters, parse_parameters};
use lantern::output::png::{PARAMETERS_KEYWORD, decode_png_file, encode_png, read_parameters, read_parameters_file};
use lantern::output::{RgbImage, save_png};
use lantern::recipe::{NoiseKind, PromptSyntax, Recipe};
use lantern::schedulers::SamplerKind;

#[path = "support/zlib_bomb.rs"]
mod zlib_bomb;

fn test_image(w: u32, h: u32, salt: u8) -> RgbImage {
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            data.extend_from_slice(&[(x * 7) as u8 ^ salt, (y * 13) as u8, (x + y) as u8]);
        }
    }
    RgbImage::from_raw(w, h, data).unwrap()
}

/// Where round-trip PNGs go: a kept folder when asked for, else a temp folder.
fn output_dir(tmp: &tempfile::TempDir) -> PathBuf {
    match std::env::var_os("LANTERN_KEEP_TEST_PNGS") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir).unwrap();
            dir
        }
        None => tmp.path().to_path_buf(),
    }
}

fn chunk_types(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut pos = 8;
    while pos + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        out.push(String::from_utf8_lossy(&bytes[pos + 4..pos + 8]).into_owned());
        pos += 12 + len;
    }
    out
}

fn full_params(prompt: &str, negative: &str, sampler: SamplerKind) -> Recipe {
    Recipe {
        prompt: prompt.into(),
        negative_prompt: negative.into(),
        steps: 37,
        sampler,
        guidance: 7.5,
        seed: u64::MAX - 12345,
        width: 512,
        height: 768,
        model: "my-model, v2: final".into(),
        model_hash: Some("6ce0161689".into()),
        vae: Some("vae-ft-mse-840000-ema-pruned.safetensors".into()),
        vae_hash: Some("735e4c3a44".into()),
        lora_hashes: vec![
            ("add_detail".into(), "7c6bad76eb54".into()),
            ("film".into(), "0123abcd".into()),
        ],
        ti_hashes: vec![("easynegative".into(), "c74b4e810b03".into())],
        batch_index: 2,
        batch_size: 4,
        rng: NoiseKind::Cpu,
        clip_skip: 2,
        prompt_syntax: PromptSyntax::A1111,
        extra: vec![("Note".into(), "first line\nsecond \"quoted\" line".into())],
        ..Recipe::default()
    }
}

fn round_trip(params: &Recipe, expect_chunk: &str, dir: &Path) -> PathBuf {
    let image = test_image(params.width, params.height, params.seed as u8);
    let path = save_png(dir, &image, params, None).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let chunks = chunk_types(&bytes);
    assert!(chunks.iter().any(|c| c == expect_chunk), "{chunks:?}");
    let other = if expect_chunk == "tEXt" { "iTXt" } else { "tEXt" };
    assert!(!chunks.iter().any(|c| c == other), "{chunks:?}");

    let text = read_parameters_file(&path).unwrap().expect("parameters chunk");
    assert_eq!(text, format_parameters(params));
    let parsed = parse_parameters(&text).unwrap();
    assert_eq!(
        parsed.version.as_deref(),
        Some(&*format!("Lantern {}", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(&parsed.to_recipe(), params, "text was:\n{text}");
    assert_eq!(decode_png_file(&path).unwrap(), image);
    if std::env::var_os("LANTERN_KEEP_TEST_PNGS").is_some() {
        write_expectations(&path, params);
    }
    path
}

/// `<png>.expected.json`: what an independent reader must find (tools/check_png_metadata.py).
fn write_expectations(png: &Path, p: &Recipe) {
    let (sampler, schedule_type) = p.sampler.a1111_names();
    let expected = serde_json::json!({
        "prompt": p.prompt,
        "negative_prompt": p.negative_prompt,
        "seed": p.seed,
        "steps": p.steps,
        "sampler": sampler,
        "schedule_type": schedule_type,
        "guidance": p.guidance,
        "width": p.width,
        "height": p.height,
    });
    let sidecar = png.with_extension("expected.json");
    std::fs::write(sidecar, serde_json::to_string_pretty(&expected).unwrap()).unwrap();
}

#[test]
fn every_parameter_round_trips_through_a_latin1_text_chunk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = output_dir(&tmp);
    let params = full_params(
        "masterpiece, a red fox in the snow,\n(detailed fur:1.2), café crème\nthird line: with colon",
        "lowres, blurry,\nbad anatomy",
        SamplerKind::DpmPp2mKarras,
    );
    let path = round_trip(&params, "tEXt", &dir);
    let text = read_parameters_file(&path).unwrap().unwrap();
    // Values with `,` `:` or a newline are JSON-quoted; others are not.
    assert!(text.contains(r#"Model: "my-model, v2: final""#), "{text}");
    assert!(
        text.contains(r#"Lora hashes: "add_detail: 7c6bad76eb54, film: 0123abcd""#),
        "{text}"
    );
    assert!(text.contains(r#"Note: "first line\nsecond \"quoted\" line""#), "{text}");
    assert!(text.contains("Clip skip: 2,"), "{text}");
    assert!(
        text.contains("Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5,"),
        "{text}"
    );
    assert!(text.contains("Batch pos: 2, RNG: CPU,"), "{text}");
}

/// An inpainting job's fields: A1111's `Denoising strength` and `Mask blur`, Lantern's
/// start-picture hashes and the choices A1111 does not record; none of them on txt2img.
#[test]
fn img2img_fields_round_trip_and_stay_off_txt2img() {
    use lantern::recipe::ResizeMode;
    let tmp = tempfile::tempdir().unwrap();
    let dir = output_dir(&tmp);
    let txt2img = full_params("a fox", "", SamplerKind::Euler);
    let text = format_parameters(&txt2img);
    for key in [
        "Denoising strength",
        "Mask blur",
        "Init image hash",
        "Mask hash",
        "Resize mode",
        "Keep unmasked",
    ] {
        assert!(!text.contains(key), "{key} on txt2img: {text}");
    }
    let params = Recipe {
        init_image: Some("0123456789abcdef".into()),
        mask: Some("fedcba9876543210".into()),
        strength: 0.35,
        mask_blur: 7,
        resize_mode: ResizeMode::Crop,
        keep_unmasked: false,
        ..txt2img
    };
    let path = round_trip(&params, "tEXt", &dir);
    let text = read_parameters_file(&path).unwrap().unwrap();
    assert!(text.contains("Denoising strength: 0.35, Mask blur: 7,"), "{text}");
    assert!(
        text.contains(
            "Init image hash: 0123456789abcdef, Mask hash: fedcba9876543210, Resize mode: crop, Keep unmasked: false"
        ),
        "{text}"
    );
    // Hires fix: A1111's three fields, strength with them; an upscaler we do not have reads
    // as Lanczos (what we would run).
    let hires = Recipe {
        strength: 0.55,
        hires: Some(lantern::recipe::HiresFix {
            scale: 1.5,
            steps: 12,
            upscaler: lantern::recipe::HiresUpscaler::LatentNearest,
        }),
        ..full_params("a fox", "", SamplerKind::Euler)
    };
    let path = round_trip(&hires, "tEXt", &dir);
    let text = read_parameters_file(&path).unwrap().unwrap();
    assert!(
        text.contains(
            "Denoising strength: 0.55, Hires upscale: 1.5, Hires steps: 12, Hires upscaler: Latent (nearest),"
        ),
        "{text}"
    );
    let esrgan =
        parse_parameters("a fox\nSteps: 20, Seed: 1, Size: 512x512, Hires upscale: 2, Hires upscaler: R-ESRGAN 4x+")
            .unwrap()
            .recipe;
    assert_eq!(esrgan.hires.unwrap().upscaler, lantern::recipe::HiresUpscaler::Lanczos);
    // A1111's own text: its label for the resize mode reads too.
    let a1111 = "a fox\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 512x512, Denoising strength: 0.6, Mask blur: 4, Resize mode: Crop and resize";
    let parsed = parse_parameters(a1111).unwrap().recipe;
    assert_eq!(
        (parsed.strength, parsed.mask_blur, parsed.resize_mode),
        (0.6, 4, ResizeMode::Crop)
    );
    assert!(parsed.keep_unmasked);
}

/// The noise source through the PNG: each of ours written and read back; A1111's texts read
/// as A1111 means them (no field = its GPU generator); a PNG Lantern wrote before the field
/// existed reads as Lantern's own generator, which made it.
#[test]
fn noise_source_round_trips_and_reads_as_a1111_means_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = output_dir(&tmp);
    for (i, rng) in NoiseKind::ALL.into_iter().enumerate() {
        let params = Recipe {
            prompt: format!("a boat {i}"),
            seed: 4_294_967_296 + i as u64,
            width: 64,
            height: 64,
            rng,
            ..Recipe::default()
        };
        let path = round_trip(&params, "tEXt", &dir);
        let text = read_parameters_file(&path).unwrap().unwrap();
        assert!(
            text.contains(&format!(", RNG: {}, ", rng.a1111_name())) && text.contains(", Version: Lantern"),
            "{text}"
        );
    }
    let a1111 = "a boat\nSteps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 1234, \
                 Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly";
    let read = |text: &str| parse_parameters(text).unwrap().to_recipe();
    assert_eq!(read(&format!("{a1111}, Version: v1.10.1")).rng, NoiseKind::Gpu);
    assert_eq!(
        read(&format!("{a1111}, RNG: CPU, Version: v1.10.1")).rng,
        NoiseKind::Cpu
    );
    assert_eq!(read(&format!("{a1111}, RNG: NV, Version: v1.10.1")).rng, NoiseKind::Gpu);
    assert_eq!(read(&format!("{a1111}, RNG: CPU, Version: v1.10.1")).extra, Vec::new());
    // Written by Lantern 0.1.0 before `RNG` existed.
    let old = read(&format!("{a1111}, Version: Lantern 0.1.0"));
    assert_eq!((old.rng, old.seed), (NoiseKind::Lantern, 1234));
    // Writing an imported A1111 recipe names the source, so it reads back the same.
    let again = read(&format_parameters(&read(&format!("{a1111}, Version: v1.10.1"))));
    assert_eq!(again.rng, NoiseKind::Gpu);
    let bad = parse_parameters(&format!("{a1111}, RNG: quantum")).unwrap_err();
    assert!(bad.to_string().contains("RNG: quantum"), "{bad}");
}

#[test]
fn chinese_and_emoji_round_trip_through_itxt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = output_dir(&tmp);
    let params = full_params(
        "一只红色的狐狸，在雪地里 🦊\n第二行：水彩",
        "模糊, 低质量 😞",
        SamplerKind::EulerA,
    );
    round_trip(&params, "iTXt", &dir);
}

#[test]
fn every_sampler_and_simple_values_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = output_dir(&tmp);
    for (i, sampler) in SamplerKind::ALL.into_iter().enumerate() {
        let params = Recipe {
            prompt: format!("a lighthouse at dusk number {i}"),
            negative_prompt: if i % 2 == 0 { String::new() } else { "fog".into() },
            steps: 10 + i as u32,
            sampler,
            guidance: if i % 2 == 0 { 7.0 } else { 3.25 },
            seed: 1000 + i as u64,
            width: 640,
            height: 448,
            model: "sd15".into(),
            model_hash: None,
            vae: None,
            vae_hash: None,
            lora_hashes: Vec::new(),
            ti_hashes: Vec::new(),
            batch_index: 0,
            batch_size: 1,
            rng: NoiseKind::ALL[i % NoiseKind::ALL.len()],
            clip_skip: 1 + i as u32 % 2,
            prompt_syntax: if i % 2 == 0 {
                PromptSyntax::A1111
            } else {
                PromptSyntax::Plain
            },
            extra: Vec::new(),
            ..Recipe::default()
        };
        let path = round_trip(&params, "tEXt", &dir);
        let text = read_parameters_file(&path).unwrap().unwrap();
        assert_eq!(text.contains("Negative prompt:"), i % 2 == 1, "{text}");
        assert!(!text.contains("Batch"), "{text}");
    }
}

// ---- AUTOMATIC1111 texts, written by hand from A1111's documented infotext format ----

const A1111_MULTILINE: &str = "masterpiece, best quality, a red fox in the snow,
<lora:add_detail:0.8>
(detailed fur:1.2)
Negative prompt: lowres, bad anatomy,
blurry, (worst quality:1.4)
Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 3141592653, Size: 512x768, Model hash: 6ce0161689, \
Model: v1-5-pruned-emaonly, Denoising strength: 0.7, Clip skip: 2, Hires upscale: 2, Hires upscaler: Latent, \
Lora hashes: \"add_detail: 7c6bad76eb54\", Version: v1.6.0";

#[test]
fn a1111_multiline_prompt_old_sampler_name_and_quoted_lora_hashes() {
    let p = parse_parameters(A1111_MULTILINE).unwrap();
    let said = [
        "Steps",
        "Sampler",
        "CFG scale",
        "Seed",
        "Size",
        "Model hash",
        "Model",
        "Denoising strength",
        "Clip skip",
        "Hires upscale",
        "Hires upscaler",
        "Lora hashes",
    ];
    assert_eq!(p.said, said);
    assert_eq!(
        p.recipe.prompt,
        "masterpiece, best quality, a red fox in the snow,\n<lora:add_detail:0.8>\n(detailed fur:1.2)"
    );
    assert_eq!(
        p.recipe.negative_prompt,
        "lowres, bad anatomy,\nblurry, (worst quality:1.4)"
    );
    assert_eq!(p.recipe.steps, 30);
    assert_eq!(p.sampler_name.as_deref(), Some("DPM++ 2M Karras"));
    assert_eq!(p.sampler, Some(SamplerKind::DpmPp2mKarras));
    assert_eq!(p.recipe.guidance, 7.5);
    assert_eq!(p.recipe.seed, 3141592653);
    assert_eq!((p.recipe.width, p.recipe.height), (512, 768));
    assert_eq!(p.recipe.model_hash.as_deref(), Some("6ce0161689"));
    assert_eq!(p.recipe.model, "v1-5-pruned-emaonly");
    assert_eq!(p.version.as_deref(), Some("v1.6.0"));
    // A1111's clip skip, and its prompts are A1111 syntax.
    assert_eq!(p.recipe.clip_skip, 2);
    assert_eq!(p.recipe.prompt_syntax, PromptSyntax::A1111);
    let extra: Vec<(&str, &str)> = p.recipe.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert!(extra.is_empty(), "{extra:?}");
    assert_eq!(p.recipe.strength, 0.7);
    let hires = p.recipe.hires.expect("A1111's hires fix");
    assert_eq!(
        (hires.scale, hires.steps, hires.upscaler),
        (2.0, 0, lantern::recipe::HiresUpscaler::Latent)
    );
    assert_eq!(
        p.recipe.lora_hashes,
        vec![("add_detail".to_string(), "7c6bad76eb54".to_string())]
    );
    // Written again by Lantern, A1111's own fields survive.
    let again = parse_parameters(&format_parameters(&p.to_recipe())).unwrap();
    assert_eq!(again.to_recipe(), p.to_recipe());
}

#[test]
fn a1111_missing_negative_prompt_and_new_schedule_type() {
    let text = "a lighthouse at dusk, oil painting
Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 512x512, \
Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.1";
    let p = parse_parameters(text).unwrap();
    assert_eq!(p.recipe.prompt, "a lighthouse at dusk, oil painting");
    assert_eq!(p.recipe.negative_prompt, "");
    assert_eq!(p.sampler, Some(SamplerKind::DpmPp2mKarras));
    assert_eq!(p.schedule_type.as_deref(), Some("Karras"));
    assert!(p.said("CFG scale"));
    assert_eq!(p.recipe.guidance, 7.0);
    assert!(p.recipe.extra.is_empty(), "{:?}", p.recipe.extra);

    let plain =
        "a lighthouse\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Automatic, CFG scale: 7, Seed: 1, Size: 8x8";
    assert_eq!(parse_parameters(plain).unwrap().sampler, Some(SamplerKind::DpmPp2m));
}

#[test]
fn a1111_euler_a_face_restoration_and_ti_hashes() {
    let text = "portrait of an old sailor, (weathered skin:1.1)
Negative prompt: easynegative
Steps: 25, Sampler: Euler a, CFG scale: 6, Seed: 42, Face restoration: CodeFormer, Size: 640x448, \
Model hash: 4199bcdd14, Model: revAnimated_v122, TI hashes: \"easynegative: c74b4e810b03\", Version: v1.7.0";
    let p = parse_parameters(text).unwrap();
    assert_eq!(p.sampler, Some(SamplerKind::EulerA));
    assert!(p.said("Size"));
    assert_eq!((p.recipe.width, p.recipe.height), (640, 448));
    assert_eq!(p.recipe.negative_prompt, "easynegative");
    assert_eq!(
        p.recipe.extra,
        vec![("Face restoration".to_string(), "CodeFormer".to_string())]
    );
    assert_eq!(
        p.recipe.ti_hashes,
        vec![("easynegative".to_string(), "c74b4e810b03".to_string())]
    );
}

#[test]
fn a1111_unknown_sampler_batch_and_hashes_object_are_kept() {
    let text = "a castle on a hill
Steps: 20, Sampler: DPM++ SDE Karras, CFG scale: 7, Seed: 99, Size: 768x512, Model hash: abc, Batch size: 4, \
Batch pos: 1, Hashes: {\"model\": \"abc\", \"lora:x\": \"def\"}, Version: v1.5.1";
    let p = parse_parameters(text).unwrap();
    assert_eq!(p.sampler, None);
    assert_eq!(p.sampler_name.as_deref(), Some("DPM++ SDE Karras"));
    assert!(p.said("Batch size") && p.said("Batch pos"));
    assert_eq!((p.recipe.batch_size, p.recipe.batch_index), (4, 1));
    assert_eq!(
        p.recipe.extra,
        vec![(
            "Hashes".to_string(),
            "{\"model\": \"abc\", \"lora:x\": \"def\"}".to_string()
        )]
    );
    let params = p.to_recipe();
    assert_eq!(params.sampler, SamplerKind::Default);
    let rewritten = format_parameters(&params);
    assert!(
        rewritten.contains("Sampler: DPM++ SDE Karras, CFG scale: 7,"),
        "{rewritten}"
    );
    let again = parse_parameters(&rewritten).unwrap();
    assert_eq!(again.sampler_name.as_deref(), Some("DPM++ SDE Karras"));
    assert_eq!(again.to_recipe(), params);
}

#[test]
fn a1111_chinese_crlf_quoted_newline_and_missing_fields() {
    let text = "一只红色的狐狸，雪地\r\nNegative prompt: 模糊\r\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 5, \
Size: 512x512, Wildcard prompt: \"line one\\nline two, with comma\"\r\n";
    let p = parse_parameters(text).unwrap();
    assert_eq!(p.recipe.prompt, "一只红色的狐狸，雪地");
    assert_eq!(p.recipe.negative_prompt, "模糊");
    assert_eq!(
        p.recipe.extra,
        vec![(
            "Wildcard prompt".to_string(),
            "line one\nline two, with comma".to_string()
        )]
    );

    // Only three fields: everything else takes Lantern's defaults.
    let p = parse_parameters("just a prompt\nSteps: 10, Sampler: Euler, Seed: 7").unwrap();
    assert_eq!(p.said, ["Steps", "Sampler", "Seed"]);
    assert!(!p.said("CFG scale") && !p.said("Size") && !p.said("Model"));
    let full = p.to_recipe();
    assert_eq!((full.steps, full.seed, full.sampler), (10, 7, SamplerKind::Euler));
    assert_eq!((full.guidance, full.width, full.height), (7.5, 512, 512));
}

// ---- every text-chunk flavour another tool might write ----

/// Appends a raw chunk just before IEND (i.e. after the image data).
fn insert_before_iend(png: &[u8], kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let iend = png.len() - 12;
    let mut out = png[..iend].to_vec();
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
    out.extend_from_slice(&png[iend..]);
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn encode_with(chunk: impl FnOnce(&mut png::Writer<&mut Vec<u8>>)) -> Vec<u8> {
    let img = test_image(4, 4, 1);
    let mut out = Vec::new();
    {
        let mut e = png::Encoder::new(&mut out, 4, 4);
        e.set_color(png::ColorType::Rgb);
        let mut w = e.write_header().unwrap();
        chunk(&mut w);
        w.write_image_data(&img.data).unwrap();
        w.finish().unwrap();
    }
    out
}

#[test]
fn reads_text_ztxt_compressed_itxt_and_chunks_after_the_image() {
    let text = A1111_MULTILINE;
    let ztxt = encode_with(|w| {
        let mut c = png::text_metadata::ZTXtChunk::new(PARAMETERS_KEYWORD, text);
        c.compress_text().unwrap();
        w.write_text_chunk(&c).unwrap();
    });
    assert!(chunk_types(&ztxt).contains(&"zTXt".to_string()));
    assert_eq!(read_parameters(&ztxt).unwrap().as_deref(), Some(text));

    let utf8 = "一只狐狸\nSteps: 20, Sampler: Euler, Seed: 1";
    let itxt = encode_with(|w| {
        let mut c = png::text_metadata::ITXtChunk::new(PARAMETERS_KEYWORD, utf8);
        c.compress_text().unwrap();
        w.write_text_chunk(&c).unwrap();
    });
    assert_eq!(read_parameters(&itxt).unwrap().as_deref(), Some(utf8));

    // An unrelated text chunk first, then ours after IDAT (some tools write it last).
    let plain = encode_with(|w| {
        w.write_text_chunk(&png::text_metadata::TEXtChunk::new("Software", "other"))
            .unwrap();
    });
    let mut data = PARAMETERS_KEYWORD.as_bytes().to_vec();
    data.push(0);
    data.extend_from_slice(b"late prompt\nSteps: 5, Sampler: Euler, Seed: 3");
    let late = insert_before_iend(&plain, b"tEXt", &data);
    assert_eq!(
        read_parameters(&late).unwrap().as_deref(),
        Some("late prompt\nSteps: 5, Sampler: Euler, Seed: 3")
    );
    assert_eq!(read_parameters(&plain).unwrap(), None);

    // A PNG as A1111 writes it (PIL: tEXt before the image data).
    let a1111 = encode_png(&test_image(8, 8, 3), Some(A1111_MULTILINE)).unwrap();
    let parsed = parse_parameters(&read_parameters(&a1111).unwrap().unwrap()).unwrap();
    assert!(parsed.said("Seed"));
    assert_eq!(parsed.recipe.seed, 3141592653);
}

#[test]
fn compressed_text_inflating_past_the_cap_is_refused_not_allocated() {
    use lantern::output::png::MAX_TEXT_BYTES;
    use zlib_bomb::{png_with_compressed_parameters, zlib_run};
    let tmp = tempfile::tempdir().unwrap();
    for itxt in [false, true] {
        let kind = if itxt { "iTXt" } else { "zTXt" };
        // 64 MiB of one letter from ~400 KB: a decompression bomb in miniature.
        let bomb = png_with_compressed_parameters(&zlib_run(b'a', 64 << 20), itxt);
        assert!(bomb.len() < 1 << 20, "{kind}: the bomb is small: {} bytes", bomb.len());
        assert!(chunk_types(&bomb).contains(&kind.to_string()));
        // Refused at the cap: the old reader returned the whole 64 MiB text.
        let err = read_parameters(&bomb).unwrap_err().to_string();
        assert!(err.contains("larger than 1 MiB once decompressed"), "{kind}: {err}");

        // From a file too, with the path in the message.
        let path = tmp.path().join(format!("bomb-{kind}.png"));
        std::fs::write(&path, &bomb).unwrap();
        let err = read_parameters_file(&path).unwrap_err().to_string();
        assert!(err.contains("larger than 1 MiB"), "{kind}: {err}");
        assert!(err.contains(&format!("bomb-{kind}.png")), "{kind}: {err}");

        // Exactly at the cap still reads (the same kind of stream, so the bomb above is a
        // valid one); one byte over does not.
        let at_cap = png_with_compressed_parameters(&zlib_run(b'a', MAX_TEXT_BYTES), itxt);
        let text = read_parameters(&at_cap).unwrap().unwrap();
        assert!(
            text.len() == MAX_TEXT_BYTES && text.bytes().all(|b| b == b'a'),
            "{kind}"
        );
        let over = png_with_compressed_parameters(&zlib_run(b'a', MAX_TEXT_BYTES + 1), itxt);
        let err = read_parameters(&over).unwrap_err().to_string();
        assert!(err.contains("larger than 1 MiB"), "{kind}: {err}");
    }
    // A short A1111 text through the same stream builder reads as usual.
    let small = png_with_compressed_parameters(&zlib_run(b'x', 300), false);
    assert_eq!(read_parameters(&small).unwrap(), Some("x".repeat(300)));
}

#[test]
fn default_names_never_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let outputs = tmp.path().join("outputs"); // does not exist yet: created
    let params = Recipe {
        prompt: "A red fox".into(),
        seed: 1234567,
        ..Default::default()
    };
    let img = test_image(8, 8, 0);
    let paths: Vec<PathBuf> = (0..3)
        .map(|_| save_png(&outputs, &img, &params, None).unwrap())
        .collect();
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names[0].ends_with("-1234567-a-red-fox.png"), "{names:?}");
    assert_eq!(
        names[0].len(),
        "20261128-142501-1234567-a-red-fox.png".len(),
        "{names:?}"
    );
    // Same second: suffixes; a later second: a new stem. Either way three distinct files.
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), 3, "{names:?}");
    let files: Vec<_> = std::fs::read_dir(&outputs).unwrap().collect();
    assert_eq!(files.len(), 3, "no temp files left behind");

    let chinese = Recipe {
        prompt: "一只狐狸 🦊".into(),
        seed: 9,
        ..Default::default()
    };
    let p = save_png(&outputs, &img, &chinese, None).unwrap();
    assert!(
        p.file_name().unwrap().to_string_lossy().ends_with("-9-image.png"),
        "{p:?}"
    );
}

#[test]
fn explicit_paths_replace_but_need_an_existing_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let params = Recipe::default();
    let target = tmp.path().join("chosen.png");
    save_png(tmp.path(), &test_image(8, 8, 1), &params, Some(&target)).unwrap();
    save_png(tmp.path(), &test_image(8, 8, 2), &params, Some(&target)).unwrap();
    assert_eq!(decode_png_file(&target).unwrap(), test_image(8, 8, 2));

    let missing = tmp.path().join("no-such-folder").join("x.png");
    let err = save_png(tmp.path(), &test_image(8, 8, 1), &params, Some(&missing)).unwrap_err();
    assert!(matches!(err, Error::OutputFolderMissing(_)), "{err}");
    assert!(err.to_string().contains("no-such-folder"), "{err}");
    assert!(!tmp.path().join("no-such-folder").exists());
    let entries: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");

    let bad = RgbImage {
        width: 4,
        height: 4,
        data: vec![0; 3],
    };
    assert!(save_png(tmp.path(), &bad, &params, None).is_err());
}
