//! img2img and inpainting against diffusers' own pipelines (`StableDiffusionImg2ImgPipeline`,
//! `StableDiffusionXLImg2ImgPipeline`, `StableDiffusionInpaintPipeline` with a regular and a
//! 9-channel inpainting UNet), seeded with torch's CPU generator: every sampler, strengths
//! 0.2–1.0, square and not. References from `tools/make_img2img_refs.py`; max abs diff
//! ≤ 3/255 and mean ≤ 0.5/255 on the 8-bit images, as in `tests/parity.rs`.

mod support;

use std::collections::BTreeSet;

use lantern::pipeline::Request;
use lantern::pipeline::noise::NoiseKind;
use lantern::recipe::{PromptSyntax, Recipe};
use lantern::schedulers::SamplerKind;
use lantern::source::{SourceImages, read_init_image, read_mask};
use serde::Deserialize;
use support::*;

const MAX_ABS: u8 = 3;
const MAX_MEAN: f64 = 0.5;

#[derive(Deserialize, Clone)]
struct Case {
    name: String,
    file: String,
    model: String,
    kind: String,
    scheduler: String,
    seed: String,
    picture: String,
    mask: Option<String>,
    width: u32,
    height: u32,
    strength: f64,
    guidance: f64,
    prompt: String,
    negative_prompt: Option<String>,
    steps: u32,
}

#[derive(Deserialize)]
struct Set {
    cases: Vec<Case>,
}

fn dir() -> std::path::PathBuf {
    fixtures().join("reference/img2img")
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(dir().join("cases.json")).unwrap();
    serde_json::from_str::<Set>(&text).unwrap().cases
}

/// The case as diffusers ran it: no mask blur, the decoded picture as it is (diffusers does
/// not paste the original back).
fn request(case: &Case) -> Request {
    let recipe = Recipe {
        prompt: case.prompt.clone(),
        negative_prompt: case.negative_prompt.clone().unwrap_or_default(),
        steps: case.steps,
        guidance: case.guidance,
        width: case.width,
        height: case.height,
        seed: case.seed.parse().unwrap(),
        sampler: SamplerKind::from_cli_name(&case.scheduler).unwrap(),
        rng: NoiseKind::Cpu,
        prompt_syntax: PromptSyntax::Plain,
        strength: case.strength,
        mask_blur: 0,
        keep_unmasked: false,
        ..Recipe::default()
    };
    Request {
        source: Some(SourceImages {
            image: read_init_image(&dir().join(&case.picture)).unwrap(),
            mask: case.mask.as_ref().map(|m| read_mask(&dir().join(m)).unwrap()),
        }),
        ..Request::new(recipe)
    }
}

fn check(model_name: &str, kind: &str) {
    let model = load_model(model_name);
    let (mut failures, mut images) = (Vec::new(), 0);
    let (mut worst_max, mut worst_mean) = (0u8, 0f64);
    let mut samplers = BTreeSet::new();
    for case in cases().iter().filter(|c| c.model == model_name && c.kind == kind) {
        let generated = run_generated(&model, &request(case));
        let g = &generated[0];
        assert!(
            g.params.init_image.is_some(),
            "{}: the recipe names its start",
            case.name
        );
        assert_eq!(g.params.mask.is_some(), case.mask.is_some(), "{}", case.name);
        assert_eq!(g.params.strength, case.strength);
        let reference = read_png(&dir().join(&case.file));
        let (max, mean) = pixel_diff(&g.image, &reference);
        worst_max = worst_max.max(max);
        worst_mean = worst_mean.max(mean);
        images += 1;
        samplers.insert(case.scheduler.clone());
        if max > MAX_ABS || mean > MAX_MEAN {
            failures.push(format!("{}: max {max}, mean {mean:.3}", case.name));
        }
    }
    println!(
        "{model_name} {kind}: {images} images, samplers {samplers:?}, worst max abs {worst_max}/255, worst mean {worst_mean:.3}/255"
    );
    assert!(images >= 2, "{model_name} {kind}: only {images} cases");
    assert!(
        failures.is_empty(),
        "{model_name} {kind} differs from diffusers:\n{}",
        failures.join("\n")
    );
}

#[test]
fn sd1_img2img_matches_diffusers() {
    check("sd1-tiny", "img2img");
}

#[test]
fn sd2_img2img_matches_diffusers() {
    check("sd2-tiny", "img2img");
}

#[test]
fn sdxl_img2img_matches_diffusers() {
    check("sdxl-tiny", "img2img");
}

#[test]
fn sd1_inpainting_with_a_regular_model_matches_diffusers() {
    check("sd1-tiny", "inpaint");
}

#[test]
fn sd1_inpainting_model_matches_diffusers() {
    check("sd1-inpaint-tiny", "inpaint");
}

/// The references depend on what the test varies: another seed, another strength, or no mask
/// gives a picture far from diffusers'.
#[test]
fn references_are_distinguishable() {
    let model = load_model("sd1-tiny");
    let all = cases();
    let far = |req: &Request, file: &str| {
        let ours = run(&model, req);
        let (max, mean) = pixel_diff(&ours[0], &read_png(&dir().join(file)));
        assert!(max > MAX_ABS || mean > MAX_MEAN, "{file}: max {max}, mean {mean:.3}");
    };
    let inpaint = all.iter().find(|c| c.name == "sd1-inpaint-euler-a-100").unwrap();
    let mut req = request(inpaint);
    req.recipe.seed += 1;
    far(&req, &inpaint.file);
    let mut req = request(inpaint);
    req.source.as_mut().unwrap().mask = None;
    far(&req, &inpaint.file);
    let img2img = all.iter().find(|c| c.name == "sd1-euler-a-75").unwrap();
    let mut req = request(img2img);
    req.recipe.strength = 0.6;
    far(&req, &img2img.file);
}

/// With "keep the unmasked pixels" (the default) every pixel the blurred mask leaves at 0 is
/// the original's, exactly; inside, the picture is the model's.
#[test]
fn keeping_the_unmasked_pixels_pastes_the_original_back() {
    let model = load_model("sd1-tiny");
    let case = cases().into_iter().find(|c| c.name == "sd1-inpaint-euler-75").unwrap();
    let mut req = request(&case);
    req.recipe.keep_unmasked = true;
    req.recipe.mask_blur = 2;
    let out = &run(&model, &req)[0];
    let source = req.source.as_ref().unwrap();
    let original = &source.image;
    let soft = lantern::source::prepare::prepare(source, case.width, case.height, Default::default(), 2)
        .unwrap()
        .soft_mask
        .unwrap();
    let (mut outside, mut inside_changed) = (0, 0);
    for (i, &m) in soft.iter().enumerate() {
        let (a, b) = (&out.data[i * 3..i * 3 + 3], &original.data[i * 3..i * 3 + 3]);
        if m == 0.0 {
            assert_eq!(a, b, "pixel {i} outside the mask changed");
            outside += 1;
        } else if m == 1.0 && a != b {
            inside_changed += 1;
        }
    }
    assert!(
        outside > 1000 && inside_changed > 300,
        "{outside} kept, {inside_changed} repainted"
    );
    // diffusers' way (no paste) changes pixels outside the mask too: the VAE round trip.
    req.recipe.keep_unmasked = false;
    let raw = &run(&model, &req)[0];
    let moved = soft
        .iter()
        .enumerate()
        .filter(|&(i, &m)| m == 0.0 && raw.data[i * 3..i * 3 + 3] != original.data[i * 3..i * 3 + 3])
        .count();
    assert!(moved > 100, "{moved}");
}

fn base_request() -> Request {
    let case = cases().into_iter().find(|c| c.name == "sd1-euler-60").unwrap();
    let mut req = request(&case);
    req.recipe.steps = 4;
    req
}

fn error_of(req: &Request) -> String {
    let model = load_model("sd1-tiny");
    let cancel = std::sync::atomic::AtomicBool::new(false);
    lantern::pipeline::generate(&model, req, &cancel, &mut |_| {})
        .unwrap_err()
        .to_string()
}

#[test]
fn strengths_outside_the_range_are_one_line_each() {
    for (strength, expect) in [
        (0.0, "above 0 and at most 1"),
        (1.5, "above 0 and at most 1"),
        (f64::NAN, "above 0 and at most 1"),
        (0.2, "runs no step"),
    ] {
        let mut req = base_request();
        req.recipe.strength = strength;
        let e = error_of(&req);
        assert!(e.contains(expect) && !e.contains('\n'), "{strength}: {e}");
    }
    // A recipe naming a start picture that was not given.
    let mut req = base_request();
    req.source = None;
    req.recipe.init_image = Some("0123456789abcdef".into());
    assert!(error_of(&req).contains("was not given"));
}

#[test]
fn masks_that_cover_nothing_everything_or_another_size() {
    let model = load_model("sd1-tiny");
    let mut req = base_request();
    let (w, h) = (req.recipe.width, req.recipe.height);
    let plane = |v: u8, w: u32, h: u32| lantern::source::GrayImage {
        width: w,
        height: h,
        data: vec![v; (w * h) as usize],
    };
    req.source.as_mut().unwrap().mask = Some(plane(0, w, h));
    assert!(error_of(&req).contains("covers nothing"));
    // All white: everything is redrawn (img2img through the inpainting path).
    req.source.as_mut().unwrap().mask = Some(plane(255, w, h));
    assert_eq!(run(&model, &req).len(), 1);
    // A mask of another size and shape is resized to the picture.
    let mut small = plane(0, 9, 5);
    small.data[..20].fill(255);
    req.source.as_mut().unwrap().mask = Some(small);
    let out = run_generated(&model, &req);
    assert_eq!((out[0].image.width, out[0].image.height), (w, h));
    assert!(out[0].params.mask.is_some());
}

/// Pictures people have: whatever their format or size, a start picture of the asked size
/// comes out, or one line says why not.
#[test]
fn awkward_start_pictures() {
    use lantern::source::{decode_init_image, read_init_image, read_mask};
    let pics = fixtures().join("pictures");
    // CMYK JPEG: the colours PIL (diffusers' reader) gives, within JPEG's rounding.
    let ours = read_init_image(&pics.join("cmyk.jpg")).unwrap();
    let pil = read_png(&pics.join("cmyk-as-pil-reads-it.png"));
    let (max, _) = pixel_diff(&ours, &pil);
    assert!(max <= 3, "CMYK JPEG differs from PIL's reading by {max}");
    let grey16 = read_init_image(&pics.join("grey16.png")).unwrap();
    assert_eq!(
        grey16.pixel(39, 0),
        [(f64::from(39u32 * 1600) / 257.0).round() as u8; 3]
    );
    let gif = read_init_image(&pics.join("animated.gif")).unwrap();
    assert_eq!((gif.width, gif.height), (40, 48));
    let mask = read_mask(&pics.join("palette-transparent.png")).unwrap();
    assert_eq!((mask.width, mask.height), (40, 48));
    let e = read_init_image(&pics.join("not-a-picture.png"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not-a-picture.png") && e.contains("not a picture"), "{e}");
    assert!(decode_init_image(&[]).is_err());

    // Each becomes a start picture of the asked size.
    let model = load_model("sd1-tiny");
    for file in ["cmyk.jpg", "grey16.png", "animated.gif", "one-pixel.png"] {
        let mut req = base_request();
        req.source.as_mut().unwrap().image = read_init_image(&pics.join(file)).unwrap();
        let out = run(&model, &req);
        assert_eq!(
            (out[0].width, out[0].height),
            (req.recipe.width, req.recipe.height),
            "{file}"
        );
    }
}

#[derive(Deserialize)]
struct HiresCase {
    name: String,
    file: String,
    model: String,
    scheduler: String,
    seed: String,
    width: u32,
    height: u32,
    scale: f64,
    steps: u32,
    hires_steps: u32,
    strength: f64,
    upscaler: String,
    guidance: f64,
    prompt: String,
    negative_prompt: Option<String>,
    out_width: u32,
    out_height: u32,
}

/// Hires fix against diffusers' pipelines composed the way A1111's hires fix works
/// (`tools/make_hires_refs.py`): latent bilinear and nearest upscaling, Lanczos on the decoded
/// picture, SD 1 and SDXL (whose second pass is conditioned on the larger size).
#[test]
fn hires_fix_matches_diffusers_composed_as_a1111_does_it() {
    use lantern::recipe::{HiresFix, HiresUpscaler};
    let dir = fixtures().join("reference/hires");
    #[derive(Deserialize)]
    struct Set {
        cases: Vec<HiresCase>,
    }
    let set: Set = serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let mut failures = Vec::new();
    let mut upscalers = BTreeSet::new();
    for case in &set.cases {
        let model = load_model(&case.model);
        let recipe = Recipe {
            prompt: case.prompt.clone(),
            negative_prompt: case.negative_prompt.clone().unwrap_or_default(),
            steps: case.steps,
            guidance: case.guidance,
            width: case.width,
            height: case.height,
            seed: case.seed.parse().unwrap(),
            sampler: SamplerKind::from_cli_name(&case.scheduler).unwrap(),
            rng: NoiseKind::Cpu,
            prompt_syntax: PromptSyntax::Plain,
            strength: case.strength,
            hires: Some(HiresFix {
                scale: case.scale,
                steps: case.hires_steps,
                upscaler: case.upscaler.parse::<HiresUpscaler>().unwrap(),
            }),
            ..Recipe::default()
        };
        let mut steps_seen = Vec::new();
        let cancel = std::sync::atomic::AtomicBool::new(false);
        let mut images = Vec::new();
        lantern::pipeline::generate(&model, &Request::new(recipe), &cancel, &mut |e| match e {
            lantern::pipeline::Event::Step { step, total, .. } => steps_seen.push((step, total)),
            lantern::pipeline::Event::ImageReady(g) => images.push(g.image),
            _ => {}
        })
        .unwrap();
        let image = &images[0];
        assert_eq!(
            (image.width, image.height),
            (case.out_width, case.out_height),
            "{}",
            case.name
        );
        // Progress counts both passes: the first's steps, then exactly the hires steps.
        let run = if case.hires_steps == 0 {
            case.steps
        } else {
            case.hires_steps
        };
        let total = steps_seen.last().unwrap().1;
        assert_eq!(steps_seen.len(), total, "{}: {steps_seen:?}", case.name);
        assert_eq!(total as u32, case.steps + run, "{}", case.name);
        let (max, mean) = pixel_diff(image, &read_png(&dir.join(&case.file)));
        println!("{}: max {max}, mean {mean:.3}", case.name);
        upscalers.insert(case.upscaler.clone());
        if max > MAX_ABS || mean > MAX_MEAN {
            failures.push(format!("{}: max {max}, mean {mean:.3}", case.name));
        }
    }
    assert_eq!(upscalers.len(), 3);
    assert!(
        failures.is_empty(),
        "hires fix differs from diffusers:\n{}",
        failures.join("\n")
    );
}

#[test]
fn sdxl_inpainting_with_a_regular_model_matches_diffusers() {
    check("sdxl-tiny", "inpaint");
}

#[test]
fn sdxl_inpainting_model_matches_diffusers() {
    check("sdxl-inpaint-tiny", "inpaint");
}

/// The SDXL refiner (second text encoder only, aesthetic-score conditioning: 6 for the
/// prompt, 2.5 for the negative) against `StableDiffusionXLImg2ImgPipeline` with
/// `requires_aesthetics_score`; text-to-image is refused with one line.
#[test]
fn sdxl_refiner_matches_diffusers_and_refines_only() {
    check("sdxl-refiner-tiny", "img2img");
    let model = load_model("sdxl-refiner-tiny");
    assert!(model.folder.requires_aesthetics_score);
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let req = Request::new(Recipe {
        prompt: "a boat".into(),
        width: 64,
        height: 64,
        steps: 2,
        ..Recipe::default()
    });
    let e = lantern::pipeline::generate(&model, &req, &cancel, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("SDXL refiner") && e.contains("start picture"), "{e}");
}

/// SD-Turbo and SDXL-Turbo img2img as diffusers documents it (2 steps at strength 0.5: one
/// step runs; guidance 0), on the tiny models given the Turbos' trailing-spacing Euler in a
/// copy named like the real repos, as `tools/make_img2img_refs.py` made them.
#[test]
fn turbo_img2img_matches_diffusers() {
    let tmp = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(dir().join("turbo_scheduler.json")).unwrap();
    let mut n = 0;
    for case in cases().iter().filter(|c| c.kind == "turbo") {
        let copy = tmp.path().join(case.model.replace("-tiny", "-turbo-tiny"));
        if !copy.exists() {
            copy_dir(&fixtures().join(&case.model), &copy);
            std::fs::write(copy.join("scheduler/scheduler_config.json"), &config).unwrap();
            // As the real repos' (and as diffusers builds it): model_index.json names Euler too.
            let index_path = copy.join("model_index.json");
            let mut index: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&index_path).unwrap()).unwrap();
            index["scheduler"] = serde_json::json!(["diffusers", "EulerDiscreteScheduler"]);
            std::fs::write(&index_path, index.to_string()).unwrap();
        }
        let model = lantern::model::LoadedModel::load(&copy, Default::default(), &mut |_| {}).unwrap();
        let generated = run_generated(&model, &request(case));
        let (max, mean) = pixel_diff(&generated[0].image, &read_png(&dir().join(&case.file)));
        println!("{}: max {max}, mean {mean:.3}", case.name);
        assert!(
            max <= MAX_ABS && mean <= MAX_MEAN,
            "{}: max {max}, mean {mean:.3}",
            case.name
        );
        n += 1;
    }
    assert_eq!(n, 3);
}

/// A folder whose `model_index.json` names another scheduler than its config file's
/// `_class_name`: diffusers builds the index's class (from the file's fields), and so do we.
#[test]
fn the_scheduler_class_is_the_one_model_index_names() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("sd2-mixed");
    copy_dir(&fixtures().join("sd2-tiny"), &copy);
    let config = std::fs::read_to_string(dir().join("turbo_scheduler.json")).unwrap();
    std::fs::write(copy.join("scheduler/scheduler_config.json"), &config).unwrap();
    // model_index.json still says DDIMScheduler.
    let model = lantern::model::LoadedModel::load(&copy, Default::default(), &mut |_| {}).unwrap();
    let built = lantern::schedulers::build(
        SamplerKind::Default,
        &model.scheduler_config,
        &model.folder.scheduler_config_path(),
        2,
    )
    .unwrap();
    assert_eq!(built.kind(), SamplerKind::from_cli_name("ddim").unwrap());
    // The config's trailing spacing carried over: DDIM's 2 trailing steps are 999 and 499.
    assert_eq!(built.timesteps(), &[999.0, 499.0]);
}
