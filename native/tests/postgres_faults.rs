//! PostgreSQL going away and coming back under a steady request loop: 503s in the contract's
//! shape while it is down (never a 500 or a hang), recovery on its own, nothing acknowledged
//! lost; and an unreachable database at start-up is a clear error with a non-zero exit.
//! Runs its own server (binaries from `REGSTACK_TEST_PG_BIN`, set by `scripts/test`), so
//! stopping it disturbs no other test.
#![cfg(feature = "postgres")]

use std::path::PathBuf;
use std::process::Command;

#[path = "support/outage.rs"]
mod outage;

use outage::{outage_round_trip, Switch};

struct PrivatePg {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

fn as_postgres(cmd: &str, args: &[&str]) -> Command {
    // The server refuses to run as root.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if root {
        let runuser = ["/usr/sbin/runuser", "/sbin/runuser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("runuser");
        let mut c = Command::new(runuser);
        c.args(["-u", "postgres", "--", cmd]).args(args);
        c
    } else {
        let mut c = Command::new(cmd);
        c.args(args);
        c
    }
}

impl PrivatePg {
    fn start() -> Self {
        let bin = PathBuf::from(
            std::env::var("REGSTACK_TEST_PG_BIN")
                .expect("REGSTACK_TEST_PG_BIN must name PostgreSQL's bin directory (scripts/test sets it)"),
        );
        let dir = std::env::temp_dir().join(format!("regstack-pg-faults-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown").args(["postgres", dir.to_str().unwrap()]).status();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.join("data");
        let ok = as_postgres(
            bin.join("initdb").to_str().unwrap(),
            &["-D", data.to_str().unwrap(), "-U", "postgres", "--auth=trust"],
        )
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
        assert!(ok.success(), "initdb failed");
        let pg = Self { bin, dir, port };
        pg.up();
        pg
    }

    fn ctl(&self, args: &[&str]) -> bool {
        let data = self.dir.join("data");
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.display()
        );
        let mut full = vec!["-D", data.to_str().unwrap(), "-w", "-t", "60", "-o", &opts, "-l"];
        let log = self.dir.join("server.log");
        full.push(log.to_str().unwrap());
        full.extend_from_slice(args);
        as_postgres(self.bin.join("pg_ctl").to_str().unwrap(), &full)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    fn up(&self) {
        assert!(self.ctl(&["start"]), "pg_ctl start failed");
    }

    fn down(&self) {
        assert!(self.ctl(&["-m", "fast", "stop"]), "pg_ctl stop failed");
    }

    fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Switch for PrivatePg {
    fn down(&mut self) {
        PrivatePg::down(self);
    }

    fn up(&mut self) {
        PrivatePg::up(self);
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = self.ctl(&["-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_503_then_recovers_without_losing_data() {
    let mut pg = PrivatePg::start();
    let url = pg.url();
    outage_round_trip(&url, &mut pg).await;
}

#[test]
fn serve_exits_non_zero_with_a_clear_message_when_the_database_is_unreachable() {
    let out = Command::new(env!("CARGO_BIN_EXE_regstack"))
        .args(["serve", "--port", "0"])
        .current_dir(std::env::temp_dir())
        .env("REGSTACK_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none")
        .env("REGSTACK_DATABASE_TIMEOUT_SECONDS", "2")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot connect to PostgreSQL at 127.0.0.1:1"),
        "{stderr}"
    );
}
