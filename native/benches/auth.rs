//! Figures, not tests: Argon2id at the default parameters, JWT mint/verify, and (when
//! `scripts/bench` points it at a running `regstack serve`) `GET /me` latency at a fixed
//! offered rate and the login rate.

use std::time::{Duration, Instant};

use regstack_core::jwt::{JwtCodec, Purpose};
use regstack_core::password::{self, HashParams};
use regstack_core::time::from_micros;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn bench_argon2() {
    let mut times = Vec::new();
    let mut hash = String::new();
    for i in 0..15u8 {
        let t = Instant::now();
        hash = password::hash("correct horse battery", &[i; 16], HashParams::OWASP).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let min = times.iter().cloned().fold(f64::MAX, f64::min);
    println!(
        "argon2id hash (m=19456 KiB, t=2, p=1): median {:.1} ms, min {:.1} ms over {} runs",
        median(times.clone()),
        min,
        times.len()
    );
    let t = Instant::now();
    for _ in 0..10 {
        assert!(password::verify("correct horse battery", &hash, HashParams::OWASP).ok);
    }
    println!("argon2id verify: {:.1} ms per call", t.elapsed().as_secs_f64() * 100.0);
}

fn bench_jwt() {
    let codec = JwtCodec::new(
        "0123456789abcdef0123456789abcdef",
        regstack_core::jwt::JwtAlgorithm::Hs256,
        None,
    );
    let now = from_micros(1_767_268_800_123_456);
    let n = 100_000;
    let t = Instant::now();
    let mut token = String::new();
    for _ in 0..n {
        token = codec
            .mint(
                Purpose::Session,
                "0123456789abcdef0123456789abcdef",
                None,
                "_H7pH_QhpvVWfdBoqmRZKA",
                now,
                7200,
            )
            .0;
    }
    let mint = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let t = Instant::now();
    for _ in 0..n {
        codec.decode(&token, Purpose::Session, now).unwrap();
    }
    let verify = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("jwt HS256 session: mint {mint:.2} µs, verify {verify:.2} µs");
}

async fn bench_login(url: String, email: String, password: String) {
    let client = reqwest::Client::new();
    let concurrency = 8;
    let duration = Duration::from_secs(10);
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url) = (client.clone(), url.clone());
        let body = serde_json::json!({"email": email, "password": password});
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let resp = client.post(&url).json(&body).send().await.expect("server answers");
                assert_eq!(resp.status(), 200);
                resp.bytes().await.unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    println!(
        "POST /login (Argon2 verify + session) against regstack serve: {:.1} logins/s ({total} in {} s, {concurrency} clients)",
        total as f64 / duration.as_secs_f64(),
        duration.as_secs()
    );
}

/// `GET /me` at a fixed offered rate (open loop: requests leave on schedule whether or not
/// earlier ones have answered), so the latency is the server's at that load, not the
/// client's queue. `scripts/bench` passes half of the peak wrk measured.
async fn bench_me_at(url: String, token: String, rate: u64) {
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
    let duration = Duration::from_secs(10);
    // The timer ticks in whole milliseconds, so one schedule at thousands per second would
    // send in bursts; 64 schedules with staggered phases spread the requests evenly.
    let schedules = 64u32;
    let interval = Duration::from_secs_f64(schedules as f64 / rate.max(1) as f64);
    let started = tokio::time::Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for n in 0..schedules {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        senders.spawn(async move {
            let mut ticks = tokio::time::interval_at(started + interval * n / schedules, interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut inflight = tokio::task::JoinSet::new();
            while started.elapsed() < duration {
                ticks.tick().await;
                let (client, url, token) = (client.clone(), url.clone(), token.clone());
                inflight.spawn(async move {
                    let t = Instant::now();
                    let resp = client
                        .get(&url)
                        .bearer_auth(&token)
                        .send()
                        .await
                        .expect("server answers");
                    assert_eq!(resp.status(), 200);
                    resp.bytes().await.unwrap();
                    t.elapsed().as_secs_f64() * 1000.0
                });
            }
            let mut l = Vec::new();
            while let Some(ms) = inflight.join_next().await {
                l.push(ms.unwrap());
            }
            l
        });
    }
    let mut l = Vec::new();
    while let Some(part) = senders.join_next().await {
        l.extend(part.unwrap());
    }
    l.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| l[((l.len() as f64 - 1.0) * q) as usize];
    println!(
        "GET /me at {rate} requests/s offered (half of peak): {:.0} answered/s, p50 {:.2} ms, p99 {:.2} ms",
        l.len() as f64 / duration.as_secs_f64(),
        p(0.5),
        p(0.99)
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let http = (
        std::env::var("REGSTACK_BENCH_ME_URL"),
        std::env::var("REGSTACK_BENCH_TOKEN"),
    );
    let (Ok(url), Ok(token)) = http else {
        bench_argon2();
        bench_jwt();
        println!("GET /me and POST /login: skipped (scripts/bench starts a server per backend)");
        return;
    };
    let backend = std::env::var("REGSTACK_BENCH_BACKEND").unwrap_or_else(|_| "sqlite".into());
    println!("-- regstack serve on {backend}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let rate = std::env::var("REGSTACK_BENCH_ME_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2000);
    rt.block_on(bench_me_at(url.clone(), token, rate));
    let login = format!("{}/login", url.trim_end_matches("/me"));
    rt.block_on(bench_login(
        login,
        "bench@example.com".into(),
        "bench-password-1".into(),
    ));
}
