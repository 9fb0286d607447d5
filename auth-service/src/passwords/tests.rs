//! Tests of the password hasher: hashes, verification, bounds, memory reuse.

use super::*;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Version};

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
