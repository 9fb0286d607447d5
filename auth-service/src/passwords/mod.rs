//! Argon2id password hashing, run on the blocking pool with bounded concurrency so
//! a burst of logins can neither starve the async workers nor exhaust memory.
//!
//! Argon2's 19 MiB of working memory comes from a pool of buffers, at most one per
//! permit, allocated once and reused by every hash and verification. Allocating it
//! afresh each time left it behind in glibc's per-thread arenas (the mmap threshold
//! rises after the first free), so resident memory grew with the number of blocking
//! threads that ever hashed rather than with the concurrency limit.
//!
//! The pooled memory and the Argon2 calls are in `memory`; tests in `tests`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::Params;
use authstream_web::ApiError;
use authstream_web::ErrorCode;
use secrecy::SecretString;
use tokio::sync::Semaphore;

mod memory;
#[cfg(test)]
mod tests;

use memory::{BlockPool, Lease, hash_into, verify_into};

/// OWASP's Argon2id minimum: m = 19 MiB, t = 2, p = 1.
fn params() -> Result<Params, ApiError> {
    Params::new(19 * 1024, 2, 1, None).map_err(ApiError::internal)
}

/// The most memory (KiB) a stored hash may ask Argon2 for: one asking for more is a
/// mismatch, never an allocation of whatever the string says.
const MAX_VERIFY_M_COST: u32 = 64 * 1024;
/// The most passes a stored hash may ask for (ours use 2): one asking for more is a
/// mismatch, never minutes of a hashing slot.
const MAX_VERIFY_T_COST: u32 = 10;

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Argon2 working memory, one buffer per permit at most.
    memory: Arc<BlockPool>,
    /// The longest a caller waits for a permit; then 503 `overloaded`.
    queue_timeout: Duration,
    /// Verified against when the email is unknown, so both cases take the same time.
    dummy_hash: Arc<str>,
    /// Hashes running on the blocking pool right now, and the most ever at once.
    running: Arc<Gauge>,
}

#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl PasswordHasher {
    pub fn new(max_concurrent: usize, queue_timeout: Duration) -> Result<Self, ApiError> {
        let memory = Arc::new(BlockPool::new(max_concurrent)?);
        let dummy = hash_into(
            &mut memory.lease(),
            &SecretString::from("not a real password, only for timing"),
        )?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            memory,
            queue_timeout,
            dummy_hash: dummy.into(),
            running: Arc::default(),
        })
    }

    /// The most Argon2 computations that ever ran at once.
    pub fn peak_concurrency(&self) -> usize {
        self.running.peak.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Lease) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        // The permit travels with the job: a client that hangs up mid-request frees
        // it only when the hash is really done, so the limit holds.
        // A flood waits in a bounded queue: past `queue_timeout` the caller is told to
        // come back, so a real user's login never waits unboundedly behind it.
        let permit = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                metrics::counter!("authstream_password_queue_timeouts_total").increment(1);
                tracing::warn!("password hashing queue full: request refused");
                ApiError::new(
                    ErrorCode::Overloaded,
                    "too many sign-ins are being checked right now, try again shortly",
                )
            })?
            .map_err(ApiError::internal)?;
        let running = self.running.clone();
        let memory = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            let now = running.now.fetch_add(1, Ordering::Relaxed) + 1;
            running.peak.fetch_max(now, Ordering::Relaxed);
            metrics::gauge!("authstream_password_hashes_running").set(now as f64);
            let mut lease = memory.lease();
            let result = job(&mut lease);
            // The buffer goes back before the permit, so the job the permit lets in
            // next finds it in the pool. (A panic drops `lease`, a local, before the
            // captured permit too.)
            drop(lease);
            let now = running.now.fetch_sub(1, Ordering::Relaxed) - 1;
            metrics::gauge!("authstream_password_hashes_running").set(now as f64);
            drop(permit);
            result
        })
        .await
        .map_err(ApiError::internal)
    }

    pub async fn hash(&self, password: SecretString) -> Result<String, ApiError> {
        self.run(move |memory| hash_into(memory, &password)).await?
    }

    /// True when `password` matches `hash`; with no hash, verifies against the dummy and
    /// returns false.
    pub async fn verify(
        &self,
        password: SecretString,
        hash: Option<String>,
    ) -> Result<bool, ApiError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let matches = self
            .run(move |memory| {
                let matches = verify_into(memory, &password, &hash)?;
                // Counted after the work is done: proves an unknown email costs a verification.
                let result = match (known, matches) {
                    (false, _) => "unknown_user",
                    (true, true) => "match",
                    (true, false) => "mismatch",
                };
                metrics::counter!("authstream_password_verifications_total", "result" => result)
                    .increment(1);
                Ok::<_, ApiError>(matches)
            })
            .await??;
        Ok(known && matches)
    }
}
