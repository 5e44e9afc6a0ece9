//! Values no two scenarios share: emails, ids and random numbers.

use super::*;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A random 64-bit value (std's per-process random SipHash keys, mixed with a counter).
pub fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// A fresh lower-case address on `example.com`, unique across tests and runs.
pub fn unique_email(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}-{n}-{:012x}@example.com", random_u64() & 0xffff_ffff_ffff)
}

/// A fresh identifier of lower-case hex digits, for database names and the like.
pub fn unique_id() -> String {
    format!("{:016x}", random_u64())
}
