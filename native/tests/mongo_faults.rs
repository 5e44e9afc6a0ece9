//! MongoDB going away and coming back under a steady request loop: 503s in the contract's shape
//! (never a 500 or a hang), recovery on its own, nothing acknowledged lost. Runs its own
//! SecantusDB on disk (the venv's python from `REGSTACK_TEST_SECANTUS_PYTHON`, set by
//! `scripts/test`), so stopping it disturbs no other test.
#![cfg(feature = "mongo")]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use regstack::RegStack;
use serde_json::{json, Value};
use tower::ServiceExt;

struct Secantus {
    python: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

const LAUNCHER: &str = r#"
import signal, sys, threading
from secantus import SecantusDBServer
server = SecantusDBServer("127.0.0.1", int(sys.argv[1]), storage_path=sys.argv[2], replica_set_name=None, ttl_sweep_seconds=1.0)
server.start()
print("listening", flush=True)
done = threading.Event()
for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda *_: done.set())
done.wait()
server.stop()
"#;

impl Secantus {
    fn start() -> Self {
        let python =
            PathBuf::from(std::env::var("REGSTACK_TEST_SECANTUS_PYTHON").expect(
                "REGSTACK_TEST_SECANTUS_PYTHON must name the python that has SecantusDB (scripts/test sets it)",
            ));
        let dir = std::env::temp_dir().join(format!("regstack-mongo-faults-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = Self {
            python,
            dir,
            port,
            child: None,
        };
        s.up();
        s
    }

    fn up(&mut self) {
        let child = Command::new(&self.python)
            .args([
                "-c",
                LAUNCHER,
                &self.port.to_string(),
                self.dir.join("data").to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "SecantusDB did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("mongodb://127.0.0.1:{}/faults?directConnection=true", self.port)
    }
}

impl Drop for Secantus {
    fn drop(&mut self) {
        self.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn post(path: &str, body: Value) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn me(token: &str) -> Request<Body> {
    Request::get("/me")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mongo_outage_is_503_then_recovers_without_losing_data() {
    let mut db = Secantus::start();
    let config = regstack_core::config::load(regstack_core::config::Sources {
        overrides: &[
            ("database_url".into(), json!(db.url())),
            ("require_verification".into(), json!(false)),
            ("database_timeout_seconds".into(), json!(2)),
            ("password_hash_memory_kib".into(), json!(1024)),
            ("password_hash_iterations".into(), json!(1)),
        ],
        ..Default::default()
    })
    .unwrap()
    .config;
    let rs = RegStack::new(config).await.unwrap();
    let app = rs.router();
    let creds = json!({"email": "durable@example.com", "password": "password123"});
    assert_eq!(
        call(&app, post("/register", creds.clone())).await.0,
        StatusCode::CREATED
    );
    let (s, body) = call(&app, post("/login", creds.clone())).await;
    assert_eq!(s, StatusCode::OK);
    let token = body["access_token"].as_str().unwrap().to_string();

    db.down();
    for _ in 0..3 {
        let started = Instant::now();
        let (s, body) = call(&app, me(&token)).await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a request hung for {:?}",
            started.elapsed()
        );
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(
            body["detail"],
            "The account service is temporarily unavailable. Try again shortly."
        );
    }
    assert!(!rs.ready().await);

    db.up();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (s, body) = call(&app, me(&token)).await;
        if s == StatusCode::OK {
            assert_eq!(
                body["email"], "durable@example.com",
                "the acknowledged registration survived"
            );
            break;
        }
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(Instant::now() < deadline, "no recovery within 20 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(call(&app, post("/login", creds)).await.0, StatusCode::OK);
}
