//! A LoRA's family from what its trainer wrote into the file, for files whose layer widths do
//! not tell (`discovery::describe_lora` reads those first: they cannot be wrong, and asks
//! this only when they say nothing). kohya's
//! scripts write `ss_base_model_version` (`sd_v1`, `sd_v2_768_v`, `sdxl_base_v1-0`, …) and the
//! model spec's `modelspec.architecture` (`stable-diffusion-xl-v1-base/lora`, …); A1111 reads
//! the same fields.

use std::collections::HashMap;

use super::BaseArch;

/// The family the metadata names, if it names one.
pub fn family_from_metadata(metadata: &HashMap<String, String>) -> Option<BaseArch> {
    if let Some(version) = metadata.get("ss_base_model_version") {
        let v = version.trim().to_ascii_lowercase();
        if v.starts_with("sdxl") {
            return Some(BaseArch::Sdxl);
        }
        if v.starts_with("sd_v2") {
            return Some(BaseArch::Sd2);
        }
        if v.starts_with("sd_v1") {
            return Some(BaseArch::Sd1);
        }
    }
    let arch = metadata.get("modelspec.architecture")?.to_ascii_lowercase();
    if arch.starts_with("stable-diffusion-xl") {
        Some(BaseArch::Sdxl)
    } else if arch.starts_with("stable-diffusion-v2") {
        Some(BaseArch::Sd2)
    } else if arch.starts_with("stable-diffusion-v1") {
        Some(BaseArch::Sd1)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn kohya_and_modelspec_names_are_read() {
        for (key, value, base) in [
            ("ss_base_model_version", "sd_v1", Some(BaseArch::Sd1)),
            ("ss_base_model_version", "sd_v2_768_v", Some(BaseArch::Sd2)),
            ("ss_base_model_version", "sdxl_base_v1-0", Some(BaseArch::Sdxl)),
            ("ss_base_model_version", "flux1", None),
            (
                "modelspec.architecture",
                "stable-diffusion-xl-v1-base/lora",
                Some(BaseArch::Sdxl),
            ),
            (
                "modelspec.architecture",
                "stable-diffusion-v1/lora",
                Some(BaseArch::Sd1),
            ),
            (
                "modelspec.architecture",
                "stable-diffusion-v2-768-v/lora",
                Some(BaseArch::Sd2),
            ),
        ] {
            assert_eq!(family_from_metadata(&meta(&[(key, value)])), base, "{key}: {value}");
        }
        assert_eq!(family_from_metadata(&meta(&[])), None);
    }
}
