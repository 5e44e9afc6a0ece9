//! `regstack doctor --check-dns`: the sender domain's MX, SPF and DMARC records
//! (docs/cli.md, "doctor"). DNS is outside regstack's control and may be unreachable from
//! where doctor runs, so an unanswered lookup is an advisory (⚠), not a failure.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;

/// How long one lookup may take before doctor calls the network unreachable.
const TIMEOUT: Duration = Duration::from_secs(3);

/// What one check found.
#[derive(Debug, PartialEq, Eq)]
pub enum Finding {
    /// As it should be.
    Pass(String),
    /// Worth a look, not a failure: no answer (offline, a timeout), or a setup that works
    /// but is weak.
    Advice(String),
    /// Mail from this domain will be refused or treated as spam.
    Fail(String),
}

/// The three checks for `domain`, asking `server` (default: the system's resolvers).
pub async fn check(domain: &str, server: Option<SocketAddr>) -> Vec<(&'static str, Finding)> {
    let resolver = match resolver(server) {
        Ok(r) => r,
        Err(e) => {
            let why = format!("no DNS resolver: {e}");
            return vec![
                ("dns mx", Finding::Advice(why.clone())),
                ("dns spf", Finding::Advice(why.clone())),
                ("dns dmarc", Finding::Advice(why)),
            ];
        }
    };
    // The three at once: offline, each waits out its own timeout.
    let (mx, spf, dmarc) = tokio::join!(mx(&resolver, domain), spf(&resolver, domain), dmarc(&resolver, domain));
    vec![("dns mx", mx), ("dns spf", spf), ("dns dmarc", dmarc)]
}

async fn mx(resolver: &TokioResolver, domain: &str) -> Finding {
    match resolver.mx_lookup(format!("{domain}.")).await {
        Ok(found) => {
            let hosts: Vec<String> = found
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::MX(mx) => Some(mx.exchange.to_string().trim_end_matches('.').to_string()),
                    _ => None,
                })
                .collect();
            if hosts.iter().any(String::is_empty) {
                // RFC 7505: `MX 0 .` says the domain takes no mail at all.
                Finding::Fail(format!(
                    "{domain} has a null MX: it takes no mail, so replies and bounces are lost"
                ))
            } else if hosts.is_empty() {
                no_mx(domain)
            } else {
                Finding::Pass(format!("{domain} → {}", hosts.join(", ")))
            }
        }
        Err(e) if absent(&e) => no_mx(domain),
        Err(e) => Finding::Advice(format!("no answer for {domain} MX ({e})")),
    }
}

/// Without an MX, mail falls back to the domain's address records (RFC 5321 §5.1): it can
/// work, but many receivers distrust it.
fn no_mx(domain: &str) -> Finding {
    Finding::Advice(format!(
        "{domain} has no MX record: replies and bounces go to its A/AAAA records, if any"
    ))
}

async fn spf(resolver: &TokioResolver, domain: &str) -> Finding {
    match records(resolver, domain, "v=spf1").await {
        Err(no_answer) => no_answer,
        Ok(found) => match found.as_slice() {
            [one] => Finding::Pass(one.clone()),
            [] => Finding::Fail(format!(
                "{domain} has no SPF record (a TXT starting v=spf1): receivers may treat its mail as spam"
            )),
            _ => Finding::Fail(format!(
                "{domain} has {} SPF records; receivers treat more than one as an error (RFC 7208)",
                found.len()
            )),
        },
    }
}

/// The record at `_dmarc.<domain>`, else at the parent domains (RFC 7489 §6.6.3 falls back
/// to the organizational domain; without the public suffix list, every parent with two or
/// more labels is tried, nearest first).
async fn dmarc(resolver: &TokioResolver, domain: &str) -> Finding {
    let labels: Vec<&str> = domain.split('.').collect();
    for start in 0..labels.len().saturating_sub(1).max(1) {
        let name = format!("_dmarc.{}", labels[start..].join("."));
        match records(resolver, &name, "v=DMARC1").await {
            Err(no_answer) => return no_answer,
            Ok(found) => match found.as_slice() {
                [] => continue,
                [one] => return Finding::Pass(format!("{name}: {one}")),
                _ => {
                    return Finding::Fail(format!(
                        "{name} has {} DMARC records; receivers ignore them all (RFC 7489)",
                        found.len()
                    ))
                }
            },
        }
    }
    Finding::Fail(format!(
        "no DMARC record (a TXT starting v=DMARC1) at _dmarc.{domain} or its parent domains"
    ))
}

/// The TXT records of `name` whose first term is `version` (case-insensitive, then a space,
/// a `;` or the end, so `v=spf10` is not SPF), each joined from its strings; the advisory when
/// nothing answered.
async fn records(resolver: &TokioResolver, name: &str, version: &str) -> Result<Vec<String>, Finding> {
    match resolver.txt_lookup(format!("{name}.")).await {
        Ok(found) => Ok(found
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|part| String::from_utf8_lossy(part).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .filter(|text| {
                // SPF separates terms with spaces, DMARC tags with `;`.
                let first = text.split([' ', ';']).next().unwrap_or_default();
                first.eq_ignore_ascii_case(version)
            })
            .collect()),
        Err(e) if absent(&e) => Ok(Vec::new()),
        Err(e) => Err(Finding::Advice(format!("no answer for {name} TXT ({e})"))),
    }
}

/// The name or the record type does not exist: an answer, not an outage.
fn absent(e: &NetError) -> bool {
    e.is_no_records_found() || e.is_nx_domain()
}

fn resolver(server: Option<SocketAddr>) -> Result<TokioResolver, String> {
    let mut builder = match server {
        Some(addr) => {
            let (mut udp, mut tcp) = (ConnectionConfig::udp(), ConnectionConfig::tcp());
            udp.port = addr.port();
            tcp.port = addr.port();
            let name_server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![name_server]),
                TokioRuntimeProvider::default(),
            )
        }
        None => TokioResolver::builder_tokio().map_err(|e| e.to_string())?,
    };
    let options: &mut ResolverOpts = builder.options_mut();
    options.timeout = TIMEOUT;
    // hickory counts retries here: none, so a lookup takes at most one timeout.
    options.attempts = 0;
    builder.build().map_err(|e| e.to_string())
}
