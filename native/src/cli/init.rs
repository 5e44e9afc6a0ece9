//! `regstack init`: the wizard that writes `regstack.toml` and `regstack.secrets.env`
//! (docs/cli.md, "init"). It asks regstack 0.9.3's questions in 0.9.3's order, so answers
//! piped to either produce the same files, and it works in a terminal and with piped input.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use super::{fail, pass, warn};

/// The files the wizard writes, by name.
const CONFIG_FILE: &str = "regstack.toml";
const SECRETS_FILE: &str = "regstack.secrets.env";

/// Runs the wizard; exit 0 when the files were written (or `--if-missing` found them), 1
/// when the operator declined, input ended early, or a file could not be written.
pub fn run(config: Option<&Path>, force: bool, if_missing: bool) -> ExitCode {
    let dir = super::config_dir(config);
    let (config_path, secrets_path) = (dir.join(CONFIG_FILE), dir.join(SECRETS_FILE));
    let stdin = std::io::stdin();
    let mut ask = Prompter {
        input: stdin.lock(),
        terminal: std::io::stdin().is_terminal(),
    };
    if config_path.exists() || secrets_path.exists() {
        if if_missing {
            println!(
                "Config already present at {} or {}; no action taken (--if-missing).",
                config_path.display(),
                secrets_path.display()
            );
            return ExitCode::SUCCESS;
        }
        if !force {
            let question = format!(
                "Config already exists at {} or {}. Overwrite?",
                config_path.display(),
                secrets_path.display()
            );
            match ask.confirm(&question, false) {
                Some(true) => {}
                _ => {
                    fail("init", "aborted; nothing was written");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    println!("regstack init: app configuration only. It never provisions infrastructure.\n");
    let Some(answers) = interview(&mut ask) else {
        fail(
            "init",
            "the input ended before every question was answered; nothing was written",
        );
        return ExitCode::FAILURE;
    };
    let (toml, secrets) = (answers.toml(), answers.secrets());
    // What the server would refuse is refused here, before anything is written.
    if let Some(bad) = [&toml, &secrets]
        .iter()
        .flat_map(|t| t.chars())
        .find(|c| c.is_control() && *c != '\n')
    {
        fail(
            "init",
            format!("an answer holds the control character {bad:?}; nothing was written"),
        );
        return ExitCode::FAILURE;
    }
    if let Err(e) = toml.parse::<toml::Table>() {
        fail(
            "init",
            format!("the answers do not make valid TOML ({e}); nothing was written"),
        );
        return ExitCode::FAILURE;
    }
    if let Err(e) = std::fs::create_dir_all(&dir) {
        fail("init", format!("cannot create {}: {e}", dir.display()));
        return ExitCode::FAILURE;
    }
    // Both files are written aside and then renamed over the old ones, the secrets first, so
    // a failure leaves the old pair (or the new secrets with the old TOML), never an empty file.
    if let Err(e) = super::replace_file(&secrets_path, &secrets, true)
        .and_then(|()| super::replace_file(&config_path, &toml, false))
    {
        fail("init", format!("cannot write the config into {}: {e}", dir.display()));
        return ExitCode::FAILURE;
    }
    pass("wrote", config_path.display());
    pass("wrote", format!("{} (mode 600)", secrets_path.display()));
    println!(
        "Next: run `regstack serve` in {} (the secrets file is read from the current directory).",
        dir.display()
    );
    ExitCode::SUCCESS
}

/// `scheme://user:password@host` and `user:password@host` with the user part hidden, for
/// echoing piped answers into logs.
fn hide_userinfo(answer: &str) -> String {
    let (scheme, rest) = answer.split_once("://").map_or(("", answer), |(s, r)| (s, r));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let sep = if scheme.is_empty() { "" } else { "://" };
            format!("{scheme}{sep}***{}", &rest[at..])
        }
        None => answer.to_string(),
    }
}

/// Questions on stdout, answers a line at a time from stdin.
struct Prompter<R> {
    input: R,
    terminal: bool,
}

impl<R: BufRead> Prompter<R> {
    /// One line, trimmed; `None` at the end of the input. Piped answers are not echoed by a
    /// terminal, so they are shown here (a secret as `***`), one per line.
    fn line(&mut self, secret: bool) -> Option<String> {
        let mut line = String::new();
        let answer = match self.input.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim().to_string()),
        };
        if !self.terminal {
            match (&answer, secret) {
                (Some(a), false) => println!("{}", hide_userinfo(a)),
                (Some(_), true) => println!("***"),
                (None, _) => println!(),
            }
        }
        answer
    }

    /// A free answer, `default` when empty.
    fn text(&mut self, question: &str, default: &str) -> Option<String> {
        if default.is_empty() {
            print!("{question}: ");
        } else {
            print!("{question} [{default}]: ");
        }
        let _ = std::io::stdout().flush();
        let answer = self.line(false)?;
        Some(if answer.is_empty() { default.to_string() } else { answer })
    }

    /// A secret: not echoed in a terminal; `default` when empty.
    fn secret(&mut self, question: &str, default: &str) -> Option<String> {
        let answer = if self.terminal {
            rpassword::prompt_password(format!("{question}: ")).ok()?
        } else {
            print!("{question}: ");
            let _ = std::io::stdout().flush();
            self.line(true)?
        };
        Some(if answer.is_empty() { default.to_string() } else { answer })
    }

    /// Yes or no, asked again until it is one of them.
    fn confirm(&mut self, question: &str, default: bool) -> Option<bool> {
        let hint = if default { "Y/n" } else { "y/N" };
        loop {
            print!("{question} [{hint}]: ");
            let _ = std::io::stdout().flush();
            match self.line(false)?.to_ascii_lowercase().as_str() {
                "" => return Some(default),
                "y" | "yes" => return Some(true),
                "n" | "no" => return Some(false),
                _ => println!("Error: invalid input"),
            }
        }
    }

    /// One of `choices`, asked again until it is.
    fn choice(&mut self, question: &str, choices: &[&str], default: &str) -> Option<String> {
        loop {
            let answer = self.text(&format!("{question} ({})", choices.join(", ")), default)?;
            if choices.contains(&answer.as_str()) {
                return Some(answer);
            }
            println!("Error: {answer:?} is not one of {}.", choices.join(", "));
        }
    }

    /// A whole number in `range`, asked again until it is one.
    fn number(&mut self, question: &str, default: u64, range: std::ops::RangeInclusive<u64>) -> Option<u64> {
        loop {
            match self.text(question, &default.to_string())?.parse() {
                Ok(n) if range.contains(&n) => return Some(n),
                _ => println!("Error: a whole number from {} to {}.", range.start(), range.end()),
            }
        }
    }
}

/// Everything the wizard asks.
struct Answers {
    app_name: String,
    base_url: String,
    behind_proxy: bool,
    database_url: String,
    mongodb_database: Option<String>,
    jwt_secret: String,
    jwt_ttl_seconds: u64,
    email_backend: String,
    from_address: String,
    from_name: String,
    smtp: Option<Smtp>,
    ses_region: Option<String>,
    enable_sms_2fa: bool,
    sms_backend: String,
    enable_admin_router: bool,
    enable_ui_router: bool,
    allow_registration: bool,
    require_verification: bool,
}

struct Smtp {
    host: String,
    port: u64,
    starttls: bool,
    username: String,
    password: Option<String>,
}

fn interview<R: BufRead>(ask: &mut Prompter<R>) -> Option<Answers> {
    let app_name = ask.text("App name", "MyApp")?;
    let base_url = loop {
        let url = ask.text("Public base URL", "http://localhost:8000")?;
        if url.starts_with("http://") || url.starts_with("https://") {
            break url;
        }
        println!("Error: the base URL must start with http:// or https://.");
    };
    let behind_proxy = ask.confirm("Behind a reverse proxy (X-Forwarded-* headers)?", false)?;
    let backend = ask.choice("Database backend", &["sqlite", "postgres", "mongo"], "sqlite")?;
    let slug = app_name.to_lowercase().replace(' ', "_");
    let (database_url, mongodb_database) = match backend.as_str() {
        "sqlite" => {
            let path = ask.text("SQLite file path", &format!("./{slug}.sqlite"))?;
            (format!("sqlite+aiosqlite:///{path}"), None)
        }
        "postgres" => {
            let url = loop {
                let url = coerce_postgres(&ask.text(
                    "Postgres URL",
                    &format!("postgresql+asyncpg://postgres@localhost/{slug}"),
                )?);
                match regstack_core::config::database_kind(&url) {
                    Ok(_) => break url,
                    Err(e) => println!("Error: {e}"),
                }
            };
            (url, None)
        }
        _ => {
            let host = ask.text("MongoDB host", "localhost:27017")?;
            let db = ask.text("MongoDB database", &slug)?;
            (format!("mongodb://{host}/{db}"), Some(db))
        }
    };
    let jwt_secret = if ask.confirm("Auto-generate a 64-byte JWT secret?", true)? {
        regstack_core::token::new_jwt_secret(&regstack::system::OsRandom)
    } else {
        loop {
            let first = ask.secret("JWT secret", "")?;
            let again = ask.secret("Repeat for confirmation", "")?;
            if first != again {
                println!("Error: the two entered values do not match.");
            } else if first.chars().count() < 32 {
                println!("Error: a JWT secret needs at least 32 characters.");
            } else {
                break first;
            }
        }
    };
    let jwt_ttl_seconds = ask.number("JWT lifetime in seconds", 7200, 60..=2_592_000)?;
    let email_backend = ask.choice("Email backend", &["console", "smtp", "ses"], "console")?;
    if email_backend == "ses" {
        warn(
            "ses",
            "`regstack ses setup` will check credentials and the sender domain against AWS; it is still to come",
        );
    }
    let host = url_host(&base_url)
        .filter(|h| h.contains('.'))
        .map(str::to_ascii_lowercase);
    let from_address = ask.text(
        "Sender email address",
        &format!("noreply@{}", host.as_deref().unwrap_or("example.com")),
    )?;
    let from_name = ask.text("Sender display name", &app_name)?;
    let (mut smtp, mut ses_region) = (None, None);
    if email_backend == "smtp" {
        let host = loop {
            let h = ask.text("SMTP host", "")?;
            if !h.is_empty() {
                break h;
            }
            println!("Error: an SMTP host is needed.");
        };
        let port = ask.number("SMTP port", 587, 1..=65_535)?;
        let starttls = ask.confirm("Use STARTTLS?", true)?;
        let username = ask.text("SMTP username", "")?;
        let password = Some(ask.secret("SMTP password", "")?).filter(|p| !p.is_empty());
        if !username.is_empty() && password.is_none() {
            warn(
                "smtp",
                "a username but no password: set REGSTACK_EMAIL__SMTP_PASSWORD before the server starts, or authenticated sends fail",
            );
        }
        smtp = Some(Smtp {
            host,
            port,
            starttls,
            username,
            password,
        });
    } else if email_backend == "ses" {
        ses_region = Some(ask.text("AWS region", "eu-west-1")?);
    }
    let enable_sms_2fa = ask.confirm("Enable SMS-based 2FA?", false)?;
    let sms_backend = if enable_sms_2fa {
        ask.choice("SMS backend", &["sns", "twilio"], "sns")?
    } else {
        "null".to_string()
    };
    let enable_admin_router = ask.confirm("Enable JSON admin router?", false)?;
    let enable_ui_router = ask.confirm("Enable server-rendered UI pages?", false)?;
    let allow_registration = ask.confirm("Allow self-service registration?", true)?;
    let require_verification = ask.confirm("Require email verification before login?", false)?;
    Some(Answers {
        app_name,
        base_url,
        behind_proxy,
        database_url,
        mongodb_database,
        jwt_secret,
        jwt_ttl_seconds,
        email_backend,
        from_address,
        from_name,
        smtp,
        ses_region,
        enable_sms_2fa,
        sms_backend,
        enable_admin_router,
        enable_ui_router,
        allow_registration,
        require_verification,
    })
}

/// 0.9.3 pins the asyncpg driver and rewrites a plain Postgres URL to say so; the scheme
/// means the same here, and keeping it keeps the file valid for 0.9.3.
fn coerce_postgres(url: &str) -> String {
    if url.starts_with("postgresql+asyncpg://") {
        return url.to_string();
    }
    for plain in ["postgresql://", "postgres://", "postgres+asyncpg://"] {
        if let Some(rest) = url.strip_prefix(plain) {
            println!("Note: regstack 0.9.3 pins the asyncpg driver; writing postgresql+asyncpg://");
            return format!("postgresql+asyncpg://{rest}");
        }
    }
    url.to_string()
}

/// The host of an `http(s)://` URL.
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split(':').next()?;
    (!host.is_empty()).then_some(host)
}

/// A TOML basic string, quoted and escaped, so any answer (a quote in the app name, say)
/// leaves a file that parses.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Answers {
    /// `regstack.toml`, laid out as 0.9.3 writes it, with every string escaped.
    fn toml(&self) -> String {
        let mut lines = vec![
            "# regstack.toml: generated by `regstack init`. Re-run to regenerate.".to_string(),
            format!("app_name = {}", quoted(&self.app_name)),
            format!("base_url = {}", quoted(&self.base_url)),
            format!("behind_proxy = {}", self.behind_proxy),
            String::new(),
        ];
        if let Some(db) = &self.mongodb_database {
            lines.push(format!("mongodb_database = {}", quoted(db)));
            lines.push(String::new());
        }
        lines.extend([
            format!("jwt_ttl_seconds = {}", self.jwt_ttl_seconds),
            String::new(),
            format!("require_verification = {}", self.require_verification),
            format!("allow_registration = {}", self.allow_registration),
            format!("enable_admin_router = {}", self.enable_admin_router),
            format!("enable_ui_router = {}", self.enable_ui_router),
            format!("enable_sms_2fa = {}", self.enable_sms_2fa),
            String::new(),
            "[email]".to_string(),
            format!("backend = {}", quoted(&self.email_backend)),
            format!("from_address = {}", quoted(&self.from_address)),
            format!("from_name = {}", quoted(&self.from_name)),
        ]);
        if let Some(smtp) = &self.smtp {
            lines.push(format!("smtp_host = {}", quoted(&smtp.host)));
            lines.push(format!("smtp_port = {}", smtp.port));
            lines.push(format!("smtp_starttls = {}", smtp.starttls));
            if !smtp.username.is_empty() {
                lines.push(format!("smtp_username = {}", quoted(&smtp.username)));
            }
        }
        if let Some(region) = &self.ses_region {
            lines.push(format!("ses_region = {}", quoted(region)));
        }
        lines.extend([
            String::new(),
            "[sms]".to_string(),
            format!("backend = {}", quoted(&self.sms_backend)),
            String::new(),
        ]);
        lines.join("\n")
    }

    /// `regstack.secrets.env`: the JWT secret, the database URL and any SMTP password.
    fn secrets(&self) -> String {
        // Each value in double quotes: both regstack's and 0.9.3's readers strip exactly one
        // pair, so a value that itself starts and ends with a quote survives.
        let mut lines = vec![
            "# regstack.secrets.env: keep out of version control.".to_string(),
            format!("REGSTACK_JWT_SECRET=\"{}\"", self.jwt_secret),
            format!("REGSTACK_DATABASE_URL=\"{}\"", self.database_url),
        ];
        if let Some(password) = self.smtp.as_ref().and_then(|s| s.password.as_ref()) {
            lines.push(format!("REGSTACK_EMAIL__SMTP_PASSWORD=\"{password}\""));
        }
        lines.join("\n") + "\n"
    }
}
