//! The token format: `aut_` + id + `_` + secret + checksum.
//!
//! - id: 12 random base62 characters; public, names the token.
//! - secret: 43 random base62 characters (256 bits) from the operating system's CSPRNG.
//! - checksum: CRC-32 (IEEE, as zlib's `crc32`) of the ASCII bytes of `aut_<id>_<secret>`, in
//!   base62, most significant digit first, left-padded with `0` to 6 characters.
//!
//! Everything here is pure; randomness comes in as a parameter.

use std::fmt;

use rand::CryptoRng;
use rand::distr::{Distribution, Uniform};

use crate::secret::Secret;

pub const PREFIX: &str = "aut_";
pub const ID_LEN: usize = 12;
pub const SECRET_LEN: usize = 43;
pub const CHECKSUM_LEN: usize = 6;
/// Length of a whole token: 66.
pub const TOKEN_LEN: usize = PREFIX.len() + ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;

/// The base62 alphabet, in this order: digits, upper case, lower case.
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a string is not a token. Deliberately carries none of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    Length,
    Prefix,
    Separator,
    Alphabet,
    Checksum,
}

/// The token in text a person, a file or a program gave: without a UTF-8 byte order mark at
/// the start (Windows editors save files with one, and `$(cat token.txt)` keeps it) and
/// without surrounding whitespace. `autheona verify` reads its input so, and serve's
/// `/v1/verify` the token in its JSON, so that both decide alike.
pub fn given(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text).trim()
}

/// A token id: 12 base62 characters. Not secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenId(String);

impl TokenId {
    /// Accepts exactly 12 base62 characters.
    pub fn parse(text: &str) -> Option<TokenId> {
        (text.len() == ID_LEN && is_base62(text)).then(|| TokenId(text.to_owned()))
    }

    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> TokenId {
        TokenId(random_base62(rng, ID_LEN))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A whole token: its public id and its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    id: TokenId,
    secret: Secret,
}

impl Token {
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Token {
        Token {
            id: TokenId::generate(rng),
            secret: Secret::new(random_base62(rng, SECRET_LEN)),
        }
    }

    /// Puts the same secret under another id (when a fresh id collides with an existing one).
    pub fn set_id(&mut self, id: TokenId) {
        self.id = id;
    }

    /// Parses a token, checking its shape and checksum. Surrounding whitespace is the caller's.
    pub fn parse(text: &str) -> Result<Token, Malformed> {
        if text.len() != TOKEN_LEN {
            return Err(Malformed::Length);
        }
        let Some(rest) = text.strip_prefix(PREFIX) else {
            return Err(Malformed::Prefix);
        };
        // Length and prefix are checked; every index below is on an ASCII boundary only if the
        // rest is ASCII, so check the alphabet before slicing.
        let (id, rest) = rest.split_at_checked(ID_LEN).ok_or(Malformed::Alphabet)?;
        let Some(rest) = rest.strip_prefix('_') else {
            return Err(if rest.is_char_boundary(1) {
                Malformed::Separator
            } else {
                Malformed::Alphabet
            });
        };
        if !is_base62(id) || !is_base62(rest) {
            return Err(Malformed::Alphabet);
        }
        let (secret, given_checksum) = rest.split_at(SECRET_LEN);
        let body = &text[..text.len() - CHECKSUM_LEN];
        if checksum(body) != given_checksum.as_bytes() {
            return Err(Malformed::Checksum);
        }
        Ok(Token {
            id: TokenId(id.to_owned()),
            secret: Secret::new(secret.to_owned()),
        })
    }

    pub fn id(&self) -> &TokenId {
        &self.id
    }

    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The whole token as the user sees it, once.
    pub fn reveal(&self) -> Secret {
        let mut text = String::with_capacity(TOKEN_LEN);
        text.push_str(PREFIX);
        text.push_str(self.id.as_str());
        text.push('_');
        text.push_str(self.secret.expose());
        let sum = checksum(&text);
        text.push_str(std::str::from_utf8(&sum).expect("base62 is ASCII"));
        Secret::new(text)
    }
}

/// The checksum of a token body `aut_<id>_<secret>`: CRC-32 in 6 base62 digits.
pub fn checksum(body: &str) -> [u8; CHECKSUM_LEN] {
    base62_u32(crc32fast::hash(body.as_bytes()))
}

/// `n` in base62, most significant digit first, left-padded with `0` to 6 digits
/// (62^6 > 2^32, so every u32 fits).
pub fn base62_u32(mut n: u32) -> [u8; CHECKSUM_LEN] {
    let mut digits = [BASE62[0]; CHECKSUM_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(n % 62) as usize];
        n /= 62;
    }
    digits
}

fn is_base62(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `len` characters drawn uniformly from [`BASE62`]; rand's `Uniform` rejects rather than
/// reduces modulo, so there is no bias.
fn random_base62<R: CryptoRng + ?Sized>(rng: &mut R, len: usize) -> String {
    let index = Uniform::new(0, BASE62.len()).expect("non-empty range");
    (0..len)
        .map(|_| char::from(BASE62[index.sample(rng)]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    #[test]
    fn alphabet_is_digits_upper_lower() {
        let expected: Vec<u8> = (b'0'..=b'9')
            .chain(b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .collect();
        assert_eq!(BASE62.as_slice(), expected.as_slice());
    }

    #[test]
    fn base62_known_values() {
        assert_eq!(&base62_u32(0), b"000000");
        assert_eq!(&base62_u32(61), b"00000z");
        assert_eq!(&base62_u32(62), b"000010");
        assert_eq!(&base62_u32(u32::MAX), b"4gfFC3");
    }

    #[test]
    fn checksum_is_zlib_crc32_in_base62() {
        // zlib.crc32(b"123456789") == 0xCBF43926 == 3421780262
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
        assert_eq!(&checksum("123456789"), &base62_u32(0xCBF4_3926));
        assert_eq!(&base62_u32(0xCBF4_3926), b"3jZRME");
    }

    #[test]
    fn generated_token_has_the_documented_shape() {
        let token = Token::generate(&mut rng());
        let text = token.reveal();
        let text = text.expose();
        assert_eq!(text.len(), 66);
        assert!(text.starts_with("aut_"));
        assert_eq!(&text[16..17], "_");
        assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        assert_eq!(&text[4..16], token.id().as_str());
        assert_eq!(&text[17..60], token.secret().expose());
        assert_eq!(&text.as_bytes()[60..], checksum(&text[..60]));
    }

    #[test]
    fn parse_round_trips() {
        let mut rng = rng();
        for _ in 0..200 {
            let token = Token::generate(&mut rng);
            assert_eq!(Token::parse(token.reveal().expose()), Ok(token));
        }
    }

    #[test]
    fn parse_rejects_each_kind_of_damage() {
        let token = Token::generate(&mut rng()).reveal();
        let good = token.expose();
        assert_eq!(Token::parse(""), Err(Malformed::Length));
        assert_eq!(Token::parse(&good[1..]), Err(Malformed::Length));
        assert_eq!(Token::parse(&format!("{good}x")), Err(Malformed::Length));
        assert_eq!(
            Token::parse(&format!("tok_{}", &good[4..])),
            Err(Malformed::Prefix)
        );
        assert_eq!(
            Token::parse(&format!("{}-{}", &good[..16], &good[17..])),
            Err(Malformed::Separator)
        );
        assert_eq!(
            Token::parse(&format!("{}-{}", &good[..20], &good[21..])),
            Err(Malformed::Alphabet)
        );
        let mut flipped = good.as_bytes().to_vec();
        flipped[30] = if flipped[30] == b'a' { b'b' } else { b'a' };
        assert_eq!(
            Token::parse(std::str::from_utf8(&flipped).unwrap()),
            Err(Malformed::Checksum)
        );
    }

    #[test]
    fn parse_never_slices_inside_a_multibyte_character() {
        // 66 bytes, with multibyte characters straddling the id/secret boundaries.
        let mut text = String::from("aut_");
        text.push_str("abcdefghijk");
        text.push('é');
        text.push_str(&"a".repeat(TOKEN_LEN - text.len()));
        assert_eq!(text.len(), TOKEN_LEN);
        assert!(Token::parse(&text).is_err());
        let mut text = String::from("aut_");
        text.push_str("abcdefghijkl");
        text.push('é');
        text.push_str(&"a".repeat(TOKEN_LEN - text.len()));
        assert!(Token::parse(&text).is_err());
    }

    #[test]
    fn token_id_parse() {
        assert!(TokenId::parse("abcDEF012345").is_some());
        assert!(TokenId::parse("abcDEF01234").is_none());
        assert!(TokenId::parse("abcDEF01234_").is_none());
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let token = Token::generate(&mut rng());
        let debug = format!("{token:?}");
        assert!(!debug.contains(token.secret().expose()));
    }

    #[test]
    fn draws_cover_the_whole_alphabet() {
        let text = random_base62(&mut rng(), 5000);
        for c in BASE62 {
            assert!(text.as_bytes().contains(c), "never drew {}", *c as char);
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    /// A well-formed token drawn from a seed.
    fn token() -> impl Strategy<Value = Token> {
        any::<u64>().prop_map(|seed| Token::generate(&mut StdRng::seed_from_u64(seed)))
    }

    proptest! {
        #[test]
        fn any_string_parses_or_is_refused_without_panicking(text in any::<String>()) {
            let _ = Token::parse(&text);
        }

        #[test]
        fn any_66_token_characters_without_the_right_checksum_are_refused(
            text in "aut_[0-9A-Za-z]{12}_[0-9A-Za-z]{49}"
        ) {
            let body = &text[..TOKEN_LEN - CHECKSUM_LEN];
            let valid = checksum(body) == text.as_bytes()[TOKEN_LEN - CHECKSUM_LEN..];
            prop_assert_eq!(Token::parse(&text).is_ok(), valid);
        }

        #[test]
        fn every_generated_token_round_trips(token in token()) {
            let text = token.reveal();
            prop_assert_eq!(text.expose().len(), TOKEN_LEN);
            prop_assert_eq!(Token::parse(text.expose()), Ok(token));
        }

        #[test]
        fn any_single_character_change_is_refused(
            token in token(),
            position in 0..TOKEN_LEN,
            replacement in prop::char::any(),
        ) {
            let text = token.reveal();
            let original = text.expose().as_bytes()[position] as char;
            prop_assume!(replacement != original);
            let mut changed: Vec<char> = text.expose().chars().collect();
            changed[position] = replacement;
            let changed: String = changed.into_iter().collect();
            prop_assert!(Token::parse(&changed).is_err(), "{} accepted", changed);
        }

        #[test]
        fn base62_is_six_digits_of_the_alphabet(n in any::<u32>()) {
            let digits = base62_u32(n);
            prop_assert!(digits.iter().all(|d| BASE62.contains(d)));
            let value = digits.iter().fold(0u64, |acc, d| {
                acc * 62 + BASE62.iter().position(|b| b == d).unwrap() as u64
            });
            prop_assert_eq!(value, u64::from(n));
        }
    }
}
