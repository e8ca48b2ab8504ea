//! The sampler list as data: [`SAMPLERS`] holds one row per [`SamplerKind`] with every name
//! it goes by (command line, settings, AUTOMATIC1111, the GUI) and the diffusers class it
//! builds. Parsing, printing, serde, the GUI's combo and [`super::build`] all read this
//! table, so none of them lists the samplers again.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, EnumAccess, Unexpected, VariantAccess, Visitor};
use serde::{Serialize, Serializer};

use super::common::Constructor;
use super::config::{SamplerClass, SchedulerConfig};
use super::{ddim, dpmpp_2m, euler, euler_ancestral, heun, lms, pndm, unipc};

/// The sampler names `lantern generate --scheduler` accepts.
///
/// Each variant has the row of [`SAMPLERS`] at its own position (checked at compile time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SamplerKind {
    /// The model folder's own `scheduler/scheduler_config.json`.
    Default,
    Ddim,
    Pndm,
    Euler,
    EulerA,
    DpmPp2m,
    DpmPp2mKarras,
    Unipc,
    Lms,
    Heun,
}

/// Everything Lantern knows about one sampler choice.
#[derive(Debug)]
pub struct SamplerInfo {
    pub kind: SamplerKind,
    /// The `--scheduler` name, also what settings, history and serde write.
    pub cli_name: &'static str,
    /// The `Sampler` AUTOMATIC1111 writes in a PNG's `parameters`.
    pub a1111_sampler: &'static str,
    /// Its `Schedule type` there.
    pub a1111_schedule: &'static str,
    /// Other spellings of `a1111_sampler` read back (any case).
    pub a1111_aliases: &'static [&'static str],
    /// What the GUI's sampler combo shows.
    pub label: &'static str,
    /// The diffusers class an explicit choice builds; `None` builds the folder's own.
    pub class: Option<&'static ClassInfo>,
    /// Forces the class's `use_karras_sigmas` on. A built scheduler reports the row of its
    /// class whose flag matches its config, so a folder that already uses Karras sigmas with
    /// DPM-Solver reads back as `dpmpp-2m-karras`.
    pub karras: bool,
    /// Whether the same inputs always give the same image (no fresh noise per step).
    pub deterministic: bool,
}

/// One diffusers scheduler class: what `from_config` takes from a file and how to build it.
/// Each sampler file defines its class's as `CLASS`.
pub struct ClassInfo {
    pub class: SamplerClass,
    /// The `_class_name` diffusers writes.
    pub name: &'static str,
    /// The parameters of the class's `__init__` in diffusers 0.42 besides the ones every class
    /// takes ([`super::config::COMMON_INIT_KEYS`]): the keys `from_config` carries over.
    pub init_keys: &'static [&'static str],
    /// Sets the class's own `__init__` defaults where they differ from the common ones of
    /// [`SchedulerConfig::defaults`].
    pub defaults: fn(&mut SchedulerConfig),
    pub(crate) build: Constructor,
}

impl fmt::Debug for ClassInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

const AUTOMATIC: &str = "Automatic";

/// The samplers, in [`SamplerKind`]'s order: the order the GUI lists them in.
pub const SAMPLERS: &[SamplerInfo] = &[
    SamplerInfo {
        kind: SamplerKind::Default,
        cli_name: "default",
        a1111_sampler: "Default",
        a1111_schedule: AUTOMATIC,
        a1111_aliases: &[],
        label: "Model default",
        class: None,
        karras: false,
        deterministic: true,
    },
    SamplerInfo {
        kind: SamplerKind::Ddim,
        cli_name: "ddim",
        a1111_sampler: "DDIM",
        a1111_schedule: AUTOMATIC,
        a1111_aliases: &[],
        label: "DDIM",
        class: Some(&ddim::CLASS),
        karras: false,
        deterministic: true,
    },
    SamplerInfo {
        kind: SamplerKind::Pndm,
        cli_name: "pndm",
        a1111_sampler: "PLMS",
        a1111_schedule: AUTOMATIC,
        a1111_aliases: &["pndm"],
        label: "PLMS",
        class: Some(&pndm::CLASS),
        karras: false,
        deterministic: true,
    },
    SamplerInfo {
        kind: SamplerKind::Euler,
        cli_name: "euler",
        a1111_sampler: "Euler",
        a1111_schedule: AUTOMATIC,
        a1111_aliases: &[],
        label: "Euler",
        class: Some(&euler::CLASS),
        karras: false,
        deterministic: true,
    },
    SamplerInfo {
        kind: SamplerKind::EulerA,
        cli_name: "euler-a",
        a1111_sampler: "Euler a",
        a1111_schedule: AUTOMATIC,
        a1111_aliases: &["euler_a", "euler ancestral"],
        label: "Euler a",
        class: Some(&euler_ancestral::CLASS),
        karras: false,
        deterministic: false,
    },
    SamplerInfo {
        kind: SamplerKind::DpmPp2m,
        cli_name: "dpmpp-2m",
        a1111_sampler: "DPM++ 2M",
        a1111_schedule: AUTOMATIC,
        a1111_aliases: &["dpmpp_2m", "dpmpp-2m"],
        label: "DPM++ 2M",
        class: Some(&dpmpp_2m::CLASS),
        karras: false,
        deterministic: true,
    },
    SamplerInfo {
        kind: SamplerKind::DpmPp2mKarras,
        cli_name: "dpmpp-2m-karras",
        a1111_sampler: "DPM++ 2M",
        a1111_schedule: "Karras",
        a1111_aliases: &[],
        label: "DPM++ 2M Karras",
        class: Some(&dpmpp_2m::CLASS),
        karras: true,
        deterministic: true,
    },
    SamplerInfo {
        kind: SamplerKind::Unipc,
        cli_name: "unipc",
        a1111_sampler: "UniPC",
        a1111_schedule: AUTOMATIC,
        a1111_aliases: &[],
        label: "UniPC",
        class: Some(&unipc::CLASS),
        karras: false,
        deterministic: true,
    },
    SamplerInfo {
        kind: SamplerKind::Lms,
        cli_name: "lms",
        a1111_sampler: "LMS",
        a1111_schedule: AUTOMATIC,
        a1111_aliases: &[],
        label: "LMS",
        class: Some(&lms::CLASS),
        karras: false,
        deterministic: true,
    },
    SamplerInfo {
        kind: SamplerKind::Heun,
        cli_name: "heun",
        a1111_sampler: "Heun",
        a1111_schedule: AUTOMATIC,
        a1111_aliases: &[],
        label: "Heun",
        class: Some(&heun::CLASS),
        karras: false,
        deterministic: true,
    },
];

// `SamplerKind::info` indexes the table by discriminant; a row out of place fails the build.
const _: () = {
    let mut i = 0;
    while i < SAMPLERS.len() {
        assert!(
            SAMPLERS[i].kind as usize == i,
            "SAMPLERS rows must follow SamplerKind's order"
        );
        i += 1;
    }
};

/// The cli names in table order: the variant names serde knows.
const CLI_NAMES: [&str; SAMPLERS.len()] = {
    let mut names = [""; SAMPLERS.len()];
    let mut i = 0;
    while i < SAMPLERS.len() {
        names[i] = SAMPLERS[i].cli_name;
        i += 1;
    }
    names
};

impl SamplerKind {
    /// Every sampler, in table order.
    pub const ALL: [SamplerKind; SAMPLERS.len()] = {
        let mut all = [SamplerKind::Default; SAMPLERS.len()];
        let mut i = 0;
        while i < SAMPLERS.len() {
            all[i] = SAMPLERS[i].kind;
            i += 1;
        }
        all
    };

    /// This sampler's row of [`SAMPLERS`].
    pub fn info(self) -> &'static SamplerInfo {
        SAMPLERS
            .get(self as usize)
            .expect("every SamplerKind variant has a row in SAMPLERS")
    }

    /// The name used on the command line and in settings.
    pub fn cli_name(self) -> &'static str {
        self.info().cli_name
    }

    /// Reads a cli name, forgiving case, surrounding spaces and `_` for `-`.
    pub fn from_cli_name(name: &str) -> Option<SamplerKind> {
        let name = name.trim().to_ascii_lowercase().replace('_', "-");
        SAMPLERS.iter().find(|s| s.cli_name == name).map(|s| s.kind)
    }

    /// Whether the same inputs always give the same image (no fresh noise per step).
    pub fn is_deterministic(self) -> bool {
        self.info().deterministic
    }

    /// What the GUI calls this sampler.
    pub fn label(self) -> &'static str {
        self.info().label
    }

    /// (sampler, schedule type) as AUTOMATIC1111 writes them in a PNG's `parameters`.
    pub fn a1111_names(self) -> (&'static str, &'static str) {
        let info = self.info();
        (info.a1111_sampler, info.a1111_schedule)
    }

    /// Reads AUTOMATIC1111's sampler names back, including the old combined form
    /// ("DPM++ 2M Karras") and the newer separate `Schedule type` field.
    pub fn from_a1111(sampler: &str, schedule_type: Option<&str>) -> Option<SamplerKind> {
        let s = sampler.trim();
        let (base, karras_in_name) = match s.strip_suffix(" Karras") {
            Some(b) => (b.trim(), true),
            None => (s, false),
        };
        let karras = karras_in_name || schedule_type.is_some_and(|t| t.trim().eq_ignore_ascii_case("karras"));
        let family = SAMPLERS.iter().find(|s| {
            s.a1111_sampler.eq_ignore_ascii_case(base) || s.a1111_aliases.iter().any(|a| a.eq_ignore_ascii_case(base))
        });
        match family {
            Some(f) => pick(SAMPLERS.iter().filter(|s| s.a1111_sampler == f.a1111_sampler), karras),
            None => SamplerKind::from_cli_name(base),
        }
    }

    /// The sampler a scheduler built with `cfg` implements (for `default`, the folder's own
    /// class; a Karras Euler is still `euler`, having no row of its own).
    pub(crate) fn of_config(cfg: &SchedulerConfig) -> SamplerKind {
        let rows = SAMPLERS
            .iter()
            .filter(|s| s.class.is_some_and(|c| c.class == cfg.class));
        pick(rows, cfg.use_karras_sigmas).expect("every SamplerClass is the class of a row in SAMPLERS")
    }
}

/// Of `rows` (one sampler family), the one whose Karras flag is `karras`, else the first.
fn pick<'a>(rows: impl Iterator<Item = &'a SamplerInfo> + Clone, karras: bool) -> Option<SamplerKind> {
    rows.clone()
        .find(|s| s.karras == karras)
        .or(rows.clone().next())
        .map(|s| s.kind)
}

/// The diffusers classes of the table, each once, in table order.
pub(crate) fn classes() -> impl Iterator<Item = &'static ClassInfo> {
    SAMPLERS.iter().enumerate().filter_map(|(i, s)| {
        s.class.filter(|c| {
            !SAMPLERS[..i]
                .iter()
                .any(|p| p.class.is_some_and(|q| q.class == c.class))
        })
    })
}

impl fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cli_name())
    }
}

impl std::str::FromStr for SamplerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SamplerKind::from_cli_name(s)
            .ok_or_else(|| format!("unknown scheduler `{s}`; choose one of: {}", CLI_NAMES.join(", ")))
    }
}

// serde: a unit variant per row, named by its cli name — what `#[derive]` with kebab-case
// names wrote before the table, so settings.json and history files read the same.

impl Serialize for SamplerKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit_variant("SamplerKind", *self as u32, self.cli_name())
    }
}

impl<'de> Deserialize<'de> for SamplerKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_enum("SamplerKind", &CLI_NAMES, KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = SamplerKind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("enum SamplerKind")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<SamplerKind, A::Error> {
        let (VariantName(kind), variant) = data.variant()?;
        variant.unit_variant()?;
        Ok(kind)
    }
}

/// A variant identifier: its cli name, or its index as non-self-describing formats write it.
struct VariantName(SamplerKind);

impl<'de> Deserialize<'de> for VariantName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(VariantNameVisitor)
    }
}

struct VariantNameVisitor;

impl VariantNameVisitor {
    fn by_name<E: de::Error>(name: &str) -> Result<VariantName, E> {
        SAMPLERS
            .iter()
            .find(|s| s.cli_name == name)
            .map(|s| VariantName(s.kind))
            .ok_or_else(|| E::unknown_variant(name, &CLI_NAMES))
    }
}

impl Visitor<'_> for VariantNameVisitor {
    type Value = VariantName;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("variant identifier")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<VariantName, E> {
        let expected = format!("variant index 0 <= i < {}", SAMPLERS.len());
        usize::try_from(v)
            .ok()
            .and_then(|i| SAMPLERS.get(i))
            .map(|s| VariantName(s.kind))
            .ok_or_else(|| E::invalid_value(Unexpected::Unsigned(v), &expected.as_str()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<VariantName, E> {
        Self::by_name(v)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<VariantName, E> {
        Self::by_name(&String::from_utf8_lossy(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names settings.json, history and PNGs already hold; they must never change.
    const WRITTEN: [(SamplerKind, &str, &str, &str, &str); 10] = [
        (SamplerKind::Default, "default", "Default", "Automatic", "Model default"),
        (SamplerKind::Ddim, "ddim", "DDIM", "Automatic", "DDIM"),
        (SamplerKind::Pndm, "pndm", "PLMS", "Automatic", "PLMS"),
        (SamplerKind::Euler, "euler", "Euler", "Automatic", "Euler"),
        (SamplerKind::EulerA, "euler-a", "Euler a", "Automatic", "Euler a"),
        (SamplerKind::DpmPp2m, "dpmpp-2m", "DPM++ 2M", "Automatic", "DPM++ 2M"),
        (
            SamplerKind::DpmPp2mKarras,
            "dpmpp-2m-karras",
            "DPM++ 2M",
            "Karras",
            "DPM++ 2M Karras",
        ),
        (SamplerKind::Unipc, "unipc", "UniPC", "Automatic", "UniPC"),
        (SamplerKind::Lms, "lms", "LMS", "Automatic", "LMS"),
        (SamplerKind::Heun, "heun", "Heun", "Automatic", "Heun"),
    ];

    #[test]
    fn names_are_the_ones_already_written() {
        assert_eq!(SamplerKind::ALL.len(), WRITTEN.len());
        for (i, (kind, cli, sampler, schedule, label)) in WRITTEN.into_iter().enumerate() {
            assert_eq!(SamplerKind::ALL[i], kind);
            assert_eq!(kind.cli_name(), cli);
            assert_eq!(kind.to_string(), cli);
            assert_eq!(kind.a1111_names(), (sampler, schedule));
            assert_eq!(kind.label(), label);
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{cli}\""));
            assert_eq!(
                serde_json::from_str::<SamplerKind>(&format!("\"{cli}\"")).unwrap(),
                kind
            );
            assert_eq!(cli.parse::<SamplerKind>(), Ok(kind));
            assert_eq!(SamplerKind::from_a1111(sampler, Some(schedule)), Some(kind));
        }
    }

    #[test]
    fn serde_is_strict_and_parsing_forgiving() {
        let err = serde_json::from_str::<SamplerKind>("\"Euler-A\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("unknown variant `Euler-A`, expected one of `default`, `ddim`"),
            "{err}"
        );
        assert_eq!(" Euler_A ".parse::<SamplerKind>(), Ok(SamplerKind::EulerA));
        let err = "bogus".parse::<SamplerKind>().unwrap_err();
        assert_eq!(
            err,
            "unknown scheduler `bogus`; choose one of: default, ddim, pndm, euler, euler-a, dpmpp-2m, \
             dpmpp-2m-karras, unipc, lms, heun"
        );
    }

    #[test]
    fn a1111_spellings_read_back() {
        let cases = [
            ("DPM++ 2M Karras", None, SamplerKind::DpmPp2mKarras),
            ("dpmpp_2m", Some("karras"), SamplerKind::DpmPp2mKarras),
            ("dpmpp-2m", None, SamplerKind::DpmPp2m),
            ("dpmpp-2m-karras", None, SamplerKind::DpmPp2mKarras),
            ("Euler Karras", None, SamplerKind::Euler),
            ("DDIM", Some("Karras"), SamplerKind::Ddim),
            ("euler ancestral", None, SamplerKind::EulerA),
            ("euler_a", None, SamplerKind::EulerA),
            ("pndm", None, SamplerKind::Pndm),
            (" heun ", None, SamplerKind::Heun),
            ("lms", Some("Automatic"), SamplerKind::Lms),
        ];
        for (sampler, schedule, kind) in cases {
            assert_eq!(
                SamplerKind::from_a1111(sampler, schedule),
                Some(kind),
                "{sampler} {schedule:?}"
            );
        }
        assert_eq!(SamplerKind::from_a1111("DPM++ SDE", Some("Karras")), None);
    }

    #[test]
    fn each_class_is_listed_once() {
        let names: Vec<_> = classes().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "DDIMScheduler",
                "PNDMScheduler",
                "EulerDiscreteScheduler",
                "EulerAncestralDiscreteScheduler",
                "DPMSolverMultistepScheduler",
                "UniPCMultistepScheduler",
                "LMSDiscreteScheduler",
                "HeunDiscreteScheduler",
            ]
        );
    }
}
