//! `regstack migrate`, `doctor` and `serve --no-migrate` as an operator runs them, on SQLite:
//! a schema migrated in steps, and a database regstack 0.9.3 left at Alembic revision 0001.
#![cfg(feature = "sqlite")]

use std::path::{Path, PathBuf};
use std::process::Command;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("regstack-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The binary, run in `dir`, with nothing of regstack's from this process's environment.
fn command(dir: &Path, args: &[&str]) -> Command {
    command_of(env!("CARGO_BIN_EXE_regstack"), dir, args)
}

/// `program`, run as [`command`] runs the binary.
fn command_of(program: &str, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir).env("RUST_LOG", "warn");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().to_ascii_uppercase().starts_with("REGSTACK_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Whether it succeeded, and its stdout then stderr.
fn finish(out: std::process::Output) -> (bool, String) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs the binary in `dir` on `dir/regstack.db`.
fn regstack(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = command(dir, args)
        .env(
            "REGSTACK_DATABASE_URL",
            format!("sqlite+aiosqlite:///{}", dir.join("regstack.db").display()),
        )
        .env("REGSTACK_JWT_SECRET", "cli-test-secret-0123456789-0123456789-abcdef")
        .output()
        .unwrap();
    finish(out)
}

#[test]
fn migrate_in_steps_and_serve_without_migrating() {
    let dir = temp_dir("steps");
    let (ok, out) = regstack(&dir, &["migrate", "--target", "0002"]);
    assert!(ok, "{out}");
    assert!(out.contains("before: an empty database (head is 0007)"), "{out}");
    assert!(out.contains("\u{2714} migrate: applied 0001, 0002"), "{out}");
    assert!(out.contains("after: revision 0002 (head is 0007)"), "{out}");

    // Behind head: doctor fails on the schema, and a server told not to migrate refuses to start.
    let (ok, out) = regstack(&dir, &["doctor"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("\u{2718} schema: revision 0002 (head is 0007): run `regstack migrate`"),
        "{out}"
    );
    let (ok, out) = regstack(&dir, &["serve", "--port", "0", "--no-migrate"]);
    assert!(!ok, "{out}");
    assert!(out.contains("run `regstack migrate` first"), "{out}");

    let (ok, out) = regstack(&dir, &["migrate", "--target", "+1"]);
    assert!(
        ok && out.contains("applied 0003") && out.contains("after: revision 0003"),
        "{out}"
    );
    let (ok, out) = regstack(&dir, &["migrate"]);
    assert!(
        ok && out.contains("applied 0004, 0005, 0006, 0007") && out.contains("after: revision 0007 (head)"),
        "{out}"
    );
    let (ok, out) = regstack(&dir, &["migrate"]);
    assert!(
        ok && out.contains("already at revision 0007 (head); nothing to do"),
        "{out}"
    );
    let (ok, out) = regstack(&dir, &["doctor"]);
    assert!(ok && out.contains("\u{2714} schema: revision 0007 (head)"), "{out}");
}

#[test]
fn migrate_adopts_a_093_database_at_alembic_0001() {
    let dir = temp_dir("legacy");
    let fixture = include_str!("fixtures/regstack-0.9.3-sqlite-0001.sql");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}?mode=rwc", dir.join("regstack.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::raw_sql(fixture).execute(&pool).await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO users VALUES ('9f0e0c1f2a3b4c5d6e7f8091a2b3c4d5', 'old@example.com', \
             '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA', 1, 1, 0, NULL, NULL, 0, \
             '2026-01-01 10:00:00.000000', '2026-01-01 10:00:00.000000', NULL, NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    });
    let (ok, out) = regstack(&dir, &["migrate"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("before: regstack 0.9.3's schema at Alembic revision 0001"),
        "{out}"
    );
    assert!(
        out.contains("\u{2714} adopt: regstack 0.9.3's schema moved from Alembic revision 0001 to 0003"),
        "{out}"
    );
    assert!(out.contains("after: revision 0007 (head)"), "{out}");
    // The adopted account is there, with its password.
    let (ok, out) = regstack(&dir, &["create-admin", "--email", "old@example.com"]);
    assert!(ok && out.contains("Promoted existing user old@example.com"), "{out}");
    let hash: Option<String> = rt.block_on(async {
        let url = format!("sqlite://{}", dir.join("regstack.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query_scalar("SELECT hashed_password FROM users WHERE email = 'old@example.com'")
            .fetch_one(&pool)
            .await
            .unwrap()
    });
    assert_eq!(
        hash.as_deref(),
        Some("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"),
        "the rebuilt users table kept the password hash"
    );
}

#[test]
fn doctor_leaves_a_database_as_it_found_it() {
    use std::str::FromStr;
    let dir = temp_dir("read-only");
    let db = dir.join("regstack.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{}?mode=rwc", db.display()))
            .unwrap()
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Delete);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        sqlx::raw_sql(include_str!("fixtures/regstack-0.9.3-sqlite-0002.sql"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let (ok, out) = regstack(&dir, &["doctor"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("\u{2718} schema: regstack 0.9.3's schema at Alembic revision 0002"),
        "{out}"
    );
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await
            .unwrap();
        // Reading the mode through sqlx's default options would switch it; this pool did
        // not set one, so it reports the file's own.
        assert_eq!(mode, "delete", "doctor did not switch the journal mode");
        let rev: String = sqlx::query_scalar("SELECT version_num FROM alembic_version")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(rev, "0002", "doctor did not migrate");
    });
}

/// Runs `regstack init` in `dir` with `answers` piped to it.
fn init(dir: &Path, args: &[&str], answers: &str) -> (bool, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command(dir, &[&["init"], args].concat())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(answers.as_bytes()).unwrap();
    finish(child.wait_with_output().unwrap())
}

/// Runs the binary in `dir` with only what `dir` holds (its config files).
fn bare(dir: &Path, args: &[&str]) -> (bool, String) {
    finish(command(dir, args).output().unwrap())
}

/// The 0.9.3 wizard's fifteen questions on its default path, every one answered with its
/// default. One line fewer ends the input early (a test below relies on it).
const DEFAULTS: &str = "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n";

#[test]
fn init_writes_config_a_server_starts_from() {
    let dir = temp_dir("init");
    let (ok, out) = init(&dir, &[], DEFAULTS);
    assert!(ok, "{out}");
    let toml = std::fs::read_to_string(dir.join("regstack.toml")).unwrap();
    let secrets = std::fs::read_to_string(dir.join("regstack.secrets.env")).unwrap();
    assert!(
        toml.contains("app_name = \"MyApp\"") && toml.contains("require_verification = false"),
        "{toml}"
    );
    let secret = secrets
        .lines()
        .find_map(|l| l.strip_prefix("REGSTACK_JWT_SECRET=\""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("a quoted secret");
    assert_eq!(secret.len(), 86, "64 random bytes, URL-safe base64");
    assert!(
        secrets.contains("REGSTACK_DATABASE_URL=\"sqlite+aiosqlite:///./myapp.sqlite\""),
        "{secrets}"
    );
    assert!(!toml.contains(secret), "the secret stays out of the TOML");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("regstack.secrets.env"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The files are a working config: after a migrate, doctor (run where the secrets file is,
    // with nothing from the environment) passes them, apart from the console email advisory.
    let (ok, out) = bare(&dir, &["migrate"]);
    assert!(ok, "{out}");
    let (ok, out) = bare(&dir, &["doctor"]);
    assert!(ok, "{out}");
    assert!(out.contains("\u{2714} jwt secret: present (86 characters)"), "{out}");

    // Existing files: --if-missing leaves them, a "no" aborts, --force rewrites.
    let (ok, out) = init(&dir, &["--if-missing"], "");
    assert!(ok && out.contains("no action taken (--if-missing)"), "{out}");
    assert_eq!(std::fs::read_to_string(dir.join("regstack.toml")).unwrap(), toml);
    let (ok, out) = init(&dir, &[], "n\n");
    assert!(!ok && out.contains("aborted; nothing was written"), "{out}");
    assert_eq!(std::fs::read_to_string(dir.join("regstack.toml")).unwrap(), toml);
    assert_eq!(
        std::fs::read_to_string(dir.join("regstack.secrets.env")).unwrap(),
        secrets
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let loose = std::fs::Permissions::from_mode(0o644);
        std::fs::set_permissions(dir.join("regstack.secrets.env"), loose).unwrap();
    }
    let (ok, out) = init(&dir, &["--force"], &format!("Shop \"Deluxe\"{}", DEFAULTS));
    assert!(ok, "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("regstack.secrets.env"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "a rewritten secrets file is private again");
    }
    let rewritten = std::fs::read_to_string(dir.join("regstack.toml")).unwrap();
    assert!(
        rewritten.contains(r#"app_name = "Shop \"Deluxe\"""#),
        "escaped:\n{rewritten}"
    );
    let (ok, out) = init(&dir, &["--force", "--if-missing"], "");
    assert!(!ok && out.contains("cannot be used with"), "{out}");
}

#[test]
fn init_takes_postgres_smtp_and_sms_answers_and_stops_on_early_eof() {
    let dir = temp_dir("init-answers");
    // App, URL, proxy, backend, Postgres URL, generate secret, TTL, email backend, sender,
    // name, SMTP host, port, STARTTLS, user, password, SMS 2FA, SMS backend, admin, UI,
    // registration, verification.
    let answers = "Shop\nhttps://shop.example.com\ny\npostgres\npostgres://app@db/shop\n\n3600\nsmtp\n\n\nmail.example.com\n465\nn\nmailer\nhunter2-hunter2\ny\ntwilio\ny\nn\nn\ny\n";
    let (ok, out) = init(&dir, &["--config", "conf"], answers);
    assert!(ok, "{out}");
    let conf = dir.join("conf");
    let toml = std::fs::read_to_string(conf.join("regstack.toml")).unwrap();
    let secrets = std::fs::read_to_string(conf.join("regstack.secrets.env")).unwrap();
    for line in [
        "behind_proxy = true",
        "jwt_ttl_seconds = 3600",
        "from_address = \"noreply@shop.example.com\"",
        "smtp_host = \"mail.example.com\"",
        "smtp_port = 465",
        "smtp_starttls = false",
        "smtp_username = \"mailer\"",
        "enable_sms_2fa = true",
        "backend = \"twilio\"",
        "enable_admin_router = true",
        "allow_registration = false",
        "require_verification = true",
    ] {
        assert!(toml.contains(line), "missing {line:?}:\n{toml}");
    }
    assert!(!toml.contains("hunter2"), "the SMTP password stays out of the TOML");
    assert!(
        secrets.contains("REGSTACK_EMAIL__SMTP_PASSWORD=\"hunter2-hunter2\""),
        "{secrets}"
    );
    assert!(
        secrets.contains("REGSTACK_DATABASE_URL=\"postgresql+asyncpg://app@db/shop\""),
        "coerced as 0.9.3 does:\n{secrets}"
    );
    assert!(
        !out.contains("hunter2") && !out.contains("app@db"),
        "no secret or database user echoed:\n{out}"
    );
    // Input that ends one answer early writes nothing.
    let early = temp_dir("init-eof");
    let (ok, out) = init(&early, &[], &DEFAULTS[1..]);
    assert!(!ok && out.contains("the input ended"), "{out}");
    assert!(!early.join("regstack.toml").exists() && !early.join("regstack.secrets.env").exists());
    // --config naming a file in a directory that does not exist yet, and the deprecated
    // --target, which says so.
    let (ok, out) = init(&early, &["--config", "new/place/regstack.toml"], DEFAULTS);
    assert!(ok && early.join("new/place/regstack.secrets.env").exists(), "{out}");
    let (ok, out) = init(&early, &["--target", "old"], DEFAULTS);
    assert!(
        ok && out.contains("--target is deprecated") && early.join("old/regstack.toml").exists(),
        "{out}"
    );
    // Answers the server would refuse are asked again.
    let again = temp_dir("init-again");
    let answers = format!(
        "\nftp://example.com\nhttps://app.example.com\n\npostgres\nmysql://db/app\npostgresql://db/app\n\n10\n99999999999999999999999\n3600{}",
        &DEFAULTS[..9]
    );
    let (ok, out) = init(&again, &[], &answers);
    assert!(ok, "{out}");
    // A JWT secret of one's own: too short, then mismatched, then good (piped, so echoed
    // as *** and never shown).
    let own = temp_dir("init-own-secret");
    let good = "an-operator-chosen-secret-of-40-characters";
    let answers = format!(
        "\n\n\n\n\nn\nshort\nshort\n{good}\nother\n{good}\n{good}\n{}",
        &DEFAULTS[..9]
    );
    let (ok, out2) = init(&own, &[], &answers);
    assert!(ok, "{out2}");
    assert!(
        out2.contains("Error: a JWT secret needs at least 32 characters."),
        "{out2}"
    );
    assert!(out2.contains("Error: the two entered values do not match."), "{out2}");
    assert!(!out2.contains(good), "the secret is not echoed:\n{out2}");
    let secrets = std::fs::read_to_string(own.join("regstack.secrets.env")).unwrap();
    assert!(
        secrets.contains(&format!("REGSTACK_JWT_SECRET=\"{good}\"")),
        "{secrets}"
    );
    assert_eq!(
        out.matches("Error: the base URL must start with http:// or https://.")
            .count(),
        1,
        "{out}"
    );
    assert_eq!(
        out.matches("Error: a whole number from 60 to 2592000.").count(),
        2,
        "{out}"
    );
    assert!(
        out.contains("mysql://db/app\nError: "),
        "the database URL was refused:\n{out}"
    );
    let toml = std::fs::read_to_string(again.join("regstack.toml")).unwrap();
    assert!(
        toml.contains("jwt_ttl_seconds = 3600") && toml.contains("base_url = \"https://app.example.com\""),
        "{toml}"
    );
}

/// A DNS server on a loopback UDP port for one zone, `dns-probe.io`:
/// - `good`: an MX, a verification TXT beside an SPF record split into two strings, DMARC;
/// - `sub.good`: an MX and SPF, no DMARC of its own (its parent's applies);
/// - `null`: a null MX (`MX 0 .`); `twice`: two SPF records;
/// - `bare`: no records at all; anything else: NXDOMAIN.
async fn dns_server() -> std::net::SocketAddr {
    use hickory_resolver::proto::op::{Message, MessageType, OpCode, ResponseCode};
    use hickory_resolver::proto::rr::rdata::{MX, TXT};
    use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let mx = |host: &str| RData::MX(MX::new(10, Name::from_ascii(host).unwrap()));
    let txt = |parts: &[&str]| RData::TXT(TXT::new(parts.iter().map(|p| p.to_string()).collect()));
    let zone: Vec<(&str, RecordType, RData)> = vec![
        ("good.dns-probe.io.", RecordType::MX, mx("mail.good.dns-probe.io.")),
        ("good.dns-probe.io.", RecordType::TXT, txt(&["site-verification=abc"])),
        ("good.dns-probe.io.", RecordType::TXT, txt(&["v=spf1 ", "mx -all"])),
        (
            "_dmarc.good.dns-probe.io.",
            RecordType::TXT,
            txt(&["v=DMARC1; p=reject"]),
        ),
        ("sub.good.dns-probe.io.", RecordType::MX, mx("mail.good.dns-probe.io.")),
        (
            "sub.good.dns-probe.io.",
            RecordType::TXT,
            txt(&["v=spf1 include:good.dns-probe.io -all"]),
        ),
        (
            "null.dns-probe.io.",
            RecordType::MX,
            RData::MX(MX::new(0, Name::root())),
        ),
        ("null.dns-probe.io.", RecordType::TXT, txt(&["v=spf1 -all"])),
        ("twice.dns-probe.io.", RecordType::MX, mx("mail.good.dns-probe.io.")),
        ("twice.dns-probe.io.", RecordType::TXT, txt(&["v=spf1 mx -all"])),
        ("twice.dns-probe.io.", RecordType::TXT, txt(&["v=spf1 a -all"])),
    ];
    let names = [
        "dns-probe.io.",
        "good.dns-probe.io.",
        "_dmarc.good.dns-probe.io.",
        "sub.good.dns-probe.io.",
        "null.dns-probe.io.",
        "twice.dns-probe.io.",
        "bare.dns-probe.io.",
    ];
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut reply = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
            reply.metadata.recursion_desired = query.metadata.recursion_desired;
            reply.metadata.recursion_available = true;
            reply.metadata.authoritative = true;
            for q in &query.queries {
                reply.add_query(q.clone());
                let name = q.name().to_ascii().to_ascii_lowercase();
                if !names.contains(&name.as_str()) {
                    reply.metadata.response_code = ResponseCode::NXDomain;
                }
                for (_, _, data) in zone.iter().filter(|(n, t, _)| *n == name && *t == q.query_type()) {
                    reply.add_answer(Record::from_rdata(q.name().clone(), 60, data.clone()));
                }
            }
            let _ = socket.send_to(&reply.to_vec().unwrap(), from).await;
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_sender_domain_in_dns() {
    let dir = temp_dir("dns");
    let server = dns_server().await.to_string();
    let doctor = |domain: &str, server: String| {
        let dir = dir.clone();
        let from = format!("noreply@{domain}");
        tokio::task::spawn_blocking(move || {
            let out = command(&dir, &["doctor", "--check-dns", "--dns-server", &server])
                .env(
                    "REGSTACK_DATABASE_URL",
                    format!("sqlite+aiosqlite:///{}", dir.join("regstack.db").display()),
                )
                .env("REGSTACK_JWT_SECRET", "cli-test-secret-0123456789-0123456789-abcdef")
                .env("REGSTACK_EMAIL__FROM_ADDRESS", from)
                .output()
                .unwrap();
            finish(out)
        })
    };
    let (ok, out) = regstack(&dir, &["migrate"]);
    assert!(ok, "{out}");

    let (ok, out) = doctor("good.dns-probe.io", server.clone()).await.unwrap();
    assert!(ok, "{out}");
    assert!(
        out.contains("\u{2714} dns mx: good.dns-probe.io → mail.good.dns-probe.io"),
        "{out}"
    );
    assert!(
        out.contains("\u{2714} dns spf: v=spf1 mx -all\n"),
        "the SPF record, its strings joined:\n{out}"
    );
    assert!(
        out.contains("\u{2714} dns dmarc: _dmarc.good.dns-probe.io: v=DMARC1; p=reject"),
        "{out}"
    );

    let (ok, out) = doctor("sub.good.dns-probe.io", server.clone()).await.unwrap();
    assert!(ok, "{out}");
    assert!(
        out.contains("\u{2714} dns dmarc: _dmarc.good.dns-probe.io: v=DMARC1"),
        "the parent domain's DMARC applies:\n{out}"
    );

    for domain in ["bare.dns-probe.io", "nowhere.dns-probe.io"] {
        let (ok, out) = doctor(domain, server.clone()).await.unwrap();
        assert!(!ok, "missing records fail the command:\n{out}");
        assert!(
            out.contains(&format!("\u{26a0} dns mx: {domain} has no MX record")),
            "{out}"
        );
        assert!(
            out.contains(&format!("\u{2718} dns spf: {domain} has no SPF record")),
            "{out}"
        );
        assert!(out.contains("\u{2718} dns dmarc: no DMARC record"), "{out}");
    }
    let (ok, out) = doctor("null.dns-probe.io", server.clone()).await.unwrap();
    assert!(
        !ok && out.contains("\u{2718} dns mx: null.dns-probe.io has a null MX"),
        "{out}"
    );
    let (ok, out) = doctor("twice.dns-probe.io", server.clone()).await.unwrap();
    assert!(
        !ok && out.contains("\u{2718} dns spf: twice.dns-probe.io has 2 SPF records"),
        "{out}"
    );

    // Nothing answers: advisories, and the command still passes.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (ok, out) = doctor("good.dns-probe.io", silent.local_addr().unwrap().to_string())
        .await
        .unwrap();
    assert!(ok, "{out}");
    for name in ["dns mx", "dns spf", "dns dmarc"] {
        assert!(out.contains(&format!("\u{26a0} {name}: no answer")), "{out}");
    }
}

/// A theme file of a host's, with rules and comments the designer must keep. Its `--rs-fg`
/// is written by hand in a form the designer's rules would refuse.
const HOST_THEME: &str = "/* brand */\n.brand { color: #123456; }\n:root {\n  --rs-accent: #000000; /* ours */\n  --rs-shadow: none;\n  --rs-fg: hsl(220 40% 10%);\n}\n";

#[test]
fn theme_design_headless_changes_only_the_managed_values() {
    let dir = temp_dir("theme-headless");
    let file = dir.join("regstack-theme.css");
    std::fs::write(&file, HOST_THEME).unwrap();
    let run = |args: &[&str]| {
        let out = command(&dir, args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // A dry run prints what it would do and writes nothing.
    let (code, out, _) = run(&["theme", "design", "--dry-run", "--var", "--rs-accent=#0f766e"]);
    assert_eq!(code, Some(0), "{out}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["written"], false);
    assert_eq!(summary["changed"], serde_json::json!(["--rs-accent"]));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), HOST_THEME);

    let (code, out, _) = run(&[
        "theme",
        "design",
        "--headless",
        "--config",
        dir.to_str().unwrap(),
        "--var",
        "--rs-accent=#0f766e",
        "--var",
        "dark:--rs-accent=#2dd4bf",
        "--var",
        "--rs-radius=10",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["written"], true);
    assert_eq!(summary["light"]["--rs-radius"], "10px");
    assert_eq!(summary["dark"]["--rs-accent"], "#2dd4bf");
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(
        written.starts_with(
            "/* brand */\n.brand { color: #123456; }\n:root {\n  --rs-accent: #0f766e; /* ours */\n  --rs-shadow: none;\n  --rs-fg: hsl(220 40% 10%);\n  --rs-bg: #ffffff;\n"
        ),
        "{written}"
    );
    assert!(written.contains("  --rs-radius: 10px;\n"), "{written}");
    assert!(
        written.contains("@media (prefers-color-scheme: dark) {\n  :root {\n    --rs-bg: #0b1220;"),
        "{written}"
    );
    assert!(written.contains("    --rs-accent: #2dd4bf;\n"), "{written}");

    // A second run starts from the file: nothing to change, nothing written.
    let (code, out, _) = run(&["theme", "design", "--headless", "--var", "--rs-radius=10px"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("\"changed\": []") && out.contains("\"written\": false"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), written);

    // Refusals: exit 2, every reason named, the file untouched.
    let (code, out, err) = run(&[
        "theme",
        "design",
        "--headless",
        "--var",
        "--rs-accent=red",
        "--var",
        "--rs-font-body=x; } body { display: none",
        "--var",
        "--rs-shadow=none",
    ]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("\u{2718} --rs-accent: a colour is"), "{err}");
    assert!(err.contains("\u{2718} --rs-font-body:"), "{err}");
    assert!(
        err.contains("--rs-shadow is not a property the designer manages"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), written);
    let (code, _, err) = run(&["theme", "design", "--var", "--rs-accent=#000"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--var needs --headless or --dry-run"), "{err}");
    let (code, _, err) = run(&["theme", "design", "--headless", "--filename", "../x.css"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--filename takes a file name"), "{err}");
    // The deprecated alias still works, with a warning.
    let (code, _, err) = run(&["theme", "design", "--print-only", "--filename", "other.css"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("--print-only is deprecated"), "{err}");
    assert!(dir.join("other.css").is_file());
}

/// The JSON a wizard's API answers `req` with the launch's token.
async fn json_with_token(req: reqwest::RequestBuilder, token: &str) -> serde_json::Value {
    req.header("x-regstack-token", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A local wizard, started as an operator would, with its printed URL.
struct LocalUi {
    child: std::process::Child,
    base: String,
    token: String,
    dir: PathBuf,
}

impl LocalUi {
    /// Runs `args` in `dir` (with `env` added) until it prints `label: URL`.
    fn start(dir: &Path, args: &[&str], label: &str, env: &[(&str, &str)]) -> LocalUi {
        use std::io::BufRead;
        let mut cmd = command(dir, args);
        cmd.envs(env.iter().copied()).stdout(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        // Drains stdout for the wizard's whole life, so a later line never meets a closed pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let prefix = format!("{label}: ");
        let url = loop {
            let line = rx
                .recv_timeout(std::time::Duration::from_secs(30))
                .expect("the wizard printed its URL");
            if let Some(url) = line.strip_prefix(&prefix) {
                break url.to_string();
            }
        };
        let (base, token) = url.split_once("/#token=").expect("a token in the fragment");
        LocalUi {
            child,
            base: base.to_string(),
            token: token.to_string(),
            dir: dir.to_path_buf(),
        }
    }

    /// The theme designer on a copy of [`HOST_THEME`].
    fn designer(name: &str) -> LocalUi {
        let dir = temp_dir(name);
        std::fs::write(dir.join("regstack-theme.css"), HOST_THEME).unwrap();
        LocalUi::start(&dir, &["theme", "design", "--no-browser"], "Theme designer", &[])
    }

    /// Presses Done through the API and waits for a clean exit.
    async fn done(self) {
        let done = reqwest::Client::new()
            .post(format!("{}/api/done", self.base))
            .header("x-regstack-token", &self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(done.status().as_u16(), 200);
        assert_eq!(self.wait(), Some(0));
    }

    /// Waits for the wizard to exit after Done; answers its exit code.
    fn wait(mut self) -> Option<i32> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the wizard did not stop after Done"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for LocalUi {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_theme_designer_refuses_calls_without_its_token() {
    let d = LocalUi::designer("theme-token");
    let http = reqwest::Client::new();
    let theme = format!("{}/api/theme", d.base);
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(status(http.get(&theme).send().await.unwrap()), 401);
    assert_eq!(
        status(
            http.get(&theme)
                .header("x-regstack-token", "0".repeat(64))
                .send()
                .await
                .unwrap()
        ),
        401
    );
    // A page elsewhere that rebinds its own name to 127.0.0.1 is still refused.
    let rebound = http
        .get(&theme)
        .header("host", "attacker.example")
        .header("x-regstack-token", &d.token)
        .send()
        .await
        .unwrap();
    assert_eq!(status(rebound), 403);
    let save =
        |body: serde_json::Value, token: &str| http.put(&theme).header("x-regstack-token", token).json(&body).send();
    let body = serde_json::json!({ "light": { "--rs-accent": "#0f766e" }, "dark": {} });
    assert_eq!(status(save(body.clone(), "").await.unwrap()), 401);
    assert_eq!(
        std::fs::read_to_string(d.dir.join("regstack-theme.css")).unwrap(),
        HOST_THEME,
        "a refused call writes nothing"
    );
    // The one-time launch path is not a way in either.
    assert_eq!(
        status(http.get(format!("{}/open/guess", d.base)).send().await.unwrap()),
        410
    );

    let current = json_with_token(http.get(&theme), &d.token).await;
    assert_eq!(current["vars"].as_array().map(Vec::len), Some(15));
    assert_eq!(current["theme"]["light"]["--rs-accent"], "#000000", "the file's value");
    let bad = save(
        serde_json::json!({ "light": { "--rs-accent": "red" }, "dark": {} }),
        &d.token,
    )
    .await
    .unwrap();
    assert_eq!(bad.status().as_u16(), 422);
    let r = save(body, &d.token).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let written = std::fs::read_to_string(d.dir.join("regstack-theme.css")).unwrap();
    assert!(written.contains("--rs-accent: #0f766e; /* ours */"), "{written}");
    assert!(
        written.starts_with("/* brand */\n.brand { color: #123456; }\n"),
        "{written}"
    );

    d.done().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_theme_designer_shows_a_new_accent_on_the_real_page() {
    use regstack_conformance::browser::{screenshot_dir, Browser};
    let d = LocalUi::designer("theme-browser");
    let b = Browser::start().await;
    b.resize(1280, 900).await;
    b.goto(&format!("{}/#token={}", d.base, d.token)).await;
    b.wait_for_text("#td-status", |t| t == "Loaded.").await;
    assert!(!b.url().await.contains("token"), "the token leaves the address bar");
    let accent = "var doc = document.getElementById('td-frame').contentDocument; \
                  var button = doc && doc.querySelector('.rs-btn-primary'); \
                  return button ? getComputedStyle(button).backgroundColor : null;";
    let wait_for_accent = |want: &'static str| {
        let b = &b;
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let seen = b.run(accent, serde_json::json!([])).await;
                if seen.as_str() == Some(want) {
                    return;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the preview's button is {seen}, not {want}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    };
    // The file's accent first, then the edited one, live.
    wait_for_accent("rgb(0, 0, 0)").await;
    b.fill("#td-text---rs-accent", "#0f766e").await;
    wait_for_accent("rgb(15, 118, 110)").await;
    let title = "return document.getElementById('td-frame').contentDocument.title;";
    assert!(
        b.run(title, serde_json::json!([]))
            .await
            .as_str()
            .is_some_and(|t| t.starts_with("Sign in")),
        "the preview shows the page chosen"
    );
    b.screenshot(&screenshot_dir().join("designer"), "theme-designer").await;
    // The dark scheme has its own accent, previewed as such.
    b.click("input[name='scheme'][value='dark']").await;
    wait_for_accent("rgb(96, 165, 250)").await;
    b.click("#td-save").await;
    b.wait_for_text("#td-status", |t| t.starts_with("Saved ")).await;
    let written = std::fs::read_to_string(d.dir.join("regstack-theme.css")).unwrap();
    assert!(written.contains("--rs-accent: #0f766e; /* ours */"), "{written}");
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "the console reported {errors:#?}");
    b.click("#td-done").await;
    assert_eq!(d.wait(), Some(0));
}

/// An app's config before a wizard runs: comments, a table of its own, a secret.
const APP_TOML: &str = "# the shop\napp_name = \"Shop\" # in every email\nbase_url = \"https://shop.example\"\n\n[email]\n# mail goes out here\nbackend = \"console\"\nfrom_address = \"noreply@shop.example\"\n";
const APP_SECRETS: &str = "# keep out of git\nREGSTACK_JWT_SECRET=\"cli-test-secret-0123456789-0123456789-abcdef\"\n";

fn app_dir(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    std::fs::write(dir.join("regstack.toml"), APP_TOML).unwrap();
    std::fs::write(dir.join("regstack.secrets.env"), APP_SECRETS).unwrap();
    dir
}

/// Runs the binary in `dir`: its exit code, stdout as JSON (`null` if it is not), stderr.
fn run_json(dir: &Path, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let out = command(dir, args).output().unwrap();
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn files_of(dir: &Path) -> (String, String) {
    (
        std::fs::read_to_string(dir.join("regstack.toml")).unwrap(),
        std::fs::read_to_string(dir.join("regstack.secrets.env")).unwrap(),
    )
}

const CLIENT_ID: &str = "1234-abc.apps.googleusercontent.com";

#[test]
fn oauth_setup_headless_merges_without_clobbering() {
    let dir = app_dir("oauth-headless");
    let setup = |extra: &[&str]| {
        let mut args = vec![
            "oauth",
            "setup",
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            "GOCSPX-test-secret",
        ];
        args.extend_from_slice(extra);
        run_json(&dir, &args)
    };

    let (code, out, err) = setup(&["--dry-run", "--auto-link"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out["written"], false);
    assert_eq!(
        out["redirect_uri"],
        "https://shop.example/api/auth/oauth/google/callback"
    );
    assert_eq!(
        out["diff"]["regstack.toml"]["oauth.google_client_id"],
        serde_json::json!({ "before": null, "after": format!("\"{CLIENT_ID}\"") })
    );
    assert_eq!(
        out["diff"]["regstack.secrets.env"]["REGSTACK_OAUTH__GOOGLE_CLIENT_SECRET"],
        serde_json::json!({ "before": null, "after": "***" })
    );
    assert!(!out.to_string().contains("GOCSPX"), "no secret in the diff: {out}");
    assert_eq!(
        files_of(&dir),
        (APP_TOML.to_string(), APP_SECRETS.to_string()),
        "a dry run writes nothing"
    );

    let (code, out, err) = setup(&["--headless", "--auto-link"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out["written"], true);
    let (toml, secrets) = files_of(&dir);
    assert!(
        toml.starts_with("# the shop\napp_name = \"Shop\" # in every email\nbase_url = \"https://shop.example\"\nenable_oauth = true\n\n[email]\n# mail goes out here\nbackend = \"console\"\n"),
        "{toml}"
    );
    assert!(
        toml.ends_with(&format!(
            "\n[oauth]\ngoogle_client_id = \"{CLIENT_ID}\"\nauto_link_verified_emails = true\n"
        )),
        "{toml}"
    );
    assert!(!toml.contains("GOCSPX"), "the secret stays out of the TOML");
    assert_eq!(
        secrets,
        format!("{APP_SECRETS}REGSTACK_OAUTH__GOOGLE_CLIENT_SECRET=\"GOCSPX-test-secret\"\n")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("regstack.secrets.env"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The server reads what the wizard wrote, the secret included.
    let (toml_text, secrets_text) = files_of(&dir);
    let config = regstack_core::config::load(regstack_core::config::Sources {
        toml: Some(&toml_text),
        secrets_env: Some(&secrets_text),
        env: &[],
        overrides: &[],
    })
    .unwrap()
    .config;
    assert!(config.enable_oauth && config.oauth.auto_link_verified_emails);
    assert_eq!(config.oauth.google_client_secret.as_deref(), Some("GOCSPX-test-secret"));

    // The same answers again: nothing to change, nothing written.
    let (code, out, _) = setup(&["--headless", "--auto-link"]);
    assert_eq!(code, Some(0));
    assert_eq!(out["written"], false);
    assert_eq!(out["diff"], serde_json::json!({}));

    // Refusals: exit 2, every reason on its own line, nothing written.
    let (code, out, err) = run_json(
        &dir,
        &[
            "oauth",
            "setup",
            "--headless",
            "--client-id",
            "not-a-google-id",
            "--base-url",
            "ftp://x",
        ],
    );
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(out["ok"], false);
    assert!(
        err.contains("\u{2718} --client-id: a Google client id ends in .apps.googleusercontent.com"),
        "{err}"
    );
    assert!(err.contains("\u{2718} --client-secret is empty"), "{err}");
    assert!(err.contains("\u{2718} --base-url: an http:// or https:// URL"), "{err}");
    assert_eq!(files_of(&dir).0, toml);
    // Answers without --headless are refused rather than ignored.
    let (code, _, err) = run_json(&dir, &["oauth", "setup", "--client-id", CLIENT_ID]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("need --headless or --dry-run"), "{err}");
}

#[test]
fn ses_setup_headless_keeps_one_credential_source() {
    let dir = app_dir("ses-headless");
    let setup = |extra: &[&str]| {
        let mut args = vec![
            "ses",
            "setup",
            "--headless",
            "--region",
            "eu-west-2",
            "--from-address",
            "mail@shop.example",
        ];
        args.extend_from_slice(extra);
        run_json(&dir, &args)
    };
    let (code, out, err) = setup(&[
        "--credential-source",
        "explicit",
        "--access-key-id",
        "AKIAEXAMPLEKEY123456",
        "--secret-access-key",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out["aws_checks"], "skipped (headless)");
    let (toml, secrets) = files_of(&dir);
    assert!(toml.contains("[email]\n# mail goes out here\nbackend = \"ses\"\nfrom_address = \"mail@shop.example\"\nses_region = \"eu-west-2\"\nses_access_key_id = \"AKIAEXAMPLEKEY123456\"\n"), "{toml}");
    assert!(!toml.contains("wJalr"), "the secret stays out of the TOML");
    assert!(
        secrets.ends_with("REGSTACK_EMAIL__SES_SECRET_ACCESS_KEY=\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"\n"),
        "{secrets}"
    );

    // Moving to a profile takes the key and its secret out.
    let (code, out, err) = setup(&["--credential-source", "profile", "--profile", "ops"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out["diff"]["regstack.toml"]["email.ses_access_key_id"]["after"],
        serde_json::Value::Null
    );
    assert_eq!(
        out["diff"]["regstack.secrets.env"]["REGSTACK_EMAIL__SES_SECRET_ACCESS_KEY"],
        serde_json::json!({ "before": "***", "after": null })
    );
    let (toml, secrets) = files_of(&dir);
    assert!(
        toml.contains("ses_profile = \"ops\"") && !toml.contains("ses_access_key_id"),
        "{toml}"
    );
    assert_eq!(secrets, APP_SECRETS);

    // Without a credential flag, the credentials stay as they are.
    let (code, out, err) = setup(&[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out["written"], false, "{out}");
    assert!(files_of(&dir).0.contains("ses_profile = \"ops\""));
    // Two sources at once are refused.
    let (code, _, err) = setup(&["--credential-source", "chain", "--profile", "ops"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--credential-source chain does not take --profile"),
        "{err}"
    );

    // The default chain writes no credentials at all.
    let (code, _, err) = setup(&["--credential-source", "chain"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!files_of(&dir).0.contains("ses_profile"));
    let config = regstack::settings::load(Some(&dir), &[]).unwrap().config;
    assert_eq!(config.email.ses_region, "eu-west-2");

    let (code, _, err) = run_json(
        &dir,
        &[
            "ses",
            "setup",
            "--dry-run",
            "--region",
            "mars-north-1",
            "--from-address",
            "nope",
            "--credential-source",
            "profile",
        ],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--region: \"mars-north-1\" has no SES endpoint"), "{err}");
    assert!(
        err.contains("--from-address: \"nope\" is not an email address"),
        "{err}"
    );
    assert!(
        err.contains("--profile is required with --credential-source profile"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth_wizard_refuses_calls_without_its_token_and_saves_with_it() {
    let dir = app_dir("oauth-wizard");
    let w = LocalUi::start(&dir, &["oauth", "setup", "--no-browser"], "OAuth setup", &[]);
    let http = reqwest::Client::new();
    let state = format!("{}/api/state", w.base);
    assert_eq!(http.get(&state).send().await.unwrap().status().as_u16(), 401);
    let body =
        serde_json::json!({ "client_id": CLIENT_ID, "client_secret": "GOCSPX-page", "auto_link": false, "mfa": false });
    let save = format!("{}/api/save", w.base);
    assert_eq!(
        http.post(&save).json(&body).send().await.unwrap().status().as_u16(),
        401
    );
    assert_eq!(files_of(&dir).0, APP_TOML, "a refused call writes nothing");
    let got = json_with_token(http.get(&state), &w.token).await;
    assert_eq!(
        got["redirect_uri"],
        "https://shop.example/api/auth/oauth/google/callback"
    );
    let preview = json_with_token(http.post(format!("{}/api/preview", w.base)).json(&body), &w.token).await;
    assert_eq!(preview["written"], false);
    assert_eq!(files_of(&dir).0, APP_TOML, "a preview writes nothing");
    let r = http
        .post(&save)
        .header("x-regstack-token", &w.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (toml, secrets) = files_of(&dir);
    assert!(toml.contains(&format!("google_client_id = \"{CLIENT_ID}\"")), "{toml}");
    assert!(
        secrets.contains("REGSTACK_OAUTH__GOOGLE_CLIENT_SECRET=\"GOCSPX-page\""),
        "{secrets}"
    );
    let bad = serde_json::json!({ "client_id": "x", "client_secret": "" });
    let r = http
        .post(&save)
        .header("x-regstack-token", &w.token)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    w.done().await;
}

/// The moto server `scripts/test` starts (AWS's APIs, on loopback).
#[cfg(feature = "ses")]
fn moto() -> String {
    std::env::var("REGSTACK_TEST_MOTO_URL")
        .expect("REGSTACK_TEST_MOTO_URL must name the moto server (scripts/test starts one)")
}

#[cfg(feature = "ses")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ses_wizard_checks_with_ses_before_it_saves() {
    let dir = app_dir("ses-wizard");
    let moto = moto();
    let w = LocalUi::start(
        &dir,
        &["ses", "setup", "--no-browser"],
        "SES setup",
        &[
            ("AWS_ENDPOINT_URL", moto.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    );
    let http = reqwest::Client::new();
    let call = |path: &str, body: serde_json::Value| {
        http.post(format!("{}{path}", w.base))
            .header("x-regstack-token", &w.token)
            .json(&body)
            .send()
    };
    let answers =
        |from: &str| serde_json::json!({ "region": "eu-west-1", "from_address": from, "credential_source": "chain" });
    assert_eq!(
        http.post(format!("{}/api/check", w.base))
            .json(&answers("a@b.example"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );

    // A sender SES does not know: the identity check fails.
    let unknown = format!("mail@unknown-{}.example", std::process::id());
    let r: serde_json::Value = call("/api/check", answers(&unknown))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let outcome = |r: &serde_json::Value, name: &str| {
        r["results"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == name))
            .map(|c| c["outcome"].clone())
    };
    assert_eq!(outcome(&r, "credentials"), Some("pass".into()), "{r}");
    assert_eq!(outcome(&r, "sender identity"), Some("fail".into()), "{r}");

    // Its domain made an SES identity (as an operator does in the console): it passes.
    let domain = format!("wizard-{}.example", std::process::id());
    let made = http
        .post(format!("{moto}/v2/email/identities"))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/ses/aws4_request, SignedHeaders=host, Signature=00",
        )
        .json(&serde_json::json!({ "EmailIdentity": domain }))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status().as_u16(), 200);
    let from = format!("noreply@{domain}");
    let r: serde_json::Value = call("/api/check", answers(&from)).await.unwrap().json().await.unwrap();
    assert_eq!(outcome(&r, "sender identity"), Some("pass".into()), "{r}");
    // moto has no GetAccount: the sandbox state is reported as unknown, not as a pass.
    assert_eq!(outcome(&r, "sandbox state"), Some("warn".into()), "{r}");

    // A test message goes out through SES.
    let mut test = answers(&from);
    let to = format!("ops-{}@shop.example", std::process::id());
    test["to"] = to.clone().into();
    let r: serde_json::Value = call("/api/send-test", test).await.unwrap().json().await.unwrap();
    assert_eq!(r["result"]["outcome"], "pass", "{r}");
    let data: serde_json::Value = reqwest::get(format!("{moto}/moto-api/data.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sent = data["ses"]["Message"]
        .as_array()
        .is_some_and(|all| all.iter().any(|m| m["destinations"]["ToAddresses"][0] == to.as_str()));
    assert!(sent, "moto holds the test message: {}", data["ses"]);

    let r = call("/api/save", answers(&from)).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let toml = files_of(&dir).0;
    assert!(
        toml.contains("backend = \"ses\"") && toml.contains(&format!("from_address = \"{from}\"")),
        "{toml}"
    );
    w.done().await;
}

/// The binary under a pseudo-terminal (util-linux's `script`, in every Debian), driven like
/// a person at the keyboard: each answer typed once the prompt it answers is on screen.
struct Terminal {
    child: std::process::Child,
    input: std::process::ChildStdin,
    output: std::sync::mpsc::Receiver<String>,
    screen: String,
}

impl Terminal {
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Terminal {
        use std::io::Read;
        let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_regstack"))
            .chain(args.iter().copied())
            .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
            .collect();
        let cmdline = quoted.join(" ");
        let mut child = command_of("script", dir, &["-q", "-e", "-c", &cmdline, "/dev/null"])
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("util-linux script runs");
        let input = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(String::from_utf8_lossy(&buf[..n]).into_owned()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            child,
            input,
            output: rx,
            screen: String::new(),
        }
    }

    /// Waits until the screen shows `text` (after everything waited for before).
    fn wait_for(&mut self, text: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !self.screen.contains(text) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.output.recv_timeout(left) {
                Ok(chunk) => self.screen.push_str(&chunk),
                Err(_) => panic!("{text:?} never appeared; the screen:\n{}", self.screen),
            }
        }
    }

    fn type_line(&mut self, line: &str) {
        use std::io::Write;
        self.input.write_all(format!("{line}\n").as_bytes()).unwrap();
        self.input.flush().unwrap();
    }

    /// Waits for the program to end; answers whether it succeeded and the whole screen.
    fn finish(mut self) -> (bool, String) {
        let status = self.child.wait().unwrap();
        while let Ok(chunk) = self.output.recv_timeout(std::time::Duration::from_millis(200)) {
            self.screen.push_str(&chunk);
        }
        (status.success(), self.screen)
    }
}

#[test]
fn init_in_a_terminal_hides_the_secret_it_is_typed() {
    let dir = temp_dir("init-tty");
    let mut t = Terminal::start(&dir, &["init"], &[]);
    for (prompt, answer) in [
        ("App name [MyApp]: ", "Terminal App"),
        ("Public base URL [http://localhost:8000]: ", ""),
        ("Behind a reverse proxy", ""),
        ("Database backend", ""),
        ("SQLite file path", ""),
        ("Auto-generate a 64-byte JWT secret?", "n"),
    ] {
        t.wait_for(prompt);
        t.type_line(answer);
    }
    let secret = "typed-in-a-terminal-0123456789-abcdefghij";
    for prompt in ["JWT secret: ", "Repeat for confirmation: "] {
        t.wait_for(prompt);
        // The prompt is out before the echo goes off: give the terminal a moment to catch up.
        std::thread::sleep(std::time::Duration::from_millis(1000));
        t.type_line(secret);
    }
    t.wait_for("JWT lifetime");
    for _ in 0..9 {
        t.type_line("");
    }
    let (ok, screen) = t.finish();
    assert!(ok, "{screen}");
    assert!(
        screen.contains("Terminal App"),
        "the terminal echoes plain answers: {screen}"
    );
    assert!(!screen.contains(secret), "the secret never shows: {screen}");
    assert!(
        !screen.contains("***"),
        "no transcript of piped answers in a terminal: {screen}"
    );
    let toml = std::fs::read_to_string(dir.join("regstack.toml")).unwrap();
    assert!(toml.contains("app_name = \"Terminal App\""), "{toml}");
    let secrets = std::fs::read_to_string(dir.join("regstack.secrets.env")).unwrap();
    assert!(
        secrets.contains(&format!("REGSTACK_JWT_SECRET=\"{secret}\"")),
        "{secrets}"
    );
}

#[test]
fn a_slow_step_shows_a_spinner_in_a_terminal_and_a_line_elsewhere() {
    let dir = temp_dir("progress");
    let (ok, out) = regstack(&dir, &["migrate"]);
    assert!(ok, "{out}");
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = silent.local_addr().unwrap().to_string();
    let env = [
        (
            "REGSTACK_DATABASE_URL",
            format!("sqlite+aiosqlite:///{}", dir.join("regstack.db").display()),
        ),
        (
            "REGSTACK_JWT_SECRET",
            "cli-test-secret-0123456789-0123456789-abcdef".to_string(),
        ),
        ("REGSTACK_EMAIL__FROM_ADDRESS", "noreply@good.dns-probe.io".to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = ["doctor", "--check-dns", "--dns-server", server.as_str()];

    // Piped: one plain line, no control characters.
    let out = command(&dir, &args).envs(env.iter().copied()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\u{2026} looking up DNS records for good.dns-probe.io\n"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");

    // In a terminal: a spinner that counts seconds, erased when the step ends.
    let t = Terminal::start(&dir, &args, &env);
    let (_, screen) = t.finish();
    assert!(
        screen.contains("looking up DNS records for good.dns-probe.io (1s)"),
        "{screen:?}"
    );
    assert!(screen.contains("\r\u{1b}[2K"), "the spinner is erased: {screen:?}");
    assert!(screen.contains("\u{26a0} dns mx: no answer"), "{screen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_pages_work_in_a_browser() {
    use regstack_conformance::browser::{screenshot_dir, Browser};
    let b = Browser::start().await;
    b.resize(1280, 900).await;

    let dir = app_dir("oauth-page");
    let w = LocalUi::start(&dir, &["oauth", "setup", "--no-browser"], "OAuth setup", &[]);
    b.goto(&format!("{}/#token={}", w.base, w.token)).await;
    b.wait_for_text("#wz-status", |t| t == "Ready.").await;
    b.wait_for_text("#wz-redirect", |t| {
        t == "https://shop.example/api/auth/oauth/google/callback"
    })
    .await;
    b.fill("#wz-client-id", CLIENT_ID).await;
    b.fill("#wz-client-secret", "GOCSPX-from-the-page").await;
    b.click("#wz-preview").await;
    b.wait_for_text("#wz-status", |t| t == "These are the changes Save will make.")
        .await;
    let diff = b.body_text().await;
    assert!(
        diff.contains("oauth.google_client_id") && !diff.contains("GOCSPX"),
        "{diff}"
    );
    b.screenshot(&screenshot_dir().join("wizards"), "oauth-setup").await;
    b.click("#wz-save").await;
    b.wait_for_text("#wz-status", |t| t.starts_with("Saved.")).await;
    assert!(files_of(&dir).1.contains("GOCSPX-from-the-page"));
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "the console reported {errors:#?}");
    w.done().await;

    #[cfg(feature = "ses")]
    ses_page(&b).await;
}

/// The SES page loads, with Save closed until a check has run.
#[cfg(feature = "ses")]
async fn ses_page(b: &regstack_conformance::browser::Browser) {
    use regstack_conformance::browser::screenshot_dir;
    let dir = app_dir("ses-page");
    let w = LocalUi::start(&dir, &["ses", "setup", "--no-browser"], "SES setup", &[]);
    b.goto(&format!("{}/#token={}", w.base, w.token)).await;
    b.wait_for_text("#wz-status", |t| t == "Ready.").await;
    let region = b
        .run(
            "return document.getElementById('wz-region').value;",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(region, "eu-west-1");
    let save_off = b
        .run(
            "return document.getElementById('wz-save').disabled;",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(save_off, true, "Save waits for a check");
    b.screenshot(&screenshot_dir().join("wizards"), "ses-setup").await;
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "the console reported {errors:#?}");
    w.done().await;
}
