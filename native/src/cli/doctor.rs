//! `regstack doctor`: read-only checks of the loaded config, its database and its email
//! backend (docs/cli.md, "doctor"). Exit 1 when a check fails; advisories (⚠) never fail.

use std::path::Path;
use std::process::ExitCode;

use regstack::store;
use regstack_core::config::{database_kind, Config, DatabaseKind};
use regstack_core::ports::EmailMessage;

use super::{fail, pass, warn};

/// The outcome so far: whether any check failed.
#[derive(Default)]
struct Report {
    failed: bool,
}

impl Report {
    fn fail(&mut self, name: &str, detail: impl std::fmt::Display) {
        self.failed = true;
        fail(name, detail);
    }
}

/// What doctor does beyond its default checks.
#[derive(Debug, Default)]
pub struct Extras<'a> {
    /// Send one real message to this address.
    pub send_test_email: Option<&'a str>,
    /// Look up the sender domain's MX, SPF and DMARC records.
    pub check_dns: bool,
    /// Ask this DNS server instead of the system's resolvers.
    pub dns_server: Option<std::net::SocketAddr>,
}

/// Runs every check in order, then the `extras` asked for.
pub async fn run(config: Option<&Path>, extras: Extras<'_>) -> ExitCode {
    let mut report = Report::default();
    let file = regstack::settings::toml_path(config);
    let config = match regstack::settings::load(config, &[]) {
        Ok(l) => {
            match file {
                Some(f) => pass("config", format!("{} and the environment", f.display())),
                None => pass("config", "no regstack.toml: defaults and the environment"),
            }
            l.config
        }
        Err(e) => {
            report.fail("config", e);
            return ExitCode::FAILURE;
        }
    };
    jwt_secret(&config, &mut report);
    database(&config, &mut report).await;
    email(&config, extras.send_test_email, &mut report).await;
    if extras.check_dns {
        dns(&config, extras.dns_server, &mut report).await;
    }
    if report.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn jwt_secret(config: &Config, report: &mut Report) {
    let n = config.jwt_secret.chars().count();
    if n == 0 {
        report.fail(
            "jwt secret",
            "missing: each start would make up a new one and end every session; set REGSTACK_JWT_SECRET (regstack init writes one)",
        );
    } else if n < 32 {
        report.fail("jwt secret", format!("{n} characters; at least 32 are needed"));
    } else {
        pass("jwt secret", format!("present ({n} characters)"));
    }
}

async fn database(config: &Config, report: &mut Report) {
    let kind = match database_kind(&config.database_url) {
        Ok(k) => k,
        Err(e) => {
            report.fail("backend", e);
            return;
        }
    };
    let what = match &kind {
        DatabaseKind::Sqlite(path) => format!("SQLite at {path}"),
        DatabaseKind::Postgres(_) => "PostgreSQL".to_string(),
        DatabaseKind::Mongo(_) => "MongoDB".to_string(),
    };
    if let DatabaseKind::Mongo(url) = kind {
        return mongo(config, &url, &what, report).await;
    }
    match super::progress::shown("reaching the database", store::schema(config)).await {
        Ok(Some(state)) => {
            pass("backend", format!("{what} answers"));
            if state.at_head() {
                pass("schema", state);
            } else {
                report.fail("schema", format!("{state}: run `regstack migrate`"));
            }
        }
        Ok(None) => {}
        Err(e) => {
            report.fail("backend", e);
            report.fail("schema", "not checked: the database did not answer");
        }
    }
}

#[cfg(feature = "mongo")]
async fn mongo(config: &Config, url: &str, what: &str, report: &mut Report) {
    let timeout = std::time::Duration::from_secs(config.database_timeout_seconds);
    match super::progress::shown("reaching the database", store::mongo::health(config, url, timeout)).await {
        Ok(health) => {
            pass("backend", format!("{what} answers"));
            if health.missing_indexes.is_empty() {
                pass("schema", "the unique indexes email_unique and jti_unique are in place");
            } else {
                report.fail(
                    "schema",
                    format!(
                        "missing {}: start regstack once to install them",
                        health.missing_indexes.join(", ")
                    ),
                );
            }
            match store::mongo::cve_2025_14847(&health.server) {
                Ok(detail) => pass("mongo server", detail),
                Err(advice) => warn("mongo server", advice),
            }
        }
        Err(e) => {
            report.fail("backend", e);
            report.fail("schema", "not checked: the database did not answer");
        }
    }
}

#[cfg(not(feature = "mongo"))]
async fn mongo(_: &Config, _: &str, _: &str, report: &mut Report) {
    report.fail(
        "backend",
        "database_url selects MongoDB, but this regstack was built without the `mongo` feature",
    );
}

async fn dns(config: &Config, server: Option<std::net::SocketAddr>, report: &mut Report) {
    let Some((_, domain)) = config
        .email
        .from_address
        .rsplit_once('@')
        .filter(|(_, d)| !d.is_empty())
    else {
        report.fail(
            "dns",
            format!(
                "email.from_address {:?} has no domain to check",
                config.email.from_address
            ),
        );
        return;
    };
    let label = format!("looking up DNS records for {domain}");
    for (name, finding) in super::progress::shown(&label, super::dns::check(domain, server)).await {
        match finding {
            super::dns::Finding::Pass(detail) => pass(name, detail),
            super::dns::Finding::Advice(detail) => warn(name, detail),
            super::dns::Finding::Fail(detail) => report.fail(name, detail),
        }
    }
}

async fn email(config: &Config, send_test_email: Option<&str>, report: &mut Report) {
    let mailer = match regstack::delivery::mailer_from_config(config).await {
        Ok(m) => {
            let what = regstack::delivery::describe_email(config);
            if config.email.backend == regstack_core::config::EmailBackend::Console {
                warn(
                    "email backend",
                    format!("{what}: fine for development; production needs smtp or ses"),
                );
            } else {
                pass("email backend", what);
            }
            m
        }
        Err(e) => {
            report.fail("email backend", e);
            return;
        }
    };
    let Some(to) = send_test_email else {
        return;
    };
    let message = EmailMessage {
        to: to.to_string(),
        from: config.email_from(),
        subject: format!("{}: regstack doctor test email", config.app_name),
        text: "This message was sent by `regstack doctor --send-test-email` to check that email delivery works.\n".into(),
        html: "<p>This message was sent by <code>regstack doctor --send-test-email</code> to check that email delivery works.</p>".into(),
    };
    match super::progress::shown(&format!("sending a test email to {to}"), mailer.send(&message)).await {
        Ok(()) => pass("email send", format!("sent to {to}")),
        Err(e) => report.fail("email send", e),
    }
}
