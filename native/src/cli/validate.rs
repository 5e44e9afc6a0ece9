//! `regstack validate` (docs/cli.md, "validate"): the end-to-end probe of a running
//! deployment. It registers a throwaway account, walks every flow the deployment offers
//! through its JSON API, reads the one-time links and codes addressed to that account out of
//! the deployment's own output (a log source), and deletes the account again, printing one
//! line per check.

use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use regstack_core::transcript::{find_links, find_sms_code, sms_recipient, token_of, LinkKind, SmsKind};
use reqwest::header::{HeaderMap, LOCATION};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, BufReader};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// What `validate` was asked to do: its flags.
#[derive(clap::Args)]
pub struct Options {
    /// Where the JSON API is mounted, e.g. https://host/api/auth.
    #[arg(long)]
    pub url: String,
    /// Where to follow the deployment's output: file:PATH, ssh:USER@HOST:PATH, docker:NAME or cmd:COMMAND.
    #[arg(long, value_name = "SPEC")]
    pub log_source: Option<String>,
    /// A phone number (E.164) for the SMS second-factor phase; without it that phase is skipped.
    #[arg(long, value_name = "E164")]
    pub phone: Option<String>,
    /// The throwaway account's domain (reserved by RFC 2606, so no real mail goes out).
    #[arg(long, default_value = "regstack-probe.example")]
    pub probe_email_domain: String,
    /// The throwaway account's password (default: 32 random bytes, URL-safe).
    #[arg(long)]
    pub password: Option<String>,
    /// Phases to leave out, comma-separated: oauth, sms, reset, account.
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<String>,
    /// A JSON report instead of the ✔/✘ lines.
    #[arg(long)]
    pub json: bool,
    /// Leave the probe account behind (for debugging).
    #[arg(long)]
    pub no_cleanup: bool,
    /// Print every request, and every line read while waiting for a link or code.
    #[arg(short, long)]
    pub verbose: bool,
    /// Do not verify TLS certificates (self-signed staging).
    #[arg(long)]
    pub insecure: bool,
    /// Seconds each request may take.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Seconds to wait for each emailed link or texted code.
    #[arg(long, default_value_t = 30.0)]
    pub wait: f64,
}

/// Where the deployment's output can be followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogSource {
    /// `file:PATH`: a local file, from its current end.
    File(String),
    /// `ssh:USER@HOST:PATH`: a file on another host, over SSH with key authentication.
    Ssh {
        /// `user@host`.
        target: String,
        /// The file there.
        path: String,
    },
    /// `docker:NAME`: a container's output from now on.
    Docker(String),
    /// `cmd:SHELL`: any command that streams the output to its own.
    Cmd(String),
}

impl std::str::FromStr for LogSource {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let (kind, rest) = spec
            .split_once(':')
            .ok_or_else(|| format!("{spec:?} is not KIND:VALUE (file:, ssh:, docker: or cmd:)"))?;
        let nonempty = |v: &str, what: &str| {
            if v.trim().is_empty() {
                Err(format!("{kind}: needs {what}"))
            } else {
                Ok(v.to_string())
            }
        };
        match kind {
            "file" => Ok(LogSource::File(nonempty(rest, "a path")?)),
            "ssh" => {
                // `user@host:path`, or `user@[v6 address]:path`.
                let split = match rest.find("@[") {
                    Some(_) => rest.find("]:").map(|at| (&rest[..=at], &rest[at + 2..])),
                    None => rest.split_once(':'),
                };
                let (target, path) = split.ok_or_else(|| "ssh: takes USER@HOST:PATH".to_string())?;
                if !target.contains('@') || target.starts_with('-') {
                    return Err("ssh: takes USER@HOST:PATH".into());
                }
                Ok(LogSource::Ssh {
                    target: target.to_string(),
                    path: nonempty(path, "a path")?,
                })
            }
            "docker" if rest.starts_with('-') => Err("docker: takes a container name".into()),
            "docker" => Ok(LogSource::Docker(nonempty(rest, "a container name")?)),
            "cmd" => Ok(LogSource::Cmd(nonempty(rest, "a command")?)),
            other => Err(format!(
                "unknown log source kind {other:?} (file:, ssh:, docker: or cmd:)"
            )),
        }
    }
}

/// A string in single quotes for a POSIX shell.
fn shell_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The line a remote follower prints once it is following, so the probe knows when to start.
const READY: &str = "regstack-validate: following";

impl LogSource {
    /// The command that follows the output (`None` for a file, followed in-process), in its
    /// own process group so the whole of it stops with the probe.
    fn command(&self) -> Option<tokio::process::Command> {
        let (program, args): (&str, Vec<String>) = match self {
            LogSource::File(_) => return None,
            LogSource::Ssh { target, path } => (
                "ssh",
                vec![
                    "-o".into(),
                    "BatchMode=yes".into(),
                    "-o".into(),
                    "StrictHostKeyChecking=accept-new".into(),
                    "--".into(),
                    target.clone(),
                    format!("echo '{READY}'; exec tail -n 0 -F -- {}", shell_quoted(path)),
                ],
            ),
            LogSource::Docker(name) => (
                "docker",
                vec!["logs".into(), "-f".into(), "--since".into(), "1s".into(), name.clone()],
            ),
            LogSource::Cmd(shell) => ("sh", vec!["-c".into(), shell.clone()]),
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        Some(cmd)
    }
}

/// A follower process, its whole group stopped when the probe ends.
struct Follower(tokio::process::Child);

impl Drop for Follower {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self.0.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The largest line kept while waiting for its end.
const LINE_MAX: usize = 1 << 20;

/// Hands each complete line of `bytes` (appended to `partial`) to `tx`; false once the
/// receiver is gone.
fn send_lines(partial: &mut Vec<u8>, bytes: &[u8], tx: &UnboundedSender<String>) -> bool {
    partial.extend_from_slice(bytes);
    while let Some(end) = partial.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = partial.drain(..=end).collect();
        let line = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        if tx.send(line).is_err() {
            return false;
        }
    }
    if partial.len() > LINE_MAX {
        partial.clear();
    }
    true
}

/// Follows a local file by name from its current end, as `tail -n 0 -F` does, with no
/// process in between: the end is taken before this returns, so nothing written after it is
/// missed. A truncated or replaced file is read again from its start.
fn follow_file(path: &str, tx: UnboundedSender<String>) -> Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    let path = std::path::PathBuf::from(path);
    let identity = |m: &std::fs::Metadata| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        }
        #[cfg(not(unix))]
        {
            let _ = m;
            (0, 0)
        }
    };
    let start = std::fs::metadata(&path).map_err(|e| format!("cannot follow {}: {e}", path.display()))?;
    if !start.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let mut id = identity(&start);
    let mut offset = start.len();
    tokio::task::spawn_blocking(move || {
        let mut partial = Vec::new();
        while !tx.is_closed() {
            std::thread::sleep(Duration::from_millis(50));
            // One open file for the size, the identity and the read, so a rotation in
            // between cannot mix two files.
            let Ok(mut file) = std::fs::File::open(&path) else {
                continue;
            };
            let Ok(meta) = file.metadata() else { continue };
            if identity(&meta) != id || meta.len() < offset {
                id = identity(&meta);
                offset = 0;
                partial.clear();
            }
            if meta.len() == offset {
                continue;
            }
            let mut buf = Vec::new();
            if file.seek(SeekFrom::Start(offset)).is_err() || file.read_to_end(&mut buf).is_err() {
                continue;
            }
            offset += buf.len() as u64;
            if !send_lines(&mut partial, &buf, &tx) {
                return;
            }
        }
    });
    Ok(())
}

/// Forwards a stream's lines, whatever their encoding.
fn forward<R: AsyncRead + Unpin + Send + 'static>(r: R, tx: UnboundedSender<String>) {
    use tokio::io::AsyncReadExt;
    tokio::spawn(async move {
        let mut reader = BufReader::new(r);
        let mut partial = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !send_lines(&mut partial, &buf[..n], &tx) {
                        break;
                    }
                }
            }
        }
    });
}

/// The deployment's output, line by line, as the log source prints it.
struct Tail {
    lines: UnboundedReceiver<String>,
    verbose: bool,
    /// The recipient of the email whose body is being read.
    email_to: Option<String>,
    _follower: Option<Follower>,
}

impl Tail {
    async fn start(source: &LogSource, verbose: bool, wait: Duration) -> Result<Tail, String> {
        let (tx, rx) = unbounded_channel();
        let mut tail = Tail {
            lines: rx,
            verbose,
            email_to: None,
            _follower: None,
        };
        let Some(mut cmd) = source.command() else {
            if let LogSource::File(path) = source {
                follow_file(path, tx)?;
            }
            return Ok(tail);
        };
        let mut child = cmd.spawn().map_err(|e| format!("cannot start the log source: {e}"))?;
        // docker and ssh print to either stream: both are read.
        if let Some(out) = child.stdout.take() {
            forward(out, tx.clone());
        }
        if let Some(err) = child.stderr.take() {
            forward(err, tx);
        }
        tail._follower = Some(Follower(child));
        match source {
            // The remote side says when it follows: nothing is sent before that.
            LogSource::Ssh { .. } => {
                tail.wait(wait, "the ssh follower's start", |line| {
                    line.contains(READY).then_some(())
                })
                .await?;
            }
            // A command gets a moment to reach the end of the output; docker's `--since 1s`
            // covers that moment too.
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
        Ok(tail)
    }

    /// Reads lines until `pick` finds what it wants in one; lines before it are spent.
    async fn wait<T>(&mut self, wait: Duration, what: &str, pick: impl Fn(&str) -> Option<T>) -> Result<T, String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    if self.verbose {
                        eprintln!("  | {}", printable(&line));
                    }
                    // Whose body follows: named on the body's own first line (older
                    // deployments: the `To:` line before it).
                    if let Some(rest) = line
                        .split_once("[regstack/console-email] text body (to ")
                        .map(|(_, r)| r)
                    {
                        self.email_to = rest.rsplit_once("):").map(|(to, _)| to.to_string());
                    } else if line.contains("[regstack/console-email] To: ") {
                        self.email_to = sms_recipient(&line);
                    }
                    if let Some(found) = pick(&line) {
                        return Ok(found);
                    }
                }
                Ok(None) => return Err(format!("the log source ended before {what} appeared")),
                Err(_) => {
                    return Err(format!(
                        "no {what} in the deployment's output within {} s (console backend with log_bodies?)",
                        wait.as_secs()
                    ))
                }
            }
        }
    }

    /// The token of the next link of `kind` emailed to `to` (the first link of a line is the
    /// one read; links to anyone else, on a shared deployment, are passed over).
    async fn token(&mut self, kind: LinkKind, to: &str, wait: Duration) -> Result<String, String> {
        let what = format!("{} link for {to}", kind.path());
        let to = to.to_ascii_lowercase();
        loop {
            let link = self
                .wait(wait, &what, |line| {
                    find_links(line).into_iter().next().filter(|l| l.contains(kind.path()))
                })
                .await?;
            if self.email_to.as_deref().map(str::to_ascii_lowercase).as_deref() == Some(to.as_str()) {
                return token_of(&link).ok_or_else(|| format!("the link {link:?} has no token"));
            }
        }
    }

    /// The next SMS code of `kind` texted to `phone`.
    async fn code(&mut self, kind: SmsKind, phone: &str, wait: Duration) -> Result<String, String> {
        let what = format!("\"{}\" SMS to {phone}", kind.phrase());
        self.wait(wait, &what, |line| {
            find_sms_code(line, kind).filter(|_| sms_recipient(line).as_deref() == Some(phone))
        })
        .await
    }
}

/// `text` with control characters (a hostile server's terminal escapes) shown as `?`.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// The phases `--skip` can leave out.
const SKIPPABLE: [&str; 4] = ["oauth", "sms", "reset", "account"];

/// The longest `--timeout` or `--wait` taken.
const LONGEST: f64 = 3600.0;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pass,
    Fail,
    Skip,
}

struct Check {
    name: String,
    outcome: Outcome,
    detail: String,
    seconds: f64,
}

/// One HTTP answer.
struct Answer {
    status: u16,
    body: Value,
    headers: HeaderMap,
}

impl Answer {
    fn text(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }

    /// "expected X, got Y: detail", with only the messages of a validation list (its
    /// `input` values may echo a password back).
    fn unexpected(&self, expected: &str) -> String {
        let detail = match self.body.get("detail") {
            Some(Value::String(s)) => format!(": {s}"),
            Some(Value::Array(items)) => {
                let msgs: Vec<&str> = items
                    .iter()
                    .filter_map(|i| i.get("msg").and_then(Value::as_str))
                    .collect();
                format!(": {}", msgs.join("; "))
            }
            _ => String::new(),
        };
        format!("expected {expected}, got {}{detail}", self.status)
    }
}

/// The probe's state: its HTTP client, the account it made, and the checks so far.
struct Probe {
    http: reqwest::Client,
    base: String,
    verbose: bool,
    json: bool,
    wait: Duration,
    tail: Option<Tail>,
    phone: Option<String>,
    email: String,
    password: String,
    /// A live session of the account, when the probe holds one.
    token: Option<String>,
    /// Whether the probe account exists (a registration waiting for its link is no account).
    account: bool,
    checks: Vec<Check>,
}

impl Probe {
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Result<Answer, String> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        // Without the URL: `--url` may carry credentials.
        let failed = |e: reqwest::Error| format!("{method} {path}: {}", e.without_url());
        let resp = req.send().await.map_err(failed)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(failed)?;
        if self.verbose {
            eprintln!("  {method} {path} -> {status}");
        }
        Ok(Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            headers,
        })
    }

    /// `call`, and the answer only with status `want`.
    async fn expect(
        &mut self,
        want: u16,
        method: Method,
        path: &str,
        body: Value,
        token: Option<&str>,
    ) -> Result<Answer, String> {
        let body = (!body.is_null()).then_some(body);
        let r = self.call(method.clone(), path, body, token).await?;
        if r.status == want {
            Ok(r)
        } else {
            Err(format!("{method} {path}: {}", r.unexpected(&want.to_string())))
        }
    }

    /// Records a check and prints it (unless the report is JSON); answers whether it passed.
    fn record(&mut self, name: &str, started: Instant, result: Result<String, String>) -> bool {
        let (outcome, detail) = match result {
            Ok(d) => (Outcome::Pass, d),
            Err(d) => (Outcome::Fail, d),
        };
        self.push(name, outcome, detail, started.elapsed().as_secs_f64());
        outcome == Outcome::Pass
    }

    fn skip(&mut self, name: &str, why: &str) {
        self.push(name, Outcome::Skip, why.to_string(), 0.0);
    }

    fn push(&mut self, name: &str, outcome: Outcome, detail: String, seconds: f64) {
        let detail = printable(&detail);
        if !self.json {
            let mark = match outcome {
                Outcome::Pass => '\u{2714}',
                Outcome::Fail => '\u{2718}',
                Outcome::Skip => '\u{21b7}',
            };
            if outcome == Outcome::Skip {
                println!("{mark} {name}: {detail}");
            } else {
                println!("{mark} {name}: {detail} ({seconds:.2} s)");
            }
        }
        self.checks.push(Check {
            name: name.to_string(),
            outcome,
            detail,
            seconds,
        });
    }

    /// Signs in with the probe's address and password; the session is kept.
    async fn login(&mut self) -> Result<String, String> {
        let body = json!({ "email": self.email, "password": self.password });
        let r = self.expect(200, Method::POST, "/login", body, None).await?;
        if r.text("status") == Some("mfa_required") {
            return Err("the sign-in asked for an SMS code".into());
        }
        let token = r.text("access_token").ok_or("200 without an access_token")?.to_string();
        self.token = Some(token.clone());
        Ok(token)
    }

    /// `GET /me` with `token` must answer 401 now; the probe drops the session either way.
    async fn refused(&mut self, token: &str) -> Result<(), String> {
        if self.token.as_deref() == Some(token) {
            self.token = None;
        }
        let r = self.call(Method::GET, "/me", None, Some(token)).await?;
        if r.status == 401 {
            Ok(())
        } else {
            Err(format!("the old session still works: GET /me answered {}", r.status))
        }
    }

    /// A live session: the one held, else a new sign-in.
    async fn session(&mut self) -> Result<String, String> {
        match self.token.clone() {
            Some(t) => Ok(t),
            None => self.login().await,
        }
    }

    /// The token of the next link of `kind` emailed to `to`.
    async fn emailed(&mut self, kind: LinkKind, to: &str) -> Result<String, String> {
        let wait = self.wait;
        self.tail.as_mut().ok_or("no log source")?.token(kind, to, wait).await
    }

    /// The next code of `kind` texted to `phone`.
    async fn texted(&mut self, kind: SmsKind, phone: &str) -> Result<String, String> {
        let wait = self.wait;
        self.tail.as_mut().ok_or("no log source")?.code(kind, phone, wait).await
    }
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("the OS has randomness");
    regstack_core::hex::encode(&b)
}

/// 32 random bytes, URL-safe, as 0.9.3's probe makes its password.
fn random_password() -> String {
    regstack_core::token::new_url_token(&regstack::system::OsRandom)
}

/// Seconds as a duration, if they are a sane number of them.
fn seconds(s: f64) -> Option<Duration> {
    (s > 0.0 && s <= LONGEST)
        .then(|| Duration::try_from_secs_f64(s).ok())
        .flatten()
}

/// Runs the probe. Exit 0 when no check failed, 1 when one did, 2 for a bad flag.
pub async fn run(o: Options) -> ExitCode {
    let usage = |why: String| {
        eprintln!("error: {why}");
        ExitCode::from(2)
    };
    let source = match o.log_source.as_deref().map(str::parse::<LogSource>).transpose() {
        Ok(s) => s,
        Err(e) => return usage(format!("--log-source: {e}")),
    };
    if let Some(bad) = o.skip.iter().find(|s| !SKIPPABLE.contains(&s.as_str())) {
        return usage(format!("--skip: {bad:?} is not one of {}", SKIPPABLE.join(", ")));
    }
    if !(o.url.starts_with("http://") || o.url.starts_with("https://")) {
        return usage("--url must be an http:// or https:// URL".into());
    }
    let (Some(timeout), Some(wait)) = (seconds(o.timeout), seconds(o.wait)) else {
        return usage(format!("--timeout and --wait take seconds above 0, at most {LONGEST}"));
    };
    let http = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .danger_accept_invalid_certs(o.insecure)
        .build()
    {
        Ok(c) => c,
        Err(e) => return usage(format!("cannot build the HTTP client: {e}")),
    };
    let tail = match &source {
        Some(s) => match Tail::start(s, o.verbose, wait).await {
            Ok(t) => Some(t),
            Err(e) => return usage(e),
        },
        None => None,
    };
    let mut p = Probe {
        http,
        base: o.url.trim_end_matches('/').to_string(),
        verbose: o.verbose,
        json: o.json,
        wait,
        tail,
        phone: o.phone.clone(),
        email: format!("validate-{}@{}", random_hex(6), o.probe_email_domain),
        password: o.password.clone().unwrap_or_else(random_password),
        token: None,
        account: false,
        checks: Vec::new(),
    };
    let skip = |phase: &str| o.skip.iter().any(|s| s == phase);
    walk(&mut p, &skip).await;
    if o.no_cleanup && p.account {
        let password = if o.password.is_some() {
            "the --password given (or the one a reset set, if that phase ran)"
        } else {
            "random; give --password to choose one"
        };
        p.skip(
            "cleanup",
            &format!("--no-cleanup: {} stays; its password is {password}", p.email),
        );
    } else if p.account {
        cleanup(&mut p).await;
    } else if p
        .checks
        .iter()
        .any(|c| c.name == "register" && c.outcome == Outcome::Pass)
    {
        p.skip(
            "cleanup",
            "the registration was never confirmed, so there is no account (its pending row expires)",
        );
    }
    if o.json {
        let report: Vec<Value> = p
            .checks
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "ok": c.outcome != Outcome::Fail,
                    "skipped": c.outcome == Outcome::Skip,
                    "detail": c.detail,
                    "seconds": (c.seconds * 1000.0).round() / 1000.0,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    }
    if p.checks.iter().any(|c| c.outcome == Outcome::Fail) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// What the deployment mounts, from the answers to probes that only a mounted route gives.
/// A probe that got no answer counts as mounted, so its phase runs and says what failed.
struct Mounted {
    oauth: bool,
    sms: bool,
    reset: bool,
}

/// The phases in order. Phases 1 and 3 end the walk when they fail; the others record
/// their outcome and the walk goes on.
async fn walk(p: &mut Probe, skip: &dyn Fn(&str) -> bool) {
    // Phase 1: reachability, with a sign-in for an address that cannot exist.
    let t = Instant::now();
    let body = json!({ "email": "reachability@probe.invalid", "password": "not-a-real-pw" });
    let reach = match p.call(Method::POST, "/login", Some(body), None).await {
        Ok(r) if matches!(r.status, 400 | 401 | 422) => Ok(format!("POST /login answered {}", r.status)),
        Ok(r) if r.status == 404 => Err("404: is --url the API prefix (for example https://host/api/auth)?".into()),
        Ok(r) => Err(r.unexpected("400, 401 or 422")),
        Err(e) => Err(e),
    };
    if !p.record("reachability", t, reach) {
        return;
    }
    let mounted = features(p).await;
    if !register(p).await {
        return;
    }
    if skip("account") {
        p.skip("account", "--skip account");
    } else {
        account(p).await;
    }
    if skip("reset") {
        p.skip("password reset", "--skip reset");
    } else if !mounted.reset {
        p.skip("password reset", "not mounted (enable_password_reset is off)");
    } else if p.tail.is_none() {
        p.skip("password reset", "needs --log-source to read the emailed link");
    } else {
        let t = Instant::now();
        let result = password_reset(p).await;
        p.record("password reset", t, result);
    }
    if skip("oauth") {
        p.skip("oauth", "--skip oauth");
    } else if !mounted.oauth {
        p.skip("oauth", "not mounted (enable_oauth is off)");
    } else {
        oauth_start(p).await;
    }
    if skip("sms") {
        p.skip("sms 2fa", "--skip sms");
    } else if !mounted.sms {
        p.skip("sms 2fa", "not mounted (enable_sms_2fa is off)");
    } else if p.phone.is_none() {
        p.skip("sms 2fa", "needs --phone");
    } else if p.tail.is_none() {
        p.skip("sms 2fa", "needs --log-source to read the texted codes");
    } else {
        let t = Instant::now();
        let result = sms_2fa(p).await;
        p.record("sms 2fa", t, result);
    }
}

/// Phase 2: which routers are mounted (a route that is not answers 404).
async fn features(p: &mut Probe) -> Mounted {
    let t = Instant::now();
    let present = |r: Result<Answer, String>| r.map(|a| a.status != 404).unwrap_or(true);
    let oauth = present(p.call(Method::GET, "/oauth/providers", None, None).await);
    let admin = present(p.call(Method::GET, "/admin/stats", None, None).await);
    let body = json!({ "phone_number": "+15555550100", "current_password": "x" });
    let sms = present(p.call(Method::POST, "/phone/start", Some(body), None).await);
    let body = json!({ "email": format!("feature-probe@{}", p.email.rsplit_once('@').map_or("", |(_, d)| d)) });
    let reset = present(p.call(Method::POST, "/forgot-password", Some(body), None).await);
    let listed: Vec<&str> = [
        ("oauth", oauth),
        ("admin", admin),
        ("sms-2fa", sms),
        ("password-reset", reset),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(name, _)| *name)
    .collect();
    let detail = if listed.is_empty() {
        "none of oauth, admin, sms-2fa, password-reset".to_string()
    } else {
        listed.join(", ")
    };
    p.record("features", t, Ok(detail));
    Mounted { oauth, sms, reset }
}

/// Phase 3: register, verify, sign in, `/me`, sign out (the token refused), sign in again.
/// Answers whether the walk can go on.
async fn register(p: &mut Probe) -> bool {
    let t = Instant::now();
    let body = json!({ "email": p.email, "password": p.password, "full_name": "Validate Probe" });
    let r = match p.call(Method::POST, "/register", Some(body), None).await {
        Ok(r) if matches!(r.status, 201 | 202) => r,
        Ok(r) => return p.record("register", t, Err(r.unexpected("201 or 202"))),
        Err(e) => return p.record("register", t, Err(e)),
    };
    let pending = r.text("status") == Some("pending_verification");
    p.record("register", t, Ok(format!("{} as {}", r.status, p.email)));
    if pending {
        let t = Instant::now();
        let result = async {
            if p.tail.is_none() {
                return Err("the account waits for its emailed link: give --log-source to read it".to_string());
            }
            let email = p.email.clone();
            let token = p.emailed(LinkKind::Verify, &email).await?;
            p.expect(200, Method::POST, "/verify", json!({ "token": token }), None)
                .await?;
            Ok("the emailed link confirmed the address".to_string())
        }
        .await;
        if !p.record("verify", t, result) {
            return false;
        }
    } else {
        p.skip("verify", "the deployment does not require verification");
    }
    p.account = true;
    let t = Instant::now();
    let result = p.login().await.map(|_| "200 with a session".to_string());
    if !p.record("login", t, result) {
        return false;
    }
    let token = p.token.clone().unwrap_or_default();
    let t = Instant::now();
    let me = match p.expect(200, Method::GET, "/me", Value::Null, Some(&token)).await {
        Ok(r) if r.text("email").is_some_and(|e| e.eq_ignore_ascii_case(&p.email)) => {
            Ok(format!("id {}", r.text("id").unwrap_or("?")))
        }
        Ok(r) => Err(format!("200 for another address: {:?}", r.text("email"))),
        Err(e) => Err(e),
    };
    if !p.record("me", t, me) {
        return false;
    }
    let t = Instant::now();
    let logout = async {
        p.expect(200, Method::POST, "/logout", Value::Null, Some(&token))
            .await?;
        p.refused(&token).await?;
        Ok("the session is refused afterwards".to_string())
    }
    .await;
    if !p.record("logout", t, logout) {
        return false;
    }
    let t = Instant::now();
    let again = p.login().await.map(|_| "200 with a new session".to_string());
    p.record("login again", t, again)
}

/// Phase 4: profile, password change (old session refused), email change from the link.
async fn account(p: &mut Probe) {
    let t = Instant::now();
    let result = async {
        let session = p.session().await?;
        let body = json!({ "full_name": "Probe Updated" });
        let r = p.expect(200, Method::PATCH, "/me", body, Some(&session)).await?;
        match r.text("full_name") {
            Some("Probe Updated") => Ok("the new name is echoed".to_string()),
            other => Err(format!("200, but full_name is {other:?}")),
        }
    }
    .await;
    p.record("profile", t, result);

    let t = Instant::now();
    let result = async {
        let session = p.session().await?;
        let new_password = random_password();
        let body = json!({ "current_password": p.password, "new_password": new_password });
        p.expect(200, Method::POST, "/change-password", body, Some(&session))
            .await?;
        // The server holds the new password from here on, whatever follows.
        p.password = new_password;
        p.refused(&session).await?;
        p.login().await?;
        Ok("the old session is refused; the new password signs in".to_string())
    }
    .await;
    p.record("change password", t, result);

    if p.tail.is_none() {
        p.skip("change email", "needs --log-source to read the emailed link");
        return;
    }
    let t = Instant::now();
    let result = async {
        let session = p.session().await?;
        let new_email = p.email.replacen("validate-", "validate-renamed-", 1);
        let body = json!({ "new_email": new_email, "current_password": p.password });
        p.expect(202, Method::POST, "/change-email", body, Some(&session))
            .await?;
        let token = p.emailed(LinkKind::ConfirmEmailChange, &new_email).await?;
        p.expect(
            200,
            Method::POST,
            "/confirm-email-change",
            json!({ "token": token }),
            None,
        )
        .await?;
        p.email = new_email;
        // Confirming moves the account's session cutoff: a new sign-in proves the address.
        p.token = None;
        p.login().await?;
        Ok("confirmed from the emailed link; the new address signs in".to_string())
    }
    .await;
    p.record("change email", t, result);
}

/// Phase 5: forgot, the emailed link, a new password (old session refused), sign in.
async fn password_reset(p: &mut Probe) -> Result<String, String> {
    let session = p.session().await?;
    let email = p.email.clone();
    p.expect(202, Method::POST, "/forgot-password", json!({ "email": email }), None)
        .await?;
    let token = p.emailed(LinkKind::ResetPassword, &email).await?;
    let new_password = random_password();
    let body = json!({ "token": token, "new_password": new_password });
    p.expect(200, Method::POST, "/reset-password", body, None).await?;
    p.password = new_password;
    p.refused(&session).await?;
    p.login().await?;
    Ok("reset from the emailed link; the old session is refused".to_string())
}

/// The host of an absolute URL, without user info or port.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.split(':').next().unwrap_or(host)
}

/// Phase 6: a provider round trip starts with a 302 to its authorization endpoint with the
/// client, the state and the redirect URI; Google's at `accounts.google.com`. It is Google's
/// when Google is on offer, else the first provider listed.
async fn oauth_start(p: &mut Probe) {
    let t = Instant::now();
    let session = p.session().await.ok();
    let provider = match p.call(Method::GET, "/oauth/providers", None, session.as_deref()).await {
        Ok(r) if r.status == 200 => {
            let names: Vec<String> = r
                .body
                .get("available")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            if names.iter().any(|n| n == "google") {
                Some("google".to_string())
            } else {
                names.into_iter().next()
            }
        }
        _ => Some("google".to_string()),
    };
    let Some(provider) = provider else {
        p.skip("oauth", "mounted, with no provider configured");
        return;
    };
    let path = format!("/oauth/{provider}/start");
    let result = match p.expect(302, Method::GET, &path, Value::Null, None).await {
        Ok(r) => {
            let location = r
                .headers
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let query = location.split_once('?').map(|(_, q)| q).unwrap_or("");
            let has = |k: &str| {
                query.split('&').any(|pair| {
                    pair.strip_prefix(k)
                        .and_then(|v| v.strip_prefix('='))
                        .is_some_and(|v| !v.is_empty())
                })
            };
            let missing: Vec<&str> = ["client_id", "state", "redirect_uri"]
                .into_iter()
                .filter(|k| !has(k))
                .collect();
            let host = host_of(&location);
            if !missing.is_empty() {
                Err(format!("the redirect lacks {}", missing.join(", ")))
            } else if provider == "google" && host != "accounts.google.com" {
                Err(format!("Google's start went to {host}, not accounts.google.com"))
            } else {
                Ok(format!("{provider}: 302 to {host}"))
            }
        }
        Err(e) => Err(e),
    };
    p.record("oauth", t, result);
}

/// Phase 7: the SMS second factor set up with the texted code, a sign-in that asks for one
/// and takes the texted code, then the factor turned off.
async fn sms_2fa(p: &mut Probe) -> Result<String, String> {
    let phone = p.phone.clone().unwrap_or_default();
    let session = p.session().await?;
    let body = json!({ "phone_number": phone, "current_password": p.password });
    let r = p
        .expect(202, Method::POST, "/phone/start", body, Some(&session))
        .await?;
    let pending = r
        .text("pending_token")
        .ok_or("202 without a pending_token")?
        .to_string();
    let code = p.texted(SmsKind::PhoneSetup, &phone).await?;
    let body = json!({ "pending_token": pending, "code": code });
    p.expect(200, Method::POST, "/phone/confirm", body, None).await?;
    // From here a password alone no longer signs in: the session is kept for the cleanup
    // until the factor is off again.
    let body = json!({ "email": p.email, "password": p.password });
    let r = p.expect(200, Method::POST, "/login", body, None).await?;
    if r.text("status") != Some("mfa_required") {
        return Err("the sign-in did not ask for a code".into());
    }
    let pending = r
        .text("mfa_pending_token")
        .ok_or("mfa_required without an mfa_pending_token")?
        .to_string();
    let code = p.texted(SmsKind::LoginMfa, &phone).await?;
    let body = json!({ "mfa_pending_token": pending, "code": code });
    let r = p.expect(200, Method::POST, "/login/mfa-confirm", body, None).await?;
    let token = r.text("access_token").ok_or("200 without an access_token")?.to_string();
    let body = json!({ "current_password": p.password });
    p.expect(200, Method::DELETE, "/phone", body, Some(&token)).await?;
    p.token = Some(token);
    Ok("set up with the texted code, asked for at sign-in, turned off".into())
}

/// Phase 8: the probe account goes with `DELETE /account`, and its session is refused.
async fn cleanup(p: &mut Probe) {
    let t = Instant::now();
    let result = async {
        let mut token = p.session().await?;
        let body = json!({ "current_password": p.password });
        let mut r = p
            .call(Method::DELETE, "/account", Some(body.clone()), Some(&token))
            .await?;
        if r.status == 401 {
            // The session held was ended by a step that failed: sign in again, once.
            p.token = None;
            token = p.login().await?;
            r = p.call(Method::DELETE, "/account", Some(body), Some(&token)).await?;
        }
        if r.status != 200 {
            return Err(format!("DELETE /account: {}", r.unexpected("200")));
        }
        p.refused(&token).await?;
        Ok(format!("{} deleted", p.email))
    }
    .await;
    let result = result.map_err(|e| format!("{e} (the probe account {} may remain)", p.email));
    p.record("cleanup", t, result);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sources_parse_or_say_why_not() {
        assert_eq!(
            "file:/var/log/r.log".parse(),
            Ok(LogSource::File("/var/log/r.log".into()))
        );
        assert_eq!(
            "ssh:deploy@host:/var/log/r.log".parse(),
            Ok(LogSource::Ssh {
                target: "deploy@host".into(),
                path: "/var/log/r.log".into()
            })
        );
        assert_eq!(
            "ssh:deploy@[2001:db8::1]:/var/log/r.log".parse(),
            Ok(LogSource::Ssh {
                target: "deploy@[2001:db8::1]".into(),
                path: "/var/log/r.log".into()
            })
        );
        assert_eq!("docker:api".parse(), Ok(LogSource::Docker("api".into())));
        assert_eq!(
            "cmd:journalctl -fu regstack".parse(),
            Ok(LogSource::Cmd("journalctl -fu regstack".into()))
        );
        for bad in [
            "",
            "file:",
            "ssh:host:/x",
            "ssh:-oProxyCommand=x@h:/p",
            "docker:--privileged",
            "tcp:1",
            "nothing",
        ] {
            assert!(bad.parse::<LogSource>().is_err(), "{bad}");
        }
        assert_eq!(shell_quoted("it's"), "'it'\\''s'");
    }

    #[test]
    fn hosts_lines_and_durations() {
        assert_eq!(
            host_of("https://accounts.google.com/o/oauth2/v2/auth?x=1"),
            "accounts.google.com"
        );
        assert_eq!(
            host_of("https://accounts.google.com.evil.test/auth"),
            "accounts.google.com.evil.test"
        );
        assert_eq!(
            host_of("https://u:p@accounts.google.com:443/auth"),
            "accounts.google.com"
        );
        assert_eq!(host_of("http://[::1]:8080/x"), "[::1]");
        let (tx, mut rx) = unbounded_channel();
        let mut partial = Vec::new();
        assert!(send_lines(&mut partial, b"one\r\ntw", &tx));
        assert!(send_lines(&mut partial, b"o \xff\nthree", &tx));
        assert_eq!(rx.try_recv().ok().as_deref(), Some("one"));
        assert_eq!(rx.try_recv().ok().as_deref(), Some("two \u{fffd}"));
        assert!(rx.try_recv().is_err(), "an unfinished line waits");
        assert_eq!(printable("a\u{1b}[2Jb"), "a?[2Jb");
        assert_eq!(seconds(10.0), Some(Duration::from_secs(10)));
        assert_eq!(seconds(1e300), None);
        assert_eq!(seconds(0.0), None);
        assert_eq!(seconds(f64::NAN), None);
    }
}
