//! The catalog of known models, kept as data in `assets/models.toml` so adding a model or fixing
//! a recommendation is an edit to one file, not to code. Embedded in the binary and parsed at
//! run time; [`Catalog::validate`] (run by the tests) keeps every entry complete.

use serde::{Deserialize, Serialize};

use super::hf_cache;
use super::inspect::Family;
use super::taesd::TaesdSpace;
use crate::error::{Error, Result};
use crate::format::ByteSize;
use crate::schedulers::SamplerKind;

const BUILTIN: &str = include_str!("../../assets/models.toml");

/// The settings the app applies when a catalog model is chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecommendedSettings {
    pub steps: u32,
    /// The useful range; the GUI may warn outside it (Turbo models fall apart past 4 steps).
    pub steps_range: [u32; 2],
    pub guidance: f32,
    /// A sampler CLI name (`default`, `euler`, `dpmpp-2m-karras`, …).
    pub sampler: String,
    pub width: u32,
    pub height: u32,
}

impl RecommendedSettings {
    pub fn sampler_kind(&self) -> Option<SamplerKind> {
        SamplerKind::from_cli_name(&self.sampler)
    }
}

/// What a catalog entry is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// A diffusers pipeline that makes pictures (the default).
    #[default]
    Pipeline,
    /// A tiny autoencoder (TAESD, diffusers' `AutoencoderTiny`) for a family's latents: live
    /// previews and Draft decode. A folder of `config.json` and its weights, no pipeline; its
    /// `family` is the latent space it decodes (`sd1` for SD 1.x/2.x and SD-Turbo, `sdxl`),
    /// which its name must say too (discovery pairs it by name: `taesd`, `taesdxl`).
    PreviewDecoder,
}

/// One known model.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    /// Short name for the command line (`sd-turbo`).
    pub id: String,
    /// Name shown to people.
    pub name: String,
    /// Hub repo id.
    pub repo: String,
    pub revision: String,
    #[serde(default)]
    pub kind: EntryKind,
    pub family: Family,
    pub license: String,
    /// Approximate download size; the exact numbers come from the Hub at download time.
    pub size_bytes: u64,
    /// Offered first when running on a CPU.
    pub suggested_on_cpu: bool,
    pub description: String,
    /// Exactly the repo files to fetch.
    pub files: Vec<String>,
    /// Pipelines only.
    #[serde(default)]
    pub recommended: Option<RecommendedSettings>,
}

impl CatalogEntry {
    pub fn size(&self) -> ByteSize {
        ByteSize(self.size_bytes)
    }

    /// "Download SD-Turbo — 2.6 GB".
    pub fn download_label(&self) -> String {
        format!("Download {} — {}", self.name, self.size())
    }

    pub fn is_pipeline(&self) -> bool {
        self.kind == EntryKind::Pipeline
    }

    /// The latents a preview decoder decodes; `None` for a pipeline.
    pub fn preview_space(&self) -> Option<TaesdSpace> {
        (self.kind == EntryKind::PreviewDecoder).then(|| TaesdSpace::of(self.family.base()))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub models: Vec<CatalogEntry>,
}

impl Catalog {
    /// The catalog shipped in the binary.
    pub fn builtin() -> Result<Catalog> {
        Catalog::parse(BUILTIN)
    }

    /// Parses and validates a catalog in the `assets/models.toml` format.
    pub fn parse(text: &str) -> Result<Catalog> {
        let catalog: Catalog =
            toml::from_str(text).map_err(|e| Error::Catalog(e.to_string().lines().collect::<Vec<_>>().join(" ")))?;
        catalog.validate()?;
        Ok(catalog)
    }

    /// An entry by catalog id or repo id (case-insensitive).
    pub fn find(&self, name_or_repo: &str) -> Option<&CatalogEntry> {
        let wanted = name_or_repo.trim();
        self.models
            .iter()
            .find(|m| m.id.eq_ignore_ascii_case(wanted) || m.repo.eq_ignore_ascii_case(wanted))
    }

    /// The pipelines (what makes pictures), in catalog order.
    pub fn pipelines(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.models.iter().filter(|m| m.is_pipeline())
    }

    /// The preview decoders (TAESD), in catalog order.
    pub fn preview_decoders(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.models.iter().filter(|m| !m.is_pipeline())
    }

    /// The model to offer first: the CPU suggestion when running on a CPU, else the first
    /// pipeline.
    pub fn suggested(&self, on_cpu: bool) -> Option<&CatalogEntry> {
        self.pipelines()
            .find(|m| !on_cpu || m.suggested_on_cpu)
            .or_else(|| self.pipelines().next())
    }

    /// The settings to apply when `family` is chosen: the catalog entry `catalog_id` names,
    /// else the first entry of the same family (a local SD-Turbo copy gets SD-Turbo's 1 step,
    /// guidance 0), else the first entry on the same architecture.
    pub fn recommended_for(&self, catalog_id: Option<&str>, family: Family) -> Option<&RecommendedSettings> {
        let same_arch = |f: Family| match family {
            Family::Sd1 | Family::Sd2 => matches!(f, Family::Sd1 | Family::Sd2),
            other => f == other,
        };
        catalog_id
            .and_then(|id| self.find(id))
            .filter(|m| m.is_pipeline())
            .or_else(|| self.pipelines().find(|m| m.family == family))
            .or_else(|| self.pipelines().find(|m| same_arch(m.family)))
            .and_then(|m| m.recommended.as_ref())
    }

    /// Every entry complete and consistent: unique ids, a valid repo id, only diffusers
    /// component files in safetensors/JSON/text form, every component the family needs present
    /// with its config and weights, settings in range and a sampler Lantern has.
    pub fn validate(&self) -> Result<()> {
        if self.models.is_empty() {
            return Err(Error::Catalog("no models".into()));
        }
        let mut ids = std::collections::HashSet::new();
        for m in &self.models {
            let fail = |msg: String| Err(Error::Catalog(format!("`{}`: {msg}", m.id)));
            if !ids.insert(m.id.to_ascii_lowercase()) {
                return fail("duplicate id".into());
            }
            for (field, value) in [
                ("id", &m.id),
                ("name", &m.name),
                ("revision", &m.revision),
                ("license", &m.license),
                ("description", &m.description),
            ] {
                if value.trim().is_empty() {
                    return fail(format!("`{field}` is empty"));
                }
            }
            if hf_cache::validate_repo_id(&m.repo).is_err() {
                return fail(format!("`{}` is not a repo id", m.repo));
            }
            if m.kind == EntryKind::PreviewDecoder {
                if let Err(problem) = validate_preview_decoder(m) {
                    return fail(problem);
                }
                continue;
            }
            let Some(r) = &m.recommended else {
                return fail("a pipeline needs its recommended settings".into());
            };
            if m.size_bytes < 100_000_000 {
                return fail("size_bytes is implausibly small".into());
            }
            if !m.files.iter().any(|f| f == "model_index.json") {
                return fail("files lack model_index.json".into());
            }
            for file in &m.files {
                if let Err(problem) = check_file(file) {
                    return fail(format!("file `{file}`: {problem}"));
                }
            }
            for component in m.family.required_components() {
                let in_dir = |f: &&String| f.starts_with(&format!("{component}/"));
                let files: Vec<&String> = m.files.iter().filter(in_dir).collect();
                let has_name = |n: &str| files.iter().any(|f| f.ends_with(&format!("/{n}")));
                let ok = match *component {
                    "scheduler" => has_name("scheduler_config.json"),
                    c if c.starts_with("tokenizer") => {
                        has_name("tokenizer.json") || (has_name("vocab.json") && has_name("merges.txt"))
                    }
                    _ => has_name("config.json") && files.iter().any(|f| f.ends_with(".safetensors")),
                };
                if !ok {
                    return fail(format!("component `{component}` is incomplete"));
                }
            }
            if r.steps == 0 || r.steps_range[0] > r.steps || r.steps > r.steps_range[1] {
                return fail("recommended steps outside steps_range".into());
            }
            if !(r.guidance.is_finite() && (0.0..=30.0).contains(&r.guidance)) {
                return fail("recommended guidance out of range".into());
            }
            if r.sampler_kind().is_none() {
                return fail(format!("unknown sampler `{}`", r.sampler));
            }
            if r.width % 8 != 0 || r.height % 8 != 0 || r.width < 256 || r.height < 256 {
                return fail("recommended size must be multiples of 8, at least 256".into());
            }
            if m.family.is_turbo() && (r.guidance != 0.0 || r.steps_range[1] > 4) {
                return fail("Turbo models run with guidance 0 and 1-4 steps".into());
            }
        }
        Ok(())
    }
}

/// A preview decoder's entry: a diffusers `AutoencoderTiny` folder (`config.json` and one
/// safetensors weight file at the repo's root), a few MB, no recommended settings, named for
/// the latent space its family says.
fn validate_preview_decoder(m: &CatalogEntry) -> std::result::Result<(), String> {
    if m.recommended.is_some() {
        return Err("a preview decoder has no recommended settings".into());
    }
    if !(1_000_000..100_000_000).contains(&m.size_bytes) {
        return Err("size_bytes is implausible for a tiny autoencoder (1 to 100 MB)".into());
    }
    let weights = [
        "diffusion_pytorch_model.safetensors",
        "diffusion_pytorch_model.fp16.safetensors",
    ];
    for file in &m.files {
        if file != "config.json" && !weights.contains(&file.as_str()) {
            return Err(format!(
                "file `{file}`: a preview decoder is config.json and diffusion_pytorch_model.safetensors"
            ));
        }
    }
    if !m.files.iter().any(|f| f == "config.json") || !m.files.iter().any(|f| weights.contains(&f.as_str())) {
        return Err("a preview decoder needs config.json and its .safetensors weights".into());
    }
    let space = TaesdSpace::of(m.family.base());
    if TaesdSpace::from_name(&m.repo) != Some(space) {
        return Err(format!(
            "`{}` does not name the {} latents its family decodes (discovery pairs it by name)",
            m.repo, m.family
        ));
    }
    Ok(())
}

/// A catalog file must be a diffusers component file, never a pickle, a root checkpoint or the
/// safety checker.
fn check_file(file: &str) -> std::result::Result<(), &'static str> {
    if hf_cache::validate_repo_path(file).is_err() {
        return Err("not a plain relative path");
    }
    let lower = file.to_ascii_lowercase();
    if [".ckpt", ".bin", ".pt", ".pth", ".pkl"]
        .iter()
        .any(|ext| lower.ends_with(ext))
    {
        return Err("pickle weights are never downloaded");
    }
    if !(lower.ends_with(".safetensors") || lower.ends_with(".json") || lower.ends_with(".txt")) {
        return Err("only .safetensors, .json and .txt files belong to a diffusers pipeline");
    }
    match file.split_once('/') {
        None if file != "model_index.json" => {
            Err("root files other than model_index.json are single-file checkpoints or docs")
        }
        Some((dir, _)) if !DIFFUSERS_COMPONENTS.contains(&dir) => Err("not a component Lantern uses"),
        _ => Ok(()),
    }
}

/// Component folders Lantern loads (no safety_checker, feature_extractor, image_encoder).
pub const DIFFUSERS_COMPONENTS: [&str; 7] = [
    "scheduler",
    "text_encoder",
    "text_encoder_2",
    "tokenizer",
    "tokenizer_2",
    "unet",
    "vae",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_parses_and_every_entry_is_complete() {
        let catalog = Catalog::builtin().expect("assets/models.toml is valid");
        let ids: Vec<&str> = catalog.models.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(
            ids,
            ["sd-turbo", "sd15", "sd21", "sdxl", "sdxl-turbo", "taesd", "taesdxl"]
        );
        for m in catalog.pipelines() {
            assert_eq!(m.revision, "main");
            assert!(m.files.iter().all(|f| !f.contains("safety_checker")));
            // fp16 variants wherever the repo has them: every UNet and VAE here does.
            assert!(
                m.files
                    .contains(&"unet/diffusion_pytorch_model.fp16.safetensors".to_string())
            );
            assert!(
                m.files
                    .contains(&"vae/diffusion_pytorch_model.fp16.safetensors".to_string())
            );
        }
        let turbo = catalog.find("sd-turbo").unwrap();
        assert_eq!(turbo.repo, "stabilityai/sd-turbo");
        assert_eq!(turbo.recommended.as_ref().unwrap().guidance, 0.0);
        assert_eq!(turbo.download_label(), "Download SD-Turbo — 2.6 GB");
        assert_eq!(catalog.suggested(true).unwrap().id, "sd-turbo");
        assert_eq!(catalog.find("STABILITYAI/SDXL-TURBO").unwrap().id, "sdxl-turbo");
        assert_eq!(
            catalog
                .find("stable-diffusion-v1-5/stable-diffusion-v1-5")
                .unwrap()
                .family,
            Family::Sd1
        );
        assert!(catalog.find("nope").is_none());

        let r = catalog.recommended_for(None, Family::SdTurbo).unwrap();
        assert_eq!((r.steps, r.guidance), (1, 0.0));
        let r = catalog.recommended_for(Some("sdxl"), Family::SdxlTurbo).unwrap();
        assert_eq!(r.width, 1024);
        let r = catalog.recommended_for(None, Family::Sd2).unwrap();
        assert_eq!(r.width, 768);

        // The preview decoders: what `models download taesd` fetches, paired by latent space,
        // never offered as a first model nor asked for settings.
        let taesd = catalog.find("madebyollin/taesd").unwrap();
        assert_eq!(
            (taesd.id.as_str(), taesd.preview_space()),
            ("taesd", Some(TaesdSpace::Sd))
        );
        assert_eq!(catalog.find("taesdxl").unwrap().preview_space(), Some(TaesdSpace::Sdxl));
        assert_eq!(catalog.preview_decoders().count(), 2);
        assert!(taesd.recommended.is_none() && turbo.preview_space().is_none());
        assert!(catalog.recommended_for(Some("taesd"), Family::Sd1).unwrap().steps > 1);
        assert_eq!(catalog.suggested(false).unwrap().id, "sd-turbo");
    }

    #[test]
    fn preview_decoders_are_checked_as_tiny_autoencoders() {
        let good = BUILTIN;
        let taesd_files = "files = [\"config.json\", \"diffusion_pytorch_model.safetensors\"]";
        assert!(good.contains(taesd_files));
        for (bad, says) in [
            (
                good.replacen(taesd_files, "files = [\"config.json\", \"taesd_decoder.pth\"]", 1),
                "preview decoder is config.json",
            ),
            (
                good.replacen(taesd_files, "files = [\"config.json\"]", 1),
                "needs config.json and",
            ),
            (
                good.replacen("size_bytes = 9_793_292", "size_bytes = 9_793", 1),
                "implausible",
            ),
            (
                good.replacen("repo = \"madebyollin/taesdxl\"", "repo = \"madebyollin/tiny-xl\"", 1),
                "does not name",
            ),
            (
                good.replacen(
                    "kind = \"preview-decoder\"\nfamily = \"sd1\"",
                    "kind = \"preview-decoder\"\nfamily = \"sdxl\"",
                    1,
                ),
                "does not name",
            ),
            (
                good.replacen("kind = \"preview-decoder\"", "kind = \"lora\"", 1),
                "unknown variant",
            ),
        ] {
            assert_ne!(bad, good, "the edit for `{says}` must apply");
            let err = Catalog::parse(&bad).unwrap_err().to_string();
            assert!(err.contains(says), "{says}: {err}");
        }
        // A pipeline without settings is refused; a decoder with them too.
        let block = "[models.recommended]\nsteps = 1\nsteps_range = [1, 4]\nguidance = 0.0\n# The repo's own EulerDiscreteScheduler with timestep_spacing = \"trailing\".\nsampler = \"default\"\nwidth = 512\nheight = 512\n";
        let no_settings = good.replacen(block, "", 1);
        assert_ne!(no_settings, good);
        let err = Catalog::parse(&no_settings).unwrap_err().to_string();
        assert!(err.contains("needs its recommended settings"), "{err}");
        let with = format!(
            "{good}\n[models.recommended]\nsteps = 1\nsteps_range = [1, 4]\nguidance = 0.0\nsampler = \"default\"\nwidth = 512\nheight = 512\n"
        );
        assert!(
            Catalog::parse(&with)
                .unwrap_err()
                .to_string()
                .contains("no recommended")
        );
    }

    #[test]
    fn validation_rejects_pickles_root_checkpoints_and_missing_components() {
        let good = BUILTIN;
        let bad_pickle = good.replace(
            "\"unet/diffusion_pytorch_model.fp16.safetensors\",\n    \"vae/config.json\",\n    \"vae/diffusion_pytorch_model.fp16.safetensors\",\n]\n\n[models.recommended]\nsteps = 1\nsteps_range = [1, 4]\nguidance = 0.0\n# The repo's own EulerDiscrete",
            "\"unet/diffusion_pytorch_model.fp16.bin\",\n    \"vae/config.json\",\n    \"vae/diffusion_pytorch_model.fp16.safetensors\",\n]\n\n[models.recommended]\nsteps = 1\nsteps_range = [1, 4]\nguidance = 0.0\n# The repo's own EulerDiscrete",
        );
        assert_ne!(bad_pickle, good, "test edit must apply");
        let err = Catalog::parse(&bad_pickle).unwrap_err().to_string();
        assert!(err.contains("pickle"), "{err}");

        let root_ckpt = good.replacen(
            "\"model_index.json\",",
            "\"model_index.json\",\n    \"sd_turbo.safetensors\",",
            1,
        );
        let err = Catalog::parse(&root_ckpt).unwrap_err().to_string();
        assert!(err.contains("single-file"), "{err}");

        let no_vae = good.replacen("    \"vae/diffusion_pytorch_model.fp16.safetensors\",\n", "", 1);
        let err = Catalog::parse(&no_vae).unwrap_err().to_string();
        assert!(err.contains("component `vae`"), "{err}");

        let safety = good.replacen(
            "\"model_index.json\",",
            "\"model_index.json\",\n    \"safety_checker/model.safetensors\",",
            1,
        );
        assert!(Catalog::parse(&safety).is_err());

        let bad_sampler = good.replacen("sampler = \"default\"", "sampler = \"magic\"", 1);
        assert!(Catalog::parse(&bad_sampler).unwrap_err().to_string().contains("magic"));

        let turbo_cfg = good.replacen("guidance = 0.0", "guidance = 7.0", 1);
        assert!(Catalog::parse(&turbo_cfg).is_err());
    }
}
