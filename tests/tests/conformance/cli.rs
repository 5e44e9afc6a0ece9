//! The operator commands against a running server's database (docs/cli.md): `migrate` and
//! `doctor` on every native backend. The edge has no operator binary.

use regstack_conformance::{runs_here, Only, Server};

fn on_mongo(s: &Server) -> bool {
    s.database_url().starts_with("mongodb")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_on_a_current_database_changes_nothing() {
    if !runs_here(Only::Native) {
        return;
    }
    let s = Server::start(&[]).await;
    let out = s.cli(&["migrate"]).await;
    if on_mongo(&s) {
        assert!(
            out.contains("\u{2714} migrate: MongoDB has no schema migrations"),
            "{out}"
        );
        return;
    }
    assert!(out.contains("before: revision 00") && out.contains("(head)"), "{out}");
    assert!(out.contains("\u{2714} migrate: already at revision"), "{out}");
    assert!(out.contains("nothing to do"), "{out}");

    // A revision past head and a downgrade are refused with one line and exit 1.
    let (ok, out) = s.cli_status(&["migrate", "--target", "0099"]).await;
    assert!(
        !ok && out.contains("\u{2718} migrate: there is no revision 0099"),
        "{out}"
    );
    let (ok, out) = s.cli_status(&["migrate", "--target", "0001"]).await;
    assert!(!ok && out.contains("regstack does not downgrade"), "{out}");
    // A malformed target is a usage error before anything is opened.
    let (ok, out) = s.cli_status(&["migrate", "--target", "latest"]).await;
    assert!(
        !ok && out.contains("--target takes head, a revision such as 0004, or +N"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_a_healthy_deployment_and_names_what_is_wrong() {
    if !runs_here(Only::Native) {
        return;
    }
    let s = Server::start(&[]).await;
    let out = s.cli(&["doctor"]).await;
    for line in [
        "\u{2714} config: no regstack.toml",
        "\u{2714} jwt secret: present (",
        "\u{2714} backend: ",
        "\u{2714} schema: ",
        "\u{26a0} email backend: console",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    if on_mongo(&s) {
        // The suite's Mongo-wire server is SecantusDB, which doctor recognises.
        assert!(out.contains("\u{2714} mongo server: SecantusDB"), "{out}");
    }
    assert!(!out.contains('\u{2718}'), "{out}");

    // A missing secret fails the command (and nothing else does here).
    let (ok, out) = s.cli_with_env(&["doctor"], &[("REGSTACK_JWT_SECRET", "")]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("\u{2718} jwt secret: missing"), "{out}");
    assert!(out.contains("\u{2714} backend: "), "{out}");

    // An explicit config that is not there is one clear line and exit 1.
    let (ok, out) = s
        .cli_status(&["doctor", "--config", "/nonexistent/regstack.toml"])
        .await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("\u{2718} config: no config file at /nonexistent/regstack.toml"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1, "one line, no dump:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_sends_a_test_email_through_the_configured_backend() {
    if !runs_here(Only::Native) {
        return;
    }
    let s = Server::start(&[("REGSTACK_EMAIL__LOG_BODIES", "true")]).await;
    let (ok, out) = s
        .cli_with_env(
            &["doctor", "--send-test-email", "probe@regstack-probe.example"],
            &[("RUST_LOG", "info")],
        )
        .await;
    assert!(ok, "{out}");
    assert!(
        out.contains("\u{2714} email send: sent to probe@regstack-probe.example"),
        "{out}"
    );
    assert!(
        out.contains("regstack doctor test email"),
        "the console backend logged it:\n{out}"
    );
}
