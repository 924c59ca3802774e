use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::*;
use crate::ops::project;
use crate::ops::token::{self, Expiration, TokenRequest};
use crate::secret;
use crate::store::Sqlite;
use crate::token::checksum;

const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

/// A well-formed token's text, drawn from a seed.
fn token_text(seed: u64) -> String {
    Token::generate(&mut StdRng::seed_from_u64(seed))
        .reveal()
        .expose()
        .to_owned()
}

/// A body `aut_<id>_<secret>` with its valid checksum appended.
fn with_checksum(body: &str) -> String {
    format!("{body}{}", std::str::from_utf8(&checksum(body)).unwrap())
}

/// (line, column, id) of each token found, reading `chunk` bytes at a time.
fn found_in(bytes: &[u8], chunk: usize) -> Vec<(u64, u64, String)> {
    let mut found = Vec::new();
    let scanned = TokenFinder::with_chunk(chunk)
        .find(&mut &bytes[..], false, &mut |position, token| {
            found.push((position.line, position.column, token.id().to_string()));
        })
        .unwrap();
    assert_eq!(scanned, Scanned::Text);
    found
}

/// The same with the real chunk size, and checked to agree with a range of small ones, which
/// put every token across chunk boundaries somewhere.
fn found(bytes: &[u8]) -> Vec<(u64, u64, String)> {
    let expected = found_in(bytes, CHUNK);
    for chunk in [1, 2, 3, 64, 65, 66, 67, 100, 131, 1000] {
        assert_eq!(found_in(bytes, chunk), expected, "chunk of {chunk} bytes");
    }
    expected
}

fn id(text: &str) -> String {
    text[4..16].to_owned()
}

/// The obvious definition, for checking the chunked one: every offset where 66 bytes parse.
fn found_naively(bytes: &[u8]) -> Vec<(u64, u64, String)> {
    let mut found = Vec::new();
    for start in 0..bytes.len().saturating_sub(TOKEN_LEN - 1) {
        if let Some(token) = parse(&bytes[start..start + TOKEN_LEN]) {
            let before = &bytes[..start];
            let line = 1 + before.iter().filter(|&&b| b == b'\n').count() as u64;
            let line_start = before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            found.push((
                line,
                (start - line_start + 1) as u64,
                token.id().to_string(),
            ));
        }
    }
    found
}

#[test]
fn finds_a_token_with_its_line_and_byte_column() {
    let token = token_text(1);
    let text = format!("first line\nsecond: TOKEN={token} # é\nthird\n");
    assert_eq!(found(text.as_bytes()), [(2, 15, id(&token))]);
    // Columns count bytes, as grep's do: é is two.
    let text = format!("é {token}");
    assert_eq!(found(text.as_bytes()), [(1, 4, id(&token))]);
}

#[test]
fn tokens_at_the_very_start_and_end_without_a_newline() {
    let (a, b) = (token_text(1), token_text(2));
    assert_eq!(found(a.as_bytes()), [(1, 1, id(&a))]);
    let text = format!("{a}\n\n{b}");
    assert_eq!(found(text.as_bytes()), [(1, 1, id(&a)), (3, 1, id(&b))]);
}

#[test]
fn adjacent_tokens_are_all_found() {
    let (a, b, c) = (token_text(1), token_text(2), token_text(3));
    let text = format!("{a}{b}{c}");
    assert_eq!(
        found(text.as_bytes()),
        [(1, 1, id(&a)), (1, 67, id(&b)), (1, 133, id(&c))]
    );
    // The same token twice on a line is reported twice.
    let text = format!("x {a} y {a}\n");
    assert_eq!(found(text.as_bytes()), [(1, 3, id(&a)), (1, 72, id(&a))]);
}

#[test]
fn a_false_start_does_not_hide_the_token_after_it() {
    let token = token_text(1);
    let text = format!("aut_aut_{token}");
    assert_eq!(found(text.as_bytes()), [(1, 9, id(&token))]);
    let text = format!("aut_{}{token}", &token[4..40]);
    assert_eq!(found(text.as_bytes()), [(1, 41, id(&token))]);
}

#[test]
fn no_boundary_is_needed_around_a_token() {
    // The checksum alone rules out look-alikes, so a token glued to other text still counts.
    let token = token_text(1);
    let text = format!("xyz{token}xyz");
    assert_eq!(found(text.as_bytes()), [(1, 4, id(&token))]);
}

#[test]
fn crlf_line_ends_count_as_one_line_each() {
    let token = token_text(1);
    let text = format!("a\r\nbb\r\n  {token}\r\n");
    assert_eq!(found(text.as_bytes()), [(3, 3, id(&token))]);
}

#[test]
fn look_alikes_are_not_tokens() {
    let token = token_text(1);
    let mut flipped = token.clone().into_bytes();
    flipped[30] = if flipped[30] == b'a' { b'b' } else { b'a' };
    let flipped = String::from_utf8(flipped).unwrap();
    let bad_checksum = format!("{}{}", &token[..60], "000000");
    assert_ne!(bad_checksum, token);
    // Cyrillic а (U+0430) for the Latin a of the prefix; the rest is a real token's.
    let cyrillic = format!("\u{430}{}", &token[1..]);
    let truncated = &token[..65];
    let dash = format!("{}-{}", &token[..16], &token[17..]);
    let upper = format!("AUT_{}", &token[4..]);
    // The right checksum on a body of the wrong shape.
    let short_id = with_checksum(&format!("aut_{}_{}", &token[4..15], &token[17..61]));
    for look_alike in [
        flipped.as_str(),
        &bad_checksum,
        &cyrillic,
        truncated,
        &dash,
        &upper,
        &short_id,
    ] {
        let text = format!("key = {look_alike}\n");
        assert_eq!(found(text.as_bytes()), [], "{look_alike}");
    }
}

#[test]
fn invalid_utf8_around_a_token_is_fine() {
    let token = token_text(1);
    let mut bytes = b"\xff\xfe\n\xc3".to_vec();
    bytes.extend_from_slice(token.as_bytes());
    bytes.extend_from_slice(b"\x80\n");
    assert_eq!(found(&bytes), [(2, 2, id(&token))]);
}

#[test]
fn chunked_finding_agrees_with_the_obvious_definition() {
    let mut rng = StdRng::seed_from_u64(42);
    let tokens: Vec<String> = (0..8).map(token_text).collect();
    for round in 0..40 {
        let mut text = Vec::new();
        while text.len() < 3000 {
            match rng.random_range(0..10) {
                0 => text.extend_from_slice(tokens[rng.random_range(0..tokens.len())].as_bytes()),
                1 => text.extend_from_slice(b"aut_"),
                2 => text.extend_from_slice(b"\r\n"),
                3..=4 => text.push(b'\n'),
                _ => {
                    let word: Vec<u8> = (0..rng.random_range(1..12))
                        .map(|_| b"abcaut_XYZ019 "[rng.random_range(0..14)])
                        .collect();
                    text.extend_from_slice(&word);
                }
            }
        }
        let expected = found_naively(&text);
        assert_eq!(found(&text), expected, "round {round}");
    }
}

#[test]
fn line_numbers_carry_across_chunks() {
    let token = token_text(1);
    let mut text = "line\n".repeat(100_000);
    text.push_str("  ");
    text.push_str(&token);
    assert_eq!(found_in(text.as_bytes(), CHUNK), [(100_001, 3, id(&token))]);
    assert_eq!(found_in(text.as_bytes(), 4096), [(100_001, 3, id(&token))]);
}

#[test]
fn a_nul_in_the_first_8000_bytes_makes_a_walked_file_binary() {
    let token = token_text(1);
    let binary = format!("\0{token}");
    let mut found = 0;
    let scanned = TokenFinder::new()
        .find(&mut binary.as_bytes(), true, &mut |_, _| found += 1)
        .unwrap();
    assert_eq!((scanned, found), (Scanned::Binary, 0));
    // Named files and stdin are scanned all the same.
    let scanned = TokenFinder::new()
        .find(&mut binary.as_bytes(), false, &mut |_, _| found += 1)
        .unwrap();
    assert_eq!((scanned, found), (Scanned::Text, 1));
    // Past the first 8000 bytes a NUL changes nothing, as for git.
    let late = format!("{}\0{token}", "x".repeat(BINARY_SNIFF));
    let mut found = 0;
    let scanned = TokenFinder::new()
        .find(&mut late.as_bytes(), true, &mut |_, _| found += 1)
        .unwrap();
    assert_eq!((scanned, found), (Scanned::Text, 1));
}

/// A reader that yields `data`, then fails.
struct FailingReader<'a> {
    data: &'a [u8],
}

impl Read for FailingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.is_empty() {
            return Err(io::Error::other("the disk went away"));
        }
        let n = self.data.len().min(buf.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn store_with_tokens() -> (Sqlite, Token, Token, Token) {
    let store = crate::store::in_memory_for_test();
    project::create(&store, "demo", at(T0)).unwrap();
    let create = |expiration| {
        let request = TokenRequest {
            project: "demo",
            expiration,
            description: None,
        };
        token::create(&store, &request, at(T0), &mut rand::rng(), |_| Ok(()))
            .unwrap()
            .token
    };
    let (never, month, revoked) = (
        create(Expiration::Never),
        create(Expiration::Days30),
        create(Expiration::Days30),
    );
    token::revoke(&store, revoked.id().as_str(), at(T0)).unwrap();
    (store, never, month, revoked)
}

fn stdin_scan(text: &str, store: Option<&Sqlite>, now: DateTime<Utc>) -> Scan {
    scan(
        &[Source::Stdin],
        IgnoreFiles::Respect,
        None,
        &mut text.as_bytes(),
        store.map(|store| store as &dyn crate::store::Store),
        now,
    )
}

#[test]
fn each_token_gets_its_status_from_the_database() {
    let (store, never, month, revoked) = store_with_tokens();
    let never = never.reveal();
    let month = month.reveal();
    let revoked = revoked.reveal();
    // A well-formed token with a valid checksum that the database never held.
    let forged = with_checksum(&format!("aut_{}_{}", "0".repeat(12), "x".repeat(43)));
    let text = format!(
        "{}\n{}\n{}\n{forged}\n",
        never.expose(),
        month.expose(),
        revoked.expose()
    );
    let active = DatabaseStatus::Active {
        project: "demo".into(),
        replaced_by: None,
    };
    let statuses = |now| -> Vec<Option<DatabaseStatus>> {
        let result = stdin_scan(&text, Some(&store), now);
        assert!(result.status_error.is_none());
        result.findings.into_iter().map(|f| f.status).collect()
    };
    assert_eq!(
        statuses(at(T0 + 30 * DAY - 1)),
        [
            Some(active.clone()),
            Some(active.clone()),
            Some(DatabaseStatus::Unknown),
            Some(DatabaseStatus::Unknown)
        ]
    );
    // Expiry is judged by the time given.
    assert_eq!(
        statuses(at(T0 + 30 * DAY))[1],
        Some(DatabaseStatus::Expired {
            project: "demo".into()
        })
    );
    // Without a database there is no status at all.
    let without = stdin_scan(&text, None, at(T0));
    assert_eq!(without.findings.len(), 4);
    assert!(without.findings.iter().all(|f| f.status.is_none()));
}

#[test]
fn a_wrong_secret_under_a_real_id_is_unknown() {
    let (store, never, _, _) = store_with_tokens();
    let real = never.reveal();
    let wrong = with_checksum(&format!("aut_{}_{}", never.id(), "x".repeat(43)));
    let text = format!("{wrong} {}", real.expose());
    let result = stdin_scan(&text, Some(&store), at(T0));
    let statuses: Vec<_> = result.findings.iter().map(|f| f.status.clone()).collect();
    assert_eq!(
        statuses,
        [
            Some(DatabaseStatus::Unknown),
            Some(DatabaseStatus::Active {
                project: "demo".into(),
                replaced_by: None,
            })
        ]
    );
}

#[test]
fn each_distinct_token_is_looked_up_once_and_no_use_is_recorded() {
    let (store, never, month, _) = store_with_tokens();
    let text = format!(
        "{0}\n{0}\n{1}\n{0}\n",
        never.reveal().expose(),
        month.reveal().expose()
    );
    let before = secret::verifications();
    let result = stdin_scan(&text, Some(&store), at(T0));
    assert_eq!(result.findings.len(), 4);
    assert_eq!(secret::verifications() - before, 2);
    for token in [&never, &month] {
        let row = store.token(token.id().as_str()).unwrap().unwrap();
        assert_eq!(row.last_used_at, None, "scan must not record a use");
    }
}

#[test]
fn a_stream_that_fails_keeps_what_was_found_before() {
    let token = token_text(1);
    let text = format!("{token}\n");
    let mut reader = FailingReader {
        data: text.as_bytes(),
    };
    let result = scan(
        &[Source::Stdin],
        IgnoreFiles::Respect,
        None,
        &mut reader,
        None,
        at(T0),
    );
    assert_eq!(result.findings.len(), 1);
    assert_eq!(
        result.unreadable,
        [Unreadable {
            source: Source::Stdin,
            reason: "the disk went away".into()
        }]
    );
}

#[test]
fn findings_are_sorted_and_a_file_walked_twice_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (token_text(1), token_text(2));
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/z.txt"), format!("{b}\n{a}\n")).unwrap();
    std::fs::write(dir.path().join("a.txt"), format!("x{a}")).unwrap();
    let root = dir.path().to_owned();
    let sub = root.join("sub");
    let result = scan(
        &[Source::Path(sub.clone()), Source::Path(root.clone())],
        IgnoreFiles::Respect,
        None,
        &mut io::empty(),
        None,
        at(T0),
    );
    let got: Vec<(PathBuf, u64, u64, String)> = result
        .findings
        .iter()
        .map(|f| match &f.source {
            Source::Path(path) => (
                path.clone(),
                f.position.line,
                f.position.column,
                f.id.to_string(),
            ),
            Source::Stdin => panic!("no stdin given"),
        })
        .collect();
    assert_eq!(
        got,
        [
            (root.join("a.txt"), 1, 2, id(&a)),
            (sub.join("z.txt"), 1, 1, id(&b)),
            (sub.join("z.txt"), 2, 1, id(&a)),
        ]
    );
    assert!(result.unreadable.is_empty() && result.warnings.is_empty());
}

#[test]
fn a_missing_path_is_unreadable_and_the_others_are_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let token = token_text(1);
    std::fs::write(dir.path().join("a.txt"), &token).unwrap();
    let missing = dir.path().join("missing");
    let result = scan(
        &[
            Source::Path(missing.clone()),
            Source::Path(dir.path().join("a.txt")),
        ],
        IgnoreFiles::Respect,
        None,
        &mut io::empty(),
        None,
        at(T0),
    );
    assert_eq!(result.findings.len(), 1);
    assert_eq!(result.unreadable.len(), 1);
    assert_eq!(result.unreadable[0].source, Source::Path(missing));
    assert!(
        result.unreadable[0].reason.contains("No such file"),
        "{:?}",
        result.unreadable
    );
}

#[test]
fn made_up_tokens_cost_no_argon2_verification() {
    let (store, never, _, _) = store_with_tokens();
    let mut text: String = (1..=200).map(|n| token_text(n) + "\n").collect();
    text.push_str(never.reveal().expose());
    let before = secret::verifications();
    let result = stdin_scan(&text, Some(&store), at(T0));
    assert_eq!(result.findings.len(), 201);
    assert_eq!(secret::verifications() - before, 1, "only the real token's");
    assert!(
        result.findings[..200]
            .iter()
            .all(|f| f.status == Some(DatabaseStatus::Unknown))
    );
    assert!(matches!(
        result.findings[200].status,
        Some(DatabaseStatus::Active { .. })
    ));
}

/// `text` as UTF-16 with its byte order mark.
fn utf16(text: &str, order: ByteOrder) -> Vec<u8> {
    let mut bytes = match order {
        ByteOrder::Little => vec![0xFF, 0xFE],
        ByteOrder::Big => vec![0xFE, 0xFF],
    };
    for unit in text.encode_utf16() {
        bytes.extend(match order {
            ByteOrder::Little => unit.to_le_bytes(),
            ByteOrder::Big => unit.to_be_bytes(),
        });
    }
    bytes
}

/// (line, column, id) of each token found in a file holding `bytes`, and whether it was
/// binary, with a walk's rule (`skip_binary`).
fn found_in_file(bytes: &[u8]) -> (Scanned, Vec<(u64, u64, String)>) {
    let mut file = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut file, bytes).unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    let mut found = Vec::new();
    let scanned = TokenFinder::with_chunk(100)
        .find_in_file(&mut file, true, &mut |position, token| {
            found.push((position.line, position.column, token.id().to_string()));
        })
        .unwrap();
    (scanned, found)
}

#[test]
fn a_utf16_file_with_a_byte_order_mark_is_scanned_in_either_order() {
    let (a, b) = (token_text(1), token_text(2));
    // Columns count code units after the mark: é is one, 🚀 two (a surrogate pair). The text
    // spans several 100-byte chunks.
    let text = format!(
        "é🚀 {a}\r\nnot a token: {}\n{}{b}",
        &b[..60],
        " ".repeat(150)
    );
    for order in [ByteOrder::Little, ByteOrder::Big] {
        assert_eq!(
            found_in_file(&utf16(&text, order)),
            (Scanned::Text, vec![(1, 5, id(&a)), (3, 151, id(&b))]),
            "{order:?}"
        );
    }
    // Without its mark, UTF-16 is bytes: binary to a walk.
    assert_eq!(
        found_in_file(&utf16(&text, ByteOrder::Little)[2..]),
        (Scanned::Binary, vec![])
    );
}

#[test]
fn a_file_that_only_starts_like_utf16_is_still_scanned_as_bytes() {
    let token = token_text(1);
    let mut bytes = b"\xff\xfe ".to_vec();
    bytes.extend_from_slice(token.as_bytes());
    assert_eq!(
        found_in_file(&bytes),
        (Scanned::Text, vec![(1, 4, id(&token))])
    );
}

#[test]
fn a_utf16_file_is_binary_only_with_a_nul_character() {
    let token = token_text(1);
    let (scanned, found) = found_in_file(&utf16(&format!("\0{token}"), ByteOrder::Big));
    assert_eq!((scanned, found.len()), (Scanned::Binary, 0));
    // An odd byte at the end is half a unit, and no character.
    let mut odd = utf16(&token, ByteOrder::Little);
    odd.push(b'x');
    assert_eq!(
        found_in_file(&odd),
        (Scanned::Text, vec![(1, 1, id(&token))])
    );
}

/// A well-formed token with `token`'s id and a made-up secret drawn from `n`.
fn same_id(token: &Token, n: u32) -> String {
    with_checksum(&format!("aut_{}_{:0>43}", token.id(), format!("Forged{n}")))
}

/// The tokens in `text`, as a scan finds them before asking the database.
fn found_tokens(text: &str) -> Vec<Found> {
    let mut found = Vec::new();
    TokenFinder::new()
        .find(&mut text.as_bytes(), false, &mut |position, token| {
            found.push(Found {
                source: Source::Stdin,
                position,
                token,
            })
        })
        .unwrap();
    found
}

#[test]
fn forged_secrets_for_a_real_id_cost_a_bounded_number_of_checks() {
    let (store, never, month, _) = store_with_tokens();
    // 40 forgeries of `never`'s id, then `never` itself, then `month`, then `never` again.
    let mut text: String = (0..40).map(|n| same_id(&never, n) + "\n").collect();
    for token in [&never, &month, &never] {
        text.push_str(token.reveal().expose());
        text.push('\n');
    }
    let found = found_tokens(&text);
    let before = secret::verifications();
    let statuses = statuses_within(&store, &found, at(T0), 20, 4).unwrap();
    // 4 wrong secrets for `never`'s id are checked, then no more of that id; `month` is.
    assert_eq!(secret::verifications() - before, 5);
    assert!(statuses[..4].iter().all(|s| *s == DatabaseStatus::Unknown));
    assert!(
        statuses[4..41]
            .iter()
            .all(|s| *s == DatabaseStatus::Unchecked)
    );
    assert!(matches!(statuses[41], DatabaseStatus::Active { .. }));
    assert_eq!(
        statuses[42],
        DatabaseStatus::Unchecked,
        "the same token, the same answer"
    );
}

#[test]
fn once_a_secret_matches_its_id_the_others_cost_nothing() {
    let (store, never, _, _) = store_with_tokens();
    let mut text = format!("{}\n", never.reveal().expose());
    text.extend((0..40).map(|n| same_id(&never, n) + "\n"));
    let found = found_tokens(&text);
    let before = secret::verifications();
    let statuses = statuses(&store, &found, at(T0)).unwrap();
    assert_eq!(secret::verifications() - before, 1);
    assert!(matches!(statuses[0], DatabaseStatus::Active { .. }));
    assert!(statuses[1..].iter().all(|s| *s == DatabaseStatus::Unknown));
}

#[test]
fn the_checks_of_one_scan_are_capped_across_ids() {
    let (store, never, month, revoked) = store_with_tokens();
    let text: String = [&never, &revoked, &month]
        .iter()
        .map(|token| same_id(token, 1) + "\n" + token.reveal().expose() + "\n")
        .collect();
    let found = found_tokens(&text);
    let before = secret::verifications();
    let statuses = statuses_within(&store, &found, at(T0), 3, 16).unwrap();
    // The revoked id is no longer in the database: no check, unknown.
    assert_eq!(secret::verifications() - before, 3);
    assert_eq!(statuses[0], DatabaseStatus::Unknown);
    assert!(matches!(statuses[1], DatabaseStatus::Active { .. }));
    assert_eq!(
        statuses[2..4],
        [DatabaseStatus::Unknown, DatabaseStatus::Unknown]
    );
    assert_eq!(statuses[4], DatabaseStatus::Unknown);
    assert_eq!(statuses[5], DatabaseStatus::Unchecked);
}
