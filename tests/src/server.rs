//! The server process: `regstack serve` or the edge worker under `wrangler dev`, started per
//! scenario with a fresh database, its output read in the background.

use super::*;

/// What the server printed (stdout and stderr): the last lines in memory, for failure
/// messages, and every line in a file that `regstack validate --log-source file:` can follow.
#[derive(Clone, Default)]
pub(crate) struct Log(Arc<StdMutex<Vec<String>>>, Option<Arc<StdMutex<std::fs::File>>>);

impl Log {
    /// A log that also appends each line to `path`.
    fn to_file(path: &Path) -> Log {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("creating the server's output file");
        Log(Arc::default(), Some(Arc::new(StdMutex::new(file))))
    }

    fn push(&self, line: String) {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() >= 5000 {
            v.drain(..1000);
        }
        v.push(line);
    }

    /// One line the server printed on `tag` (`out` or `err`).
    fn printed(&self, tag: &str, line: String) {
        if let Some(file) = &self.1 {
            use std::io::Write;
            let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
        self.push(format!("{tag}| {line}"));
    }

    pub(crate) fn tail(&self, n: usize) -> String {
        let v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        v[v.len().saturating_sub(n)..].join("\n")
    }
}

/// The server's output file, in its directory.
const OUTPUT_FILE: &str = "server-output.log";

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("regstack-conformance-{}-{}", std::process::id(), unique_id()));
        std::fs::create_dir_all(&path).expect("creating the test's temporary directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the `regstack` binary is: `$REGSTACK_BIN`, else `<target>/debug/regstack` found from
/// the test executable (`<target>/debug/deps/<test>-<hash>`).
pub fn binary_path() -> PathBuf {
    if let Some(p) = std::env::var_os("REGSTACK_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "REGSTACK_BIN={} does not exist", p.display());
        return p;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in <target>/<profile>/deps");
    let bin = dir.join(format!("regstack{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "the regstack binary was not found at {}; run `cargo build -p regstack --bin regstack` first \
         (with the same CARGO_TARGET_DIR), or set REGSTACK_BIN",
        bin.display()
    );
    bin
}

/// A loopback port nobody listens on, and that this process has not handed out before. A
/// server takes a few seconds to bind its port (`wrangler dev` more), so without the memory
/// two scenarios starting together could both be given the same port, and one of them would
/// then talk to the other's server.
pub(crate) fn free_port() -> u16 {
    static GIVEN: StdMutex<Vec<u16>> = StdMutex::new(Vec::new());
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("binding an ephemeral port");
        let port = l.local_addr().expect("local_addr").port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

fn spawn_reader<R: AsyncRead + Unpin + Send + 'static>(
    r: R,
    tag: &'static str,
    log: Log,
    tx: Option<UnboundedSender<String>>,
) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string();
                    log.printed(tag, line.clone());
                    if let Some(tx) = &tx {
                        let _ = tx.send(line);
                    }
                }
            }
        }
    });
}

struct Running {
    child: Child,
    port: u16,
    lines: UnboundedReceiver<String>,
    log: Log,
}

/// A running `regstack serve`, killed on drop. Derefs to [`Api`] for the request helpers.
pub struct Server {
    api: Api,
    running: Running,
    lines: Mutex<UnboundedReceiver<String>>,
    env: Vec<(String, String)>,
    database_url: String,
    dir: TempDir,
    native: bool,
}

impl std::ops::Deref for Server {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Server {
    /// Starts a server on a fresh database with the suite's defaults plus `extra_env`.
    pub async fn start(extra_env: &[(&str, &str)]) -> Server {
        Self::start_on(extra_env, false).await
    }

    /// [`Server::start`] with owned pairs (settings built at run time).
    pub async fn start_with(env: &[(String, String)]) -> Server {
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Self::start_on(&pairs, false).await
    }

    /// Starts `regstack serve` even when the suite drives the edge (for scenarios that need
    /// both, such as relayed delivery).
    pub async fn start_native(extra_env: &[(&str, &str)]) -> Server {
        Self::start_on(extra_env, true).await
    }

    async fn start_on(extra_env: &[(&str, &str)], native: bool) -> Server {
        Self::start_prepared(extra_env, native, |_| {}).await
    }

    /// Starts `regstack serve` on its default SQLite database after `prepare` has been given
    /// the directory the database file goes in (`regstack.db`), to lay down a database another
    /// program made (a regstack 0.9.3 one, say).
    pub async fn start_native_on_prepared_sqlite(env: &[(String, String)], prepare: impl FnOnce(&Path)) -> Server {
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Self::start_prepared(&pairs, true, prepare).await
    }

    async fn start_prepared(extra_env: &[(&str, &str)], native: bool, prepare: impl FnOnce(&Path)) -> Server {
        let dir = TempDir::new();
        prepare(&dir.0);
        let template = std::env::var("REGSTACK_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "sqlite+aiosqlite:///{dir}/regstack.db".to_string());
        let id = format!("rs_{}", unique_id());
        let database_url = template.replace("{dir}", &dir.0.to_string_lossy()).replace("{id}", &id);
        if let Ok(setup) = std::env::var("REGSTACK_TEST_DATABASE_SETUP") {
            let setup = setup.replace("{dir}", &dir.0.to_string_lossy()).replace("{id}", &id);
            let status = Command::new("sh")
                .args(["-c", &setup])
                .status()
                .await
                .expect("running the database setup");
            assert!(status.success(), "database setup `{setup}` failed: {status}");
        }
        let env: Vec<(String, String)> = extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut running = launch(&dir.0, &database_url, &env, native).await;
        let (_, dummy) = unbounded_channel();
        let lines = std::mem::replace(&mut running.lines, dummy);
        let api = Api::new(format!("http://127.0.0.1:{}", running.port), running.log.clone());
        Server {
            api,
            running,
            lines: Mutex::new(lines),
            env,
            database_url,
            dir,
            native,
        }
    }

    /// The file every line the server prints is appended to.
    pub fn output_file(&self) -> PathBuf {
        self.dir.0.join(OUTPUT_FILE)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.running.port
    }

    /// A clonable handle for parallel tasks.
    pub fn api(&self) -> Api {
        self.api.clone()
    }

    /// The database URL this server uses.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// The last `n` lines the server printed (stdout and stderr).
    pub fn output_tail(&self, n: usize) -> String {
        self.running.log.tail(n)
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s) and starts a new process on the
    /// same directory, database and JWT secret, with the same extra environment.
    pub async fn restart(&mut self) {
        let env = self.env.clone();
        self.restart_with_env(env).await;
    }

    /// Like [`Server::restart`] but with a different extra environment.
    pub async fn restart_with_env(&mut self, env: Vec<(String, String)>) {
        stop(&mut self.running.child).await;
        self.env = env;
        let mut running = launch(&self.dir.0, &self.database_url, &self.env, self.native).await;
        let (_, dummy) = unbounded_channel();
        let lines = std::mem::replace(&mut running.lines, dummy);
        self.api = Api::new(format!("http://127.0.0.1:{}", running.port), running.log.clone());
        self.running = running;
        self.lines = Mutex::new(lines);
    }

    /// Consumes stdout lines until one holds a link of `kind` (the first link on a line is the
    /// one considered, as `validate` does) and returns that link. Fails after [`LINK_TIMEOUT`].
    pub async fn wait_for_link(&self, kind: LinkKind) -> String {
        let mut rx = self.lines.lock().await;
        let deadline = Instant::now() + LINK_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(line)) => {
                    if let Some(link) = find_links(&line).into_iter().next() {
                        if link.contains(kind.path()) {
                            return link;
                        }
                    }
                }
                Ok(None) => panic!(
                    "server output ended while waiting for a {kind:?} link\n--- server output (tail) ---\n{}",
                    self.output_tail(60)
                ),
                Err(_) => panic!(
                    "no {kind:?} link within {LINK_TIMEOUT:?}\n--- server output (tail) ---\n{}",
                    self.output_tail(60)
                ),
            }
        }
    }

    /// [`Server::wait_for_link`], returning the link's token.
    pub async fn wait_for_token(&self, kind: LinkKind) -> String {
        token_of(&self.wait_for_link(kind).await)
    }

    /// Consumes stdout for `window`, handing each line to `check` (which asserts).
    async fn watch_output(&self, window: Duration, check: impl Fn(&str)) {
        let mut rx = self.lines.lock().await;
        let deadline = Instant::now() + window;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(line)) => check(&line),
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// Consumes stdout for `window` and fails if a link of `kind` appears.
    pub async fn expect_no_link(&self, kind: LinkKind, window: Duration) {
        self.watch_output(window, |line| {
            if let Some(link) = find_links(line).into_iter().next() {
                assert!(!link.contains(kind.path()), "unexpected {kind:?} link printed: {link}");
            }
        })
        .await;
    }

    /// Consumes stdout lines until one satisfies `pred` and returns it; `what` names the line
    /// in the failure message. Fails after [`LINK_TIMEOUT`].
    pub async fn wait_for_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let mut rx = self.lines.lock().await;
        let deadline = Instant::now() + LINK_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(line)) if pred(&line) => return line,
                Ok(Some(_)) => {}
                Ok(None) => panic!(
                    "server output ended while waiting for {what}\n--- server output (tail) ---\n{}",
                    self.output_tail(60)
                ),
                Err(_) => panic!(
                    "no {what} within {LINK_TIMEOUT:?}\n--- server output (tail) ---\n{}",
                    self.output_tail(60)
                ),
            }
        }
    }

    /// Consumes stdout lines until one holds a code of `kind` (the regex of docs/wire.md, "Console output"; the SMS is sent
    /// on a background task just after the response) and returns `(to, code)`, `to` being the
    /// line's `To:` field (empty if the line has none). Fails after [`LINK_TIMEOUT`].
    pub async fn wait_for_sms_code(&self, kind: SmsKind) -> (String, String) {
        let line = self
            .wait_for_line(&format!("{kind:?} SMS code ({:?})", kind.phrase()), |l| {
                find_sms_code(l, kind).is_some()
            })
            .await;
        let code = find_sms_code(&line, kind).unwrap_or_default();
        (sms_recipient(&line).unwrap_or_default(), code)
    }

    /// Consumes stdout for `window` and fails if an SMS is printed: a null-SMS line or a code
    /// of either kind.
    pub async fn expect_no_sms(&self, window: Duration) {
        self.watch_output(window, |line| {
            let code = find_sms_code(line, SmsKind::PhoneSetup).or(find_sms_code(line, SmsKind::LoginMfa));
            assert!(
                !line.contains(NULL_SMS_MARKER) && code.is_none(),
                "unexpected SMS printed: {line}"
            );
        })
        .await;
    }

    /// Registers `email`; with verification on, scrapes the link and verifies it. Returns the
    /// `UserPublic` of the new user.
    pub async fn register_verified(&self, email: &str, password: &str) -> Value {
        let r = self
            .post_json("/register", &json!({ "email": email, "password": password }))
            .await;
        r.assert_status(201);
        if r.json["status"] == "pending_verification" {
            let token = self.wait_for_token(LinkKind::Verify).await;
            let v = self.post_json("/verify", &json!({ "token": token })).await;
            v.assert_status(200);
            assert_user_public(&v.json);
            v.json
        } else {
            assert_user_public(&r.json);
            r.json
        }
    }

    /// Asks to move the signed-in user to `new_email` (with [`PASSWORD`]) and returns the
    /// confirmation token mailed to the new address.
    pub async fn change_email_token(&self, session: &str, new_email: &str) -> String {
        self.post_json_auth(
            "/change-email",
            session,
            &json!({"new_email": new_email, "current_password": PASSWORD}),
        )
        .await
        .assert_message(202, msg::CHANGE_EMAIL_ACK);
        self.wait_for_token(LinkKind::ConfirmEmailChange).await
    }

    /// Turns the SMS second factor on for `session`'s account (which has [`PASSWORD`]) with
    /// `phone`: `/phone/start`, the texted code scraped, `/phone/confirm`.
    pub async fn enrol_sms(&self, session: &str, phone: &str) {
        let r = self
            .post_json_auth(
                "/phone/start",
                session,
                &json!({"phone_number": phone, "current_password": PASSWORD}),
            )
            .await;
        r.assert_status(202);
        let pending = r.str("pending_token");
        let (_, code) = self.wait_for_sms_code(SmsKind::PhoneSetup).await;
        self.post_json("/phone/confirm", &json!({"pending_token": pending, "code": code}))
            .await
            .assert_status(200);
    }

    /// Registers (and verifies) a fresh user and signs in: `(email, token)`.
    pub async fn new_session(&self, tag: &str) -> (String, String) {
        let email = unique_email(tag);
        self.register_verified(&email, PASSWORD).await;
        let token = self.login_ok(&email, PASSWORD).await;
        (email, token)
    }

    /// A fresh superuser made the way an operator makes one, signed in: `(email, token)`.
    /// Natively that is `regstack create-admin` against the server's database. The edge runs
    /// no CLI: the account is registered through the API and flagged with `wrangler d1
    /// execute` on the worker's local D1, as docs/admin.md tells operators to do.
    pub async fn new_admin_session(&self, tag: &str) -> (String, String) {
        let email = unique_email(tag);
        if self.native || !on_edge() {
            let out = self
                .cli(&["create-admin", "--email", &email, "--password", PASSWORD])
                .await;
            assert!(out.contains("Created superuser"), "create-admin said: {out}");
        } else {
            self.register_verified(&email, PASSWORD).await;
            let edge = edge().expect("the edge pass");
            let sql = format!(
                "UPDATE users SET is_superuser = 1 WHERE email = '{}'",
                email.replace('\'', "''")
            );
            let out = Command::new(edge.root.join("node_modules/.bin/wrangler"))
                .args(["d1", "execute", "regstack", "--local", "--persist-to"])
                .arg(self.dir.0.join("edge-state"))
                .arg("--config")
                .arg(edge.root.join("wrangler.toml"))
                .args(["--command", &sql])
                .env("WRANGLER_SEND_METRICS", "false")
                .current_dir(&edge.root)
                .output()
                .await
                .expect("running wrangler d1 execute");
            assert!(
                out.status.success(),
                "wrangler d1 execute failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let token = self.login_ok(&email, PASSWORD).await;
        (email, token)
    }

    /// Runs a `regstack` operator command against this server's database and config (its
    /// environment, without a port); answers stdout and stderr. Panics when it fails.
    pub async fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_status(args).await;
        assert!(out.0, "regstack {args:?} failed:\n{}", out.1);
        out.1
    }

    /// [`Server::cli`] that returns whether the command succeeded, and its output.
    pub async fn cli_status(&self, args: &[&str]) -> (bool, String) {
        self.cli_with_env(args, &[]).await
    }

    /// [`Server::cli_status`] with `env` set last (an empty value removes the variable).
    pub async fn cli_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
        let mut cmd = Command::new(binary_path());
        cmd.args(args).current_dir(&self.dir.0).stdin(Stdio::null());
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.to_ascii_uppercase().starts_with("REGSTACK_") {
                cmd.env_remove(&k);
            }
        }
        cmd.env("REGSTACK_DATABASE_URL", &self.database_url)
            .env("REGSTACK_JWT_SECRET", JWT_SECRET)
            .env("REGSTACK_PASSWORD_HASH_MEMORY_KIB", "1024")
            .env("REGSTACK_PASSWORD_HASH_ITERATIONS", "1")
            .env("RUST_LOG", "warn");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in env {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        let out = cmd.output().await.expect("running the regstack binary");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(pid) = self.running.child.id() {
            signal_group(pid, "-KILL");
        }
        let _ = self.running.child.start_kill();
    }
}

/// Sends `signal` to the process group led by `pid`; true if it was delivered.
fn signal_group(pid: u32, signal: &str) -> bool {
    std::process::Command::new("kill")
        .args([signal, "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

async fn stop(child: &mut Child) {
    let mut terminated = false;
    let pid = child.id();
    if let Some(pid) = pid {
        terminated = signal_group(pid, "-TERM");
    }
    if terminated
        && tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_ok()
    {
        return;
    }
    if let Some(pid) = pid {
        signal_group(pid, "-KILL");
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// The edge mode: with `REGSTACK_TEST_EDGE` set to the repository root, every server is the
/// edge worker under that checkout's `wrangler dev` (built beforehand), on its own copy of
/// `REGSTACK_TEST_EDGE_STATE` (local D1 and Durable Object storage with the migrations
/// applied), configured through the same `REGSTACK_*` names as vars.
struct Edge {
    root: PathBuf,
    state_template: PathBuf,
}

fn edge() -> Option<Edge> {
    let root = PathBuf::from(std::env::var_os("REGSTACK_TEST_EDGE")?);
    let state_template = PathBuf::from(
        std::env::var_os("REGSTACK_TEST_EDGE_STATE").expect("REGSTACK_TEST_EDGE_STATE must name the migrated D1 state"),
    );
    Some(Edge { root, state_template })
}

/// True when the suite drives the edge worker rather than `regstack serve`.
pub fn on_edge() -> bool {
    std::env::var_os("REGSTACK_TEST_EDGE").is_some()
}

/// Where a runtime-specific scenario applies. Every pass of `scripts/test` runs the whole
/// suite; a scenario that only makes sense on one runtime says so with [`runs_here`] instead
/// of being selected by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Only {
    /// The edge worker under `wrangler dev` (forward-auth, the relay from the edge).
    Edge,
    /// `regstack serve` on any backend (the operator commands).
    Native,
    /// `regstack serve` on its default SQLite backend (the provider backends: SES and SNS
    /// against moto; one backend is enough, they do not touch storage differently).
    NativeSqlite,
    /// The browser scenarios of the pages: `regstack serve` on SQLite and the edge worker (the
    /// pages are the same on every backend; the two runtimes serve them).
    Pages,
}

/// Whether the scenario marked `only` applies to this pass; when it does not, it says so on
/// stderr and the caller returns.
pub fn runs_here(only: Only) -> bool {
    let here = match only {
        Only::Edge => on_edge(),
        Only::Native => !on_edge(),
        Only::NativeSqlite => !on_edge() && std::env::var_os("REGSTACK_TEST_DATABASE_URL").is_none(),
        Only::Pages => on_edge() || std::env::var_os("REGSTACK_TEST_DATABASE_URL").is_none(),
    };
    if !here {
        eprintln!("not run in this pass: the scenario applies to {only:?} only");
    }
    here
}

fn edge_command(edge: &Edge, dir: &Path, port: u16, env: &[(&str, &str)]) -> Command {
    let state = dir.join("edge-state");
    if !state.exists() {
        let copied = std::process::Command::new("cp")
            .arg("-a")
            .arg(&edge.state_template)
            .arg(&state)
            .status()
            .expect("copying the edge state");
        assert!(copied.success(), "copying {} failed", edge.state_template.display());
    }
    let vars: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let env_file = dir.join("edge.env");
    std::fs::write(&env_file, vars).expect("writing the worker's vars");
    // scripts/wrangler-dev is the one launcher: the scripts start the worker with it too.
    let mut cmd = Command::new(edge.root.join("scripts/wrangler-dev"));
    cmd.arg(port.to_string())
        .arg(&state)
        .arg("--config")
        .arg(edge.root.join("wrangler.toml"))
        .arg("--env-file")
        .arg(&env_file)
        // Serves /__scheduled, which fires the Cron Trigger (the sweep) on demand.
        .arg("--test-scheduled")
        .env("WRANGLER_INSPECTOR_PORT", free_port().to_string());
    cmd
}

async fn launch(dir: &Path, database_url: &str, extra_env: &[(String, String)], native: bool) -> Running {
    let edge = if native { None } else { edge() };
    let bin = if edge.is_none() { binary_path() } else { PathBuf::new() };
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("building the probe client");
    let mut last_failure = String::new();
    for _attempt in 0..5 {
        let port = free_port();
        let base_url = format!("http://127.0.0.1:{port}");
        let defaults = [
            ("REGSTACK_DATABASE_URL", database_url),
            ("REGSTACK_JWT_SECRET", JWT_SECRET),
            ("REGSTACK_BASE_URL", &base_url),
            ("REGSTACK_EMAIL__LOG_BODIES", "true"),
            ("REGSTACK_SMS__LOG_BODIES", "true"),
            ("REGSTACK_PASSWORD_HASH_MEMORY_KIB", "1024"),
            ("REGSTACK_PASSWORD_HASH_ITERATIONS", "1"),
            ("RUST_LOG", "info"),
        ];
        let mut env: Vec<(&str, &str)> = defaults.to_vec();
        env.extend(extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut cmd = match &edge {
            Some(edge) => edge_command(edge, dir, port, &env),
            None => {
                let mut cmd = Command::new(&bin);
                cmd.args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()]);
                cmd
            }
        };
        if edge.is_none() {
            cmd.current_dir(dir);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so stopping it also stops what it started (workerd).
            .process_group(0)
            .kill_on_drop(true);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.to_ascii_uppercase().starts_with("REGSTACK_") || k == "RUST_LOG" {
                cmd.env_remove(&k);
            }
        }
        if edge.is_none() {
            for (k, v) in &env {
                cmd.env(k, v);
            }
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
        let log = Log::to_file(&dir.join(OUTPUT_FILE));
        let (tx, rx) = unbounded_channel();
        spawn_reader(child.stdout.take().expect("stdout"), "out", log.clone(), Some(tx));
        spawn_reader(child.stderr.take().expect("stderr"), "err", log.clone(), None);

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                last_failure = format!("the server exited early ({status}) on port {port}:\n{}", log.tail(80));
                break;
            }
            if let Ok(r) = probe.get(format!("{base_url}/healthz")).send().await {
                if r.status().as_u16() == 200 {
                    return Running {
                        child,
                        port,
                        lines: rx,
                        log,
                    };
                }
            }
            if Instant::now() >= deadline {
                let _ = child.start_kill();
                let _ = child.wait().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "regstack did not answer GET /healthz with 200 within {READY_TIMEOUT:?} on port {port}\n\
                     --- server output ---\n{}",
                    log.tail(200)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("regstack failed to start 5 times; last failure: {last_failure}")
}
