//! Fonts: egui's defaults have no CJK glyphs, so a Chinese prompt would show as boxes, and
//! their emoji set stops around Unicode 8 (🦊 is missing). We add a system CJK font (Noto Sans
//! CJK from the `fonts-noto-cjk` package, or another common one) and a symbol font (Symbola
//! from `fonts-symbola`, Segoe UI Symbol, Apple Symbols) as fallbacks when installed.

use std::path::PathBuf;
use std::sync::Arc;

/// Fonts with Chinese characters, most common first: Linux packages (Noto CJK, WenQuanYi,
/// Droid), macOS (PingFang, Heiti, Songti, Arial Unicode), Windows (Microsoft YaHei, SimHei,
/// SimSun). On Linux, fontconfig is asked as a last resort.
const CJK_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-sans-cjk-fonts/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/wenquanyi/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Medium.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
    "/System/Library/Fonts/Hiragino Sans GB.ttc",
    "/System/Library/Fonts/Supplemental/Songti.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:\\Windows\\Fonts\\msyh.ttc",
    "C:\\Windows\\Fonts\\msyh.ttf",
    "C:\\Windows\\Fonts\\simhei.ttf",
    "C:\\Windows\\Fonts\\simsun.ttc",
];

/// Monochrome fonts with newer emoji and symbols (egui cannot draw colour emoji fonts).
const SYMBOL_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf",
    "/usr/share/fonts/TTF/Symbola.ttf",
    "/usr/share/fonts/gdouros-symbola/Symbola.ttf",
    "/System/Library/Fonts/Apple Symbols.ttf",
    "C:\\Windows\\Fonts\\seguisym.ttf",
];

/// The fallback fonts that were found and installed.
#[derive(Clone, Debug, Default)]
pub struct InstalledFonts {
    pub cjk: Option<PathBuf>,
    pub symbols: Option<PathBuf>,
}

/// The first CJK font on this system, if any.
pub fn find_cjk_font() -> Option<PathBuf> {
    CJK_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(fontconfig_cjk_font)
}

/// Asks fontconfig (Linux, BSD) for a font covering Simplified Chinese. egui reads TrueType
/// and OpenType files (and .ttc collections), not bitmap fonts.
fn fontconfig_cjk_font() -> Option<PathBuf> {
    if !cfg!(unix) || cfg!(target_os = "macos") {
        return None;
    }
    let out = std::process::Command::new("fc-match")
        .args(["-f", "%{file}", ":lang=zh-cn"])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    let usable = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["ttf", "otf", "ttc"].contains(&e.to_ascii_lowercase().as_str()));
    // fc-match always answers something; only a font that has the language counts.
    let covers = std::process::Command::new("fc-list")
        .args([":lang=zh-cn", "file"])
        .output()
        .ok()
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains(path.to_string_lossy().as_ref()));
    (usable && covers && path.is_file()).then_some(path)
}

/// Installs the first CJK font and the first symbol font found as fallbacks (after egui's own
/// fonts) for every font family.
pub fn install_fallbacks(ctx: &egui::Context) -> InstalledFonts {
    let mut fonts = egui::FontDefinitions::default();
    let mut installed = InstalledFonts::default();
    let symbols = SYMBOL_CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_file());
    for (name, path) in [("cjk", find_cjk_font()), ("symbols", symbols)] {
        let Some(path) = path else { continue };
        let Ok(bytes) = std::fs::read(&path) else { continue };
        fonts
            .font_data
            .insert(name.to_owned(), Arc::new(egui::FontData::from_owned(bytes)));
        for family in [egui::FontFamily::Proportional, egui::FontFamily::Monospace] {
            fonts.families.entry(family).or_default().push(name.to_owned());
        }
        tracing::info!("font fallback ({name}): {}", path.display());
        match name {
            "cjk" => installed.cjk = Some(path),
            _ => installed.symbols = Some(path),
        }
    }
    if installed.cjk.is_some() || installed.symbols.is_some() {
        ctx.set_fonts(fonts);
    } else {
        tracing::warn!("no CJK font found: Chinese text would show as boxes");
    }
    installed
}
