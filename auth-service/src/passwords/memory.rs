//! Argon2's working memory: a pool of block buffers, at most one per permit, and the
//! lease one computation holds, plus hashing and verifying into that memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use authstream_web::ApiError;
use parking_lot::Mutex;
use secrecy::{ExposeSecret as _, SecretString};
use subtle::ConstantTimeEq as _;

use super::{MAX_VERIFY_M_COST, MAX_VERIFY_T_COST, params};

/// Reusable Argon2 block buffers, each big enough for our own parameters. A buffer is
/// taken only by a job holding a permit and is back before the permit is released, so
/// no more than `capacity` ever exist; they are allocated on first need and then live
/// as long as the hasher.
pub(super) struct BlockPool {
    pub(super) free: Mutex<Vec<Vec<Block>>>,
    /// Blocks in each buffer: what our parameters need.
    pub(super) blocks: usize,
    pub(super) capacity: usize,
    /// Buffers allocated so far (never more than `capacity`).
    pub(super) allocated: AtomicUsize,
}

impl BlockPool {
    pub(super) fn new(capacity: usize) -> Result<Self, ApiError> {
        Ok(Self {
            free: Mutex::new(Vec::with_capacity(capacity)),
            blocks: params()?.block_count(),
            capacity,
            allocated: AtomicUsize::new(0),
        })
    }

    pub(super) fn lease(self: &Arc<Self>) -> Lease {
        Lease {
            pool: self.clone(),
            pooled: None,
            oversized: Vec::new(),
        }
    }

    pub(super) fn take(&self) -> Result<Vec<Block>, ApiError> {
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

    pub(super) fn put_back(&self, buffer: Vec<Block>) {
        let mut free = self.free.lock();
        if free.len() < self.capacity {
            free.push(buffer);
        }
    }
}

/// One computation's working memory: the pooled buffer (taken on first use), or a
/// buffer of its own for a stored hash that needs more than ours. The pooled buffer
/// goes back when the lease is dropped, however the job ended.
pub(super) struct Lease {
    pub(super) pool: Arc<BlockPool>,
    pub(super) pooled: Option<Vec<Block>>,
    pub(super) oversized: Vec<Block>,
}

impl Lease {
    pub(super) fn blocks(&mut self, count: usize) -> Result<&mut [Block], ApiError> {
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
pub(super) fn allocate(count: usize) -> Result<Vec<Block>, ApiError> {
    let mut blocks = Vec::new();
    blocks
        .try_reserve_exact(count)
        .map_err(ApiError::internal)?;
    blocks.resize(count, Block::new());
    Ok(blocks)
}

/// A fresh salted Argon2id hash in the PHC string format, exactly as
/// `Argon2::hash_password_with_salt` writes it.
pub(super) fn hash_into(memory: &mut Lease, password: &SecretString) -> Result<String, ApiError> {
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
pub(super) fn verify_into(
    memory: &mut Lease,
    password: &SecretString,
    hash: &str,
) -> Result<bool, ApiError> {
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
