//! Fonts: egui's defaults have no CJK glyphs, so a Chinese prompt would show as boxes, and
//! their emoji set stops around Unicode 8 (🦊 is missing). We add a system CJK font (Noto Sans
//! CJK from the `fonts-noto-cjk` package, or another common one) and a symbol font (Symbola
//! from `fonts-symbola`, Segoe UI Symbol, Apple Symbols) as fallbacks when installed.

use std::path::Path;
use std::sync::Arc;

const CJK_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/Hiragino Sans GB.ttc",
    "C:\\Windows\\Fonts\\msyh.ttc",
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

/// Installs the first CJK font and the first symbol font found as fallbacks (after egui's own
/// fonts) for every font family. Returns the paths used.
pub fn install_fallbacks(ctx: &egui::Context) -> Vec<&'static str> {
    let mut fonts = egui::FontDefinitions::default();
    let mut used = Vec::new();
    for (name, candidates) in [("cjk", CJK_CANDIDATES), ("symbols", SYMBOL_CANDIDATES)] {
        let Some(path) = candidates.iter().copied().find(|p| Path::new(p).is_file()) else {
            continue;
        };
        let Ok(bytes) = std::fs::read(path) else { continue };
        fonts
            .font_data
            .insert(name.to_owned(), Arc::new(egui::FontData::from_owned(bytes)));
        for family in [egui::FontFamily::Proportional, egui::FontFamily::Monospace] {
            fonts.families.entry(family).or_default().push(name.to_owned());
        }
        tracing::info!("font fallback ({name}): {path}");
        used.push(path);
    }
    if !used.is_empty() {
        ctx.set_fonts(fonts);
    }
    used
}
