//! Colour themes: a [`ThemeFile`] (TOML, every entry optional) resolves into a [`Theme`] of
//! ready `Style`s with semantic methods (`theme.row(selected)`, `theme.status(job)`,
//! `theme.danger()`), so views never pick raw colours. The shipped themes (`themes/*.toml`)
//! are compiled in; a user file of the same name in `<config dir>/themes/` is laid over the
//! shipped one, a new name over `default`. Colours are downgraded to the terminal's depth
//! ([`ColorDepth`]). No file I/O here except [`load`], which the runtime calls; no statics.

use crate::engine::progress::Outcome;
use crate::model::JobStatus;
use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::path::Path;

/// The shipped themes: (name, TOML text).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "default",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/themes/default.toml")),
    ),
    (
        "light",
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/themes/light.toml")),
    ),
    (
        "high-contrast",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/themes/high-contrast.toml"
        )),
    ),
    (
        "monochrome",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/themes/monochrome.toml"
        )),
    ),
];

/// The theme `NO_COLOR` selects.
pub const MONOCHROME: &str = "monochrome";

#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error("theme '{name}': {reason}")]
    Invalid { name: String, reason: String },
    #[error(
        "no theme named '{0}' (shipped: default, light, high-contrast, monochrome; or add themes/{0}.toml beside the config file)"
    )]
    Unknown(String),
    #[error("cannot read theme file '{path}': {reason}")]
    Read { path: String, reason: String },
}

/// How many colours the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorDepth {
    TrueColor,
    Ansi256,
    Ansi16,
}

impl ColorDepth {
    /// From `COLORTERM` and `TERM` (injected lookup, so tests need not touch the process
    /// environment). `NO_COLOR` is not a depth: it selects the monochrome theme.
    pub fn detect(env: &dyn Fn(&str) -> Option<String>) -> Self {
        let colorterm = env("COLORTERM").unwrap_or_default().to_ascii_lowercase();
        if colorterm.contains("truecolor") || colorterm.contains("24bit") {
            return Self::TrueColor;
        }
        let term = env("TERM").unwrap_or_default().to_ascii_lowercase();
        if term.contains("direct") || term.contains("truecolor") {
            return Self::TrueColor;
        }
        if term.contains("256") {
            return Self::Ansi256;
        }
        Self::Ansi16
    }
}

/// Whether `NO_COLOR` asks for no colour (set and not empty, as no-color.org says).
pub fn no_color(env: &dyn Fn(&str) -> Option<String>) -> bool {
    env("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// One style entry of a theme file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StyleSpec {
    /// Foreground: `#rrggbb`, an ANSI name, an xterm index or `reset`.
    pub fg: Option<String>,
    /// Background, same forms.
    pub bg: Option<String>,
    /// `bold`, `dim`, `italic`, `underlined`, `reversed`, `crossed_out`.
    #[serde(default)]
    pub modifiers: Vec<String>,
}

macro_rules! theme_slots {
    ($($(#[$doc:meta])* $slot:ident),+ $(,)?) => {
        /// A theme file as written: every entry optional, laid over a base theme.
        #[derive(Debug, Clone, Default, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ThemeFile {
            $($(#[$doc])* pub $slot: Option<StyleSpec>,)+
        }

        /// A resolved theme: ready styles, passed by reference to every view.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Theme {
            pub name: String,
            $($(#[$doc])* pub $slot: Style,)+
        }

        impl Theme {
            /// `file` laid over `self`: entries the file sets replace the base's.
            fn overlay(&self, name: &str, file: &ThemeFile, depth: ColorDepth) -> Result<Theme, String> {
                Ok(Theme {
                    name: name.to_string(),
                    $($slot: match &file.$slot {
                        Some(spec) => resolve_spec(stringify!($slot), spec, depth)?,
                        None => self.$slot,
                    },)+
                })
            }

            fn blank() -> Theme {
                Theme { name: String::new(), $($slot: Style::default(),)+ }
            }

            /// Every style of the theme.
            pub fn all(&self) -> Vec<Style> {
                vec![$(self.$slot),+]
            }
        }

        impl ThemeFile {
            /// The entries this file leaves unset (a shipped theme must set them all).
            pub fn missing(&self) -> Vec<&'static str> {
                let mut out = Vec::new();
                $(if self.$slot.is_none() { out.push(stringify!($slot)); })+
                out
            }
        }
    };
}

theme_slots! {
    /// Plain text.
    text,
    /// Secondary text: ids, times, units.
    dim,
    /// Panel titles.
    title,
    border,
    /// The border of the focused panel or dialog.
    border_focus,
    /// The header bar.
    header,
    tab,
    tab_active,
    table_header,
    row_selected,
    /// Rows marked with space (dead letters).
    row_marked,
    /// Key names in the footer and help.
    key,
    hint,
    ok,
    warn,
    danger,
    info,
    accent,
    gauge,
    sparkline,
    /// Text inputs.
    input,
    /// The text cursor in inputs.
    cursor,
    /// The read-only badge.
    badge,
    toast_info,
    toast_warn,
    toast_error,
    /// Data older than two refresh intervals.
    stale,
    /// Form labels.
    label,
    /// Validation messages.
    invalid,
}

impl Theme {
    /// A shipped theme by name, at this depth.
    pub fn builtin(name: &str, depth: ColorDepth) -> Result<Theme, ThemeError> {
        let text = BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .ok_or_else(|| ThemeError::Unknown(name.to_string()))?;
        let file = parse(name, text)?;
        Theme::blank()
            .overlay(name, &file, depth)
            .map_err(|reason| ThemeError::Invalid {
                name: name.to_string(),
                reason,
            })
    }

    /// The default theme at true colour; never fails (the shipped file is tested).
    pub fn fallback() -> Theme {
        Theme::builtin("default", ColorDepth::TrueColor).unwrap_or_else(|_| Theme::blank())
    }

    /// Lays a user file over a base theme.
    pub fn with_file(
        &self,
        name: &str,
        text: &str,
        depth: ColorDepth,
    ) -> Result<Theme, ThemeError> {
        let file = parse(name, text)?;
        self.overlay(name, &file, depth)
            .map_err(|reason| ThemeError::Invalid {
                name: name.to_string(),
                reason,
            })
    }

    /// Whether any style sets a colour (false for monochrome).
    pub fn uses_color(&self) -> bool {
        self.all().iter().any(|s| {
            s.fg.is_some_and(|c| c != Color::Reset) || s.bg.is_some_and(|c| c != Color::Reset)
        })
    }

    /// A table row: selected, marked, or plain.
    pub fn row(&self, selected: bool) -> Style {
        if selected {
            self.row_selected
        } else {
            self.text
        }
    }

    pub fn danger(&self) -> Style {
        self.danger
    }

    /// A panel border.
    pub fn block(&self, focused: bool) -> Style {
        if focused {
            self.border_focus
        } else {
            self.border
        }
    }

    /// A job status.
    pub fn status(&self, status: JobStatus) -> Style {
        match status {
            JobStatus::Completed => self.ok,
            JobStatus::Error => self.danger,
            JobStatus::InProgress => self.info,
            JobStatus::Canceling | JobStatus::Suspended => self.warn,
            JobStatus::Canceled | JobStatus::Pending => self.dim,
        }
    }

    /// A connector status (`connected`, `error`, ...).
    pub fn connector_status(&self, status: crate::model::ConnectorStatus) -> Style {
        use crate::model::ConnectorStatus::*;
        match status {
            Connected => self.ok,
            Error => self.danger,
            Configured => self.info,
            NeedsConfiguration | Created => self.warn,
        }
    }

    /// Cluster health (`green`, `yellow`, `red`).
    pub fn health(&self, health: &str) -> Style {
        match health {
            "green" | "available" => self.ok,
            "yellow" | "degraded" => self.warn,
            "red" | "unavailable" | "critical" => self.danger,
            _ => self.dim,
        }
    }

    /// A breaker state (`closed`, `half_open`, `open`).
    pub fn breaker(&self, state: &str) -> Style {
        match state {
            "closed" => self.ok,
            "half_open" => self.warn,
            "open" => self.danger,
            _ => self.dim,
        }
    }

    /// What happened to one document.
    pub fn outcome(&self, outcome: Outcome) -> Style {
        match outcome {
            Outcome::Indexed => self.ok,
            Outcome::Updated => self.info,
            Outcome::Deleted => self.accent,
            Outcome::Retried => self.warn,
            Outcome::DeadLettered => self.danger,
            Outcome::Skipped => self.dim,
        }
    }
}

fn parse(name: &str, text: &str) -> Result<ThemeFile, ThemeError> {
    toml::from_str(text).map_err(|e| ThemeError::Invalid {
        name: name.to_string(),
        reason: e.to_string(),
    })
}

fn resolve_spec(slot: &str, spec: &StyleSpec, depth: ColorDepth) -> Result<Style, String> {
    let mut style = Style::default();
    if let Some(fg) = &spec.fg {
        style = style.fg(downgrade(
            parse_color(fg).ok_or_else(|| format!("{slot}.fg: '{fg}' is not a colour"))?,
            depth,
        ));
    }
    if let Some(bg) = &spec.bg {
        style = style.bg(downgrade(
            parse_color(bg).ok_or_else(|| format!("{slot}.bg: '{bg}' is not a colour"))?,
            depth,
        ));
    }
    for m in &spec.modifiers {
        style = style.add_modifier(
            parse_modifier(m)
                .ok_or_else(|| format!("{slot}.modifiers: '{m}' is not a modifier"))?,
        );
    }
    Ok(style)
}

fn parse_modifier(text: &str) -> Option<Modifier> {
    Some(match text.to_ascii_lowercase().as_str() {
        "bold" => Modifier::BOLD,
        "dim" => Modifier::DIM,
        "italic" => Modifier::ITALIC,
        "underlined" | "underline" => Modifier::UNDERLINED,
        "reversed" | "reverse" => Modifier::REVERSED,
        "crossed_out" => Modifier::CROSSED_OUT,
        _ => return None,
    })
}

/// `#rrggbb`, an ANSI name, an index `0`..`255`, or `reset`.
pub fn parse_color(text: &str) -> Option<Color> {
    let t = text.trim().to_ascii_lowercase();
    if let Some(hex) = t.strip_prefix('#') {
        if hex.len() != 6 {
            return None;
        }
        let v = u32::from_str_radix(hex, 16).ok()?;
        return Some(Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8));
    }
    if let Ok(i) = t.parse::<u8>() {
        return Some(Color::Indexed(i));
    }
    Some(match t.as_str() {
        "reset" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        "darkgray" | "darkgrey" => Color::DarkGray,
        "lightred" => Color::LightRed,
        "lightgreen" => Color::LightGreen,
        "lightyellow" => Color::LightYellow,
        "lightblue" => Color::LightBlue,
        "lightmagenta" => Color::LightMagenta,
        "lightcyan" => Color::LightCyan,
        "white" => Color::White,
        _ => return None,
    })
}

/// A colour the terminal can show: true colour kept, otherwise the nearest xterm-256 or
/// ANSI-16 colour.
pub fn downgrade(color: Color, depth: ColorDepth) -> Color {
    let Color::Rgb(r, g, b) = color else {
        if let (Color::Indexed(i), ColorDepth::Ansi16) = (color, depth) {
            let (r, g, b) = xterm_rgb(i);
            return nearest_ansi16(r, g, b);
        }
        return color;
    };
    match depth {
        ColorDepth::TrueColor => color,
        ColorDepth::Ansi256 => Color::Indexed(nearest_xterm256(r, g, b)),
        ColorDepth::Ansi16 => nearest_ansi16(r, g, b),
    }
}

const CUBE: [u8; 6] = [0, 95, 135, 175, 215, 255];

fn dist(a: (u8, u8, u8), b: (u8, u8, u8)) -> u32 {
    let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).unsigned_abs();
    // Weighted like the eye: green counts most.
    let (dr, dg, db) = (d(a.0, b.0), d(a.1, b.1), d(a.2, b.2));
    3 * dr * dr + 4 * dg * dg + 2 * db * db
}

fn xterm_rgb(i: u8) -> (u8, u8, u8) {
    match i {
        0..=15 => ANSI16[i as usize].1,
        16..=231 => {
            let i = i - 16;
            (
                CUBE[(i / 36) as usize],
                CUBE[((i / 6) % 6) as usize],
                CUBE[(i % 6) as usize],
            )
        }
        _ => {
            let v = 8 + (i - 232) * 10;
            (v, v, v)
        }
    }
}

fn nearest_xterm256(r: u8, g: u8, b: u8) -> u8 {
    // Only the cube and the grey ramp: indexes 0-15 are redefined by many terminal themes.
    (16..=255u8)
        .min_by_key(|i| dist((r, g, b), xterm_rgb(*i)))
        .unwrap_or(16)
}

const ANSI16: [(Color, (u8, u8, u8)); 16] = [
    (Color::Black, (0, 0, 0)),
    (Color::Red, (205, 49, 49)),
    (Color::Green, (13, 188, 121)),
    (Color::Yellow, (229, 229, 16)),
    (Color::Blue, (36, 114, 200)),
    (Color::Magenta, (188, 63, 188)),
    (Color::Cyan, (17, 168, 205)),
    (Color::Gray, (204, 204, 204)),
    (Color::DarkGray, (118, 118, 118)),
    (Color::LightRed, (241, 76, 76)),
    (Color::LightGreen, (35, 209, 139)),
    (Color::LightYellow, (245, 245, 67)),
    (Color::LightBlue, (59, 142, 234)),
    (Color::LightMagenta, (214, 112, 214)),
    (Color::LightCyan, (41, 184, 219)),
    (Color::White, (255, 255, 255)),
];

fn nearest_ansi16(r: u8, g: u8, b: u8) -> Color {
    // A clearly coloured source keeps a hue: by distance alone a light blue lands on grey
    // (index 7), the grey text takes too, and a status vanished into the selection.
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    let chromatic = max >= 100 && u32::from(max - min) * 10 >= u32::from(max) * 3;
    let grey = |c: &Color| {
        matches!(
            c,
            Color::Black | Color::Gray | Color::DarkGray | Color::White
        )
    };
    ANSI16
        .iter()
        .filter(|(c, _)| !chromatic || !grey(c))
        .min_by_key(|(_, rgb)| dist((r, g, b), *rgb))
        .map(|(c, _)| *c)
        .unwrap_or(Color::Reset)
}

/// The colour a terminal draws for `color`: true colour as is, xterm-256 from its table,
/// the 16 ANSI colours from a common palette (terminals vary here). `None` for `Reset`, the
/// terminal's own default.
pub fn rgb(color: Color) -> Option<(u8, u8, u8)> {
    match color {
        Color::Reset => None,
        Color::Rgb(r, g, b) => Some((r, g, b)),
        Color::Indexed(i) => Some(xterm_rgb(i)),
        named => ANSI16
            .iter()
            .find(|(c, _)| *c == named)
            .map(|(_, rgb)| *rgb),
    }
}

/// The WCAG contrast ratio of two colours: 1 (the same) to 21 (black on white).
pub fn contrast(a: (u8, u8, u8), b: (u8, u8, u8)) -> f64 {
    fn channel(c: u8) -> f64 {
        let c = f64::from(c) / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    }
    let lum =
        |(r, g, b): (u8, u8, u8)| 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    let (hi, lo) = {
        let (x, y) = (lum(a), lum(b));
        if x > y { (x, y) } else { (y, x) }
    };
    (hi + 0.05) / (lo + 0.05)
}

/// The theme names on offer: the shipped ones, then user files in `dir` (`*.toml`).
pub fn available(dir: Option<&Path>) -> Vec<String> {
    let mut names: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
    if let Some(entries) = dir.and_then(|d| std::fs::read_dir(d).ok()) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml")
                && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
                && !names.iter().any(|n| n == stem)
            {
                names.push(stem.to_string());
            }
        }
    }
    names
}

/// Loads theme `name` at `depth`: the shipped one, with `<dir>/NAME.toml` laid over it (or
/// over `default` for a new name).
pub fn load(name: &str, dir: Option<&Path>, depth: ColorDepth) -> Result<Theme, ThemeError> {
    let user = dir
        .map(|d| d.join(format!("{name}.toml")))
        .filter(|p| p.is_file());
    let shipped = Theme::builtin(name, depth);
    let Some(path) = user else {
        return shipped;
    };
    let base = match shipped {
        Ok(theme) => theme,
        Err(_) => Theme::builtin("default", depth)?,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| ThemeError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    base.with_file(name, &text, depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_themes_parse_and_set_every_entry() {
        for (name, text) in BUILTIN {
            let file: ThemeFile = toml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                file.missing().is_empty(),
                "{name} leaves unset: {:?}",
                file.missing()
            );
            Theme::builtin(name, ColorDepth::TrueColor).unwrap();
        }
    }

    #[test]
    fn monochrome_has_no_colour_and_default_has() {
        assert!(
            !Theme::builtin("monochrome", ColorDepth::TrueColor)
                .unwrap()
                .uses_color()
        );
        assert!(
            Theme::builtin("default", ColorDepth::TrueColor)
                .unwrap()
                .uses_color()
        );
    }

    #[test]
    fn colours_downgrade_to_the_terminal_depth() {
        let t = Theme::builtin("default", ColorDepth::Ansi256).unwrap();
        assert!(matches!(t.danger.fg, Some(Color::Indexed(i)) if i >= 16));
        let t = Theme::builtin("default", ColorDepth::Ansi16).unwrap();
        for style in t.all() {
            for c in [style.fg, style.bg].into_iter().flatten() {
                assert!(
                    !matches!(c, Color::Rgb(..) | Color::Indexed(_)),
                    "{c:?} survived in 16 colours"
                );
            }
        }
        assert_eq!(
            downgrade(Color::Rgb(255, 0, 0), ColorDepth::Ansi256),
            Color::Indexed(196)
        );
        assert_eq!(
            downgrade(Color::Rgb(250, 250, 250), ColorDepth::Ansi16),
            Color::White
        );
        // A light blue stays a blue, not the grey that plain text also becomes.
        assert_eq!(
            downgrade(Color::Rgb(0x7d, 0xcf, 0xff), ColorDepth::Ansi16),
            Color::LightCyan
        );
        assert_eq!(
            downgrade(Color::Rgb(0x1a, 0x1b, 0x26), ColorDepth::Ansi16),
            Color::Black
        );
        assert_eq!(
            downgrade(Color::Rgb(1, 2, 3), ColorDepth::TrueColor),
            Color::Rgb(1, 2, 3)
        );
    }

    #[test]
    fn depth_detection() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            ColorDepth::detect(&env(&[("COLORTERM", "truecolor")])),
            ColorDepth::TrueColor
        );
        assert_eq!(
            ColorDepth::detect(&env(&[("TERM", "xterm-256color")])),
            ColorDepth::Ansi256
        );
        assert_eq!(
            ColorDepth::detect(&env(&[("TERM", "xterm")])),
            ColorDepth::Ansi16
        );
        assert!(no_color(&env(&[("NO_COLOR", "1")])));
        assert!(!no_color(&env(&[("NO_COLOR", "")])));
    }

    #[test]
    fn a_user_file_overrides_only_what_it_sets() {
        let base = Theme::builtin("default", ColorDepth::TrueColor).unwrap();
        let t = base
            .with_file(
                "mine",
                "danger = { fg = \"#010203\" }\n",
                ColorDepth::TrueColor,
            )
            .unwrap();
        assert_eq!(t.danger, Style::default().fg(Color::Rgb(1, 2, 3)));
        assert_eq!(t.ok, base.ok);
        let err = base
            .with_file("bad", "danger = { fg = \"nope\" }\n", ColorDepth::TrueColor)
            .unwrap_err();
        assert!(
            err.to_string().contains("'nope'") && err.to_string().contains("danger.fg"),
            "{err}"
        );
        assert!(
            base.with_file("bad", "dangr = {}\n", ColorDepth::TrueColor)
                .is_err()
        );
    }

    #[test]
    fn user_theme_files_are_found_and_laid_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("light.toml"), "ok = { fg = \"#000001\" }\n").unwrap();
        std::fs::write(dir.path().join("solar.toml"), "ok = { fg = \"#000002\" }\n").unwrap();
        let names = available(Some(dir.path()));
        assert!(
            names.contains(&"solar".to_string())
                && names.iter().filter(|n| *n == "light").count() == 1
        );
        let light = load("light", Some(dir.path()), ColorDepth::TrueColor).unwrap();
        assert_eq!(light.ok.fg, Some(Color::Rgb(0, 0, 1)));
        assert_eq!(
            light.text,
            Theme::builtin("light", ColorDepth::TrueColor).unwrap().text
        );
        let solar = load("solar", Some(dir.path()), ColorDepth::TrueColor).unwrap();
        assert_eq!(solar.text, Theme::fallback().text);
        assert!(matches!(
            load("nope", Some(dir.path()), ColorDepth::TrueColor),
            Err(ThemeError::Unknown(_))
        ));
    }
}
