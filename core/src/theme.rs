//! The theme file that `regstack theme design` writes (docs/pages.md, "Theme designer"): the
//! `--rs-*` custom properties it manages, the rules their values must follow, and the edit
//! of a stylesheet that changes only those properties in its top-level `:root` block and in
//! its `@media (prefers-color-scheme: dark)` block, leaving every other byte alone.

use std::collections::BTreeMap;
use std::ops::Range;

/// What a property holds, which decides the values it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `#rgb`, `#rrggbb`, `#rrggbbaa`, `rgb(r, g, b)` or `rgba(r, g, b, a)`.
    Colour,
    /// `N`, `Npx`, `Nrem` or `Nem` (a bare `N` is written as `Npx`).
    Length,
    /// A font stack of at most [`FONT_MAX`] characters.
    Font,
}

/// One managed property with its bundled defaults (`dark` is `None` where the dark scheme
/// inherits the light value).
#[derive(Clone, Copy, Debug)]
pub struct Var {
    /// `--rs-…`
    pub name: &'static str,
    /// What it holds.
    pub kind: Kind,
    /// The bundled light value (`templates/static/css/theme.css`).
    pub light: &'static str,
    /// The bundled dark value.
    pub dark: Option<&'static str>,
}

const STACK: &str = "-apple-system, BlinkMacSystemFont, \"Segoe UI\", \"Inter\", sans-serif";

/// The fifteen managed properties: every `--rs-*` of the bundled theme except `--rs-shadow`,
/// whose value is too free-form to check.
pub const VARS: &[Var] = &[
    colour("--rs-bg", "#ffffff", "#0b1220"),
    colour("--rs-bg-hover", "#f3f4f6", "#14213a"),
    colour("--rs-surface", "#ffffff", "#111a30"),
    colour("--rs-fg", "#111827", "#e5e7eb"),
    colour("--rs-fg-muted", "#4b5563", "#9ca3af"),
    colour("--rs-border", "#e5e7eb", "#1f2a44"),
    colour("--rs-accent", "#2563eb", "#60a5fa"),
    colour("--rs-accent-fg", "#ffffff", "#0b1220"),
    colour("--rs-accent-bg", "rgba(37, 99, 235, 0.08)", "rgba(96, 165, 250, 0.12)"),
    colour("--rs-danger", "#b91c1c", "#f87171"),
    colour("--rs-danger-fg", "#ffffff", "#0b1220"),
    colour("--rs-danger-bg", "rgba(185, 28, 28, 0.08)", "rgba(248, 113, 113, 0.12)"),
    Var {
        name: "--rs-radius",
        kind: Kind::Length,
        light: "6px",
        dark: None,
    },
    Var {
        name: "--rs-font-display",
        kind: Kind::Font,
        light: STACK,
        dark: None,
    },
    Var {
        name: "--rs-font-body",
        kind: Kind::Font,
        light: STACK,
        dark: None,
    },
];

const fn colour(name: &'static str, light: &'static str, dark: &'static str) -> Var {
    Var {
        name,
        kind: Kind::Colour,
        light,
        dark: Some(dark),
    }
}

/// The longest font stack accepted.
pub const FONT_MAX: usize = 200;

/// The colour scheme a value belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scheme {
    /// The `:root` block.
    Light,
    /// The `:root` inside `@media (prefers-color-scheme: dark)`.
    Dark,
}

/// Why a value or a name was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ThemeError {
    /// Not one of [`VARS`].
    #[error("{0} is not a property the designer manages (one of: {list})", list = managed_list())]
    Unknown(String),
    /// The value breaks its kind's rule.
    #[error("{name}: {why}")]
    Value {
        /// The property.
        name: String,
        /// The rule it broke.
        why: String,
    },
    /// `--var` without `NAME=VALUE`.
    #[error("--var takes NAME=VALUE (or dark:NAME=VALUE), not {0:?}")]
    Syntax(String),
}

fn managed_list() -> String {
    VARS.iter().map(|v| v.name).collect::<Vec<_>>().join(", ")
}

impl Var {
    /// The managed property called `name`.
    pub fn find(name: &str) -> Result<&'static Var, ThemeError> {
        VARS.iter()
            .find(|v| v.name == name)
            .ok_or_else(|| ThemeError::Unknown(name.to_string()))
    }

    /// `value` as it is written to the file, or why it is refused.
    pub fn check(&self, value: &str) -> Result<String, ThemeError> {
        let value = value.trim();
        let refuse = |why: &str| ThemeError::Value {
            name: self.name.to_string(),
            why: why.to_string(),
        };
        match self.kind {
            Kind::Colour if is_colour(value) => Ok(value.to_string()),
            Kind::Colour => Err(refuse(
                "a colour is #rgb, #rrggbb, #rrggbbaa, rgb(r, g, b) or rgba(r, g, b, a)",
            )),
            Kind::Length => {
                let (number, unit) = split_unit(value);
                if !is_number(number) || !matches!(unit, "" | "px" | "rem" | "em") {
                    return Err(refuse("a radius is N, Npx, Nrem or Nem"));
                }
                Ok(if unit.is_empty() {
                    format!("{number}px")
                } else {
                    value.to_string()
                })
            }
            Kind::Font => {
                if value.is_empty() || value.chars().count() > FONT_MAX {
                    return Err(refuse("a font stack is 1 to 200 characters"));
                }
                // Nothing that could end the declaration or the block, or open markup.
                if value.chars().any(|c| c.is_control() || ";{}<>\\".contains(c)) {
                    return Err(refuse("a font stack has no ; { } < > \\ or control characters"));
                }
                // A comment or an open string would swallow what follows in the file.
                if value.contains("/*") || value.contains("*/") {
                    return Err(refuse("a font stack has no comments"));
                }
                let mut open: Option<char> = None;
                for c in value.chars() {
                    open = match (open, c) {
                        (None, '"' | '\'') => Some(c),
                        (Some(q), c) if c == q => None,
                        (state, _) => state,
                    };
                }
                if open.is_some() {
                    return Err(refuse("a font stack's quotes must be closed"));
                }
                Ok(value.to_string())
            }
        }
    }
}

fn is_number(s: &str) -> bool {
    let mut parts = s.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next();
    !whole.is_empty()
        && whole.len() <= 4
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.len() <= 4 && f.bytes().all(|b| b.is_ascii_digit()))
}

fn split_unit(s: &str) -> (&str, &str) {
    let at = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    s.split_at(at)
}

fn is_colour(v: &str) -> bool {
    if let Some(hex) = v.strip_prefix('#') {
        return matches!(hex.len(), 3 | 6 | 8) && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    let (args, alpha) = if let Some(rest) = v.strip_prefix("rgba(") {
        (rest, true)
    } else if let Some(rest) = v.strip_prefix("rgb(") {
        (rest, false)
    } else {
        return false;
    };
    let Some(args) = args.strip_suffix(')') else {
        return false;
    };
    let parts: Vec<&str> = args.split(',').map(str::trim).collect();
    let channel =
        |p: &str| p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n <= 255);
    let opacity = |p: &str| is_number(p) && p.parse::<f64>().is_ok_and(|a| (0.0..=1.0).contains(&a));
    match (alpha, parts.as_slice()) {
        (false, [r, g, b]) => channel(r) && channel(g) && channel(b),
        (true, [r, g, b, a]) => channel(r) && channel(g) && channel(b) && opacity(a),
        _ => false,
    }
}

/// The designer's values: each scheme's managed properties by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Theme {
    /// `:root`.
    pub light: BTreeMap<String, String>,
    /// The dark `:root`; a property absent here inherits the light value.
    pub dark: BTreeMap<String, String>,
}

impl Theme {
    /// The bundled theme's values.
    pub fn defaults() -> Self {
        let mut t = Theme::default();
        for v in VARS {
            t.light.insert(v.name.into(), v.light.into());
            if let Some(d) = v.dark {
                t.dark.insert(v.name.into(), d.into());
            }
        }
        t
    }

    /// The defaults with the managed values found in `css` (a file the designer wrote, or
    /// any stylesheet) laid over them, so a second run starts where the first stopped.
    pub fn from_css(css: &str) -> Self {
        let mut t = Self::defaults();
        let blocks = Blocks::find(css);
        for (scheme, block) in [(Scheme::Light, &blocks.light), (Scheme::Dark, &blocks.dark)] {
            let Some(block) = block else { continue };
            for d in declarations(css, block.clone()) {
                if VARS.iter().any(|v| v.name == d.name) {
                    t.map_mut(scheme)
                        .insert(d.name.to_string(), css[d.value].trim().to_string());
                }
            }
        }
        t
    }

    fn map_mut(&mut self, scheme: Scheme) -> &mut BTreeMap<String, String> {
        match scheme {
            Scheme::Light => &mut self.light,
            Scheme::Dark => &mut self.dark,
        }
    }

    /// Sets one value after checking it.
    pub fn set(&mut self, scheme: Scheme, name: &str, value: &str) -> Result<(), ThemeError> {
        let var = Var::find(name)?;
        let value = var.check(value)?;
        self.map_mut(scheme).insert(var.name.into(), value);
        Ok(())
    }

    /// Applies one `--var` argument: `NAME=VALUE`, or `dark:NAME=VALUE` for the dark scheme.
    pub fn set_arg(&mut self, arg: &str) -> Result<(), ThemeError> {
        let (scheme, rest) = match arg.strip_prefix("dark:") {
            Some(rest) => (Scheme::Dark, rest),
            None => (Scheme::Light, arg),
        };
        let (name, value) = rest
            .split_once('=')
            .ok_or_else(|| ThemeError::Syntax(arg.to_string()))?;
        self.set(scheme, name.trim(), value)
    }

    /// Checks every value (a theme sent by the designer's page) and returns it as written,
    /// or every refusal. A value the file already holds (`on_file`) passes as it is, so a
    /// value written by hand that the rules would refuse (`hsl(…)`, say) does not stop a save.
    pub fn checked(&self, on_file: &Theme) -> Result<Theme, Vec<ThemeError>> {
        let mut out = Theme::default();
        let mut errors = Vec::new();
        for (scheme, map) in [(Scheme::Light, &self.light), (Scheme::Dark, &self.dark)] {
            let kept = match scheme {
                Scheme::Light => &on_file.light,
                Scheme::Dark => &on_file.dark,
            };
            for (name, value) in map {
                if kept.get(name) == Some(value) && Var::find(name).is_ok() {
                    out.map_mut(scheme).insert(name.clone(), value.clone());
                } else if let Err(e) = out.set(scheme, name, value) {
                    errors.push(e);
                }
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// The names whose values differ from `before`'s, dark ones as `dark:NAME`.
    pub fn changes_from(&self, before: &Theme) -> Vec<String> {
        let mut out = Vec::new();
        for (prefix, now, was) in [("", &self.light, &before.light), ("dark:", &self.dark, &before.dark)] {
            for (name, value) in now {
                if was.get(name) != Some(value) {
                    out.push(format!("{prefix}{name}"));
                }
            }
        }
        out
    }

    /// `css` with this theme's values written into its `:root` and dark blocks:
    ///
    /// - a value already there is replaced in place (a comment after its `;` stays);
    /// - a missing one is added at the end of its block;
    /// - a managed property the theme does not set is removed from its block, so it takes
    ///   the bundled value (in the dark block: the light one);
    /// - a missing block is added: the light `:root` just before the dark `@media` (the
    ///   later rule wins, so it must come first), the dark block at the end.
    ///
    /// Every other byte of `css` is kept.
    pub fn write_into(&self, css: &str) -> String {
        let blocks = Blocks::find(css);
        // (range, text): applied from the end; at one position, the later edit first, so
        // the edits there come out in the order they were made.
        let mut edits: Vec<(Range<usize>, String)> = Vec::new();
        let mut appended = String::new();
        let decls = |map: &BTreeMap<String, String>, indent: &str| -> String {
            VARS.iter()
                .filter_map(|v| map.get(v.name).map(|value| format!("{indent}{}: {value};\n", v.name)))
                .collect()
        };
        // The light block.
        match &blocks.light {
            Some(body) => edits.extend(edit_block(css, body.clone(), &self.light, "  ")),
            None => {
                let block = format!(":root {{\n{}}}\n", decls(&self.light, "  "));
                match &blocks.dark_media {
                    Some(media) => edits.push((media.rule.start..media.rule.start, format!("{block}\n"))),
                    None => appended.push_str(&block),
                }
            }
        }
        // The dark block.
        let dark = decls(&self.dark, "    ");
        match (&blocks.dark_media, &blocks.dark) {
            (Some(_), Some(body)) => edits.extend(edit_block(css, body.clone(), &self.dark, "    ")),
            (Some(media), None) if !dark.is_empty() => {
                let at = media.body.end;
                edits.push((at..at, format!("  :root {{\n{dark}  }}\n")));
            }
            (None, _) if !dark.is_empty() => appended.push_str(&format!(
                "@media (prefers-color-scheme: dark) {{\n  :root {{\n{dark}  }}\n}}\n"
            )),
            _ => {}
        }
        let mut ordered: Vec<(usize, Range<usize>, String)> =
            edits.into_iter().enumerate().map(|(seq, (r, t))| (seq, r, t)).collect();
        ordered.sort_by_key(|(seq, r, _)| (std::cmp::Reverse(r.start), std::cmp::Reverse(*seq)));
        let mut out = css.to_string();
        for (_, range, text) in ordered {
            out.replace_range(range, &text);
        }
        if !appended.is_empty() {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&appended);
        }
        out
    }
}

/// The edits that make the block whose body is `body` hold `map`'s values.
fn edit_block(
    css: &str,
    body: Range<usize>,
    map: &BTreeMap<String, String>,
    indent: &str,
) -> Vec<(Range<usize>, String)> {
    let found = declarations(css, body.clone());
    let mut edits = Vec::new();
    let mut missing = String::new();
    for v in VARS {
        // The last declaration of a name is the one that applies; earlier ones go.
        let mine: Vec<&Declaration> = found.iter().filter(|d| d.name == v.name).collect();
        match (map.get(v.name), mine.split_last()) {
            (None, _) => edits.extend(mine.iter().map(|d| (d.span.clone(), String::new()))),
            (Some(value), None) => missing.push_str(&format!("{indent}{}: {value};\n", v.name)),
            (Some(value), Some((last, earlier))) => {
                edits.extend(earlier.iter().map(|d| (d.span.clone(), String::new())));
                if css[last.value.clone()].trim() != value {
                    edits.push((last.value.clone(), format!(" {value}")));
                }
            }
        }
    }
    if !missing.is_empty() {
        // After the block's last declaration, with the `;` it may lack.
        let tail = body.start + css[body.clone()].trim_end().len();
        let lead = match last_meaningful(css, body.start..tail) {
            Some(b';') | None => "\n",
            Some(_) => ";\n",
        };
        edits.push((tail..tail, format!("{lead}{}", missing.trim_end_matches('\n'))));
    }
    edits
}

/// The last byte of `range` outside comments and whitespace.
fn last_meaningful(css: &str, range: Range<usize>) -> Option<u8> {
    let bytes = css.as_bytes();
    let mut i = range.start;
    let mut last = None;
    while i < range.end {
        let skipped = skip_opaque(bytes, i);
        if skipped != i && bytes[i] == b'/' {
            i = skipped;
            continue;
        }
        if skipped != i {
            // A string: its closing quote is what ends it.
            last = Some(bytes[skipped.min(range.end) - 1]);
            i = skipped;
            continue;
        }
        if !bytes[i].is_ascii_whitespace() {
            last = Some(bytes[i]);
        }
        i += 1;
    }
    last
}

/// One `{ … }` block: where its rule starts and where its body is.
#[derive(Clone, Debug)]
struct Block {
    rule: Range<usize>,
    body: Range<usize>,
}

/// The blocks the designer manages, where present.
#[derive(Debug, Default)]
struct Blocks {
    /// The body of the first top-level `:root`.
    light: Option<Range<usize>>,
    /// The first top-level `@media (prefers-color-scheme: dark)`.
    dark_media: Option<Block>,
    /// The body of the first `:root` inside it.
    dark: Option<Range<usize>>,
}

impl Blocks {
    fn find(css: &str) -> Self {
        let mut out = Blocks::default();
        for (prelude, body) in rules(css, 0..css.len()) {
            // The rule starts at its first character, not at the whitespace before it.
            let first = prelude.start + (css[prelude.clone()].len() - css[prelude.clone()].trim_start().len());
            let rule = first..body.end;
            let prelude = normalise(&css[prelude]);
            if prelude == ":root" && out.light.is_none() {
                out.light = Some(body);
            } else if prelude == "@media (prefers-color-scheme:dark)" && out.dark_media.is_none() {
                out.dark = rules(css, body.clone())
                    .into_iter()
                    .find(|(p, _)| normalise(&css[p.clone()]) == ":root")
                    .map(|(_, body)| body);
                out.dark_media = Some(Block { rule, body });
            }
        }
        out
    }
}

/// `text` without its comments.
fn without_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("/*") {
        out.push_str(&rest[..at]);
        rest = rest[at + 2..].find("*/").map_or("", |end| &rest[at + 2 + end + 2..]);
    }
    out.push_str(rest);
    out
}

/// A prelude compared loosely: lower case, comments gone, no space after `:`, single spaces
/// elsewhere.
fn normalise(prelude: &str) -> String {
    without_comments(prelude)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase()
        .replace(": ", ":")
}

/// Skips a comment or a string starting at `i`, returning where it ends (or `i` if none).
fn skip_opaque(bytes: &[u8], i: usize) -> usize {
    match bytes[i] {
        b'/' if bytes.get(i + 1) == Some(&b'*') => {
            let mut j = i + 2;
            while j + 1 < bytes.len() && !(bytes[j] == b'*' && bytes[j + 1] == b'/') {
                j += 1;
            }
            (j + 2).min(bytes.len())
        }
        quote @ (b'"' | b'\'') => {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != quote {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            (j + 1).min(bytes.len())
        }
        _ => i,
    }
}

/// The rules directly inside `range`: each prelude and the body between its braces. An
/// unclosed block runs to the end of `range`.
fn rules(css: &str, range: Range<usize>) -> Vec<(Range<usize>, Range<usize>)> {
    let bytes = css.as_bytes();
    let mut out = Vec::new();
    let mut i = range.start;
    let mut start = i;
    while i < range.end {
        let skipped = skip_opaque(bytes, i);
        if skipped != i {
            i = skipped;
            continue;
        }
        match bytes[i] {
            b'{' => {
                let open = i;
                let mut depth = 0usize;
                let mut j = i;
                while j < range.end {
                    let skipped = skip_opaque(bytes, j);
                    if skipped != j {
                        j = skipped;
                        continue;
                    }
                    match bytes[j] {
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                let close = j.min(range.end);
                out.push((start..open, open + 1..close));
                i = close + 1;
                start = i;
            }
            b';' => {
                // An at-rule without a block (`@import …;`).
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    out
}

/// One `name: value` inside a block.
#[derive(Debug)]
struct Declaration<'a> {
    name: &'a str,
    /// From just after the `:` to just before the `;` (or the block's end).
    value: Range<usize>,
    /// All of it, from just after the previous `;` through its own `;`.
    span: Range<usize>,
}

fn declarations(css: &str, body: Range<usize>) -> Vec<Declaration<'_>> {
    let bytes = css.as_bytes();
    let mut out = Vec::new();
    let mut i = body.start;
    let mut start = i;
    let mut parens = 0usize;
    while i < body.end {
        let skipped = skip_opaque(bytes, i);
        if skipped != i {
            i = skipped;
            continue;
        }
        match bytes[i] {
            b'(' => parens += 1,
            b')' => parens = parens.saturating_sub(1),
            b';' if parens == 0 => {
                declaration(css, start..i, i + 1, &mut out);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if !css[start..body.end].trim().is_empty() {
        let end = start + css[start..body.end].trim_end().len();
        declaration(css, start..end, end, &mut out);
    }
    out
}

/// Records the text in `text` (ending where `span_end` says its declaration does) if it is a
/// custom property's declaration. The name keeps its case, as custom properties do.
fn declaration<'a>(css: &'a str, text: Range<usize>, span_end: usize, out: &mut Vec<Declaration<'a>>) {
    let bytes = css.as_bytes();
    // The name: the first word outside comments and whitespace.
    let mut i = text.start;
    while i < text.end {
        let skipped = skip_opaque(bytes, i);
        if skipped != i && bytes[i] == b'/' {
            i = skipped;
        } else if bytes[i].is_ascii_whitespace() {
            i += 1;
        } else {
            break;
        }
    }
    let name_start = i;
    while i < text.end && !bytes[i].is_ascii_whitespace() && bytes[i] != b':' && bytes[i] != b'/' {
        i += 1;
    }
    let name = &css[name_start..i];
    let Some(colon) = css[i..text.end].find(':').map(|o| i + o) else {
        return;
    };
    // Only comments and whitespace may stand between the name and the colon.
    if !name.starts_with("--") || !without_comments(&css[i..colon]).trim().is_empty() {
        return;
    }
    out.push(Declaration {
        name,
        value: colon + 1..text.end,
        span: text.start..span_end,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUNDLED: &str = include_str!("../../templates/static/css/theme.css");

    #[regstack_macros::dual_test]
    fn the_table_matches_the_bundled_theme() {
        assert_eq!(VARS.len(), 15);
        assert_eq!(Theme::from_css(BUNDLED), Theme::defaults());
        // Every bundled property but the shadow is managed.
        let blocks = Blocks::find(BUNDLED);
        let names: Vec<&str> = declarations(BUNDLED, blocks.light.unwrap())
            .iter()
            .map(|d| d.name)
            .filter(|n| *n != "--rs-shadow")
            .collect();
        assert_eq!(names, VARS.iter().map(|v| v.name).collect::<Vec<_>>());
        // Writing the defaults into the bundled file changes nothing.
        assert_eq!(Theme::defaults().write_into(BUNDLED), BUNDLED);
    }

    #[regstack_macros::dual_test]
    fn values_follow_their_kinds_rules() {
        let accent = Var::find("--rs-accent").unwrap();
        for ok in [
            "#fff",
            "#2dd4bf",
            "#2dd4bf80",
            "rgb(1, 2, 3)",
            "rgba(255,0,0,0.5)",
            "rgba(0, 0, 0, 1)",
        ] {
            assert_eq!(accent.check(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in [
            "red",
            "#ffff",
            "#ggg",
            "rgb(256, 0, 0)",
            "rgba(0, 0, 0, 2)",
            "rgb(0,0,0);}body{x:y",
            "",
        ] {
            assert!(accent.check(bad).is_err(), "{bad}");
        }
        let radius = Var::find("--rs-radius").unwrap();
        assert_eq!(radius.check("8").as_deref(), Ok("8px"));
        assert_eq!(radius.check("0.5rem").as_deref(), Ok("0.5rem"));
        assert_eq!(radius.check("1em").as_deref(), Ok("1em"));
        for bad in ["8%", "px", "-1px", "8 px", "1e3px"] {
            assert!(radius.check(bad).is_err(), "{bad}");
        }
        let font = Var::find("--rs-font-body").unwrap();
        assert!(font.check("\"Inter\", sans-serif").is_ok());
        for bad in [
            "a; } body { color: red",
            "x</style>",
            "\"open",
            "'\"' \"x",
            "Inter /*",
            "Inter */",
            &"a".repeat(201),
        ] {
            assert!(font.check(bad).is_err(), "{bad}");
        }
        assert!(matches!(Var::find("--rs-shadow"), Err(ThemeError::Unknown(_))));
        let mut t = Theme::defaults();
        assert!(matches!(t.set_arg("--rs-accent"), Err(ThemeError::Syntax(_))));
        t.set_arg("dark:--rs-accent=#2dd4bf").unwrap();
        assert_eq!(t.dark["--rs-accent"], "#2dd4bf");
        assert_eq!(t.light["--rs-accent"], "#2563eb");
    }

    #[regstack_macros::dual_test]
    fn writing_changes_only_the_managed_values() {
        let css = "/* mine */\n@import url(\"fonts.css\");\n.brand { color: red; }\n:root {\n  --rs-accent: #000000; /* keep me */\n  --rs-shadow: none;\n  --mine: 1px\n}\n@media (prefers-color-scheme: dark) {\n  .x { color: blue }\n}\n@media print { :root { --rs-accent: #111111; } }\n";
        let mut t = Theme::from_css(css);
        assert_eq!(t.light["--rs-accent"], "#000000", "the file's value is read back");
        assert_eq!(t.dark["--rs-accent"], "#60a5fa", "no dark :root: the default");
        t.set_arg("--rs-accent=#ff0000").unwrap();
        t.set_arg("dark:--rs-accent=#00ff00").unwrap();
        let out = t.write_into(css);
        assert!(out.starts_with("/* mine */\n@import url(\"fonts.css\");\n.brand { color: red; }\n:root {\n  --rs-accent: #ff0000; /* keep me */\n  --rs-shadow: none;\n  --mine: 1px;\n  --rs-bg: #ffffff;\n"), "{out}");
        assert!(
            out.contains("  .x { color: blue }\n  :root {\n    --rs-bg: #0b1220;\n"),
            "{out}"
        );
        assert!(
            out.contains("@media print { :root { --rs-accent: #111111; } }"),
            "{out}"
        );
        let again = Theme::from_css(&out);
        assert_eq!(again, t, "a second run reads back what the first wrote");
        assert_eq!(again.write_into(&out), out, "and writing it again changes nothing");
        // An empty file gets both blocks.
        let fresh = t.write_into("");
        assert!(fresh.starts_with(":root {\n  --rs-bg: #ffffff;"), "{fresh}");
        assert!(fresh.contains("@media (prefers-color-scheme: dark) {\n  :root {\n    --rs-bg: #0b1220;"));
        assert_eq!(Theme::from_css(&fresh), t);
    }

    #[regstack_macros::dual_test]
    fn the_light_block_goes_before_a_dark_one_and_semicolons_stay_right() {
        // Only a dark block: the new :root must come first, or it would win in dark mode.
        let css = "@media (prefers-color-scheme: dark) {\n  :root {\n    --rs-bg: #000000;\n  }\n}\n";
        let out = Theme::from_css(css).write_into(css);
        assert!(out.starts_with(":root {\n  --rs-bg: #ffffff;"), "{out}");
        assert!(
            out.contains("}\n\n@media (prefers-color-scheme: dark) {\n  :root {\n    --rs-bg: #000000;\n"),
            "{out}"
        );
        assert_eq!(Theme::from_css(&out).dark["--rs-bg"], "#000000");

        // A last declaration without its `;`, of any property: one is added before new lines.
        let css = ":root { --rs-accent:#000; color-scheme: light dark }";
        let out = Theme::defaults().write_into(css);
        assert!(
            out.starts_with(":root { --rs-accent: #2563eb; color-scheme: light dark;\n  --rs-bg: #ffffff;"),
            "{out}"
        );

        // An empty last value and new declarations at the same place come out in order.
        let css = ":root {\n  --rs-accent:\n}";
        let mut t = Theme::defaults();
        t.set_arg("--rs-accent=#ff0000").unwrap();
        let out = t.write_into(css);
        assert!(
            out.starts_with(":root {\n  --rs-accent: #ff0000;\n  --rs-bg: #ffffff;"),
            "{out}"
        );
        assert_eq!(Theme::from_css(&out).light, t.light);
    }

    #[regstack_macros::dual_test]
    fn names_keep_their_case_and_unset_values_leave_the_file() {
        // `--RS-ACCENT` is another property; a name inside a comment is no name.
        let css =
            ":root {\n  /* --rs-accent */ --RS-ACCENT: red;\n  --rs-accent: #111111;\n  --rs-accent: #222222;\n}\n";
        let t = Theme::from_css(css);
        assert_eq!(t.light["--rs-accent"], "#222222", "the last one applies");
        let out = t.write_into(css);
        assert!(out.contains("--RS-ACCENT: red;"), "{out}");
        assert!(!out.contains("#111111"), "earlier duplicates go: {out}");
        // A dark value the theme no longer sets (back to the defaults) leaves the file, so
        // the light value applies again.
        let mut t = Theme::defaults();
        t.set_arg("dark:--rs-radius=12px").unwrap();
        let with = t.write_into("");
        assert!(with.contains("    --rs-radius: 12px;"), "{with}");
        let without = Theme::defaults().write_into(&with);
        assert!(!without.contains("12px"), "{without}");
        assert_eq!(Theme::from_css(&without), Theme::defaults());
    }

    #[regstack_macros::dual_test]
    fn changes_are_named_by_scheme() {
        let before = Theme::defaults();
        let mut after = before.clone();
        after.set_arg("--rs-radius=10").unwrap();
        after.set_arg("dark:--rs-fg=#ffffff").unwrap();
        assert_eq!(after.changes_from(&before), vec!["--rs-radius", "dark:--rs-fg"]);
        let mut bad = Theme::default();
        bad.light.insert("--rs-bg".into(), "red".into());
        bad.dark.insert("--rs-nope".into(), "#fff".into());
        assert_eq!(bad.checked(&Theme::default()).unwrap_err().len(), 2);
        // What the file holds passes, even when the rules would refuse it.
        let mut on_file = Theme::defaults();
        on_file.light.insert("--rs-fg".into(), "hsl(0 0% 10%)".into());
        assert_eq!(on_file.checked(&on_file).unwrap(), on_file);
        let mut edited = on_file.clone();
        edited.light.insert("--rs-bg".into(), "hsl(0 0% 99%)".into());
        assert_eq!(edited.checked(&on_file).unwrap_err().len(), 1, "a new value is checked");
    }
}
