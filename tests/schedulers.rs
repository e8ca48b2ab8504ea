//! The samplers against diffusers.
//!
//! `tests/fixtures/schedulers/refs/*.json` hold what diffusers 0.42.1 did for each
//! (scheduler folder, sampler, step count), written by `tools/make_scheduler_refs.py`: the
//! timesteps, init_noise_sigma, and a whole denoising loop driven the way
//! StableDiffusionPipeline drives it, with `pseudo_unet` standing in for the UNet. Here the
//! same loop runs through `lantern::schedulers::build` on the same folder files and every
//! scaled input and every intermediate latent is compared.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use lantern::Error;
use lantern::schedulers::config::{FinalSigmas, PredictionType, SamplerClass, TimestepSpacing};
use lantern::schedulers::{self, NoiseSource, SamplerKind, SchedulerConfig};
use serde_json::{Value, json};

/// Worst accepted |ours − diffusers| / max(1, |diffusers|).
const TOLERANCE: f64 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schedulers")
}

fn config_path(name: &str) -> PathBuf {
    fixtures().join("configs").join(name).join("scheduler_config.json")
}

fn load_config(name: &str) -> Value {
    schedulers::read_config(&config_path(name)).expect("fixture config")
}

/// The UNet stand-in; `tools/make_scheduler_refs.py` has the same function.
fn pseudo_unet(s: &Tensor, t: f64) -> candle_core::Result<Tensor> {
    let a = s.affine(0.7, t / 1000.0)?.tanh()?.affine(0.9, 0.0)?;
    a - s.affine(0.05, 0.0)?
}

fn decode_b64(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64 character") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn tensor_from_b64(s: &str, shape: &[usize]) -> Tensor {
    let bytes = decode_b64(s);
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Tensor::from_vec(values, shape, &Device::Cpu).expect("reference tensor")
}

/// max |a − b| / max(1, |b|)
fn rel_err(ours: &Tensor, reference: &Tensor) -> f64 {
    let a: Vec<f32> = ours.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = reference.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|(&x, &y)| scalar_err(x as f64, y as f64))
        .fold(0.0, f64::max)
}

fn all_finite(t: &Tensor) -> bool {
    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    v.iter().all(|x| x.is_finite())
}

fn scalar_err(ours: f64, reference: f64) -> f64 {
    if ours == reference {
        return 0.0;
    }
    let e = (ours - reference).abs() / reference.abs().max(1.0);
    if e.is_nan() { f64::INFINITY } else { e }
}

/// Replays the noise diffusers drew, one tensor per call.
struct Replay {
    draws: Vec<Tensor>,
    next: usize,
}

impl NoiseSource for Replay {
    fn randn_like(&mut self, like: &Tensor) -> lantern::Result<Tensor> {
        let t = self
            .draws
            .get(self.next)
            .ok_or_else(|| Error::invalid("the sampler drew more noise than diffusers did"))?;
        assert_eq!(t.dims(), like.dims());
        self.next += 1;
        Ok(t.clone())
    }
}

struct Outcome {
    /// Worst error over timesteps, init_noise_sigma, scaled inputs and latents.
    worst: f64,
    unet_calls: usize,
}

/// Runs one recorded case; `Err` describes a mismatch.
fn run_case(config: &str, case: &Value, shape: &[usize]) -> Result<Outcome, String> {
    let kind_name = case["kind"].as_str().unwrap();
    let kind = SamplerKind::from_cli_name(kind_name).unwrap();
    let steps = case["steps"].as_u64().unwrap() as usize;
    let json = load_config(config);
    let path = config_path(config);

    if let Some(expected) = case.get("error") {
        // diffusers refused this one (at set-up or mid-run); we must refuse it too.
        let result = schedulers::build(kind, &json, &path, steps).and_then(|mut s| {
            let mut x = Tensor::zeros(shape, candle_core::DType::F32, &Device::Cpu)?;
            let mut noise = Replay {
                draws: Vec::new(),
                next: 0,
            };
            for i in 0..s.timesteps().len() {
                let input = s.scale_model_input(&x, i)?;
                let out = pseudo_unet(&input, s.timesteps()[i])?;
                x = s.step(&out, i, &x, &mut noise)?;
            }
            Ok(())
        });
        return match result {
            Err(_) => Ok(Outcome {
                worst: 0.0,
                unet_calls: 0,
            }),
            Ok(()) => Err(format!("diffusers refused ({expected}) but we ran")),
        };
    }

    let mut sched = schedulers::build(kind, &json, &path, steps).map_err(|e| e.to_string())?;
    let resolved = case["resolved_kind"].as_str().unwrap();
    if sched.kind().cli_name() != resolved {
        return Err(format!("kind {} but diffusers built {resolved}", sched.kind()));
    }

    let mut worst = 0.0f64;
    let ref_ts: Vec<f64> = case["timesteps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let ours_ts = sched.timesteps().to_vec();
    if ours_ts.len() != ref_ts.len() {
        return Err(format!("timesteps {ours_ts:?} vs diffusers {ref_ts:?}"));
    }
    for (&a, &b) in ours_ts.iter().zip(&ref_ts) {
        worst = worst.max(scalar_err(a, b));
    }
    if worst > TOLERANCE {
        return Err(format!("timesteps {ours_ts:?} vs diffusers {ref_ts:?}"));
    }
    let ref_sigma = case["init_noise_sigma"].as_f64().unwrap();
    let e = scalar_err(sched.init_noise_sigma(), ref_sigma);
    if e > TOLERANCE {
        return Err(format!(
            "init_noise_sigma {} vs diffusers {ref_sigma}",
            sched.init_noise_sigma()
        ));
    }
    worst = worst.max(e);

    let draws = case
        .get("noise")
        .and_then(Value::as_array)
        .map(|v| v.iter().map(|n| tensor_from_b64(n.as_str().unwrap(), shape)).collect())
        .unwrap_or_default();
    let mut noise = Replay { draws, next: 0 };
    let x0 = tensor_from_b64(case["x0"].as_str().unwrap(), shape);
    let mut x = x0.affine(sched.init_noise_sigma(), 0.0).unwrap();
    let scaled = case["scaled"].as_array().unwrap();
    let xs = case["x"].as_array().unwrap();
    // diffusers' latents went NaN from this step on; ours must stay finite instead.
    let broken_from = case
        .get("diffusers_non_finite_from")
        .and_then(Value::as_u64)
        .map(|v| v as usize)
        .unwrap_or(usize::MAX);
    for (i, &t) in ours_ts.iter().enumerate() {
        if i > broken_from {
            let input = sched.scale_model_input(&x, i).map_err(|e| e.to_string())?;
            let out = pseudo_unet(&input, t).unwrap();
            x = sched.step(&out, i, &x, &mut noise).map_err(|e| e.to_string())?;
            if !all_finite(&x) {
                return Err(format!("latents after step {i} are not finite"));
            }
            continue;
        }
        let input = sched.scale_model_input(&x, i).map_err(|e| e.to_string())?;
        let want = match scaled[i].as_str() {
            Some(b64) => tensor_from_b64(b64, shape),
            None => x.clone(),
        };
        let e = rel_err(&input, &want);
        worst = worst.max(e);
        if e > TOLERANCE {
            return Err(format!("scaled input at step {i}: error {e:.3e}"));
        }
        let out = pseudo_unet(&input, t).unwrap();
        x = sched.step(&out, i, &x, &mut noise).map_err(|e| e.to_string())?;
        if i == broken_from {
            if !all_finite(&x) {
                return Err(format!("latents after step {i} are not finite"));
            }
            continue;
        }
        let e = rel_err(&x, &tensor_from_b64(xs[i].as_str().unwrap(), shape));
        worst = worst.max(e);
        if e > TOLERANCE {
            return Err(format!("latents after step {i}: error {e:.3e}"));
        }
    }
    if noise.next != noise.draws.len() {
        return Err(format!(
            "drew {} noise tensors, diffusers drew {}",
            noise.next,
            noise.draws.len()
        ));
    }
    Ok(Outcome {
        worst,
        unet_calls: ours_ts.len(),
    })
}

#[test]
fn samplers_match_diffusers() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures().join("refs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "reference files missing");

    let mut failures = Vec::new();
    let mut worst_by_kind: BTreeMap<String, f64> = BTreeMap::new();
    let mut cases = 0;
    let mut refused = 0;
    for file in &files {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let config = doc["config"].as_str().unwrap();
        let shape: Vec<usize> = doc["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let mut worst_here = 0.0f64;
        for case in doc["cases"].as_array().unwrap() {
            cases += 1;
            let label = format!("{config}/{}/{}", case["kind"].as_str().unwrap(), case["steps"]);
            match run_case(config, case, &shape) {
                Ok(o) => {
                    if case.get("error").is_some() {
                        refused += 1;
                        continue;
                    }
                    worst_here = worst_here.max(o.worst);
                    let key = case["resolved_kind"].as_str().unwrap().to_string();
                    let w = worst_by_kind.entry(key).or_default();
                    *w = w.max(o.worst);
                    if o.worst > 1e-5 {
                        println!("  {label}: {:.2e} over {} UNet calls", o.worst, o.unet_calls);
                    }
                }
                Err(msg) => failures.push(format!("{label}: {msg}")),
            }
        }
        println!("{config:<24} worst error {worst_here:.2e}");
    }
    for (kind, w) in &worst_by_kind {
        println!("{kind:<16} worst error {w:.2e}");
    }
    println!("{cases} cases, {refused} refused by both diffusers and Lantern");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Counting UNet evaluations, the facts the pipeline's progress bar relies on.

fn built(kind: SamplerKind, config: &str, steps: usize) -> Box<dyn schedulers::Scheduler> {
    schedulers::build(kind, &load_config(config), &config_path(config), steps).unwrap()
}

#[test]
fn unet_evaluation_counts() {
    assert_eq!(built(SamplerKind::Pndm, "sd15", 20).timesteps().len(), 21);
    assert_eq!(built(SamplerKind::Heun, "sd15", 20).timesteps().len(), 39);
    assert_eq!(built(SamplerKind::Euler, "sd15", 20).timesteps().len(), 20);
    // The PRK warm-up: 12 Runge-Kutta evaluations, then the remaining steps - 3.
    assert_eq!(built(SamplerKind::Pndm, "ddpm-linear", 10).timesteps().len(), 19);
}

// ---------------------------------------------------------------------------------------
// from_config semantics

fn resolve(kind: SamplerKind, json: &Value) -> SchedulerConfig {
    SchedulerConfig::resolve(kind, json, Path::new("x/scheduler_config.json")).unwrap()
}

#[test]
fn overrides_take_the_new_classes_defaults_for_fields_the_file_lacks() {
    let sd15 = load_config("sd15");
    // The SD 1.5 file has no timestep_spacing.
    for kind in [
        SamplerKind::Euler,
        SamplerKind::DpmPp2m,
        SamplerKind::Unipc,
        SamplerKind::Lms,
        SamplerKind::Heun,
        SamplerKind::EulerA,
    ] {
        assert_eq!(
            resolve(kind, &sd15).timestep_spacing,
            TimestepSpacing::Linspace,
            "{kind}"
        );
    }
    for kind in [SamplerKind::Ddim, SamplerKind::Pndm, SamplerKind::Default] {
        assert_eq!(
            resolve(kind, &sd15).timestep_spacing,
            TimestepSpacing::Leading,
            "{kind}"
        );
    }
    // ...and it shows in the schedule: Euler lands on 999 and 0, DDIM on 751..1.
    assert_eq!(
        built(SamplerKind::Euler, "sd15", 4).timesteps(),
        &[999.0, 666.0, 333.0, 0.0]
    );
    assert_eq!(
        built(SamplerKind::Ddim, "sd15", 4).timesteps(),
        &[751.0, 501.0, 251.0, 1.0]
    );

    // Fields the file does set carry over to every class that accepts them.
    let ddim = resolve(SamplerKind::Ddim, &sd15);
    assert_eq!(ddim.steps_offset, 1);
    assert!(!ddim.clip_sample && !ddim.set_alpha_to_one);
    assert_eq!(ddim.beta_start, 0.00085);

    // A bare file gets each class's own defaults: DDIM clips and sets alpha to one, Heun's
    // betas differ from everyone else's.
    let bare = json!({"_class_name": "PNDMScheduler"});
    let ddim = resolve(SamplerKind::Ddim, &bare);
    assert!(ddim.clip_sample && ddim.set_alpha_to_one);
    assert_eq!((ddim.beta_start, ddim.beta_end), (0.0001, 0.02));
    let heun = resolve(SamplerKind::Heun, &bare);
    assert_eq!((heun.beta_start, heun.beta_end), (0.00085, 0.012));
    assert!(!resolve(SamplerKind::Pndm, &bare).skip_prk_steps);

    // The SD 2.1 file's v-prediction carries over; DPM++ Karras forces karras on.
    let sd21 = load_config("sd21");
    let dpm = resolve(SamplerKind::DpmPp2mKarras, &sd21);
    assert!(dpm.use_karras_sigmas);
    assert_eq!(dpm.prediction_type, PredictionType::VPrediction);
    assert_eq!(dpm.final_sigmas_type, FinalSigmas::Zero);
    assert_eq!(dpm.class, SamplerClass::DpmSolverMultistep);
}

#[test]
fn default_resolves_the_folders_own_class() {
    assert_eq!(built(SamplerKind::Default, "sd15", 4).kind(), SamplerKind::Pndm);
    assert_eq!(built(SamplerKind::Default, "sd21", 4).kind(), SamplerKind::Ddim);
    assert_eq!(built(SamplerKind::Default, "sdxl", 4).kind(), SamplerKind::Euler);
    // A DPM++ folder with use_karras_sigmas is reported as the Karras variant, also when
    // asked for plain dpmpp-2m (the file's setting carries over).
    assert_eq!(
        built(SamplerKind::Default, "dpm-karras", 4).kind(),
        SamplerKind::DpmPp2mKarras
    );
    assert_eq!(
        built(SamplerKind::DpmPp2m, "dpm-karras", 4).kind(),
        SamplerKind::DpmPp2mKarras
    );
    assert_eq!(built(SamplerKind::DpmPp2m, "sd15", 4).kind(), SamplerKind::DpmPp2m);
}

// ---------------------------------------------------------------------------------------
// Errors

fn config_error(kind: SamplerKind, json: Value) -> (PathBuf, String, String) {
    let path = Path::new("models/m/scheduler/scheduler_config.json");
    match schedulers::build(kind, &json, path, 20) {
        Err(Error::Config { file, field, message }) => (file, field, message),
        Err(other) => panic!("expected a config error, got {other}"),
        Ok(_) => panic!("expected a config error for {json}"),
    }
}

#[test]
fn unknown_class_is_a_config_error_naming_class_name() {
    let (file, field, message) = config_error(SamplerKind::Default, json!({"_class_name": "DDPMScheduler"}));
    assert_eq!(file, Path::new("models/m/scheduler/scheduler_config.json"));
    assert_eq!(field, "_class_name");
    assert!(message.contains("DDPMScheduler"), "{message}");
    let (_, field, _) = config_error(SamplerKind::Default, json!({"beta_end": 0.012}));
    assert_eq!(field, "_class_name");
    // An explicit sampler does not need a known class.
    let ok = schedulers::build(
        SamplerKind::Euler,
        &json!({"_class_name": "DDPMScheduler"}),
        Path::new("s.json"),
        10,
    );
    assert!(ok.is_ok());
}

#[test]
fn unsupported_values_name_the_file_and_field() {
    let cases: Vec<(SamplerKind, Value, &str)> = vec![
        (
            SamplerKind::DpmPp2m,
            json!({"algorithm_type": "sde-dpmsolver++"}),
            "algorithm_type",
        ),
        (SamplerKind::Ddim, json!({"thresholding": true}), "thresholding"),
        (SamplerKind::Unipc, json!({"thresholding": true}), "thresholding"),
        (
            SamplerKind::Euler,
            json!({"use_exponential_sigmas": true}),
            "use_exponential_sigmas",
        ),
        (SamplerKind::DpmPp2m, json!({"use_lu_lambdas": true}), "use_lu_lambdas"),
        (SamplerKind::Euler, json!({"beta_schedule": "sigmoid"}), "beta_schedule"),
        (SamplerKind::Ddim, json!({"beta_schedule": "exp"}), "beta_schedule"),
        (
            SamplerKind::Euler,
            json!({"timestep_spacing": "karras"}),
            "timestep_spacing",
        ),
        (
            SamplerKind::Euler,
            json!({"prediction_type": "flow_prediction"}),
            "prediction_type",
        ),
        (
            SamplerKind::Pndm,
            json!({"prediction_type": "sample"}),
            "prediction_type",
        ),
        (
            SamplerKind::EulerA,
            json!({"prediction_type": "sample"}),
            "prediction_type",
        ),
        (SamplerKind::DpmPp2m, json!({"solver_order": 4}), "solver_order"),
        (
            SamplerKind::DpmPp2m,
            json!({"variance_type": "learned_range"}),
            "variance_type",
        ),
        (
            SamplerKind::DpmPp2m,
            json!({"algorithm_type": "dpmsolver"}),
            "final_sigmas_type",
        ),
        (SamplerKind::Unipc, json!({"solver_type": "bh1"}), "solver_type"),
        (SamplerKind::Unipc, json!({"predict_x0": false}), "predict_x0"),
        (
            SamplerKind::Unipc,
            json!({"lower_order_final": false}),
            "lower_order_final",
        ),
        (
            SamplerKind::Euler,
            json!({"num_train_timesteps": "1000"}),
            "num_train_timesteps",
        ),
        (SamplerKind::Lms, json!({"trained_betas": [0.1, 0.2]}), "trained_betas"),
        (
            SamplerKind::Euler,
            json!({"interpolation_type": "cubic"}),
            "interpolation_type",
        ),
        (
            SamplerKind::DpmPp2m,
            json!({"lambda_min_clipped": "Infinity"}),
            "lambda_min_clipped",
        ),
        (
            SamplerKind::Euler,
            json!({"num_train_timesteps": 1_000_000_000u64}),
            "num_train_timesteps",
        ),
    ];
    for (kind, json, field) in cases {
        let (file, got_field, message) = config_error(kind, json.clone());
        assert_eq!(got_field, field, "{kind} {json}: {message}");
        assert_eq!(file, Path::new("models/m/scheduler/scheduler_config.json"));
        let line = Error::config(&file, &got_field, &message).to_string();
        assert!(line.contains("scheduler_config.json") && line.contains(field), "{line}");
    }
}

#[test]
fn values_a_class_does_not_accept_are_ignored_like_diffusers_does() {
    // Euler has no algorithm_type / thresholding parameter, so these do not matter to it.
    let json = json!({"algorithm_type": "sde-dpmsolver++", "thresholding": true});
    assert!(schedulers::build(SamplerKind::Euler, &json, Path::new("s.json"), 10).is_ok());
    // With trained_betas, an unknown beta_schedule name is never looked at.
    let betas: Vec<f64> = (0..1000).map(|i| 0.0001 + i as f64 * 1e-5).collect();
    let json = json!({"trained_betas": betas, "beta_schedule": "whatever"});
    assert!(schedulers::build(SamplerKind::Euler, &json, Path::new("s.json"), 10).is_ok());
}

#[test]
fn a_files_sigma_min_reaches_dpm_karras_through_the_config_object() {
    let cfg = resolve(SamplerKind::DpmPp2mKarras, &load_config("euler-karras"));
    assert_eq!((cfg.sigma_min, cfg.sigma_max), (Some(0.05), Some(10.0)));
}

#[test]
fn bad_step_counts_are_invalid_requests() {
    let json = load_config("sd15");
    let path = config_path("sd15");
    for kind in SamplerKind::ALL {
        for steps in [0, 1001] {
            match schedulers::build(kind, &json, &path, steps) {
                Err(Error::InvalidRequest(_)) => {}
                Err(e) => panic!("{kind} {steps}: unexpected error {e}"),
                Ok(_) => panic!("{kind} {steps}: accepted"),
            }
        }
    }
    // Trailing spacing with 61 steps gives diffusers a timestep of -1, which DDIM would look
    // up as alphas_cumprod[-1]; we refuse instead.
    let turbo = load_config("sd-turbo");
    match schedulers::build(SamplerKind::Ddim, &turbo, Path::new("t.json"), 61) {
        Err(Error::Config { field, .. }) => assert_eq!(field, "timestep_spacing"),
        other => panic!("expected a config error, got {:?}", other.err()),
    }
    // PNDM's Runge-Kutta warm-up needs four steps.
    let prk = load_config("pndm-prk-vpred");
    let r = schedulers::build(SamplerKind::Default, &prk, Path::new("p.json"), 3);
    assert!(matches!(r, Err(Error::InvalidRequest(_))));
}

#[test]
fn steps_out_of_order_are_refused_not_panics() {
    let mut s = built(SamplerKind::DpmPp2m, "sd15", 5);
    let x = Tensor::zeros((1, 4, 3, 5), candle_core::DType::F32, &Device::Cpu).unwrap();
    let mut noise = Replay {
        draws: Vec::new(),
        next: 0,
    };
    assert!(s.step(&x, 2, &x, &mut noise).is_err());
    assert!(s.scale_model_input(&x, 5).is_err());
    assert!(s.step(&x, 0, &x, &mut noise).is_ok());
    // Euler-a without noise to draw fails cleanly too.
    let mut a = built(SamplerKind::EulerA, "sd15", 5);
    assert!(a.step(&x, 0, &x, &mut noise).is_err());
}

#[test]
fn python_json_infinity_is_read() {
    let text = r#"{"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity,
        "note": "-Infinity stays a string here", "variance_type": null}"#;
    let v = schedulers::parse_config_text(text, Path::new("s.json")).unwrap();
    assert_eq!(v["note"], "-Infinity stays a string here");
    let cfg = resolve(SamplerKind::Default, &v);
    assert_eq!(cfg.lambda_min_clipped, f64::NEG_INFINITY);
    let bad = schedulers::parse_config_text("{", Path::new("s.json"));
    assert!(matches!(bad, Err(Error::Config { .. })));
}
