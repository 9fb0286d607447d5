//! Argon2id password hashing, run on the blocking pool with bounded concurrency so
//! a burst of logins can neither starve the async workers nor exhaust memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use secrecy::{ExposeSecret as _, SecretString};
use shared::{ApiError, ErrorCode};
use tokio::sync::Semaphore;

/// OWASP's Argon2id minimum: m = 19 MiB, t = 2, p = 1.
fn argon2() -> Result<Argon2<'static>, ApiError> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(ApiError::internal)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
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
        let dummy = hash_blocking(&SecretString::from("not a real password, only for timing"))?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(max_concurrent)),
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
        job: impl FnOnce() -> T + Send + 'static,
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
        tokio::task::spawn_blocking(move || {
            let now = running.now.fetch_add(1, Ordering::Relaxed) + 1;
            running.peak.fetch_max(now, Ordering::Relaxed);
            metrics::gauge!("authstream_password_hashes_running").set(now as f64);
            let result = job();
            let now = running.now.fetch_sub(1, Ordering::Relaxed) - 1;
            metrics::gauge!("authstream_password_hashes_running").set(now as f64);
            drop(permit);
            result
        })
        .await
        .map_err(ApiError::internal)
    }

    pub async fn hash(&self, password: SecretString) -> Result<String, ApiError> {
        self.run(move || hash_blocking(&password)).await?
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
            .run(move || {
                let matches = argon2()?
                    .verify_password(password.expose_secret().as_bytes(), hash.as_str())
                    .is_ok();
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

fn hash_blocking(password: &SecretString) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .map_err(|_| ApiError::internal("the random source failed"))?;
    let hash = argon2()?
        .hash_password_with_salt(password.expose_secret().as_bytes(), &salt)
        .map_err(ApiError::internal)?;
    Ok(hash.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let hasher = PasswordHasher::new(2, Duration::from_secs(2)).unwrap();
        let a = hasher.hash("correct horse".into()).await.unwrap();
        let b = hasher.hash("correct horse".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(!a.contains("correct horse"));
        assert!(
            hasher
                .verify("correct horse".into(), Some(a.clone()))
                .await
                .unwrap()
        );
        assert!(!hasher.verify("wrong horse".into(), Some(a)).await.unwrap());
        assert!(!hasher.verify("anything".into(), None).await.unwrap());
    }

    /// Callers that hang up mid-hash must not let more hashes run than allowed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn abandoned_verifications_keep_the_concurrency_limit() {
        let hasher = PasswordHasher::new(1, Duration::from_secs(30)).unwrap();
        let hash = hasher.hash("correct horse".into()).await.unwrap();
        for _ in 0..3 {
            let (h, hash) = (hasher.clone(), hash.clone());
            let abandoned = tokio::spawn(async move { h.verify("wrong".into(), Some(hash)).await });
            // Let it reach the blocking pool, then hang up.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            abandoned.abort();
        }
        let verified = (0..3).map(|_| {
            let (h, hash) = (hasher.clone(), hash.clone());
            tokio::spawn(async move { h.verify("correct horse".into(), Some(hash)).await })
        });
        for v in verified.collect::<Vec<_>>() {
            assert!(v.await.unwrap().unwrap());
        }
        assert_eq!(hasher.peak_concurrency(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_waits_at_most_the_queue_timeout_for_a_slot() {
        let hasher = PasswordHasher::new(1, Duration::from_millis(50)).unwrap();
        let busy = hasher.permits.clone().acquire_owned().await.unwrap();
        let refused = hasher.hash("correct horse".into()).await.unwrap_err();
        assert_eq!(
            (refused.code.as_str(), refused.status()),
            ("overloaded", 503)
        );
        assert_eq!(refused.retry_after_secs, Some(1));
        drop(busy);
        assert!(hasher.hash("correct horse".into()).await.is_ok());
    }
}
