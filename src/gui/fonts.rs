//! Fonts: egui's defaults have no CJK glyphs, so a Chinese prompt would show as boxes. We add
//! a system CJK font (Noto Sans CJK from the `fonts-noto-cjk` package, or another common
//! one) as a fallback when one is installed.

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

/// Installs the first CJK font found as a fallback for every font family. Returns its path.
pub fn install_cjk_fallback(ctx: &egui::Context) -> Option<&'static str> {
    let path = CJK_CANDIDATES.iter().copied().find(|p| Path::new(p).is_file())?;
    let bytes = std::fs::read(path).ok()?;
    let mut fonts = egui::FontDefinitions::default();
    fonts
        .font_data
        .insert("cjk".to_owned(), Arc::new(egui::FontData::from_owned(bytes)));
    for family in [egui::FontFamily::Proportional, egui::FontFamily::Monospace] {
        fonts.families.entry(family).or_default().push("cjk".to_owned());
    }
    ctx.set_fonts(fonts);
    tracing::info!("CJK font fallback: {path}");
    Some(path)
}
