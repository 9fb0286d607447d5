//! Argon2id password hashing, run on the blocking pool with bounded concurrency so
//! a burst of logins can neither starve the async workers nor exhaust memory.
//!
//! Argon2's 19 MiB of working memory comes from a pool of buffers, at most one per
//! permit, allocated once and reused by every hash and verification. Allocating it
//! afresh each time left it behind in glibc's per-thread arenas (the mmap threshold
//! rises after the first free), so resident memory grew with the number of blocking
//! threads that ever hashed rather than with the concurrency limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use parking_lot::Mutex;
use secrecy::{ExposeSecret as _, SecretString};
use shared::{ApiError, ErrorCode};
use subtle::ConstantTimeEq as _;
use tokio::sync::Semaphore;

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

/// Reusable Argon2 block buffers, each big enough for our own parameters. A buffer is
/// taken only by a job holding a permit and is back before the permit is released, so
/// no more than `capacity` ever exist; they are allocated on first need and then live
/// as long as the hasher.
struct BlockPool {
    free: Mutex<Vec<Vec<Block>>>,
    /// Blocks in each buffer: what our parameters need.
    blocks: usize,
    capacity: usize,
    /// Buffers allocated so far (never more than `capacity`).
    allocated: AtomicUsize,
}

impl BlockPool {
    fn new(capacity: usize) -> Result<Self, ApiError> {
        Ok(Self {
            free: Mutex::new(Vec::with_capacity(capacity)),
            blocks: params()?.block_count(),
            capacity,
            allocated: AtomicUsize::new(0),
        })
    }

    fn lease(self: &Arc<Self>) -> Lease {
        Lease {
            pool: self.clone(),
            pooled: None,
            oversized: Vec::new(),
        }
    }

    fn take(&self) -> Result<Vec<Block>, ApiError> {
        let reused = self.free.lock().pop();
        match reused {
            Some(buffer) => Ok(buffer),
            None => {
                let buffer = allocate(self.blocks)?;
                self.allocated.fetch_add(1, Ordering::Relaxed);
                Ok(buffer)
            }
        }
    }

    fn put_back(&self, buffer: Vec<Block>) {
        let mut free = self.free.lock();
        if free.len() < self.capacity {
            free.push(buffer);
        }
    }
}

/// One computation's working memory: the pooled buffer (taken on first use), or a
/// buffer of its own for a stored hash that needs more than ours. The pooled buffer
/// goes back when the lease is dropped, however the job ended.
struct Lease {
    pool: Arc<BlockPool>,
    pooled: Option<Vec<Block>>,
    oversized: Vec<Block>,
}

impl Lease {
    fn blocks(&mut self, count: usize) -> Result<&mut [Block], ApiError> {
        if count > self.pool.blocks {
            self.oversized = allocate(count)?;
            return Ok(&mut self.oversized);
        }
        let buffer = match self.pooled.take() {
            Some(buffer) => buffer,
            None => self.pool.take()?,
        };
        Ok(&mut self.pooled.insert(buffer)[..count])
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(buffer) = self.pooled.take() {
            self.pool.put_back(buffer);
        }
    }
}

/// A zeroed buffer of `count` blocks; an allocation failure is an error, not an abort.
fn allocate(count: usize) -> Result<Vec<Block>, ApiError> {
    let mut blocks = Vec::new();
    blocks
        .try_reserve_exact(count)
        .map_err(ApiError::internal)?;
    blocks.resize(count, Block::new());
    Ok(blocks)
}

/// A fresh salted Argon2id hash in the PHC string format, exactly as
/// `Argon2::hash_password_with_salt` writes it.
fn hash_into(memory: &mut Lease, password: &SecretString) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .map_err(|_| ApiError::internal("the random source failed"))?;
    let params = params()?;
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let blocks = memory.blocks(params.block_count())?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password.expose_secret().as_bytes(),
            &salt,
            &mut output,
            blocks,
        )
        .map_err(ApiError::internal)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(ApiError::internal)?,
        salt: Some(Salt::new(&salt).map_err(ApiError::internal)?),
        hash: Some(Output::new(&output).map_err(ApiError::internal)?),
    };
    Ok(hash.to_string())
}

/// True when `password` matches the PHC string `hash`, computed with the parameters,
/// version and salt it names. Anything but a well-formed Argon2id hash within
/// `MAX_VERIFY_M_COST` and `MAX_VERIFY_T_COST` is a mismatch.
fn verify_into(memory: &mut Lease, password: &SecretString, hash: &str) -> Result<bool, ApiError> {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return Ok(false);
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return Ok(false);
    };
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return Ok(false);
    }
    // As `Argon2::verify_password` reads it: no version field means the current one.
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return Ok(false),
    };
    // m, t, p, keyid, data and the output length, as the hash was made with.
    let Ok(params) = Params::try_from(&parsed) else {
        return Ok(false);
    };
    if params.m_cost() > MAX_VERIFY_M_COST || params.t_cost() > MAX_VERIFY_T_COST {
        return Ok(false);
    }
    let mut buffer = [0u8; Output::MAX_LENGTH];
    let Some(output) = buffer.get_mut(..expected.len()) else {
        return Ok(false);
    };
    let blocks = memory.blocks(params.block_count())?;
    if Argon2::new(Algorithm::Argon2id, version, params)
        .hash_password_into_with_memory(password.expose_secret().as_bytes(), salt, output, blocks)
        .is_err()
    {
        return Ok(false);
    }
    Ok(bool::from(output.ct_eq(expected.as_bytes())))
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

    /// Argon2 as the code before the block pool made and checked hashes.
    fn crate_argon2(algorithm: Algorithm, version: Version, m: u32, p: u32) -> Argon2<'static> {
        Argon2::new(algorithm, version, Params::new(m, 2, p, None).unwrap())
    }

    fn crate_hash(argon2: &Argon2<'_>, password: &str) -> String {
        use argon2::PasswordHasher as _;
        argon2
            .hash_password_with_salt(password.as_bytes(), b"sixteen byte slt")
            .unwrap()
            .to_string()
    }

    /// The crate's own hash of "pw" with t = 2 and these parameters.
    fn pw_hash(algorithm: Algorithm, version: Version, m: u32, p: u32) -> String {
        crate_hash(&crate_argon2(algorithm, version, m, p), "pw")
    }

    #[tokio::test]
    async fn hashes_stay_compatible_with_the_crates_own_in_both_directions() {
        use argon2::PasswordVerifier as _;
        let hasher = PasswordHasher::new(2, Duration::from_secs(5)).unwrap();
        let ours = crate_argon2(Algorithm::Argon2id, Version::V0x13, 19 * 1024, 1);

        // Stored by the old code path: still verifies.
        let old = crate_hash(&ours, "correct horse");
        assert!(old.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{old}");
        let verify = |password: &str, hash: &str| {
            hasher.verify(password.to_owned().into(), Some(hash.to_owned()))
        };
        assert!(verify("correct horse", &old).await.unwrap());
        assert!(!verify("wrong horse", &old).await.unwrap());

        // Made now: the same format, byte for byte, and the crate verifies it.
        let new = hasher.hash("correct horse".into()).await.unwrap();
        let fields: Vec<&str> = new.split('$').collect();
        assert_eq!(
            fields[..4],
            ["", "argon2id", "v=19", "m=19456,t=2,p=1"],
            "{new}"
        );
        // 16 bytes of salt and 32 of hash in unpadded B64.
        assert_eq!(
            (fields.len(), fields[4].len(), fields[5].len()),
            (6, 22, 43),
            "{new}"
        );
        let b64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/';
        assert!(fields[4..].iter().all(|f| f.chars().all(b64)), "{new}");
        assert_eq!(PasswordHash::new(&new).unwrap().to_string(), new);
        assert!(ours.verify_password(b"correct horse", new.as_str()).is_ok());
        assert!(ours.verify_password(b"wrong horse", new.as_str()).is_err());

        // Other parameters a stored hash may carry: an older version, less memory and
        // more lanes, more memory than the pooled buffer holds, a longer output.
        let others = [
            pw_hash(Algorithm::Argon2id, Version::V0x10, 19 * 1024, 1),
            pw_hash(Algorithm::Argon2id, Version::V0x13, 8 * 1024, 2),
            pw_hash(Algorithm::Argon2id, Version::V0x13, 32 * 1024, 1),
            crate_hash(
                &Argon2::new(
                    Algorithm::Argon2id,
                    Version::V0x13,
                    Params::new(19 * 1024, 2, 1, Some(64)).unwrap(),
                ),
                "pw",
            ),
        ];
        for hash in others {
            assert!(verify("pw", &hash).await.unwrap(), "{hash}");
            assert!(!verify("pW", &hash).await.unwrap(), "{hash}");
        }
        assert_eq!(hasher.memory.allocated.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn anything_but_a_well_formed_argon2id_hash_is_a_mismatch() {
        let hasher = PasswordHasher::new(2, Duration::from_secs(5)).unwrap();
        let good = pw_hash(Algorithm::Argon2id, Version::V0x13, 19 * 1024, 1);
        let (head, tail) = good.rsplit_once('$').unwrap();
        let refused = [
            pw_hash(Algorithm::Argon2i, Version::V0x13, 19 * 1024, 1),
            pw_hash(Algorithm::Argon2d, Version::V0x13, 19 * 1024, 1),
            // More memory than a stored hash may ask for: refused, not allocated, even
            // with the right password.
            pw_hash(Algorithm::Argon2id, Version::V0x13, 65 * 1024, 1),
            good.replace("m=19456", "m=4194304"),
            good.replace("v=19", "v=20"),
            good.replace("t=2", "t=0"),
            // More passes than a stored hash may ask for: refused at once.
            good.replace("t=2", "t=4294967295"),
            good.replace("p=1", "p=1,x=1"),
            format!("{head}$"),
            format!("{head}${}", &tail[..tail.len() - 1]),
            head.to_owned(),
            good.replacen("$argon2id$", "$scrypt$", 1),
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW".to_owned(),
            "plain text".to_owned(),
            String::new(),
            "$".to_owned(),
        ];
        assert!(
            hasher
                .verify("pw".into(), Some(good.clone()))
                .await
                .unwrap()
        );
        for hash in refused {
            let verified = hasher.verify("pw".into(), Some(hash.clone())).await;
            assert!(!verified.unwrap(), "{hash}");
        }
    }

    /// Resident memory of this process, in KiB.
    #[cfg(target_os = "linux")]
    fn resident_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .unwrap();
        line.trim().trim_end_matches("kB").trim().parse().unwrap()
    }

    /// 64 hashes and verifications, two at a time, landing on many blocking threads:
    /// resident memory grows by the two buffers the limit allows, not by a 19 MiB
    /// arena left behind on every thread that ever hashed.
    ///
    /// Measured in a child process of its own, so tests running beside it in this one
    /// (`cargo test` runs them on threads) cannot add to the figure.
    #[cfg(target_os = "linux")]
    #[test]
    fn memory_for_hashing_stays_bounded_by_the_concurrency() {
        const CHILD: &str = "AUTHSTREAM_PASSWORD_RSS_CHILD";
        let name = "passwords::tests::memory_for_hashing_stays_bounded_by_the_concurrency";
        if std::env::var_os(CHILD).is_none() {
            let child = std::process::Command::new(std::env::current_exe().unwrap())
                .args([name, "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD, "1")
                .output()
                .unwrap();
            let output = format!(
                "{}{}",
                String::from_utf8_lossy(&child.stdout),
                String::from_utf8_lossy(&child.stderr)
            );
            println!("{output}");
            assert!(child.status.success(), "{output}");
            assert!(
                output.contains("1 passed"),
                "the child ran no test: {output}"
            );
            return;
        }

        let before = resident_kib();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(8)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let hasher = PasswordHasher::new(2, Duration::from_secs(600)).unwrap();
            let stored = hasher.hash("correct horse".into()).await.unwrap();
            let jobs = (0..64).map(|i| {
                let (hasher, stored) = (hasher.clone(), stored.clone());
                tokio::spawn(async move {
                    match i % 3 {
                        0 => !hasher
                            .hash("battery staple".into())
                            .await
                            .unwrap()
                            .is_empty(),
                        1 => hasher
                            .verify("correct horse".into(), Some(stored))
                            .await
                            .unwrap(),
                        _ => !hasher.verify("anyone".into(), None).await.unwrap(),
                    }
                })
            });
            for job in jobs.collect::<Vec<_>>() {
                assert!(job.await.unwrap());
            }
            assert_eq!(hasher.peak_concurrency(), 2);
            assert_eq!(hasher.memory.allocated.load(Ordering::Relaxed), 2);
            let grown_mib = (resident_kib().saturating_sub(before)) / 1024;
            println!("resident memory grew by {grown_mib} MiB over 64 hashes, 2 at a time");
            // Two 19 MiB buffers, plus threads and slack; the old code grew by hundreds.
            assert!(
                grown_mib < 4 * 19,
                "resident memory grew by {grown_mib} MiB"
            );
        });
    }
}
