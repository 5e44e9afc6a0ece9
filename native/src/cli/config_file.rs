//! Merging a wizard's answers into an existing `regstack.toml` and `regstack.secrets.env`
//! (docs/cli.md, "Merging into your files"). The TOML is edited with `toml_edit`, so its
//! comments, layout, other tables and other keys survive; the secrets file is edited line
//! by line, so its other lines survive. Secrets never go into the TOML. Before anything is
//! written, the merged files are loaded the way the server loads them, so a wizard never
//! leaves a config the server would refuse.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{json, Map, Value};
use toml_edit::{DocumentMut, Item, Table};

/// The two files of a config directory, read and being edited.
pub struct ConfigFiles {
    toml_path: PathBuf,
    secrets_path: PathBuf,
    secrets_before: String,
    doc: DocumentMut,
    secrets: Vec<String>,
    /// Each key touched, with its value before and after (`None`: absent), in order.
    changes: Vec<Change>,
}

struct Change {
    file: &'static str,
    key: String,
    before: Option<String>,
    after: Option<String>,
    secret: bool,
}

/// Why the files cannot be edited or written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// A file exists but cannot be read or written.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// `regstack.toml` is not TOML.
    #[error("{0} is not valid TOML: {1}")]
    Toml(PathBuf, String),
    /// The merged config is one the server would refuse.
    #[error("the merged config would not load: {0}")]
    Invalid(String),
}

const TOML_FILE: &str = "regstack.toml";
const SECRETS_FILE: &str = "regstack.secrets.env";

fn read(path: &Path) -> Result<String, ConfigFileError> {
    super::read_or_empty(path).map_err(|e| ConfigFileError::Io(path.to_path_buf(), e))
}

/// A TOML value shown as the diff shows it.
fn shown(item: Option<&Item>) -> Option<String> {
    let value = item?.as_value()?;
    Some(value.clone().decorated("", "").to_string())
}

/// The name a secrets-file line sets, if it sets one.
fn line_name(line: &str) -> Option<&str> {
    let line = line.trim_start();
    let line = line.strip_prefix("export ").unwrap_or(line);
    if line.starts_with('#') {
        return None;
    }
    line.split_once('=').map(|(k, _)| k.trim())
}

/// Where the files are: the TOML `--config` names (a file, or `regstack.toml` in the
/// directory it names), else `$REGSTACK_CONFIG`, else `./regstack.toml`; the secrets file
/// beside it.
pub fn paths(config: Option<&Path>) -> (PathBuf, PathBuf) {
    let toml = match config {
        Some(p) if p.is_dir() => p.join(TOML_FILE),
        Some(p) if p.is_file() || p.extension().is_some_and(|e| e == "toml") => p.to_path_buf(),
        Some(p) => p.join(TOML_FILE),
        None => std::env::var_os("REGSTACK_CONFIG").map_or_else(|| PathBuf::from(TOML_FILE), PathBuf::from),
    };
    let dir = toml
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    (toml, dir.join(SECRETS_FILE))
}

impl ConfigFiles {
    /// Reads the TOML at `toml_path` and the secrets file at `secrets_path` (either may be
    /// missing).
    pub fn open(toml_path: &Path, secrets_path: &Path) -> Result<Self, ConfigFileError> {
        let toml_before = read(toml_path)?;
        let secrets_before = read(secrets_path)?;
        let doc: DocumentMut = toml_before.parse().map_err(|e: toml_edit::TomlError| {
            // The message and the line, never the quoted source line (it may hold a secret).
            let line = e
                .span()
                .map(|s| toml_before[..s.start.min(toml_before.len())].matches('\n').count() + 1);
            let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
            ConfigFileError::Toml(toml_path.to_path_buf(), format!("{}{at}", e.message()))
        })?;
        Ok(Self {
            toml_path: toml_path.to_path_buf(),
            secrets_path: secrets_path.to_path_buf(),
            secrets: secrets_before.lines().map(str::to_string).collect(),
            secrets_before,
            doc,
            changes: Vec::new(),
        })
    }

    fn item(&self, table: &str, key: &str) -> Option<&Item> {
        if table.is_empty() {
            self.doc.get(key)
        } else {
            self.doc.get(table).and_then(|t| t.get(key))
        }
    }

    /// The value at `table.key` (`table` empty for a top-level key), as TOML text.
    pub fn get(&self, table: &str, key: &str) -> Option<String> {
        shown(self.item(table, key))
    }

    /// The string at `table.key`, whatever its quoting.
    pub fn get_str(&self, table: &str, key: &str) -> Option<String> {
        self.item(table, key).and_then(Item::as_str).map(str::to_string)
    }

    /// The boolean at `table.key`.
    pub fn get_bool(&self, table: &str, key: &str) -> Option<bool> {
        self.item(table, key).and_then(Item::as_bool)
    }

    fn record(&mut self, file: &'static str, key: String, before: Option<String>, after: Option<String>, secret: bool) {
        if before == after {
            return;
        }
        match self.changes.iter_mut().find(|c| c.file == file && c.key == key) {
            Some(c) => c.after = after,
            None => self.changes.push(Change {
                file,
                key,
                before,
                after,
                secret,
            }),
        }
    }

    /// The table `name`, made a standard `[name]` table if it is missing or inline (its keys
    /// kept), so a key can be set in it.
    fn table_mut(&mut self, name: &str) -> &mut Table {
        let replacement = match self.doc.get_mut(name) {
            Some(Item::Table(_)) => None,
            Some(Item::Value(toml_edit::Value::InlineTable(inline))) => Some(inline.clone().into_table()),
            _ => {
                // A new table goes at the end of the file, after a blank line.
                let mut t = Table::new();
                t.decor_mut().set_prefix("\n");
                Some(t)
            }
        };
        if let Some(t) = replacement {
            self.doc.insert(name, Item::Table(t));
        }
        self.doc[name].as_table_mut().expect("a standard table is in place")
    }

    /// Sets `table.key` (a top-level key when `table` is empty), keeping the comment and
    /// place of a value already there.
    pub fn set(&mut self, table: &str, key: &str, value: impl Into<toml_edit::Value>) {
        let before = self.get(table, key);
        let mut value: toml_edit::Value = value.into();
        let slot = if table.is_empty() {
            self.doc.as_table_mut()
        } else {
            self.table_mut(table)
        };
        // In place, so the key's comment above and the value's comment beside it stay.
        match slot.get_mut(key).and_then(Item::as_value_mut) {
            Some(old) => {
                *value.decor_mut() = old.decor().clone();
                *old = value;
            }
            None => {
                slot.insert(key, Item::Value(value));
            }
        }
        let after = self.get(table, key);
        self.record(TOML_FILE, dotted(table, key), before, after, false);
    }

    fn remove_item(&mut self, table: &str, key: &str, secret: bool) {
        let before = self.get(table, key);
        if before.is_none() {
            return;
        }
        if table.is_empty() {
            self.doc.remove(key);
        } else if let Some(t) = self.doc.get_mut(table).and_then(Item::as_table_like_mut) {
            t.remove(key);
        }
        self.record(TOML_FILE, dotted(table, key), before, None, secret);
    }

    /// Removes `table.key`, if present.
    pub fn remove(&mut self, table: &str, key: &str) {
        self.remove_item(table, key, false);
    }

    /// Removes a secret that does not belong in the TOML, its value masked in the diff.
    pub fn remove_secret_key(&mut self, table: &str, key: &str) {
        self.remove_item(table, key, true);
    }

    /// Sets `NAME="value"` in the secrets file: the first line that sets it is replaced (any
    /// later one, which would win, is removed), else the line is added at the end.
    pub fn set_secret(&mut self, name: &str, value: &str) {
        let line = format!("{name}=\"{value}\"");
        let matches: Vec<usize> = self.secret_lines(name);
        let before = matches.last().map(|&at| self.secrets[at].clone());
        match matches.split_first() {
            Some((&first, later)) => {
                self.secrets[first] = line.clone();
                for &at in later.iter().rev() {
                    self.secrets.remove(at);
                }
            }
            None => self.secrets.push(line.clone()),
        }
        self.record(SECRETS_FILE, name.to_string(), before, Some(line), true);
    }

    /// Removes every line that sets `NAME`.
    pub fn remove_secret(&mut self, name: &str) {
        let matches = self.secret_lines(name);
        let Some(&last) = matches.last() else { return };
        let before = self.secrets[last].clone();
        for &at in matches.iter().rev() {
            self.secrets.remove(at);
        }
        self.record(SECRETS_FILE, name.to_string(), Some(before), None, true);
    }

    fn secret_lines(&self, name: &str) -> Vec<usize> {
        (0..self.secrets.len())
            .filter(|&i| line_name(&self.secrets[i]).is_some_and(|k| k.eq_ignore_ascii_case(name)))
            .collect()
    }

    /// The `REGSTACK_*` names the secrets file sets, which outrank the TOML.
    pub fn secret_names(&self) -> Vec<String> {
        self.secrets
            .iter()
            .filter_map(|l| line_name(l))
            .map(str::to_ascii_uppercase)
            .collect()
    }

    /// The new text of each file.
    fn texts(&self) -> (String, String) {
        let mut secrets = self.secrets.join("\n");
        if !secrets.is_empty() {
            secrets.push('\n');
        }
        (self.doc.to_string(), secrets)
    }

    /// Loads the merged files as the server would (with nothing from the environment), so a
    /// refusal names the setting now rather than at the next start; answers the config.
    pub fn check(&self) -> Result<regstack_core::config::Config, ConfigFileError> {
        let (toml, secrets) = self.texts();
        regstack_core::config::load(regstack_core::config::Sources {
            toml: Some(&toml),
            secrets_env: Some(&secrets),
            env: &[],
            overrides: &[],
        })
        .map(|loaded| loaded.config)
        .map_err(|e| ConfigFileError::Invalid(e.to_string()))
    }

    /// What changed, as JSON: per file, each key with its value before and after (`null`:
    /// absent); a secret's values show as `"***"`.
    pub fn diff(&self) -> Value {
        let mut files: Map<String, Value> = Map::new();
        for c in &self.changes {
            let hide = |v: &Option<String>| match v {
                None => Value::Null,
                Some(_) if c.secret => Value::String("***".into()),
                Some(v) => Value::String(v.clone()),
            };
            let entry = files
                .entry(c.file.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(keys) = entry {
                keys.insert(
                    c.key.clone(),
                    json!({ "before": hide(&c.before), "after": hide(&c.after) }),
                );
            }
        }
        Value::Object(files)
    }

    fn changed(&self, file: &str) -> bool {
        self.changes.iter().any(|c| c.file == file)
    }

    /// Writes whichever file changed, each replaced whole so a reader never sees half of one:
    /// the secrets first (readable by its owner only), then the TOML. Should the TOML fail,
    /// the secrets file is put back, so the pair never disagrees. Answers whether anything
    /// was written.
    pub fn write(&self) -> Result<bool, ConfigFileError> {
        let (toml, secrets) = self.texts();
        let secrets_changed = self.changed(SECRETS_FILE);
        if secrets_changed {
            super::replace_file(&self.secrets_path, &secrets, true)
                .map_err(|e| ConfigFileError::Io(self.secrets_path.clone(), e))?;
        }
        if self.changed(TOML_FILE) {
            if let Err(e) = super::replace_file(&self.toml_path, &toml, false) {
                if secrets_changed {
                    let _ = super::replace_file(&self.secrets_path, &self.secrets_before, true);
                }
                return Err(ConfigFileError::Io(self.toml_path.clone(), e));
            }
        }
        Ok(secrets_changed || self.changed(TOML_FILE))
    }

    /// The TOML file.
    pub fn toml_path(&self) -> &Path {
        &self.toml_path
    }

    /// The secrets file.
    pub fn secrets_path(&self) -> &Path {
        &self.secrets_path
    }

    /// A warning when the secrets file is not where the server reads it: `regstack serve`
    /// reads `regstack.secrets.env` from the directory it starts in.
    pub fn secrets_warning(&self) -> Option<String> {
        let dir = self.secrets_path.parent().filter(|d| !d.as_os_str().is_empty())?;
        let here = std::fs::canonicalize(".").ok()?;
        let there = std::fs::canonicalize(dir).ok()?;
        (here != there).then(|| {
            format!(
                "regstack reads regstack.secrets.env from the directory it starts in: start `regstack serve` in {}",
                there.display()
            )
        })
    }
}

/// A headless run: the files are opened, `merge` checks the answers and applies them
/// (answering fields to add to the summary, or every refusal), then the JSON summary is
/// printed and, unless `dry_run`, the files are written. Exit 0 when done; 2 when an answer
/// is refused (each reason on a `✘` line, nothing written); 1 when a file cannot be read or
/// written. Every ending prints JSON on standard output.
pub fn headless(
    toml_path: &Path,
    secrets_path: &Path,
    dry_run: bool,
    merge: impl FnOnce(&mut ConfigFiles) -> Result<Value, Vec<String>>,
) -> ExitCode {
    let failed = |errors: Vec<String>, code: u8| {
        for e in &errors {
            eprintln!("\u{2718} {e}");
        }
        println!("{}", json!({ "ok": false, "errors": errors }));
        ExitCode::from(code)
    };
    let mut files = match ConfigFiles::open(toml_path, secrets_path) {
        Ok(f) => f,
        Err(e) => return failed(vec![e.to_string()], 1),
    };
    let extra = match merge(&mut files) {
        Ok(extra) => extra,
        Err(errors) => return failed(errors, 2),
    };
    let written = if dry_run {
        false
    } else {
        match files.write() {
            Ok(wrote) => wrote,
            Err(e) => return failed(vec![e.to_string()], 1),
        }
    };
    if let Some(warning) = files.secrets_warning() {
        eprintln!("\u{26a0} {warning}");
    }
    let mut summary = json!({ "ok": true, "written": written, "dry_run": dry_run, "diff": files.diff() });
    if let (Value::Object(out), Value::Object(more)) = (&mut summary, extra) {
        out.extend(more);
    }
    println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
    ExitCode::SUCCESS
}

/// The refusal when the secrets file's own `REGSTACK_*` lines (which outrank the TOML) undo
/// what the wizard set.
pub fn shadowed_message(files: &ConfigFiles, keys: &[&str]) -> String {
    let names: Vec<String> = files
        .secret_names()
        .into_iter()
        .filter(|n| n.starts_with("REGSTACK_"))
        .collect();
    format!(
        "{} would not take effect: a line of {} overrides the TOML ({}); remove it and run again",
        keys.join(", "),
        files.secrets_path().display(),
        names.join(", ")
    )
}

fn dotted(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.to_string()
    } else {
        format!("{table}.{key}")
    }
}

/// A secret as the secrets file can hold it: one line, no double quote (the readers strip
/// one pair and know no escapes).
pub fn check_secret(name: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{name} is empty"));
    }
    if value.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
        return Err(format!(
            "{name} has a control character, a double quote or a backslash (the secrets file has no escapes)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(d: &Path) -> ConfigFiles {
        ConfigFiles::open(&d.join(TOML_FILE), &d.join(SECRETS_FILE)).unwrap()
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("regstack-config-file-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn merging_keeps_comments_other_tables_and_other_lines() {
        let d = dir("merge");
        let toml = "# my app\napp_name = \"Shop\" # shown in mail\nbase_url = \"https://shop.example\"\n\n[email]\n# how mail goes\nbackend = \"console\"\n\n[sms]\nbackend = \"null\"\n";
        std::fs::write(d.join(TOML_FILE), toml).unwrap();
        std::fs::write(
            d.join(SECRETS_FILE),
            "# keep\nREGSTACK_JWT_SECRET=\"x\"\nREGSTACK_OAUTH__GOOGLE_CLIENT_SECRET=\"old\"\n",
        )
        .unwrap();
        let mut f = open(&d);
        f.set("", "enable_oauth", true);
        f.set("email", "backend", "ses");
        f.set("oauth", "google_client_id", "id.apps.googleusercontent.com");
        f.set_secret("REGSTACK_OAUTH__GOOGLE_CLIENT_SECRET", "new");
        f.set("", "app_name", "Shop");
        let (toml_after, secrets_after) = f.texts();
        assert!(toml_after.starts_with("# my app\napp_name = \"Shop\" # shown in mail\nbase_url = \"https://shop.example\"\nenable_oauth = true\n"), "{toml_after}");
        assert!(
            toml_after.contains("[email]\n# how mail goes\nbackend = \"ses\"\n"),
            "{toml_after}"
        );
        assert!(toml_after.contains("[sms]\nbackend = \"null\"\n"), "{toml_after}");
        assert!(
            toml_after
                .trim_end()
                .ends_with("[oauth]\ngoogle_client_id = \"id.apps.googleusercontent.com\""),
            "{toml_after}"
        );
        assert_eq!(
            secrets_after,
            "# keep\nREGSTACK_JWT_SECRET=\"x\"\nREGSTACK_OAUTH__GOOGLE_CLIENT_SECRET=\"new\"\n"
        );
        let diff = f.diff();
        assert_eq!(
            diff["regstack.toml"]["email.backend"],
            json!({ "before": "\"console\"", "after": "\"ses\"" })
        );
        assert_eq!(
            diff["regstack.toml"]["enable_oauth"],
            json!({ "before": null, "after": "true" })
        );
        assert!(
            diff["regstack.toml"].get("app_name").is_none(),
            "an unchanged key is not in the diff"
        );
        assert_eq!(
            diff["regstack.secrets.env"]["REGSTACK_OAUTH__GOOGLE_CLIENT_SECRET"],
            json!({ "before": "***", "after": "***" })
        );
        assert!(!diff.to_string().contains("new"), "no secret in the diff");
        assert!(f.write().unwrap());
        assert_eq!(std::fs::read_to_string(d.join(TOML_FILE)).unwrap(), toml_after);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.join(SECRETS_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Nothing changed: nothing written.
        let again = open(&d);
        assert!(!again.write().unwrap());
    }

    #[test]
    fn removing_and_checking() {
        let d = dir("check");
        std::fs::write(d.join(TOML_FILE), "[email]\nbackend = \"ses\"\nses_profile = \"dev\"\n").unwrap();
        let mut f = open(&d);
        f.set("email", "ses_access_key_id", "AKIAEXAMPLE");
        // Both a profile and explicit keys: the server refuses that, so the merge does too.
        assert!(matches!(f.check(), Err(ConfigFileError::Invalid(_))));
        f.remove("email", "ses_profile");
        f.set_secret("REGSTACK_EMAIL__SES_SECRET_ACCESS_KEY", "secret");
        f.check().unwrap();
        assert_eq!(
            f.diff()["regstack.toml"]["email.ses_profile"],
            json!({ "before": "\"dev\"", "after": null })
        );
        std::fs::write(d.join(TOML_FILE), "not = [toml").unwrap();
        std::fs::write(
            d.join(TOML_FILE),
            "[oauth]\ngoogle_client_secret = \"GOCSPX-leak\" junk\n",
        )
        .unwrap();
        let e = ConfigFiles::open(&d.join(TOML_FILE), &d.join(SECRETS_FILE))
            .err()
            .unwrap();
        assert!(matches!(e, ConfigFileError::Toml(..)));
        assert!(
            e.to_string().contains("line 2") && !e.to_string().contains("GOCSPX"),
            "{e}"
        );
        assert!(check_secret("x", "a\"b").is_err());
        assert!(check_secret("x", "a\nb").is_err());
        assert!(check_secret("x", "GOCSPX-abc").is_ok());
        assert!(check_secret("x", "ends\\").is_err());
    }

    #[test]
    fn inline_tables_duplicates_and_secrets_in_the_toml() {
        let d = dir("inline");
        let toml = "base_url = 'https://shop.example'\noauth = { google_redirect_uri = \"https://shop.example/cb\", google_client_secret = \"GOCSPX-old\" }\n";
        std::fs::write(d.join(TOML_FILE), toml).unwrap();
        std::fs::write(
            d.join(SECRETS_FILE),
            "X=\"1\"\nREGSTACK_OAUTH__GOOGLE_CLIENT_SECRET=\"a\"\nREGSTACK_OAUTH__GOOGLE_CLIENT_SECRET=\"b\"\n",
        )
        .unwrap();
        let mut f = open(&d);
        assert_eq!(
            f.get_str("", "base_url").as_deref(),
            Some("https://shop.example"),
            "a literal string reads as its text"
        );
        f.set("oauth", "google_client_id", "id.apps.googleusercontent.com");
        f.remove_secret_key("oauth", "google_client_secret");
        f.set_secret("REGSTACK_OAUTH__GOOGLE_CLIENT_SECRET", "new");
        let (toml_after, secrets_after) = f.texts();
        assert!(
            toml_after.contains("google_redirect_uri = \"https://shop.example/cb\""),
            "the inline table's keys stay: {toml_after}"
        );
        assert!(
            toml_after.contains("google_client_id = \"id.apps.googleusercontent.com\""),
            "{toml_after}"
        );
        assert!(!toml_after.contains("GOCSPX"), "{toml_after}");
        assert_eq!(
            secrets_after, "X=\"1\"\nREGSTACK_OAUTH__GOOGLE_CLIENT_SECRET=\"new\"\n",
            "one line, where the first was"
        );
        let diff = f.diff().to_string();
        assert!(
            !diff.contains("GOCSPX") && !diff.contains("new\\\""),
            "secrets are masked: {diff}"
        );
        assert_eq!(
            f.diff()["regstack.toml"]["oauth.google_client_secret"],
            json!({ "before": "***", "after": null })
        );
        let config = f.check().unwrap();
        assert_eq!(config.oauth.google_client_secret.as_deref(), Some("new"));
    }
}
