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

/// Runs the binary in `dir` on `dir/regstack.db`; whether it succeeded, and its output.
fn regstack(dir: &Path, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regstack"));
    cmd.args(args).current_dir(dir);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().to_ascii_uppercase().starts_with("REGSTACK_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .env(
            "REGSTACK_DATABASE_URL",
            format!("sqlite+aiosqlite:///{}", dir.join("regstack.db").display()),
        )
        .env("REGSTACK_JWT_SECRET", "cli-test-secret-0123456789-0123456789-abcdef")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn migrate_in_steps_and_serve_without_migrating() {
    let dir = temp_dir("steps");
    let (ok, out) = regstack(&dir, &["migrate", "--target", "0002"]);
    assert!(ok, "{out}");
    assert!(out.contains("before: an empty database (head is 0005)"), "{out}");
    assert!(out.contains("\u{2714} migrate: applied 0001, 0002"), "{out}");
    assert!(out.contains("after: revision 0002 (head is 0005)"), "{out}");

    // Behind head: doctor fails on the schema, and a server told not to migrate refuses to start.
    let (ok, out) = regstack(&dir, &["doctor"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("\u{2718} schema: revision 0002 (head is 0005): run `regstack migrate`"),
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
        ok && out.contains("applied 0004, 0005") && out.contains("after: revision 0005 (head)"),
        "{out}"
    );
    let (ok, out) = regstack(&dir, &["migrate"]);
    assert!(
        ok && out.contains("already at revision 0005 (head); nothing to do"),
        "{out}"
    );
    let (ok, out) = regstack(&dir, &["doctor"]);
    assert!(ok && out.contains("\u{2714} schema: revision 0005 (head)"), "{out}");
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
    assert!(out.contains("after: revision 0005 (head)"), "{out}");
    // The adopted account is there, with its password.
    let (ok, out) = regstack(&dir, &["create-admin", "--email", "old@example.com"]);
    assert!(ok && out.contains("Promoted existing user old@example.com"), "{out}");
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
