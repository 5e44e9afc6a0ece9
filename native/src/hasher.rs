//! Argon2 on a bounded blocking pool.

use std::sync::Arc;

use async_trait::async_trait;
use regstack_core::password::{self, HashParams, PasswordError, Verified};
use regstack_core::ports::{PasswordHasher, Random};
use tokio::sync::Semaphore;

/// Runs Argon2 on tokio's blocking pool, at most `permits` at a time, so memory stays bounded
/// (hashes in flight × m_cost) and the async threads never stall.
pub struct BlockingHasher {
    params: HashParams,
    random: Arc<dyn Random>,
    permits: Arc<Semaphore>,
}

impl BlockingHasher {
    /// A hasher with `concurrency` slots.
    pub fn new(params: HashParams, random: Arc<dyn Random>, concurrency: usize) -> Self {
        Self {
            params,
            random,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }
}

#[async_trait]
impl PasswordHasher for BlockingHasher {
    async fn hash(&self, pw: &str) -> Result<String, PasswordError> {
        // The permit moves into the blocking task: a cancelled request cannot free its slot
        // while its hash still runs, so memory stays bounded whatever clients do.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| PasswordError::Hash(e.to_string()))?;
        let mut salt = [0u8; 16];
        self.random.fill(&mut salt);
        let (pw, params) = (pw.to_string(), self.params);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            password::hash(&pw, &salt, params)
        })
        .await
        .map_err(|e| PasswordError::Hash(e.to_string()))?
    }

    async fn verify(&self, pw: &str, phc: &str) -> Result<Verified, PasswordError> {
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return Ok(Verified {
                ok: false,
                needs_rehash: false,
            });
        };
        let (pw, phc, params) = (pw.to_string(), phc.to_string(), self.params);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            password::verify(&pw, &phc, params)
        })
        .await
        .or(Ok(Verified {
            ok: false,
            needs_rehash: false,
        }))
    }
}
