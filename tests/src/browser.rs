//! A real browser for the page scenarios: Debian's Chromium, headless, driven over the W3C
//! WebDriver protocol through its `chromedriver` (docs/pages.md, "How the pages are tested").
//! The protocol is JSON over HTTP, so the suite's own HTTP client speaks it; the console log
//! (where Chromium reports CSP violations and script errors) comes through ChromeDriver's
//! log endpoint.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::process::{Child, Command};

/// How long a page gets to show what a step waits for.
const WAIT: Duration = Duration::from_secs(15);

/// The WebDriver key for a CSS selector lookup.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One headless Chromium session, closed (with its driver) on drop.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Child,
}

fn find_binary(env: &str, names: &[&str]) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    for dir in ["/usr/bin", "/usr/lib/chromium", "/usr/local/bin"] {
        for name in names {
            let p = PathBuf::from(dir).join(name);
            if p.exists() {
                return p;
            }
        }
    }
    panic!("{names:?} not found: scripts/test installs Debian's chromium and chromium-driver (or set {env})")
}

impl Browser {
    /// Starts ChromeDriver on a free port and a headless Chromium session at 1280×900.
    pub async fn start() -> Browser {
        let driver_bin = find_binary("REGSTACK_TEST_CHROMEDRIVER", &["chromedriver"]);
        let chromium = find_binary("REGSTACK_TEST_CHROMIUM", &["chromium"]);
        let port = crate::server::free_port();
        // Its own process group, so stopping it also stops the Chromium it started.
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("starting chromedriver");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--no-first-run", "--disable-extensions"]
            },
            "goog:loggingPrefs": { "browser": "ALL" }
        } } });
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("creating a browser session")
            .json()
            .await
            .unwrap();
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {r}"))
            .to_string();
        Browser {
            http,
            session: format!("{base}/session/{id}"),
            driver,
        }
    }

    /// The command's `value`, or the driver's error as `Err`.
    async fn try_call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut rb = self.http.request(method.clone(), format!("{}{path}", self.session));
        if let Some(body) = body {
            rb = rb.json(&body);
        }
        let r: Value = rb
            .send()
            .await
            .expect("webdriver request")
            .json()
            .await
            .unwrap_or(Value::Null);
        match r["value"]["error"].as_str() {
            Some(error) => Err(format!("{method} {path}: {error}: {}", r["value"]["message"])),
            None => Ok(r["value"].clone()),
        }
    }

    /// The command's `value`; a driver error fails the scenario.
    async fn post(&self, path: &str, body: Value) -> Value {
        self.try_call(reqwest::Method::POST, path, Some(body))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn get(&self, path: &str) -> Value {
        self.try_call(reqwest::Method::GET, path, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// The address bar.
    pub async fn url(&self) -> String {
        self.get("/url").await.as_str().unwrap_or_default().to_string()
    }

    /// Runs `script` (a function body; `arguments` are `args`) and answers its value.
    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// The element `css` names, once it is there and visible.
    async fn element(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            // "no such element" and a stale one are what waiting is for.
            let found = self
                .try_call(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({ "using": "css selector", "value": css })),
                )
                .await
                .unwrap_or(Value::Null);
            if let Some(id) = found[ELEMENT_KEY].as_str() {
                let shown = self
                    .try_call(reqwest::Method::GET, &format!("/element/{id}/displayed"), None)
                    .await
                    .unwrap_or(Value::Null);
                if shown == Value::Bool(true) {
                    return id.to_string();
                }
            }
            assert!(
                Instant::now() < deadline,
                "no visible {css} on {} within {WAIT:?}\n{}",
                self.url().await,
                self.body_text().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types `text` into the field `css` (after clearing it).
    pub async fn fill(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.post(&format!("/element/{id}/clear"), json!({})).await;
        self.post(&format!("/element/{id}/value"), json!({ "text": text }))
            .await;
    }

    /// Clicks `css`.
    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.post(&format!("/element/{id}/click"), json!({})).await;
    }

    /// The page's visible text.
    pub async fn body_text(&self) -> String {
        self.run("return document.body ? document.body.innerText : '';", json!([]))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until the text of `css` satisfies `pred`; answers it.
    pub async fn wait_for_text(&self, css: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self
                .run(
                    "var e = document.querySelector(arguments[0]); return e && !e.hidden ? e.textContent : null;",
                    json!([css]),
                )
                .await;
            if let Some(t) = text.as_str().filter(|t| pred(t)) {
                return t.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "{css} on {} never showed what was awaited; it says {text}\n{}",
                self.url().await,
                self.body_text().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the address bar's path ends with `suffix` (query excluded); answers the URL.
    pub async fn wait_for_path(&self, suffix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.url().await;
            let path = url.split(['?', '#']).next().unwrap_or_default();
            if path.ends_with(suffix) {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "never reached {suffix}: at {url}\n{}",
                self.body_text().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Resizes the window (CSS pixels).
    pub async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({ "width": width, "height": height }))
            .await;
    }

    /// Makes the page see `prefers-color-scheme: dark` (or light again).
    pub async fn dark(&self, on: bool) {
        let scheme = if on { "dark" } else { "light" };
        self.post(
            "/goog/cdp/execute",
            json!({ "cmd": "Emulation.setEmulatedMedia",
                    "params": { "features": [{ "name": "prefers-color-scheme", "value": scheme }] } }),
        )
        .await;
    }

    /// Writes a PNG of the viewport to `dir/name.png`.
    pub async fn screenshot(&self, dir: &std::path::Path, name: &str) {
        use base64::Engine as _;
        let shot = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Console entries at SEVERE since the last call: script errors, failed loads and
    /// Content-Security-Policy violations all land there.
    pub async fn console_errors(&self) -> Vec<String> {
        let log = self.post("/se/log", json!({ "type": "browser" })).await;
        let entries = log
            .as_array()
            .unwrap_or_else(|| panic!("the driver gave no console log: {log}"));
        entries
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver and the browser it started, together.
        if let Some(pid) = self.driver.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
        let _ = self.driver.start_kill();
    }
}

/// Where the page scenarios write their screenshots: `$REGSTACK_SCREENSHOTS`, else
/// `screenshots/` under the cargo target directory.
pub fn screenshot_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("REGSTACK_SCREENSHOTS") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("screenshots")
}
