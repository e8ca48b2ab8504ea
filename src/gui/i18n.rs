//! The window's words, in the user's language: one Fluent catalog per language
//! (`assets/i18n/<code>.ftl`), English and Simplified Chinese built in, any other language
//! added by dropping `<code>.ftl` into the data folder's `locales/` (missing messages fall back
//! to English).
//!
//! Panels write `t!("message-id")` or `t!("message-id", name = value)`. The catalog in use is
//! set for the UI thread at the start of every frame, so switching language takes effect on
//! the next frame, and parallel test windows (each on its own thread) never see each other's.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

pub use fluent_bundle::FluentArgs;
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// The built-in catalogs: (code, Fluent source).
pub const BUILT_IN: &[(&str, &str)] = &[
    ("en", include_str!("../../assets/i18n/en.ftl")),
    ("zh-CN", include_str!("../../assets/i18n/zh-CN.ftl")),
];

/// The language everything falls back to.
pub const FALLBACK: &str = "en";

/// One language's messages.
pub struct Catalog {
    code: String,
    bundle: FluentBundle<FluentResource>,
    /// English, for messages this catalog lacks (a partial drop-in translation).
    fallback: Option<Arc<Catalog>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Catalog({})", self.code)
    }
}

/// A language the user can pick.
#[derive(Clone, Debug, PartialEq)]
pub struct Language {
    pub code: String,
    /// Its name in itself ("English", "简体中文"), from the catalog's `language-name`.
    pub name: String,
    source: String,
}

impl Catalog {
    /// Parses `source` as the catalog for `code`; messages that fail to parse are skipped
    /// (and logged), the rest still work.
    pub fn parse(code: &str, source: &str, fallback: Option<Arc<Catalog>>) -> Catalog {
        let resource = match FluentResource::try_new(source.to_owned()) {
            Ok(r) => r,
            Err((r, errors)) => {
                tracing::warn!("{code}: {} unreadable message(s) in the catalog", errors.len());
                r
            }
        };
        let langid: LanguageIdentifier = code.parse().unwrap_or_default();
        let mut bundle = FluentBundle::new_concurrent(vec![langid]);
        // Fluent wraps arguments in Unicode isolation marks by default; egui draws them as
        // boxes, and our strings do not mix writing directions.
        bundle.set_use_isolating(false);
        if let Err(errors) = bundle.add_resource(resource) {
            tracing::warn!("{code}: {} duplicate message(s) in the catalog", errors.len());
        }
        Catalog {
            code: code.to_owned(),
            bundle,
            fallback,
        }
    }

    /// English, the built-in fallback.
    pub fn english() -> Arc<Catalog> {
        Arc::new(Catalog::parse(FALLBACK, BUILT_IN[0].1, None))
    }

    /// The catalog for `language`, falling back to English for what it lacks.
    pub fn for_language(language: &Language) -> Arc<Catalog> {
        if language.code == FALLBACK {
            return Catalog::english();
        }
        Arc::new(Catalog::parse(
            &language.code,
            &language.source,
            Some(Catalog::english()),
        ))
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    /// Whether this catalog itself (not its fallback) has `id`.
    pub fn has(&self, id: &str) -> bool {
        self.bundle.has_message(id)
    }

    /// The message `id` with `args`; English if this language lacks it, the id itself if
    /// English does too (so a missing message is visible, never a blank).
    pub fn format(&self, id: &str, args: Option<&FluentArgs>) -> String {
        let Some(pattern) = self.bundle.get_message(id).and_then(|m| m.value()) else {
            return match &self.fallback {
                Some(fallback) => fallback.format(id, args),
                None => id.to_owned(),
            };
        };
        let mut errors = Vec::new();
        let text = self.bundle.format_pattern(pattern, args, &mut errors).into_owned();
        if !errors.is_empty() {
            tracing::debug!("{}: message {id}: {errors:?}", self.code);
        }
        text
    }
}

/// The message ids a Fluent source defines (terms, `-like-this`, excluded).
pub fn message_ids(source: &str) -> Vec<String> {
    let resource = FluentResource::try_new(source.to_owned()).unwrap_or_else(|(r, _)| r);
    resource
        .entries()
        .filter_map(|entry| match entry {
            fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_string()),
            _ => None,
        })
        .collect()
}

/// The built-in languages plus `<code>.ftl` files in `locales_dir` (a drop-in with the code
/// of a built-in one replaces it).
pub fn available_languages(locales_dir: Option<&Path>) -> Vec<Language> {
    let mut languages: Vec<Language> = BUILT_IN.iter().map(|(code, source)| language(code, source)).collect();
    let Some(dir) = locales_dir else {
        return languages;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return languages;
    };
    let mut found: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ftl") && p.is_file())
        .collect();
    found.sort();
    for path in found {
        let Some(code) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if code.parse::<LanguageIdentifier>().is_err() {
            tracing::warn!("{}: not a language code; ignored", path.display());
            continue;
        }
        // A catalog is text of a few KB; a huge file is not one.
        match std::fs::metadata(&path) {
            Ok(m) if m.len() <= 1 << 20 => {}
            _ => continue,
        }
        let Ok(source) = std::fs::read_to_string(&path) else {
            continue;
        };
        let lang = language(code, &source);
        match languages.iter_mut().find(|l| l.code == code) {
            Some(existing) => *existing = lang,
            None => languages.push(lang),
        }
    }
    languages
}

fn language(code: &str, source: &str) -> Language {
    let catalog = Catalog::parse(code, source, None);
    let name = if catalog.has("language-name") {
        catalog.format("language-name", None)
    } else {
        code.to_owned()
    };
    Language {
        code: code.to_owned(),
        name,
        source: source.to_owned(),
    }
}

/// The language to start in when the user has not chosen one: the OS locale's, if we have
/// it (any Chinese locale gets Simplified Chinese), else English.
pub fn language_for_locale(locale: Option<&str>, languages: &[Language]) -> String {
    let Some(locale) = locale else {
        return FALLBACK.to_owned();
    };
    // "zh_CN.UTF-8", "zh-Hans-CN", "de-DE" → "zh-CN", "zh-Hans-CN", "de-DE"
    let tag = locale.split(['.', '@']).next().unwrap_or("").replace('_', "-");
    if let Some(exact) = languages.iter().find(|l| l.code.eq_ignore_ascii_case(&tag)) {
        return exact.code.clone();
    }
    let primary = tag.split('-').next().unwrap_or("").to_ascii_lowercase();
    if primary == "zh" {
        return "zh-CN".to_owned();
    }
    languages
        .iter()
        .find(|l| {
            l.code
                .split('-')
                .next()
                .is_some_and(|p| p.eq_ignore_ascii_case(&primary))
        })
        .map(|l| l.code.clone())
        .unwrap_or_else(|| FALLBACK.to_owned())
}

/// The operating system's language setting (`LANG`/`LC_ALL` on Linux, the user's UI
/// language on Windows and macOS).
pub fn system_locale() -> Option<String> {
    sys_locale::get_locale()
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Catalog>>> = const { RefCell::new(None) };
}

/// Makes `catalog` the one `t!` uses on this thread.
pub fn set_current(catalog: Arc<Catalog>) {
    CURRENT.with(|c| *c.borrow_mut() = Some(catalog));
}

/// The catalog `t!` uses on this thread (English until one is set).
pub fn current() -> Arc<Catalog> {
    CURRENT.with(|c| c.borrow_mut().get_or_insert_with(Catalog::english).clone())
}

/// Formats message `id` in the current language (used by `t!`).
pub fn tr(id: &str, args: Option<&FluentArgs>) -> String {
    current().format(id, args)
}

/// Turns a Rust value into a Fluent argument (numbers stay numbers, for plural rules).
pub fn arg<'a>(v: impl Into<FluentValue<'a>>) -> FluentValue<'a> {
    v.into()
}

/// `t!("id")` or `t!("id", name = value, …)`: message `id` in the window's language.
#[macro_export]
macro_rules! t {
    ($id:literal) => {
        $crate::gui::i18n::tr($id, None)
    };
    ($id:literal, $($name:ident = $value:expr),+ $(,)?) => {{
        let mut args = $crate::gui::i18n::FluentArgs::new();
        $( args.set(stringify!($name), $crate::gui::i18n::arg($value)); )+
        $crate::gui::i18n::tr($id, Some(&args))
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_pick_a_language() {
        let langs = available_languages(None);
        let pick = |l: Option<&str>| language_for_locale(l, &langs);
        assert_eq!(pick(Some("zh_CN.UTF-8")), "zh-CN");
        assert_eq!(pick(Some("zh-Hans-CN")), "zh-CN");
        assert_eq!(pick(Some("zh_TW")), "zh-CN");
        assert_eq!(pick(Some("en_GB.UTF-8")), "en");
        assert_eq!(pick(Some("de_DE")), "en");
        assert_eq!(pick(Some("C")), "en");
        assert_eq!(pick(None), "en");
    }

    #[test]
    fn plurals_and_arguments_follow_the_language() {
        let en = Catalog::english();
        let lang = available_languages(None)
            .into_iter()
            .find(|l| l.code == "zh-CN")
            .unwrap();
        let zh = Catalog::for_language(&lang);
        let mut one = FluentArgs::new();
        one.set("count", 1);
        let mut many = FluentArgs::new();
        many.set("count", 3);
        assert_eq!(en.format("status-queued", Some(&one)), "· 1 job queued");
        assert_eq!(en.format("status-queued", Some(&many)), "· 3 jobs queued");
        assert!(zh.format("status-queued", Some(&many)).contains('3'));
        assert_ne!(zh.format("prompt-label", None), en.format("prompt-label", None));
        // No invisible isolation marks around arguments (egui would draw boxes).
        assert!(!en.format("status-queued", Some(&many)).contains('\u{2068}'));
    }

    #[test]
    fn a_dropped_in_language_is_listed_and_falls_back_to_english() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("de.ftl"),
            "language-name = Deutsch\nprompt-label = Eingabe\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("not a code!.ftl"), "x = y\n").unwrap();
        let langs = available_languages(Some(dir.path()));
        let de = langs.iter().find(|l| l.code == "de").expect("listed");
        assert_eq!(de.name, "Deutsch");
        assert_eq!(langs.len(), BUILT_IN.len() + 1);
        let catalog = Catalog::for_language(de);
        assert_eq!(catalog.format("prompt-label", None), "Eingabe");
        assert_eq!(catalog.format("negative-prompt-label", None), "Negative prompt");
        assert_eq!(catalog.format("no-such-message", None), "no-such-message");
        assert_eq!(language_for_locale(Some("de_AT.UTF-8"), &langs), "de");
    }

    /// Every `t!("id")` in the code, and the ids it builds (catalog descriptions).
    fn ids_used_by_the_code() -> std::collections::BTreeSet<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let call = regex::Regex::new(r#"(?:^|[^A-Za-z0-9_])t!\(\s*"([a-z0-9-]+)""#).unwrap();
        let mut used = std::collections::BTreeSet::new();
        let mut stack = vec![root.join("src")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("i18n.rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    used.extend(call.captures_iter(&text).map(|c| c[1].to_string()));
                }
            }
        }
        let models = std::fs::read_to_string(root.join("assets/models.toml")).unwrap();
        let catalog = crate::hub::catalog::Catalog::parse(&models).unwrap();
        used.extend(catalog.models.iter().map(|m| format!("catalog-{}-description", m.id)));
        used.insert("language-name".into());
        used
    }

    /// The `$variables` a message of `source` refers to.
    fn variables(source: &str, id: &str) -> std::collections::BTreeSet<String> {
        let var = regex::Regex::new(r"\$([a-z_]+)").unwrap();
        let mut lines = source.lines().skip_while(|l| !l.starts_with(&format!("{id} =")));
        let mut text = lines.next().unwrap_or_default().to_string();
        // Continuation lines are indented, or close a select expression (`}`).
        text.extend(
            lines
                .take_while(|l| l.starts_with(' ') || l.starts_with('}'))
                .map(|l| format!("\n{l}")),
        );
        var.captures_iter(&text).map(|c| c[1].to_string()).collect()
    }

    #[test]
    fn every_message_is_used_and_translated() {
        let used = ids_used_by_the_code();
        let (en_source, zh_source) = (BUILT_IN[0].1, BUILT_IN[1].1);
        let en: std::collections::BTreeSet<String> = message_ids(en_source).into_iter().collect();
        let zh: std::collections::BTreeSet<String> = message_ids(zh_source).into_iter().collect();
        let missing: Vec<_> = used.difference(&en).collect();
        assert!(missing.is_empty(), "used in the code but not in en.ftl: {missing:?}");
        let unused: Vec<_> = en.difference(&used).collect();
        assert!(unused.is_empty(), "in en.ftl but never used: {unused:?}");
        let untranslated: Vec<_> = en.difference(&zh).collect();
        assert!(untranslated.is_empty(), "missing from zh-CN.ftl: {untranslated:?}");
        let stray: Vec<_> = zh.difference(&en).collect();
        assert!(stray.is_empty(), "in zh-CN.ftl but not in en.ftl: {stray:?}");
        // A translation may leave out an argument, never invent one the code does not pass.
        for id in &en {
            let extra: Vec<_> = variables(zh_source, id)
                .difference(&variables(en_source, id))
                .cloned()
                .collect();
            assert!(
                extra.is_empty(),
                "{id}: zh-CN uses {extra:?}, which the code does not pass"
            );
        }
        // Both parse cleanly: no message lost to a syntax error.
        for (code, source) in BUILT_IN {
            assert!(
                FluentResource::try_new(source.to_string()).is_ok(),
                "{code}.ftl has syntax errors"
            );
        }
    }

    #[test]
    fn the_current_catalog_is_per_thread() {
        let lang = available_languages(None)
            .into_iter()
            .find(|l| l.code == "zh-CN")
            .unwrap();
        set_current(Catalog::for_language(&lang));
        assert_eq!(current().code(), "zh-CN");
        let other = std::thread::spawn(|| current().code().to_owned()).join().unwrap();
        assert_eq!(other, "en");
        set_current(Catalog::english());
    }
}
