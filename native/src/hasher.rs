//! Argon2 on a fixed pool of hashing threads (docs/security.md, "Password hashing memory"):
//! each thread owns one block buffer sized for the configured parameters, allocated at its
//! first hash and then kept, so the memory hashing can ever take is known in advance, an idle
//! server holds none of it, and load never grows it. A stored hash that demands more (regstack 0.9.3's were 64 MiB) is checked on one
//! extra lane, whose buffer is allocated the first time one arrives and then kept; a hash
//! demanding more than `password_hash_max_memory_kib` is refused.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use regstack_core::password::{self, Block, HashParams, PasswordError, Verified};
use regstack_core::ports::{PasswordHasher, Random};
use tokio::sync::oneshot;

/// One request to a hashing thread.
enum Work {
    Hash { password: String, salt: [u8; 16] },
    Verify { password: String, phc: String },
}

enum Outcome {
    Hashed(Result<String, PasswordError>),
    Verified(Verified),
}

struct Job {
    work: Work,
    reply: oneshot::Sender<Outcome>,
}

/// What the pool holds and does, from its own counters.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Bytes of block memory allocated, all lanes together.
    pub allocated_bytes: AtomicUsize,
    /// Hashes running right now.
    pub busy: AtomicUsize,
    /// The most that ever ran at once.
    pub peak_busy: AtomicUsize,
    /// Hashes computed (jobs whose caller had gone are skipped, not counted).
    pub computed: AtomicUsize,
}

/// The [`PasswordHasher`] over the pool.
pub struct PooledHasher {
    params: HashParams,
    random: Arc<dyn Random>,
    lanes: Lane,
    large: Lane,
    slot_blocks: usize,
    max_memory_kib: u32,
    stats: Arc<PoolStats>,
}

impl PooledHasher {
    /// `slots` threads with a buffer for `params` each, and the lane for costlier stored
    /// hashes up to `max_memory_kib`. At most `queue` jobs wait on each; one more is refused
    /// as busy (the API's 503), so work nobody waits for cannot pile up.
    pub fn new(params: HashParams, random: Arc<dyn Random>, slots: usize, queue: usize, max_memory_kib: u32) -> Self {
        let slot_blocks = password::blocks_for(params.memory_kib, params.parallelism).unwrap_or(0);
        let max_blocks = password::blocks_for(max_memory_kib, 1).unwrap_or(0).max(slot_blocks);
        let stats = Arc::new(PoolStats::default());
        let (lanes, jobs) = Lane::new(queue);
        let jobs = Arc::new(Mutex::new(jobs));
        for n in 0..slots.max(1) {
            let (jobs, waiting, stats) = (jobs.clone(), lanes.waiting.clone(), stats.clone());
            std::thread::Builder::new()
                .name(format!("regstack-argon2-{n}"))
                .spawn(move || run_lane(&jobs, &waiting, params, slot_blocks, &stats))
                .expect("starting a hashing thread");
        }
        let (large, big_jobs) = Lane::new(queue);
        let big_jobs = Arc::new(Mutex::new(big_jobs));
        let (big_waiting, big_stats) = (large.waiting.clone(), stats.clone());
        std::thread::Builder::new()
            .name("regstack-argon2-large".into())
            .spawn(move || run_lane(&big_jobs, &big_waiting, params, max_blocks, &big_stats))
            .expect("starting the large hashing thread");
        tracing::info!(
            target: "regstack.password",
            "password hashing: {} slots × {} MiB, and one lane of up to {} MiB for costlier stored hashes (each allocated at its first use, then kept)",
            slots.max(1),
            slot_blocks / 1024,
            max_blocks / 1024
        );
        Self {
            params,
            random,
            lanes,
            large,
            slot_blocks,
            max_memory_kib,
            stats,
        }
    }

    /// The pool's counters.
    pub fn stats(&self) -> &PoolStats {
        &self.stats
    }

    async fn submit(&self, lane: &Lane, work: Work) -> Result<Outcome, PasswordError> {
        let (reply, answer) = oneshot::channel();
        // Claim a place only while there is one, so a refused caller never takes a place
        // another could have had.
        lane.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < lane.limit).then_some(n + 1)
            })
            .map_err(|_| PasswordError::Busy)?;
        if lane.jobs.send(Job { work, reply }).is_err() {
            lane.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(PasswordError::Hash("the hashing threads have stopped".into()));
        }
        answer
            .await
            .map_err(|_| PasswordError::Hash("a hashing thread stopped".into()))
    }
}

/// A queue of jobs with a limit on how many may wait. The limit is a counter, not a bounded
/// channel: a bounded channel allocates its whole capacity up front, so a generous
/// `password_hash_queue_limit` would cost memory while idle.
struct Lane {
    jobs: Sender<Job>,
    waiting: Arc<AtomicUsize>,
    limit: usize,
}

impl Lane {
    fn new(limit: usize) -> (Self, Receiver<Job>) {
        let (jobs, receiver) = channel();
        let lane = Self {
            jobs,
            waiting: Arc::new(AtomicUsize::new(0)),
            limit: limit.max(1),
        };
        (lane, receiver)
    }
}

/// One hashing thread: jobs until the pool is dropped, in a buffer of `blocks` allocated at
/// the first job and kept.
fn run_lane(jobs: &Mutex<Receiver<Job>>, waiting: &AtomicUsize, params: HashParams, blocks: usize, stats: &PoolStats) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = {
            let jobs = jobs.lock().unwrap_or_else(|p| p.into_inner());
            match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        waiting.fetch_sub(1, Ordering::AcqRel);
        // Nobody waits for it any more (the request was cancelled): skip the work, so a client
        // that connects and hangs up cannot make the pool hash for nothing.
        if job.reply.is_closed() {
            continue;
        }
        if memory.is_empty() {
            memory.resize(blocks, Block::default());
            stats.allocated_bytes.fetch_add(blocks * 1024, Ordering::Relaxed);
        }
        let now = stats.busy.fetch_add(1, Ordering::Relaxed) + 1;
        stats.peak_busy.fetch_max(now, Ordering::Relaxed);
        // A panic inside Argon2 must not take the lane (and its buffer) away for good.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match job.work {
            Work::Hash { password, salt } => Outcome::Hashed(password::hash_in(&password, &salt, params, &mut memory)),
            Work::Verify { password, phc } => {
                Outcome::Verified(password::verify_in(&password, &phc, params, &mut memory))
            }
        }))
        .unwrap_or_else(|_| Outcome::Hashed(Err(PasswordError::Hash("argon2 panicked".into()))));
        stats.busy.fetch_sub(1, Ordering::Relaxed);
        stats.computed.fetch_add(1, Ordering::Relaxed);
        let _ = job.reply.send(outcome);
    }
}

#[async_trait]
impl PasswordHasher for PooledHasher {
    fn params(&self) -> Option<HashParams> {
        Some(self.params)
    }

    async fn hash(&self, pw: &str) -> Result<String, PasswordError> {
        let mut salt = [0u8; 16];
        self.random.fill(&mut salt);
        let work = Work::Hash {
            password: pw.to_string(),
            salt,
        };
        match self.submit(&self.lanes, work).await? {
            Outcome::Hashed(h) => h,
            Outcome::Verified(_) => Err(PasswordError::Hash("a hash answered as a check".into())),
        }
    }

    async fn verify(&self, pw: &str, phc: &str) -> Result<Verified, PasswordError> {
        let no = Verified {
            ok: false,
            needs_rehash: false,
        };
        let Some(need) = password::blocks_to_verify(phc) else {
            return Ok(no);
        };
        if !password::checkable(phc, self.max_memory_kib) {
            tracing::warn!(
                target: "regstack.password",
                need_kib = need,
                "a stored hash demands more memory or passes than allowed; it cannot be checked"
            );
            return Ok(no);
        }
        let lane = if need <= self.slot_blocks {
            &self.lanes
        } else {
            &self.large
        };
        let work = Work::Verify {
            password: pw.to_string(),
            phc: phc.to_string(),
        };
        match self.submit(lane, work).await? {
            Outcome::Verified(v) => Ok(v),
            // A panicked check matches nothing.
            Outcome::Hashed(_) => Ok(no),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use regstack_core::password::{self, HashParams};
    use regstack_core::ports::{PasswordHasher, Random};

    use super::PooledHasher;

    struct Fixed;
    impl Random for Fixed {
        fn fill(&self, buf: &mut [u8]) {
            buf.fill(7);
        }
    }

    const SMALL: HashParams = HashParams {
        memory_kib: 256,
        iterations: 1,
        parallelism: 1,
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fifty_hashes_at_once_hold_only_the_slots_memory() {
        let pool = Arc::new(PooledHasher::new(SMALL, Arc::new(Fixed), 3, 64, 1024));
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.hash(&format!("password {i}")).await.unwrap() })
            })
            .collect();
        let mut hashes = Vec::new();
        for t in tasks {
            hashes.push(t.await.unwrap());
        }
        let stats = pool.stats();
        assert!(
            stats.peak_busy.load(Ordering::Relaxed) <= 3,
            "never more than the slots at once"
        );
        let held = stats.allocated_bytes.load(Ordering::Relaxed);
        assert!(
            held > 0 && held <= 3 * 256 * 1024,
            "at most three buffers of 256 KiB, each allocated once; the large lane untouched: {held}"
        );
        // More work does not allocate more.
        for i in 0..20 {
            pool.hash(&format!("again {i}")).await.unwrap();
        }
        assert!(stats.allocated_bytes.load(Ordering::Relaxed) <= 3 * 256 * 1024);
        // What the pool computes is what Argon2 computes.
        assert_eq!(hashes[0], password::hash("password 0", &[7; 16], SMALL).unwrap());
        assert!(pool.verify("password 0", &hashes[0]).await.unwrap().ok);
        assert!(!pool.verify("password 1", &hashes[0]).await.unwrap().ok);
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let slow = HashParams {
            memory_kib: 8192,
            iterations: 3,
            parallelism: 1,
        };
        let pool = PooledHasher::new(slow, Arc::new(Fixed), 1, 1, 8192);
        // Every submission happens in the first poll, before the one thread can finish a hash:
        // one job runs, one waits, and the rest are refused without waiting.
        let answers =
            regstack_core::testing::futures_join((0..10).map(|i| pool.hash(if i % 2 == 0 { "a" } else { "b" }))).await;
        let busy = answers
            .iter()
            .filter(|a| matches!(a, Err(super::PasswordError::Busy)))
            .count();
        let done = answers.iter().filter(|a| a.is_ok()).count();
        assert!(busy >= 7 && done >= 1 && busy + done == 10, "busy {busy}, done {done}");
        assert_eq!(
            pool.lanes.waiting.load(Ordering::Relaxed),
            0,
            "refusals leave the count as it was"
        );
    }

    #[tokio::test]
    async fn work_nobody_waits_for_is_skipped() {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let (gone, gone_rx) = tokio::sync::oneshot::channel();
        drop(gone_rx);
        let (wanted, answer) = tokio::sync::oneshot::channel();
        for reply in [gone, wanted] {
            tx.send(super::Job {
                work: super::Work::Hash {
                    password: "p".into(),
                    salt: [1; 16],
                },
                reply,
            })
            .unwrap();
        }
        drop(tx);
        let stats = Arc::new(super::PoolStats::default());
        let lane_stats = stats.clone();
        let jobs = std::sync::Mutex::new(rx);
        let waiting = Arc::new(std::sync::atomic::AtomicUsize::new(2));
        let lane_waiting = waiting.clone();
        std::thread::spawn(move || super::run_lane(&jobs, &lane_waiting, SMALL, 256, &lane_stats))
            .join()
            .unwrap();
        assert_eq!(waiting.load(Ordering::Relaxed), 0, "each job taken leaves the queue");
        assert!(matches!(answer.await, Ok(super::Outcome::Hashed(Ok(_)))));
        assert_eq!(
            stats.computed.load(Ordering::Relaxed),
            1,
            "the abandoned job was not computed"
        );
    }

    #[tokio::test]
    async fn costlier_stored_hashes_take_the_large_lane_up_to_the_cap() {
        let pool = PooledHasher::new(SMALL, Arc::new(Fixed), 2, 64, 1024);
        let costly = HashParams {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        };
        let adopted = password::hash("old password", &[1; 16], costly).unwrap();
        let v = pool.verify("old password", &adopted).await.unwrap();
        assert!(v.ok && v.needs_rehash, "checked, and marked for a cheaper rehash");
        let held = pool.stats().allocated_bytes.load(Ordering::Relaxed);
        assert_eq!(held, 1024 * 1024, "only the large lane has worked, and holds its 1 MiB");
        assert!(pool.verify("old password", &adopted).await.unwrap().ok);
        assert_eq!(
            pool.stats().allocated_bytes.load(Ordering::Relaxed),
            held,
            "kept, not allocated again"
        );
        let too_costly = HashParams {
            memory_kib: 2048,
            iterations: 1,
            parallelism: 1,
        };
        let huge = password::hash("old password", &[1; 16], too_costly).unwrap();
        assert!(
            !pool.verify("old password", &huge).await.unwrap().ok,
            "over the cap: refused"
        );
        assert!(!pool.verify("x", "not a hash").await.unwrap().ok);
    }
}
