//! The verified-secret cache: which tokens' secrets were found to match which hash, so that a
//! token used again needs no argon2 work. It spares only that work: every request still asks
//! the store for the token's row (which the store may answer from memory only while every
//! change that refuses a token waits for it), and an entry counts only while the row holds the
//! very hash it was verified against, so a token revoked, rotated, pruned or deleted with its
//! project is refused by the next request whatever the cache holds.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use hmac::{KeyInit, Mac};
use lru::LruCache;
use rand::TryRng;
use rand::rngs::SysRng;
use zeroize::Zeroizing;

use crate::token::Token;

type Hmac = hmac::Hmac<sha2::Sha256>;

/// A token as the cache knows it: a keyed hash of the whole token (HMAC-SHA-256 under a key
/// drawn at start-up and never kept anywhere else), never the token, so that the cache's
/// memory holds nothing that could be used, or tried offline, as a token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key([u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<keyed hash>)")
    }
}

struct Entry {
    /// The token's id, so that a key can only ever vouch for the id it was verified with.
    id: String,
    /// The hash the secret was verified against.
    secret_hash: String,
}

pub struct Cache {
    key: Zeroizing<[u8; 32]>,
    entries: Option<Mutex<LruCache<Key, Entry>>>,
}

impl Cache {
    /// A cache of at most `size` tokens, the least recently used forgotten first; 0 caches
    /// nothing.
    pub fn new(size: usize) -> Result<Cache, rand::rngs::SysError> {
        let mut key = Zeroizing::new([0u8; 32]);
        SysRng.try_fill_bytes(&mut *key)?;
        Ok(Cache {
            key,
            entries: NonZeroUsize::new(size).map(|size| Mutex::new(LruCache::new(size))),
        })
    }

    /// The cache's key for `token`.
    pub fn key(&self, token: &Token) -> Key {
        let mut mac = Hmac::new_from_slice(&*self.key).expect("HMAC takes a key of any length");
        mac.update(token.id().as_str().as_bytes());
        mac.update(b"_");
        mac.update(token.secret().expose().as_bytes());
        Key(mac.finalize().into_bytes().into())
    }

    /// The hash the token with `key` and `id` was verified against, if the cache holds it: it
    /// vouches for the token only while the token's row holds that very hash.
    pub fn hash_for(&self, key: &Key, id: &str) -> Option<String> {
        let mut entries = self
            .entries
            .as_ref()?
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|entry| entry.id == id)
            .map(|entry| entry.secret_hash.clone())
    }

    /// Whether the token with `key` and `id` was verified against `secret_hash`.
    #[cfg(test)]
    fn vouches(&self, key: &Key, id: &str, secret_hash: &str) -> bool {
        self.hash_for(key, id)
            .is_some_and(|hash| hash == secret_hash)
    }

    /// Remembers that the token with `key` and `id` matched `secret_hash`.
    pub fn remember(&self, key: Key, id: &str, secret_hash: &str) {
        if let Some(entries) = &self.entries {
            let mut entries = entries
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            entries.put(
                key,
                Entry {
                    id: id.to_owned(),
                    secret_hash: secret_hash.to_owned(),
                },
            );
        }
    }

    /// How many tokens it holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries
            .as_ref()
            .map_or(0, |entries| entries.lock().unwrap().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Token {
        Token::generate(&mut rand::rng())
    }

    #[test]
    fn an_entry_vouches_only_for_its_token_id_and_hash() {
        let cache = Cache::new(10).unwrap();
        let (a, b) = (token(), token());
        let key = cache.key(&a);
        assert_ne!(key, cache.key(&b));
        let id = a.id().as_str();
        assert!(!cache.vouches(&key, id, "h1"));
        cache.remember(key, id, "h1");
        assert!(cache.vouches(&key, id, "h1"));
        assert!(
            !cache.vouches(&key, id, "h2"),
            "the row holds another hash now"
        );
        assert!(!cache.vouches(&key, b.id().as_str(), "h1"), "another id");
        assert!(!cache.vouches(&cache.key(&b), b.id().as_str(), "h1"));
    }

    #[test]
    fn keys_differ_between_caches() {
        let a = token();
        let (one, two) = (Cache::new(1).unwrap(), Cache::new(1).unwrap());
        assert_eq!(one.key(&a), one.key(&a));
        assert_ne!(one.key(&a), two.key(&a), "a random key per process");
    }

    #[test]
    fn it_is_bounded_and_forgets_the_least_recently_used() {
        let cache = Cache::new(2).unwrap();
        let tokens: Vec<Token> = (0..3).map(|_| token()).collect();
        let keys: Vec<Key> = tokens.iter().map(|t| cache.key(t)).collect();
        for (t, k) in tokens.iter().zip(&keys).take(2) {
            cache.remember(*k, t.id().as_str(), "h");
        }
        assert!(cache.vouches(&keys[0], tokens[0].id().as_str(), "h"));
        cache.remember(keys[2], tokens[2].id().as_str(), "h");
        assert_eq!(cache.len(), 2);
        assert!(cache.vouches(&keys[0], tokens[0].id().as_str(), "h"));
        assert!(
            !cache.vouches(&keys[1], tokens[1].id().as_str(), "h"),
            "the oldest went"
        );
    }

    #[test]
    fn size_zero_caches_nothing() {
        let cache = Cache::new(0).unwrap();
        let a = token();
        let key = cache.key(&a);
        cache.remember(key, a.id().as_str(), "h");
        assert!(!cache.vouches(&key, a.id().as_str(), "h"));
    }
}
