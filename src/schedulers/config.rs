//! Reading a model folder's `scheduler/scheduler_config.json` the way diffusers does.
//!
//! A sampler override behaves like `XScheduler.from_config(folder_config)`: every key the
//! JSON *file* sets that X's `__init__` accepts carries over, every other field takes X's own
//! default (so the SD 1.5 file, which has no `timestep_spacing`, gives Euler `linspace` but
//! DDIM `leading`). Keys X does not accept are ignored, as diffusers ignores them — with one
//! exception diffusers also has: `sigma_min` / `sigma_max` are looked up on the config object
//! by the Karras conversion, and `from_config` registers every key of the file there, so a
//! file's `sigma_min` reaches DPM-Solver and Heun even though neither accepts it.
//!
//! A value that would change the result and that we do not implement is an
//! [`Error::Config`] naming the file and the field, never silently ignored.

use std::path::Path;

use serde_json::{Map, Value};

use super::table::classes;
use super::{ClassInfo, SamplerKind};
use crate::error::{Error, Result};

/// More training timesteps than any real model uses; the tables are allocated up front.
const MAX_TRAIN_TIMESTEPS: usize = 100_000;

/// The diffusers scheduler classes Lantern implements. Each sampler file describes its class
/// as a [`ClassInfo`] (name, `__init__` keys, defaults, constructor) that the sampler table
/// refers to; the variant is what the class-specific rules below match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SamplerClass {
    Ddim,
    Pndm,
    EulerDiscrete,
    EulerAncestralDiscrete,
    DpmSolverMultistep,
    UniPcMultistep,
    LmsDiscrete,
    HeunDiscrete,
}

/// The `__init__` parameters every class takes (see [`ClassInfo::init_keys`] for the rest).
pub const COMMON_INIT_KEYS: [&str; 5] = [
    "num_train_timesteps",
    "beta_start",
    "beta_end",
    "beta_schedule",
    "trained_betas",
];

impl SamplerClass {
    /// The class's entry in the sampler table (each sampler file's `CLASS`).
    pub fn info(self) -> &'static ClassInfo {
        classes()
            .find(|c| c.class == self)
            .expect("every SamplerClass is the class of a row in SAMPLERS")
    }

    /// Every class, each once, in table order.
    pub fn all() -> impl Iterator<Item = SamplerClass> {
        classes().map(|c| c.class)
    }

    /// The `_class_name` diffusers writes for this class.
    pub fn class_name(self) -> &'static str {
        self.info().name
    }

    pub fn from_class_name(name: &str) -> Option<SamplerClass> {
        classes().find(|c| c.name == name).map(|c| c.class)
    }

    /// The class an explicit sampler choice builds; `None` for [`SamplerKind::Default`].
    pub fn for_kind(kind: SamplerKind) -> Option<SamplerClass> {
        kind.info().class.map(|c| c.class)
    }

    /// Whether `from_config` carries `key` over from a file to this class.
    fn accepts(self, key: &str) -> bool {
        COMMON_INIT_KEYS.contains(&key) || self.info().init_keys.contains(&key)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BetaSchedule {
    Linear,
    ScaledLinear,
    SquaredCosCapV2,
    /// HeunDiscreteScheduler only.
    Exp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PredictionType {
    Epsilon,
    VPrediction,
    Sample,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestepSpacing {
    Leading,
    Trailing,
    Linspace,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterpolationType {
    Linear,
    LogLinear,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinalSigmas {
    Zero,
    SigmaMin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestepType {
    Discrete,
    Continuous,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlgorithmType {
    /// DPM-Solver++ (data prediction), the default.
    DpmSolverPlusPlus,
    /// The original DPM-Solver (noise prediction).
    DpmSolver,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DpmSolverType {
    Midpoint,
    Heun,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UniPcSolverType {
    Bh1,
    Bh2,
}

/// One sampler's configuration after `from_config`: the file's values where the class
/// accepts them, the class's own defaults elsewhere. Fields a class does not have keep inert
/// values and are never read by it.
#[derive(Clone, Debug, PartialEq)]
pub struct SchedulerConfig {
    pub class: SamplerClass,
    pub num_train_timesteps: usize,
    pub beta_start: f64,
    pub beta_end: f64,
    /// `None` for a name we do not know, which is only an error without `trained_betas`
    /// (diffusers never looks at the name then).
    pub beta_schedule: Option<BetaSchedule>,
    /// The schedule name as the file wrote it.
    pub beta_schedule_name: String,
    pub trained_betas: Option<Vec<f64>>,
    pub prediction_type: PredictionType,
    pub timestep_spacing: TimestepSpacing,
    pub steps_offset: usize,
    pub set_alpha_to_one: bool,
    pub clip_sample: bool,
    pub clip_sample_range: f64,
    pub skip_prk_steps: bool,
    pub rescale_betas_zero_snr: bool,
    pub interpolation_type: InterpolationType,
    pub use_karras_sigmas: bool,
    /// Karras bounds from the file (see the module docs for who reads them).
    pub sigma_min: Option<f64>,
    pub sigma_max: Option<f64>,
    pub timestep_type: TimestepType,
    pub final_sigmas_type: FinalSigmas,
    pub solver_order: usize,
    pub algorithm_type: AlgorithmType,
    pub dpm_solver_type: DpmSolverType,
    pub unipc_solver_type: UniPcSolverType,
    pub lower_order_final: bool,
    pub euler_at_final: bool,
    pub lambda_min_clipped: f64,
    pub predict_x0: bool,
    pub disable_corrector: Vec<usize>,
}

impl SchedulerConfig {
    /// The class's own `__init__` defaults: the ones most classes share, then the class's
    /// own differences ([`ClassInfo::defaults`]).
    pub fn defaults(class: SamplerClass) -> SchedulerConfig {
        let mut cfg = SchedulerConfig {
            class,
            num_train_timesteps: 1000,
            beta_start: 0.0001,
            beta_end: 0.02,
            beta_schedule: Some(BetaSchedule::Linear),
            beta_schedule_name: "linear".to_string(),
            trained_betas: None,
            prediction_type: PredictionType::Epsilon,
            timestep_spacing: TimestepSpacing::Linspace,
            steps_offset: 0,
            set_alpha_to_one: false,
            clip_sample: false,
            clip_sample_range: 1.0,
            skip_prk_steps: false,
            rescale_betas_zero_snr: false,
            interpolation_type: InterpolationType::Linear,
            use_karras_sigmas: false,
            sigma_min: None,
            sigma_max: None,
            timestep_type: TimestepType::Discrete,
            final_sigmas_type: FinalSigmas::Zero,
            solver_order: 2,
            algorithm_type: AlgorithmType::DpmSolverPlusPlus,
            dpm_solver_type: DpmSolverType::Midpoint,
            unipc_solver_type: UniPcSolverType::Bh2,
            lower_order_final: true,
            euler_at_final: false,
            lambda_min_clipped: f64::NEG_INFINITY,
            predict_x0: true,
            disable_corrector: Vec::new(),
        };
        (class.info().defaults)(&mut cfg);
        cfg
    }

    /// The configuration `kind` runs with, given the folder's parsed `scheduler_config.json`
    /// (`path` names it in errors). [`SamplerKind::Default`] builds the file's `_class_name`;
    /// a Karras row of the table ([`SamplerKind::DpmPp2mKarras`]) forces `use_karras_sigmas` on.
    pub fn resolve(kind: SamplerKind, json: &Value, path: &Path) -> Result<SchedulerConfig> {
        let obj = json
            .as_object()
            .ok_or_else(|| Error::config(path, "(root)", "expected a JSON object"))?;
        let class = match SamplerClass::for_kind(kind) {
            Some(class) => class,
            None => class_from_file(obj, path)?,
        };
        let mut cfg = SchedulerConfig::defaults(class);
        let fields = Fields { path };
        for (key, value) in obj {
            if key.starts_with('_') {
                continue;
            }
            if class.accepts(key) {
                cfg.set(key, value, &fields)?;
            } else if key == "sigma_min" || key == "sigma_max" {
                // Not an __init__ parameter of this class, but registered on its config
                // object all the same, where `_convert_to_karras` finds it.
                let v = fields.opt_positive(key, value)?;
                if key == "sigma_min" {
                    cfg.sigma_min = v;
                } else {
                    cfg.sigma_max = v;
                }
            }
        }
        if kind.info().karras {
            cfg.use_karras_sigmas = true;
        }
        cfg.validate(&fields)?;
        Ok(cfg)
    }

    /// Applies one key of the file.
    fn set(&mut self, key: &str, v: &Value, f: &Fields) -> Result<()> {
        match key {
            "num_train_timesteps" => {
                self.num_train_timesteps = f.usize(key, v)?;
                if !(2..=MAX_TRAIN_TIMESTEPS).contains(&self.num_train_timesteps) {
                    return Err(f.err(key, format!("must be between 2 and {MAX_TRAIN_TIMESTEPS}")));
                }
            }
            "beta_start" => self.beta_start = f.f64(key, v)?,
            "beta_end" => self.beta_end = f.f64(key, v)?,
            // Checked in `validate`, since `trained_betas` overrides it.
            "beta_schedule" => {
                let name = f.str(key, v)?;
                self.beta_schedule = parse_beta_schedule(name);
                self.beta_schedule_name = name.to_string();
            }
            "trained_betas" => self.trained_betas = f.opt_f64_list(key, v)?,
            "prediction_type" => self.prediction_type = self.parse_prediction(key, v, f)?,
            "timestep_spacing" => {
                self.timestep_spacing = match f.str(key, v)? {
                    "leading" => TimestepSpacing::Leading,
                    "trailing" => TimestepSpacing::Trailing,
                    "linspace" => TimestepSpacing::Linspace,
                    other => return Err(f.choice(key, other, "leading, trailing, linspace")),
                }
            }
            "steps_offset" => self.steps_offset = f.usize(key, v)?,
            "set_alpha_to_one" => self.set_alpha_to_one = f.bool(key, v)?,
            "clip_sample" => self.clip_sample = f.bool(key, v)?,
            "clip_sample_range" => {
                self.clip_sample_range = f.f64(key, v)?;
                if self.clip_sample_range.is_nan() || self.clip_sample_range <= 0.0 {
                    return Err(f.err(key, "must be a positive number"));
                }
            }
            "skip_prk_steps" => self.skip_prk_steps = f.bool(key, v)?,
            "rescale_betas_zero_snr" => self.rescale_betas_zero_snr = f.bool(key, v)?,
            "interpolation_type" => {
                self.interpolation_type = match f.str(key, v)? {
                    "linear" => InterpolationType::Linear,
                    "log_linear" => InterpolationType::LogLinear,
                    other => return Err(f.choice(key, other, "linear, log_linear")),
                }
            }
            "use_karras_sigmas" => self.use_karras_sigmas = f.bool(key, v)?,
            "sigma_min" => self.sigma_min = f.opt_positive(key, v)?,
            "sigma_max" => self.sigma_max = f.opt_positive(key, v)?,
            "timestep_type" => {
                self.timestep_type = match f.str(key, v)? {
                    "discrete" => TimestepType::Discrete,
                    "continuous" => TimestepType::Continuous,
                    other => return Err(f.choice(key, other, "discrete, continuous")),
                }
            }
            "final_sigmas_type" => {
                self.final_sigmas_type = match f.str(key, v)? {
                    "zero" => FinalSigmas::Zero,
                    "sigma_min" => FinalSigmas::SigmaMin,
                    other => return Err(f.choice(key, other, "zero, sigma_min")),
                }
            }
            "solver_order" => {
                self.solver_order = f.usize(key, v)?;
                if !(1..=3).contains(&self.solver_order) {
                    return Err(f.err(key, format!("{} is not supported; use 1, 2 or 3", self.solver_order)));
                }
            }
            "algorithm_type" => {
                self.algorithm_type = match f.str(key, v)? {
                    // diffusers maps the retired `deis` value to DPM-Solver++.
                    "dpmsolver++" | "deis" => AlgorithmType::DpmSolverPlusPlus,
                    "dpmsolver" => AlgorithmType::DpmSolver,
                    other @ ("sde-dpmsolver" | "sde-dpmsolver++") => {
                        return Err(f.err(
                            key,
                            format!(
                                "\"{other}\" (stochastic DPM-Solver) is not supported; \
                                 use \"dpmsolver++\""
                            ),
                        ));
                    }
                    other => return Err(f.choice(key, other, "dpmsolver++, dpmsolver")),
                }
            }
            "solver_type" => self.set_solver_type(key, v, f)?,
            "lower_order_final" => self.lower_order_final = f.bool(key, v)?,
            "euler_at_final" => self.euler_at_final = f.bool(key, v)?,
            "lambda_min_clipped" => self.lambda_min_clipped = f.f64(key, v)?,
            "predict_x0" => self.predict_x0 = f.bool(key, v)?,
            "disable_corrector" => self.disable_corrector = f.usize_list(key, v)?,
            // Options we do not implement: fine at their inert value, an error otherwise.
            "thresholding"
            | "use_exponential_sigmas"
            | "use_beta_sigmas"
            | "use_lu_lambdas"
            | "use_flow_sigmas"
            | "use_dynamic_shifting"
                if f.bool(key, v)? =>
            {
                return Err(f.err(key, "`true` is not supported by Lantern"));
            }
            "variance_type" => {
                // DDPM's fixed variances mean nothing to DPM-Solver; the learned ones would
                // make it slice the UNet output to 3 channels.
                if let Some(s @ ("learned" | "learned_range")) = v.as_str() {
                    return Err(f.err(key, format!("\"{s}\" is not supported by Lantern")));
                }
            }
            "solver_p" | "shift_terminal" if !v.is_null() => {
                return Err(f.err(key, "only null is supported by Lantern"));
            }
            // Only read by the options refused above.
            "dynamic_thresholding_ratio" | "sample_max_value" | "flow_shift" | "time_shift_type" => {}
            _ => {}
        }
        Ok(())
    }

    fn parse_prediction(&self, key: &str, v: &Value, f: &Fields) -> Result<PredictionType> {
        let s = f.str(key, v)?;
        let class = self.class;
        let p = match s {
            "epsilon" => PredictionType::Epsilon,
            "v_prediction" => PredictionType::VPrediction,
            "sample" => PredictionType::Sample,
            "original_sample" if class == SamplerClass::EulerDiscrete => PredictionType::Sample,
            "flow_prediction" => {
                return Err(f.err(key, "\"flow_prediction\" is not supported by Lantern"));
            }
            other => return Err(f.choice(key, other, "epsilon, v_prediction, sample")),
        };
        // diffusers refuses these at the first step; we refuse them up front.
        let refused =
            p == PredictionType::Sample && matches!(class, SamplerClass::Pndm | SamplerClass::EulerAncestralDiscrete);
        if refused {
            return Err(f.err(
                key,
                format!(
                    "\"sample\" is not supported by {} (diffusers refuses it too)",
                    class.class_name()
                ),
            ));
        }
        Ok(p)
    }

    fn set_solver_type(&mut self, key: &str, v: &Value, f: &Fields) -> Result<()> {
        let s = f.str(key, v)?;
        // Each class maps the other's solver names onto its own default, as diffusers does.
        match (self.class, s) {
            (SamplerClass::UniPcMultistep, "bh1") => self.unipc_solver_type = UniPcSolverType::Bh1,
            (SamplerClass::UniPcMultistep, "bh2" | "midpoint" | "heun" | "logrho") => {
                self.unipc_solver_type = UniPcSolverType::Bh2
            }
            (_, "midpoint" | "logrho" | "bh1" | "bh2") => self.dpm_solver_type = DpmSolverType::Midpoint,
            (_, "heun") => self.dpm_solver_type = DpmSolverType::Heun,
            (SamplerClass::UniPcMultistep, other) => {
                return Err(f.choice(key, other, "bh1, bh2"));
            }
            (_, other) => return Err(f.choice(key, other, "midpoint, heun")),
        }
        Ok(())
    }

    /// Checks that need several fields, and the values diffusers accepts but turns into NaN.
    fn validate(&mut self, f: &Fields) -> Result<()> {
        match &self.trained_betas {
            Some(b) => {
                if b.len() != self.num_train_timesteps {
                    return Err(f.err(
                        "trained_betas",
                        format!(
                            "has {} values but num_train_timesteps is {}",
                            b.len(),
                            self.num_train_timesteps
                        ),
                    ));
                }
                if b.iter().any(|x| !(0.0..1.0).contains(x)) {
                    return Err(f.err("trained_betas", "every beta must be in [0, 1)"));
                }
            }
            None => {
                let schedule = self.beta_schedule.ok_or_else(|| {
                    f.choice(
                        "beta_schedule",
                        &self.beta_schedule_name,
                        "linear, scaled_linear, squaredcos_cap_v2",
                    )
                })?;
                if schedule == BetaSchedule::Exp && self.class != SamplerClass::HeunDiscrete {
                    return Err(f.err(
                        "beta_schedule",
                        "\"exp\" is only implemented by HeunDiscreteScheduler in diffusers",
                    ));
                }
                let ok = |b: f64| (0.0..1.0).contains(&b);
                if !ok(self.beta_start) {
                    return Err(f.err("beta_start", "must be in [0, 1)"));
                }
                if !ok(self.beta_end) {
                    return Err(f.err("beta_end", "must be in [0, 1)"));
                }
            }
        }
        if self.class == SamplerClass::DpmSolverMultistep
            && self.algorithm_type == AlgorithmType::DpmSolver
            && self.final_sigmas_type == FinalSigmas::Zero
        {
            return Err(f.err(
                "final_sigmas_type",
                "\"zero\" does not work with algorithm_type \"dpmsolver\"; use \"sigma_min\"",
            ));
        }
        if self.class == SamplerClass::UniPcMultistep && self.final_sigmas_type == FinalSigmas::Zero {
            // Stepping to σ = 0 makes λ infinite; diffusers' UniPC then returns NaN or inf
            // latents in these modes.
            let broken = if self.unipc_solver_type == UniPcSolverType::Bh1 {
                Some(("solver_type", "\"bh1\""))
            } else if !self.predict_x0 {
                Some(("predict_x0", "false"))
            } else if !self.lower_order_final && self.solver_order > 1 {
                Some(("lower_order_final", "false"))
            } else {
                None
            };
            if let Some((field, value)) = broken {
                return Err(f.err(
                    field,
                    format!(
                        "{value} with final_sigmas_type \"zero\" gives NaN latents in diffusers' \
                         UniPC; set final_sigmas_type to \"sigma_min\""
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn class_from_file(obj: &Map<String, Value>, path: &Path) -> Result<SamplerClass> {
    let supported = || {
        SamplerClass::all()
            .map(|c| c.class_name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let name = match obj.get("_class_name") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(Error::config(path, "_class_name", "expected a string")),
        None => {
            return Err(Error::config(
                path,
                "_class_name",
                "missing, so the folder's own sampler is unknown; pick one explicitly",
            ));
        }
    };
    SamplerClass::from_class_name(name).ok_or_else(|| {
        Error::config(
            path,
            "_class_name",
            format!(
                "\"{name}\" is not a sampler Lantern implements (supported: {})",
                supported()
            ),
        )
    })
}

fn parse_beta_schedule(s: &str) -> Option<BetaSchedule> {
    Some(match s {
        "linear" => BetaSchedule::Linear,
        "scaled_linear" => BetaSchedule::ScaledLinear,
        "squaredcos_cap_v2" => BetaSchedule::SquaredCosCapV2,
        "exp" => BetaSchedule::Exp,
        _ => return None,
    })
}

/// Typed access to JSON values, with errors that name the file and the field.
struct Fields<'a> {
    path: &'a Path,
}

impl Fields<'_> {
    fn err(&self, field: &str, message: impl Into<String>) -> Error {
        Error::config(self.path, field, message)
    }

    fn choice(&self, field: &str, got: &str, allowed: &str) -> Error {
        self.err(field, format!("\"{got}\" is not supported; use one of: {allowed}"))
    }

    /// Python truthiness for `null`, which a `bool` parameter receives as `None`.
    fn bool(&self, field: &str, v: &Value) -> Result<bool> {
        match v {
            Value::Bool(b) => Ok(*b),
            Value::Null => Ok(false),
            _ => Err(self.err(field, "expected true or false")),
        }
    }

    fn str<'v>(&self, field: &str, v: &'v Value) -> Result<&'v str> {
        v.as_str().ok_or_else(|| self.err(field, "expected a string"))
    }

    /// A number; also the `"Infinity"` / `"-Infinity"` / `"NaN"` that Python's JSON writer
    /// emits for non-finite floats (see [`super::read_config`]).
    fn f64(&self, field: &str, v: &Value) -> Result<f64> {
        match v {
            Value::Number(n) => n.as_f64().ok_or_else(|| self.err(field, "expected a number")),
            Value::String(s) if s == "-Infinity" => Ok(f64::NEG_INFINITY),
            Value::String(s) if s == "Infinity" => Ok(f64::INFINITY),
            _ => Err(self.err(field, "expected a number")),
        }
    }

    fn usize(&self, field: &str, v: &Value) -> Result<usize> {
        v.as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| self.err(field, "expected a non-negative integer"))
    }

    fn opt_positive(&self, field: &str, v: &Value) -> Result<Option<f64>> {
        if v.is_null() {
            return Ok(None);
        }
        let x = self.f64(field, v)?;
        if x.is_nan() || x <= 0.0 || x.is_infinite() {
            return Err(self.err(field, "must be a positive number or null"));
        }
        Ok(Some(x))
    }

    fn opt_f64_list(&self, field: &str, v: &Value) -> Result<Option<Vec<f64>>> {
        match v {
            Value::Null => Ok(None),
            Value::Array(items) => items
                .iter()
                .map(|x| x.as_f64().ok_or_else(|| self.err(field, "expected a list of numbers")))
                .collect::<Result<Vec<_>>>()
                .map(Some),
            _ => Err(self.err(field, "expected a list of numbers or null")),
        }
    }

    fn usize_list(&self, field: &str, v: &Value) -> Result<Vec<usize>> {
        match v {
            Value::Null => Ok(Vec::new()),
            Value::Array(items) => items.iter().map(|x| self.usize(field, x)).collect(),
            _ => Err(self.err(field, "expected a list of step indices")),
        }
    }
}
