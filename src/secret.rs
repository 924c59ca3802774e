//! Secret values and their argon2id hashes.
//!
//! A secret never appears in `Debug` or `Display` output and is wiped from memory when dropped.

use std::fmt;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
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

/// Hashes a secret to an argon2id PHC string with a random 16-byte salt.
pub fn hash(secret: &Secret) -> Result<String, argon2::password_hash::Error> {
    let hash: PasswordHash = hasher().hash_password(secret.expose().as_bytes())?;
    Ok(hash.to_string())
}

/// Whether `secret` matches the PHC string `stored`, at the parameters recorded in `stored`.
///
/// A stored value that does not parse matches nothing.
pub fn verify(secret: &Secret, stored: &str) -> bool {
    #[cfg(test)]
    VERIFICATIONS.with(|count| count.set(count.get() + 1));
    match PasswordHash::new(stored) {
        Ok(parsed) => hasher()
            .verify_password(secret.expose().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
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
    fn garbage_stored_hash_matches_nothing() {
        assert!(!verify(&Secret::new("x".into()), "not a phc string"));
    }
}
