//! MongoDB going away and coming back under a steady request loop: 503s in the contract's shape
//! (never a 500 or a hang), recovery on its own, nothing acknowledged lost. Runs its own
//! SecantusDB on disk (the venv's python from `REGSTACK_TEST_SECANTUS_PYTHON`, set by
//! `scripts/test`), so stopping it disturbs no other test.
#![cfg(feature = "mongo")]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/outage.rs"]
mod outage;

use outage::{outage_round_trip, Switch};

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

impl Switch for Secantus {
    fn down(&mut self) {
        Secantus::down(self);
    }

    fn up(&mut self) {
        Secantus::up(self);
    }
}

impl Drop for Secantus {
    fn drop(&mut self) {
        self.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mongo_outage_is_503_then_recovers_without_losing_data() {
    let mut db = Secantus::start();
    let url = db.url();
    outage_round_trip(&url, &mut db).await;
}
