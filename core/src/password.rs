//! Argon2id password hashing (docs/wire.md, "Decision 4").
//!
//! Verification accepts any PHC Argon2 string and takes the parameters from the hash, so
//! databases written by regstack 0.9.3 (m=65536, t=3, p=4) keep working. New hashes use the
//! configured parameters, OWASP's minimum by default. These functions are pure CPU work; the
//! [`crate::ports::PasswordHasher`] port decides where they run.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// The cost parameters for new hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB (`password_hash_memory_kib`).
    pub memory_kib: u32,
    /// Passes (`password_hash_iterations`).
    pub iterations: u32,
    /// Lanes (`password_hash_parallelism`).
    pub parallelism: u32,
}

impl HashParams {
    /// OWASP's minimum for Argon2id: 19 MiB, 2 passes, 1 lane.
    pub const OWASP: HashParams = HashParams {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };

    /// The parameters a config asks for.
    pub fn from_config(c: &crate::config::Config) -> Self {
        Self {
            memory_kib: c.password_hash_memory_kib,
            iterations: c.password_hash_iterations,
            parallelism: c.password_hash_parallelism,
        }
    }

    fn argon2(&self) -> Result<Argon2<'static>, PasswordError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| PasswordError::Params(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Hashing failures. A wrong password is not an error: [`verify`] answers `false`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// The configured parameters are outside what Argon2 accepts.
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    /// Hashing itself failed.
    #[error("argon2 hashing failed: {0}")]
    Hash(String),
    /// More hashes are waiting than `password_hash_queue_limit` allows: shed this one now
    /// rather than let every login wait behind a flood.
    #[error("too many password hashes waiting")]
    Busy,
}

/// Hashes `password` with a 16-byte `salt` into a PHC string.
pub fn hash(password: &str, salt: &[u8; 16], params: HashParams) -> Result<String, PasswordError> {
    let blocks = blocks_for(params.memory_kib, params.parallelism)
        .ok_or_else(|| PasswordError::Params(format!("{params:?}")))?;
    hash_in(password, salt, params, &mut vec![Block::default(); blocks])
}

/// The outcome of checking a password against a stored hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The password matches.
    pub ok: bool,
    /// The hash uses other parameters than `params` and should be replaced.
    pub needs_rehash: bool,
}

/// Checks `password` against any PHC Argon2 hash, in constant time in the digest compare.
/// A malformed stored hash simply does not match.
pub fn verify(password: &str, phc: &str, params: HashParams) -> Verified {
    let blocks = blocks_to_verify(phc).unwrap_or(0);
    verify_in(password, phc, params, &mut vec![Block::default(); blocks])
}

/// One Argon2 block (1 KiB): the unit of memory a hash works in.
pub use argon2::Block;

/// How many [`Block`]s hashing with `memory_kib` KiB over `parallelism` lanes works in (Argon2
/// rounds the memory to whole segments); `None` when Argon2 refuses the parameters.
pub fn blocks_for(memory_kib: u32, parallelism: u32) -> Option<usize> {
    Params::new(memory_kib, 1, parallelism, None)
        .ok()
        .map(|p| p.block_count())
}

/// [`hash`], computed in `memory` (at least [`blocks_for`] blocks) rather than in memory
/// allocated for the call, so a pool of hashing threads holds a fixed amount. The string is
/// the same [`hash`] gives for the same inputs.
pub fn hash_in(
    password: &str,
    salt: &[u8; 16],
    params: HashParams,
    memory: &mut [Block],
) -> Result<String, PasswordError> {
    let argon = params.argon2()?;
    let need = argon.params().block_count();
    let lent = memory.len();
    let memory = memory
        .get_mut(..need)
        .ok_or_else(|| PasswordError::Hash(format!("{need} blocks of memory needed, {lent} lent")))?;
    let hash = Output::init_with(32, |out| {
        argon
            .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut *memory)
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .map_err(|e| PasswordError::Hash(e.to_string()))?;
    phc_string(&argon, salt, hash)
}

/// A PHC string with `params` (the hasher's own), `salt`, and `output` in place of a computed
/// hash: the login flow's stand-in for an unknown address. Checking a password against it
/// costs exactly what checking one against a real hash with these parameters costs, and no
/// password matches it (that would take a preimage of a random 256-bit output). Building it
/// computes no hash, so starting up allocates no hashing memory (docs/performance.md).
pub fn decoy_hash(params: HashParams, salt: &[u8; 16], output: &[u8; 32]) -> Result<String, PasswordError> {
    let argon = params.argon2()?;
    let output = Output::new(output).map_err(|e| PasswordError::Hash(e.to_string()))?;
    phc_string(&argon, salt, output)
}

fn phc_string(argon: &Argon2<'_>, salt: &[u8; 16], hash: Output) -> Result<String, PasswordError> {
    let encoded = SaltString::encode_b64(salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params()).map_err(|e| PasswordError::Hash(e.to_string()))?,
        salt: Some(encoded.as_salt()),
        hash: Some(hash),
    };
    Ok(phc.to_string())
}

/// The memory checking a password against `phc` takes, in [`Block`]s; `None` when `phc` is
/// not a PHC Argon2 string with valid parameters (it then matches nothing).
pub fn blocks_to_verify(phc: &str) -> Option<usize> {
    let parsed = PasswordHash::new(phc).ok()?;
    Params::try_from(&parsed).ok().map(|p| p.block_count())
}

/// [`verify`], computed in `memory` (at least [`blocks_to_verify`] blocks). Too little memory,
/// like a malformed hash, does not match.
pub fn verify_in(password: &str, phc: &str, params: HashParams, memory: &mut [Block]) -> Verified {
    let no = Verified {
        ok: false,
        needs_rehash: false,
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return no;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return no;
    };
    let (Ok(algorithm), Ok(argon_params)) = (Algorithm::try_from(parsed.algorithm), Params::try_from(&parsed)) else {
        return no;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return no,
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return no;
    };
    let Some(memory) = memory.get_mut(..argon_params.block_count()) else {
        return no;
    };
    let argon = Argon2::new(algorithm, version, argon_params);
    let computed = Output::init_with(expected.len(), |out| {
        argon
            .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut *memory)
            .map_err(|_| argon2::password_hash::Error::Crypto)
    });
    // `Output`'s equality is constant-time.
    let ok = computed.is_ok_and(|c| c == expected);
    Verified {
        ok,
        needs_rehash: ok && needs_rehash(&parsed, params),
    }
}

fn needs_rehash(parsed: &PasswordHash<'_>, params: HashParams) -> bool {
    if parsed.algorithm.as_str() != "argon2id" || parsed.version != Some(0x13) {
        return true;
    }
    let get = |name: &str| parsed.params.get_decimal(name);
    get("m") != Some(params.memory_kib) || get("t") != Some(params.iterations) || get("p") != Some(params.parallelism)
}

/// The Argon2 work of verifying against `phc`, in KiB-passes (`m · t`): the lanes of one
/// verification run one after another here, so time grows with memory times passes. `None`
/// when the string is not a PHC Argon2 hash.
pub fn work_of(phc: &str) -> Option<u64> {
    let parsed = PasswordHash::new(phc).ok()?;
    let m = parsed.params.get_decimal("m")?;
    let t = parsed.params.get_decimal("t")?;
    Some(u64::from(m) * u64::from(t))
}

/// Parses `m=…,t=…[,p=…]` (the parameter part of a PHC string) into its work, for
/// `password_verify_floor`.
pub fn work_of_params(spec: &str) -> Option<u64> {
    let (mut m, mut t) = (None, None);
    for part in spec.split(',') {
        let (key, value) = part.trim().split_once('=')?;
        let value: u32 = value.trim().parse().ok()?;
        match key.trim() {
            "m" => m = Some(value),
            "t" => t = Some(value),
            "p" => {}
            _ => return None,
        }
    }
    let m = m.filter(|m| (8..=4 * 1024 * 1024).contains(m))?;
    let t = t.filter(|t| (1..=MAX_PASSES).contains(t))?;
    Some(u64::from(m) * u64::from(t))
}

/// A PHC string that costs about `work` KiB-passes to verify and matches no password: the
/// padding of a failed login (see `flows::login`). It uses at most `max_memory_kib` (the
/// configured memory, so padding never needs more memory than a real hash) and makes up the
/// rest in passes. Building it computes nothing; the work happens when it is verified.
pub fn padding_hash(work: u64, max_memory_kib: u32) -> String {
    let m = work.clamp(8, u64::from(max_memory_kib.max(8)));
    let t = work.div_ceil(m).clamp(1, 10_000);
    format!("$argon2id$v=19$m={m},t={t},p=1$cGFkZGluZ3BhZGRpbmc$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
}

/// The most passes `password_verify_floor` may name (as for `password_hash_iterations`), and
/// the most a stored hash may ask for and still be checked.
pub const MAX_PASSES: u32 = 100;

/// Whether a stored hash may be checked at all: its memory at most `max_memory_kib`
/// (`password_hash_max_memory_kib`) and its passes at most [`MAX_PASSES`]. One that may not is
/// never computed and never matches; the login flow counts it as no work, so it neither raises
/// the failure floor nor answers faster than an unknown address.
pub fn checkable(phc: &str, max_memory_kib: u32) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (m, t) = (parsed.params.get_decimal("m"), parsed.params.get_decimal("t"));
    matches!((m, t), (Some(m), Some(t)) if m <= max_memory_kib && (1..=MAX_PASSES).contains(&t))
}

/// Hashes on the calling task. Right for the edge (one isolate, one request at a time) and
/// for tests; the native runtime moves the work to a fixed pool of hashing threads instead.
pub struct InlineHasher {
    params: HashParams,
    random: std::sync::Arc<dyn crate::ports::Random>,
    max_memory_kib: u32,
}

impl InlineHasher {
    /// A hasher for new hashes with `params`, salts from `random`.
    pub fn new(params: HashParams, random: std::sync::Arc<dyn crate::ports::Random>) -> Self {
        Self {
            params,
            random,
            max_memory_kib: u32::MAX,
        }
    }

    /// Refuses to check stored hashes that demand more than `max_memory_kib`
    /// (`password_hash_max_memory_kib`), so one row cannot make a hash outgrow the runtime's
    /// memory (an edge isolate has 128 MB).
    pub fn capped(mut self, max_memory_kib: u32) -> Self {
        self.max_memory_kib = max_memory_kib.max(self.params.memory_kib);
        self
    }
}

#[async_trait::async_trait]
impl crate::ports::PasswordHasher for InlineHasher {
    fn params(&self) -> Option<HashParams> {
        Some(self.params)
    }

    async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let mut salt = [0u8; 16];
        self.random.fill(&mut salt);
        let blocks = blocks_for(self.params.memory_kib, self.params.parallelism)
            .ok_or_else(|| PasswordError::Params(format!("{:?}", self.params)))?;
        with_kept(blocks, |memory| hash_in(password, &salt, self.params, memory))
    }

    async fn verify(&self, password: &str, phc: &str) -> Result<Verified, PasswordError> {
        if PasswordHash::new(phc).is_ok() && !checkable(phc, self.max_memory_kib) {
            tracing::warn!(target: "regstack.password", "a stored hash demands more memory or passes than allowed; it cannot be checked");
            return Ok(Verified {
                ok: false,
                needs_rehash: false,
            });
        }
        let blocks = blocks_to_verify(phc).unwrap_or(0);
        Ok(with_kept(blocks, |memory| {
            verify_in(password, phc, self.params, memory)
        }))
    }
}

std::thread_local! {
    /// The inline hasher's one buffer per thread, grown to the largest hash met and kept. At
    /// the edge an isolate runs one hash at a time; a buffer allocated per hash let the wasm
    /// heap fragment and grow to twice the hash's memory (docs/performance.md, "Memory").
    static KEPT: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on at least `blocks` blocks of the kept buffer.
fn with_kept<R>(blocks: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
    // Taken out while in use, so a nested call would get a buffer of its own, not a panic.
    let mut memory = KEPT.with(|kept| std::mem::take(&mut *kept.borrow_mut()));
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let out = f(&mut memory);
    KEPT.with(|kept| *kept.borrow_mut() = memory);
    out
}

/// Load shedding in front of any hasher: at most `limit` calls may be in flight (running or
/// waiting for a slot); one more is refused at once with [`PasswordError::Busy`], which the
/// API answers with 503 and `Retry-After`. A flood of wrong passwords then costs the flood,
/// not every real user's login.
pub struct LoadShedding {
    inner: std::sync::Arc<dyn crate::ports::PasswordHasher>,
    in_flight: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    limit: usize,
}

impl LoadShedding {
    /// Wraps `inner`, allowing `limit` calls in flight.
    pub fn new(inner: std::sync::Arc<dyn crate::ports::PasswordHasher>, limit: usize) -> Self {
        Self {
            inner,
            in_flight: Default::default(),
            limit: limit.max(1),
        }
    }

    fn admit(&self) -> Result<InFlight, PasswordError> {
        use std::sync::atomic::Ordering;
        let admitted = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .is_ok();
        if admitted {
            Ok(InFlight(self.in_flight.clone()))
        } else {
            Err(PasswordError::Busy)
        }
    }
}

/// One admitted call; dropping it (finished or cancelled) frees its place.
struct InFlight(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

#[async_trait::async_trait]
impl crate::ports::PasswordHasher for LoadShedding {
    fn params(&self) -> Option<HashParams> {
        self.inner.params()
    }

    async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let _place = self.admit()?;
        self.inner.hash(password).await
    }

    async fn verify(&self, password: &str, phc: &str) -> Result<Verified, PasswordError> {
        let _place = self.admit()?;
        self.inner.verify(password, phc).await
    }
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    const CHEAP: HashParams = HashParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[regstack_macros::dual_test]
    fn only_hashes_within_the_caps_are_checked() {
        let phc = |m: u32, t: u32| {
            format!("$argon2id$v=19$m={m},t={t},p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        };
        assert!(checkable(&phc(65536, 3), 65536), "regstack 0.9.3's hashes");
        assert!(!checkable(&phc(65537, 3), 65536), "more memory than the cap");
        assert!(
            !checkable(&phc(64, MAX_PASSES + 1), 65536),
            "more passes than any check may take"
        );
        assert!(!checkable("not a hash", u32::MAX));
        let capped = InlineHasher::new(CHEAP, std::sync::Arc::new(crate::testing::SeededRandom::new(1))).capped(64);
        let refused =
            futures_util::FutureExt::now_or_never(crate::ports::PasswordHasher::verify(&capped, "x", &phc(128, 1)));
        assert_eq!(refused.map(|r| r.map(|v| v.ok)), Some(Ok(false)));
    }

    #[regstack_macros::dual_test]
    fn hashing_in_lent_memory_gives_the_same_strings() {
        let salt = [9u8; 16];
        let blocks = blocks_for(CHEAP.memory_kib, CHEAP.parallelism).unwrap();
        let mut memory = vec![Block::default(); blocks];
        let lent = hash_in("correct horse", &salt, CHEAP, &mut memory).unwrap();
        // The same string argon2's own allocating path writes.
        let reference = CHEAP
            .argon2()
            .unwrap()
            .hash_password(b"correct horse", &SaltString::encode_b64(&salt).unwrap())
            .unwrap()
            .to_string();
        assert_eq!(lent, reference);
        assert_eq!(hash("correct horse", &salt, CHEAP).unwrap(), reference);
        assert_eq!(blocks_to_verify(&lent), Some(blocks));
        let v = verify_in("correct horse", &lent, CHEAP, &mut memory);
        assert!(v.ok && !v.needs_rehash);
        assert!(!verify_in("wrong horse", &lent, CHEAP, &mut memory).ok);
        assert!(!verify_in("correct horse", "not a hash", CHEAP, &mut memory).ok);
        assert!(
            hash_in("x", &salt, CHEAP, &mut memory[..blocks - 1]).is_err(),
            "too little memory is an error"
        );
        assert!(!verify_in("correct horse", &lent, CHEAP, &mut memory[..blocks - 1]).ok);
        // Other algorithms and costlier parameters, as an adopted database holds them.
        let bigger = HashParams {
            memory_kib: 128,
            iterations: 2,
            parallelism: 2,
        };
        let adopted = hash("old", &salt, bigger).unwrap().replace("argon2id", "argon2i");
        let adopted = {
            let mut m = vec![Block::default(); blocks_to_verify(&adopted).unwrap()];
            // The same string verify() accepts, computed by Argon2i itself.
            let argon = Argon2::new(
                Algorithm::Argon2i,
                Version::V0x13,
                Params::new(128, 2, 2, Some(32)).unwrap(),
            );
            let out = Output::init_with(32, |o| {
                argon
                    .hash_password_into_with_memory(b"old", &salt, o, &mut m)
                    .map_err(|_| argon2::password_hash::Error::Crypto)
            })
            .unwrap();
            let parsed = PasswordHash::new(&adopted).unwrap();
            PasswordHash {
                hash: Some(out),
                ..parsed
            }
            .to_string()
        };
        assert!(Argon2::default()
            .verify_password(b"old", &PasswordHash::new(&adopted).unwrap())
            .is_ok());
        assert!(verify("old", &adopted, CHEAP).ok);
        let mut big = vec![Block::default(); blocks_to_verify(&adopted).unwrap()];
        let v = verify_in("old", &adopted, CHEAP, &mut big);
        assert!(v.ok && v.needs_rehash, "argon2i verifies, and is marked for rehashing");
    }

    #[regstack_macros::dual_test]
    fn hash_then_verify() {
        let h = hash("correct horse", &[7; 16], CHEAP).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert_eq!(
            verify("correct horse", &h, CHEAP),
            Verified {
                ok: true,
                needs_rehash: false
            }
        );
        assert_eq!(
            verify("wrong horse", &h, CHEAP),
            Verified {
                ok: false,
                needs_rehash: false
            }
        );
        assert!(!verify("correct horse", "not-a-hash", CHEAP).ok);
    }

    #[regstack_macros::dual_test]
    fn a_decoy_costs_what_a_real_hash_costs_and_matches_nothing() {
        let real = hash("", &[7; 16], CHEAP).unwrap();
        let decoy = decoy_hash(CHEAP, &[7; 16], &[9; 32]).unwrap();
        let params = |phc: &str| phc.rsplitn(3, '$').nth(2).map(str::to_string);
        assert_eq!(
            params(&decoy),
            params(&real),
            "same algorithm, version, parameters and salt"
        );
        assert_eq!(blocks_to_verify(&decoy), blocks_to_verify(&real));
        assert_eq!(work_of(&decoy), work_of(&real));
        for guess in ["", "password", "correct horse"] {
            assert_eq!(
                verify(guess, &decoy, CHEAP),
                Verified {
                    ok: false,
                    needs_rehash: false
                },
                "{guess:?} is checked with the configured parameters and fails"
            );
        }
        let refused = HashParams { memory_kib: 1, ..CHEAP };
        assert!(
            decoy_hash(refused, &[7; 16], &[9; 32]).is_err(),
            "parameters Argon2 refuses are refused here too"
        );
    }

    #[regstack_macros::dual_test]
    fn other_parameters_verify_and_ask_for_rehash() {
        let other = HashParams {
            memory_kib: 128,
            iterations: 2,
            parallelism: 2,
        };
        let h = hash("pw-12345678", &[1; 16], other).unwrap();
        assert_eq!(
            verify("pw-12345678", &h, CHEAP),
            Verified {
                ok: true,
                needs_rehash: true
            }
        );
    }

    #[regstack_macros::dual_test]
    fn verifies_a_pwdlib_style_hash() {
        // pwdlib's default layout (m=65536,t=3,p=4) at a cost small enough for a unit test.
        let h = hash(
            "python-made",
            &[9; 16],
            HashParams {
                memory_kib: 256,
                iterations: 3,
                parallelism: 4,
            },
        )
        .unwrap();
        assert!(h.contains("m=256,t=3,p=4"));
        assert!(verify("python-made", &h, HashParams::OWASP).ok);
    }

    #[regstack_macros::dual_test]
    fn work_is_memory_times_passes_and_padding_costs_what_it_says() {
        let adopted =
            "$argon2id$v=19$m=65536,t=3,p=4$xSFxZoMtkEb/aDsuAm/uCw$fXp5tVXCJA/hvHobeJu5sB8fC4eKlPRTUUjYlvTDsJU";
        assert_eq!(work_of(adopted), Some(65_536 * 3));
        assert_eq!(work_of("not a hash"), None);
        assert_eq!(work_of_params("m=65536,t=3,p=4"), Some(196_608));
        assert_eq!(work_of_params("m=4,t=3"), None);
        assert_eq!(work_of_params("x=1"), None);
        let pad = padding_hash(100, 64);
        assert_eq!(
            work_of(&pad),
            Some(128),
            "64 KiB × 2 passes: never more memory than allowed"
        );
        assert!(!verify("anything", &pad, CHEAP).ok, "padding matches no password");
        // The floor of an adopted 0.9.3 hash over a default one, padded at the default memory:
        // 19 MiB, 9 passes (within one pass of the difference).
        let pad = padding_hash(196_608 - 38_912, 19_456);
        assert!(pad.contains("m=19456,t=9,"), "{pad}");
        assert_eq!(work_of_params("m=5000000,t=1"), None, "bounded");
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[tokio::test]
    async fn load_shedding_refuses_past_the_limit_and_recovers() {
        use std::sync::atomic::Ordering;
        use std::sync::Arc;

        use crate::ports::PasswordHasher;

        /// A hasher that waits until it is let go, so calls pile up.
        struct Gate(Arc<tokio::sync::Semaphore>);

        #[async_trait::async_trait]
        impl PasswordHasher for Gate {
            async fn hash(&self, _: &str) -> Result<String, PasswordError> {
                let _ = self.0.acquire().await;
                Ok("h".into())
            }
            async fn verify(&self, _: &str, _: &str) -> Result<Verified, PasswordError> {
                let _ = self.0.acquire().await;
                Ok(Verified {
                    ok: true,
                    needs_rehash: false,
                })
            }
        }

        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let shed = Arc::new(LoadShedding::new(Arc::new(Gate(gate.clone())), 2));
        let waiting: Vec<_> = (0..2)
            .map(|_| {
                let shed = shed.clone();
                tokio::spawn(async move { shed.verify("p", "h").await })
            })
            .collect();
        while shed.in_flight.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(shed.verify("p", "h").await, Err(PasswordError::Busy));
        assert_eq!(shed.hash("p").await, Err(PasswordError::Busy));
        gate.add_permits(3);
        for w in waiting {
            assert!(w.await.unwrap().unwrap().ok);
        }
        assert_eq!(shed.in_flight.load(Ordering::Acquire), 0);
        assert!(
            shed.verify("p", "h").await.unwrap().ok,
            "room again once the queue drained"
        );
    }
}
