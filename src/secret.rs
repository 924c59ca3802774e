//! Secret values and their argon2id hashes.
//!
//! A secret never appears in `Debug` or `Display` output and is wiped from memory when dropped.

use std::fmt;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::TryRng;
use rand::rngs::SysRng;
use zeroize::Zeroizing;

/// Argon2id cost for new hashes: m=1024 KiB, t=1, p=1.
///
/// The secret is 256 random bits, so no hashing cost adds to its strength; the hash only makes a
/// copied database yield no usable token. Password-grade cost would make every verify about ten
/// times slower for nothing. Each PHC string records its own parameters, so changing this needs
/// no migration: old rows keep verifying with what they were hashed with.
pub const HASH_PARAMS: Params = match Params::new(1024, 1, 1, None) {
    Ok(params) => params,
    Err(_) => panic!("invalid argon2 parameters"),
};

/// A hash at [`HASH_PARAMS`] of `not a token secret!` (no secret has spaces), so verifying an
/// unknown token id costs the same as verifying a wrong secret.
const DUMMY_HASH: &str = "$argon2id$v=19$m=1024,t=1,p=1$YXV0aGVvbmEtZHVtbXktMQ$fDTqnlNp4bovnZZBQRUmETHT0ZVkNjE5tb1Pc2ISLhQ";

/// A secret string: redacted in `Debug` and `Display`, zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(Zeroizing::new(value))
    }

    /// The secret itself; call only where it must leave the process (stdout) or be hashed.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, HASH_PARAMS)
}

/// Hashes a secret to an argon2id PHC string at [`HASH_PARAMS`] with a random 16-byte salt
/// from the operating system.
pub fn hash(secret: &Secret) -> Result<String, argon2::password_hash::Error> {
    let mut salt = [0u8; 16];
    SysRng
        .try_fill_bytes(&mut salt)
        .map_err(|_| argon2::password_hash::Error::Crypto)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(&hasher(), secret, &salt, &mut out)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&HASH_PARAMS)?,
        salt: Some(Salt::new(&salt)?),
        hash: Some(Output::new(&out)?),
    };
    Ok(hash.to_string())
}

/// One argon2 computation, its working memory from [`Memory`] (the heap if that fails).
fn compute(
    argon2: &Argon2<'_>,
    secret: &Secret,
    salt: &[u8],
    out: &mut [u8],
) -> argon2::Result<()> {
    let password = secret.expose().as_bytes();
    with_memory(argon2.params().block_count(), |memory| match memory {
        Some(blocks) => argon2.hash_password_into_with_memory(password, salt, out, blocks),
        None => argon2.hash_password_into(password, salt, out),
    })
}

/// Whether `secret` matches the PHC string `stored`, at the algorithm, version and parameters
/// recorded in `stored`. A stored value that does not parse matches nothing.
///
/// This is what argon2's `PasswordVerifier` does, except that the working memory comes from
/// [`Memory`].
pub fn verify(secret: &Secret, stored: &str) -> bool {
    #[cfg(test)]
    VERIFICATIONS.with(|count| count.set(count.get() + 1));
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(hash.algorithm.as_str()),
        Params::try_from(&hash),
    ) else {
        return false;
    };
    let Ok(version) = hash
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let mut buffer = [0u8; Output::MAX_LENGTH];
    let Some(out) = buffer.get_mut(..expected.len()) else {
        return false;
    };
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let password = secret.expose().as_bytes();
    let computed = with_memory(blocks, |memory| match memory {
        Some(blocks) => argon2.hash_password_into_with_memory(password, salt, out, blocks),
        None => argon2.hash_password_into(password, salt, out),
    });
    // `Output`'s equality is constant-time.
    computed.is_ok() && Output::new(out).is_ok_and(|computed| computed == *expected)
}

thread_local! {
    /// This thread's argon2 working memory, kept from one computation to the next: a server
    /// verifying thousands of tokens a second would otherwise map, fault in (the kernel zeroing
    /// 2 MiB) and unmap it each time, and every unmapping interrupts the process's other cores.
    static MEMORY: std::cell::RefCell<Option<Memory>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with `count` blocks of this thread's working memory (`None` if none can be
/// mapped: then argon2 takes its own from the heap), wiped when `f` returns: nothing of a
/// computation stays in it.
fn with_memory<R>(count: usize, f: impl FnOnce(Option<&mut [Block]>) -> R) -> R {
    MEMORY.with(|cell| {
        let mut memory = cell.borrow_mut();
        if memory.as_ref().is_none_or(|m| m.count < count) {
            *memory = None;
            *memory = Memory::new(count);
        }
        let Some(memory) = memory.as_mut() else {
            return f(None);
        };
        let result = f(Some(&mut memory.blocks()[..count]));
        memory.wipe(count);
        result
    })
}

/// Argon2's working memory, mapped on a 2 MiB boundary and offered to the kernel for a
/// transparent huge page: one page fault instead of one per 4 KiB. Measured on a 2-core VM, a
/// verify at m=1024 KiB took 1.7 ms of argon2 with ordinary heap memory and 0.95 ms with this.
/// Where huge pages are off, it is ordinary anonymous memory, as fast as the heap.
struct Memory {
    mapping: *mut libc::c_void,
    mapped: usize,
    blocks: *mut Block,
    count: usize,
}

impl Memory {
    const HUGE_PAGE: usize = 2 << 20;

    fn new(count: usize) -> Option<Memory> {
        // A huge page backs only a whole, aligned 2 MiB: map a multiple of that, plus room to
        // align the start.
        let bytes = count
            .checked_mul(std::mem::size_of::<Block>())?
            .checked_next_multiple_of(Self::HUGE_PAGE)?;
        let mapped = bytes.checked_add(Self::HUGE_PAGE)?;
        // SAFETY: an anonymous private mapping with no address hint; checked for failure.
        let mapping = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if mapping == libc::MAP_FAILED {
            return None;
        }
        let offset = (mapping as usize).next_multiple_of(Self::HUGE_PAGE) - mapping as usize;
        // SAFETY: offset < HUGE_PAGE, so [offset, offset + bytes) lies inside the mapping of
        // bytes + HUGE_PAGE. The advice is only a hint; if the kernel declines, the memory
        // works as it is.
        let start = unsafe {
            let start = mapping.cast::<u8>().add(offset);
            libc::madvise(start.cast(), bytes, libc::MADV_HUGEPAGE);
            start
        };
        Some(Memory {
            mapping,
            mapped,
            blocks: start.cast::<Block>(),
            count,
        })
    }

    fn blocks(&mut self) -> &mut [Block] {
        // SAFETY: `blocks` is 2 MiB-aligned (more than Block's 64) and points at (at least)
        // `count` blocks of initialised (zeroed), writable memory that this value owns; any
        // bytes are a valid Block, which is plain integers.
        unsafe { std::slice::from_raw_parts_mut(self.blocks, self.count) }
    }
}

impl Memory {
    /// Overwrites the first `count` blocks with zeros, in a way the compiler keeps.
    fn wipe(&mut self, count: usize) {
        use zeroize::Zeroize;
        let bytes = count.min(self.count) * std::mem::size_of::<Block>();
        // SAFETY: the first `bytes` bytes of the blocks are this value's writable memory (see
        // `blocks`), and any bytes are a valid Block.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.cast::<u8>(), bytes) }.zeroize();
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; no slice into it outlives `self`.
        unsafe {
            libc::munmap(self.mapping, self.mapped);
        }
    }
}

#[cfg(test)]
thread_local! {
    static VERIFICATIONS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// How many argon2 verifications this thread has run (unit tests only).
#[cfg(test)]
pub(crate) fn verifications() -> u32 {
    VERIFICATIONS.with(std::cell::Cell::get)
}

/// Does the same work as [`verify`] against a hash that nothing matches.
pub fn verify_dummy(secret: &Secret) -> bool {
    verify(secret, DUMMY_HASH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHasher;

    #[test]
    fn the_working_memory_is_kept_for_the_next_verification_and_wiped() {
        let secret = Secret::new("a".repeat(43));
        let stored = hash(&secret).unwrap();
        assert!(verify(&secret, &stored));
        let first = MEMORY.with(|m| m.borrow().as_ref().map(|m| m.blocks as usize));
        assert!(first.is_some(), "mapped once, and kept");
        assert!(!verify(&Secret::new("b".repeat(43)), &stored));
        MEMORY.with(|m| {
            let mut memory = m.borrow_mut();
            let memory = memory.as_mut().unwrap();
            assert_eq!(
                Some(memory.blocks as usize),
                first,
                "the same memory, not a new mapping"
            );
            let count = memory.count;
            let bytes = unsafe {
                std::slice::from_raw_parts(
                    memory.blocks.cast::<u8>(),
                    count * std::mem::size_of::<Block>(),
                )
            };
            assert!(bytes.iter().all(|&b| b == 0), "wiped after use");
        });
    }

    #[test]
    fn debug_and_display_are_redacted() {
        let secret = Secret::new("hunter2hunter2".into());
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{secret}"), "<redacted>");
    }

    #[test]
    fn hash_round_trips_and_records_its_parameters() {
        let secret = Secret::new("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ".into());
        let stored = hash(&secret).unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
            "{stored}"
        );
        assert!(!stored.contains(secret.expose()));
        assert!(verify(&secret, &stored));
        assert!(!verify(&Secret::new("wrong".into()), &stored));
    }

    #[test]
    fn each_hash_has_its_own_salt() {
        let secret = Secret::new("same".into());
        assert_ne!(hash(&secret).unwrap(), hash(&secret).unwrap());
    }

    #[test]
    fn verification_honours_the_parameters_stored_in_the_row() {
        let secret = Secret::new("older-row".into());
        let heavier = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(2048, 2, 1, None).unwrap(),
        );
        let stored = heavier
            .hash_password(secret.expose().as_bytes())
            .unwrap()
            .to_string();
        assert!(stored.contains("m=2048,t=2,p=1"));
        assert!(verify(&secret, &stored));
    }

    #[test]
    fn dummy_hash_is_well_formed_at_current_parameters() {
        let parsed = PasswordHash::new(DUMMY_HASH).unwrap();
        let params = Params::try_from(&parsed).unwrap();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (
                HASH_PARAMS.m_cost(),
                HASH_PARAMS.t_cost(),
                HASH_PARAMS.p_cost()
            )
        );
        assert!(verify(
            &Secret::new("not a token secret!".into()),
            DUMMY_HASH
        ));
        assert!(!verify_dummy(&Secret::new("anything".into())));
    }

    #[test]
    fn our_hashes_are_what_argon2_itself_verifies() {
        use argon2::password_hash::PasswordVerifier;
        let secret = Secret::new("cross-check".into());
        let stored = hash(&secret).unwrap();
        let parsed = PasswordHash::new(&stored).unwrap();
        assert_eq!(parsed.salt.unwrap().len(), 16);
        assert!(hasher().verify_password(b"cross-check", &parsed).is_ok());
        assert!(
            hasher()
                .verify_password(b"something else", &parsed)
                .is_err()
        );
    }

    #[test]
    fn other_argon2_variants_verify_by_what_their_string_says() {
        for algorithm in [Algorithm::Argon2i, Algorithm::Argon2d] {
            let secret = Secret::new("variant".into());
            let stored = Argon2::new(
                algorithm,
                Version::V0x13,
                Params::new(512, 1, 1, None).unwrap(),
            )
            .hash_password(b"variant")
            .unwrap()
            .to_string();
            assert!(verify(&secret, &stored), "{stored}");
            assert!(!verify(&Secret::new("other".into()), &stored));
        }
    }

    #[test]
    fn garbage_stored_hash_matches_nothing() {
        assert!(!verify(&Secret::new("x".into()), "not a phc string"));
    }
}
