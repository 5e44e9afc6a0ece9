//! Figures, not tests: Argon2id at the default parameters, JWT mint/verify, and (when
//! `scripts/bench` points it at a running `regstack serve`) `GET /me` requests per second.

use std::sync::Arc;
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

async fn bench_me(url: String, token: String) {
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let concurrency = 32;
    let duration = Duration::from_secs(10);
    let deadline = Instant::now() + duration;
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, token, latencies) = (client.clone(), url.clone(), token.clone(), latencies.clone());
        tasks.push(tokio::spawn(async move {
            let mut local = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let resp = client
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("server answers");
                assert_eq!(resp.status(), 200);
                resp.bytes().await.unwrap();
                local.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            latencies.lock().unwrap().extend(local);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut l = latencies.lock().unwrap().clone();
    l.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| l[((l.len() as f64 - 1.0) * q) as usize];
    println!(
        "GET /me against regstack serve: {:.0} requests/s ({} requests, {} connections, {} s), p50 {:.2} ms, p99 {:.2} ms",
        l.len() as f64 / duration.as_secs_f64(),
        l.len(),
        concurrency,
        duration.as_secs(),
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
    rt.block_on(bench_me(url.clone(), token));
    let login = format!("{}/login", url.trim_end_matches("/me"));
    rt.block_on(bench_login(
        login,
        "bench@example.com".into(),
        "bench-password-1".into(),
    ));
}
