//! Hostile input, table-driven: each case is data (arguments, stdin or environment, how the
//! database path is set up, the documented exit code and output shape) and a test of its own,
//! named by the case (`cargo test --test cli hostile::verify_a_1_mib_line`). Every case also
//! asserts what must hold for any input: no panic, no hang, no raw terminal control characters
//! and no secret in the output, and no change to the database but the one a valid command
//! documents. One more test holds the table as a whole to the counts the README states.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::OpenFlags;
use tempfile::TempDir;

use crate::common::*;

/// How long one command may take before it counts as hung: a guard, not a timing (tighter
/// than common's, for these commands do little).
const CASE_GUARD: Duration = Duration::from_secs(20);

/// The endless-input case writes up to this much.
const STREAM_LEN: usize = 100 << 20;

/// Written behind autheona's back, to see that no output path shows them raw.
const EVIL_NAME: &str = "evil\u{1b}]0;pwned\u{7}\u{202e}gnp";
const EVIL_DESCRIPTION: &str = "\u{1b}[2J\u{1b}[31mred\u{7}\u{202e}txt.exe";
const EVIL_ID: &str = "EviLEviLEviL";

const SQL: &str = "'; DROP TABLE tokens; --";

/// Where the command's database is, and what is in it before the command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Db {
    /// Project `demo` with one real token, made by autheona.
    Demo,
    /// `Demo`, then, behind autheona's back: the project renamed to [`EVIL_NAME`], the token's
    /// description set to [`EVIL_DESCRIPTION`] (the immutability trigger dropped or disabled for
    /// that and put back), and a second token row [`EVIL_ID`] inserted with the same
    /// description.
    Evil,
    /// A directory where the file should be.
    Directory,
    /// A file in directories that do not exist.
    MissingParent,
    /// A text file.
    NotSqlite,
    ZeroLength,
    /// The first 1 KiB + 100 bytes of a real database.
    Truncated,
    /// A real database with `PRAGMA user_version = 99`.
    Newer,
    /// The unprivileged user's own database, made read-only: `chmod a-w` (mode 0400); its
    /// `-wal` and `-shm` files are there, as autheona leaves them, and writable.
    ReadOnly,
    /// As `ReadOnly`, but the log was checkpointed away (no `-wal` or `-shm` file, as after a
    /// backup is restored) and the directory is read-only too (mode 0555).
    ReadOnlyInReadOnlyDir,
    /// As `ReadOnly`, but with no `-wal` or `-shm` file, in a directory the user may write.
    ReadOnlyNoLog,
    /// `ReadOnlyNoLog`, then a `verify` by the user while the file is read-only, then write
    /// permission given back (`chmod u+w`, mode 0600).
    WritableAgain,
    /// Another user's database made readable to all (mode 0444); its `-wal` and `-shm` files
    /// keep the mode autheona gives them, 0600, so they are unreadable.
    OthersPrivateLog,
    /// No file yet, in a directory the unprivileged user may not write (mode 0555).
    NoWriteDir,
}

impl Db {
    /// What is set up is an SQLite file (or what stands where it should be): the case runs in
    /// the SQLite pass only. `Demo` and `Evil` are rows, on either store.
    fn sqlite_only(self) -> bool {
        !matches!(self, Db::Demo | Db::Evil)
    }

    /// Cases about permissions run as an unprivileged user: root ignores file modes.
    fn unprivileged(self) -> bool {
        matches!(
            self,
            Db::ReadOnly
                | Db::ReadOnlyInReadOnlyDir
                | Db::ReadOnlyNoLog
                | Db::WritableAgain
                | Db::OthersPrivateLog
                | Db::NoWriteDir
        )
    }
}

/// What a command gets on stdin, or in `AUTHEONA_TOKEN`.
#[derive(Clone, Copy)]
enum Input {
    /// `/dev/null`.
    Null,
    Bytes(&'static [u8]),
    /// Made from the case's real token.
    Token(fn(&str) -> Vec<u8>),
    /// These bytes (made from the real token), then `A`s up to [`STREAM_LEN`], written from a
    /// thread until the pipe breaks.
    Stream(fn(&str) -> Vec<u8>),
}

/// What stdout and stderr must look like.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// Nothing on stdout; on stderr one `error: ` line containing the text, optionally followed
    /// by one `hint: ` line, and nothing else.
    Error(&'static str),
    /// `verify`: exactly `invalid: REASON` on stdout, nothing on stderr.
    Invalid(&'static str),
    /// `verify`: one `valid: token ID (project ...)` line on stdout, nothing on stderr.
    Valid,
    /// `verify --json`: `"valid": true` and the token's id, nothing on stderr.
    ValidJson,
    /// `verify`: the valid line on stdout, one `warning: ` line containing the text on stderr.
    ValidWarning(&'static str),
    /// Every text appears on stdout (`{id}` is the real token's id); nothing on stderr.
    Lists(&'static [&'static str]),
    /// stdout is a JSON array with an element whose `key` is exactly `value`; nothing on stderr.
    ListsJson(&'static str, &'static str),
    /// Nothing at all on stderr (stdout is a closed pipe).
    Quiet,
    /// Nothing on stdout; on stderr a `hint: ` line and no error or warning.
    EmptyWithHint,
    /// `token create`: exactly one new token on stdout; status lines on stderr, no error.
    NewToken,
    /// `project create`: nothing on stdout; `Created project` on stderr, no error.
    CreatedProject,
}

/// What must have happened to the database.
#[derive(Debug, Clone, Copy)]
enum Check {
    /// Nothing: every row of `projects` and `tokens`, the schema, `user_version` and
    /// `application_id` are the same (read with rusqlite from a copy of the files; on
    /// PostgreSQL the rows, schema objects and schema version, through a connection).
    Rows,
    /// Nothing, byte for byte: the file and its `-wal` (and whether a `-shm` exists), or the
    /// directory's entries, or its absence; and the entries of the directory holding it.
    Bytes,
    /// Exactly one new token, in the real token's project, with this description.
    NewToken(Option<&'static str>),
    /// Exactly one thing: the real token's last-used time, now set.
    LastUsed,
    /// A new database, holding exactly one project with this name and no tokens.
    NewDatabase(&'static str),
}

struct Case {
    name: &'static str,
    db: Db,
    /// `{id}` is the real token's id, `{token}` the real token, `{invalid-utf8}` a name that
    /// is not UTF-8.
    args: Vec<String>,
    /// Give the path with `--db` instead of `AUTHEONA_DB`.
    db_flag: bool,
    stdin: Input,
    /// `AUTHEONA_TOKEN`, when set.
    token_env: Option<Input>,
    /// stdout is a pipe whose reader has gone.
    stdout_closed: bool,
    code: i32,
    shape: Shape,
    check: Check,
}

impl Case {
    fn new(name: &'static str, db: Db, args: &[&str]) -> Case {
        Case {
            name,
            db,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            db_flag: false,
            stdin: Input::Null,
            token_env: None,
            stdout_closed: false,
            code: 0,
            shape: Shape::Quiet,
            check: Check::Rows,
        }
    }

    fn stdin(mut self, input: Input) -> Case {
        self.stdin = input;
        self
    }

    fn token_env(mut self, input: Input) -> Case {
        self.token_env = Some(input);
        self
    }

    fn db_flag(mut self) -> Case {
        self.db_flag = true;
        self
    }

    fn stdout_closed(mut self) -> Case {
        self.stdout_closed = true;
        self
    }

    fn expect(mut self, code: i32, shape: Shape) -> Case {
        self.code = code;
        self.shape = shape;
        self
    }

    fn check(mut self, check: Check) -> Case {
        self.check = check;
        self
    }
}

/// `verify` with the token on stdin, made from the real one.
fn verify_stdin(name: &'static str, input: fn(&str) -> Vec<u8>, reason: &'static str) -> Case {
    Case::new(name, Db::Demo, &["verify"])
        .stdin(Input::Token(input))
        .expect(1, Shape::Invalid(reason))
}

/// `verify` with the token in `AUTHEONA_TOKEN`.
fn verify_env(name: &'static str, input: fn(&str) -> Vec<u8>, reason: &'static str) -> Case {
    Case::new(name, Db::Demo, &["verify"])
        .token_env(Input::Token(input))
        .expect(1, Shape::Invalid(reason))
}

/// `project create NAME`, refused by the name rule.
fn bad_name(case: &'static str, name: &str, error: &'static str) -> Case {
    Case::new(case, Db::Demo, &["project", "create", name]).expect(2, Shape::Error(error))
}

/// `token create -p demo -e 30 -d DESCRIPTION`.
fn with_description(case: &'static str, description: &str) -> Case {
    Case::new(case, Db::Demo, &create_described_args(description))
}

/// A description refused as a usage error.
fn bad_description(case: &'static str, description: &str, error: &'static str) -> Case {
    with_description(case, description).expect(2, Shape::Error(error))
}

/// A description accepted and kept verbatim (empty means none).
fn good_description(case: &'static str, description: &'static str) -> Case {
    let kept = (!description.is_empty()).then_some(description);
    with_description(case, description)
        .expect(0, Shape::NewToken)
        .check(Check::NewToken(kept))
}

fn with_line_end(token: &str, end: &str) -> Vec<u8> {
    format!("{token}{end}").into_bytes()
}

/// `token` with one character replaced.
fn replaced(token: &str, at: usize, with: &str) -> Vec<u8> {
    let mut out = token[..at].to_owned();
    out.push_str(with);
    out.push_str(&token[at + 1..]);
    out.push('\n');
    out.into_bytes()
}

/// A different base62 character at `at`: the checksum no longer matches.
fn flipped(token: &str, at: usize) -> Vec<u8> {
    let c = token.as_bytes()[at];
    let other = if c == b'x' { "y" } else { "x" };
    replaced(token, at, other)
}

/// Every letter, digit and `_` as its fullwidth form (U+FF01..), which NFKC maps back.
fn fullwidth(token: &str) -> Vec<u8> {
    let wide: String = token
        .chars()
        .map(|c| char::from_u32(c as u32 - 0x21 + 0xff01).unwrap())
        .collect();
    format!("{wide}\n").into_bytes()
}

// The cases name shapes bare: `Error("...")`, `Invalid("...")`.
use Shape::*;

/// Each `test => case` becomes the test `test`, which runs the case, and an entry of
/// `cases()`, the whole table, which [`the_readme_counts_the_cases`] checks.
macro_rules! hostile_cases {
    ($($test:ident => $case:expr,)*) => {
        fn cases() -> Vec<Case> {
            vec![$($case,)*]
        }

        $(
            #[test]
            fn $test() {
                run_case($case);
            }
        )*
    };
}

hostile_cases! {
    // --- verify: the token on stdin ---
    verify_empty_stdin => verify_stdin("verify: empty stdin", |_| Vec::new(), "malformed"),
    verify_stdin_is_dev_null => Case::new("verify: stdin is /dev/null", Db::Demo, &["verify"])
        .expect(1, Invalid("malformed")),
    verify_only_whitespace => verify_stdin(
        "verify: only whitespace",
        |_| b" \t \r\n".to_vec(),
        "malformed",
    ),
    verify_wrong_prefix => verify_stdin(
        "verify: wrong prefix",
        |t| format!("tok_{}\n", &t[4..]).into_bytes(),
        "malformed",
    ),
    verify_one_character_short => verify_stdin(
        "verify: one character short",
        |t| with_line_end(&t[..65], "\n"),
        "malformed",
    ),
    verify_one_character_more => verify_stdin(
        "verify: one character more",
        |t| with_line_end(t, "A\n"),
        "malformed",
    ),
    verify_a_flipped_character_in_the_secret => verify_stdin(
        "verify: a flipped character in the secret (checksum fails)",
        |t| flipped(t, 30),
        "malformed",
    ),
    verify_valid_checksum_unknown_id => verify_stdin(
        "verify: valid checksum, unknown id",
        |t| with_line_end(&forge("ZZZZZZZZZZZZ", secret_of(t)), "\n"),
        "unknown",
    ),
    verify_right_id_wrong_secret => verify_stdin(
        "verify: right id, wrong secret",
        |t| with_line_end(&forge(id_of(t), &"b".repeat(43)), "\n"),
        "unknown",
    ),
    verify_a_1_mib_line => verify_stdin(
        "verify: a 1 MiB line",
        |_| {
            let mut line = vec![b'A'; 1 << 20];
            line.push(b'\n');
            line
        },
        "malformed",
    ),
    verify_the_token_after_a_1_mib_line => verify_stdin(
        "verify: the token after a 1 MiB line",
        |t| {
            let mut input = vec![b'A'; 1 << 20];
            input.extend(with_line_end(t, "\n"));
            input
        },
        "malformed",
    ),
    verify_a_100_mib_stream_without_a_newline => Case::new(
        "verify: a 100 MiB stream without a newline",
        Db::Demo,
        &["verify"],
    )
    .stdin(Input::Stream(|_| Vec::new()))
    .expect(1, Invalid("malformed")),
    verify_the_token_then_100_mib_more => Case::new(
        "verify: the token, then 100 MiB more (only the first line counts)",
        Db::Demo,
        &["verify"],
    )
    .stdin(Input::Stream(|t| with_line_end(t, "\n")))
    .expect(0, Valid)
    .check(Check::LastUsed),
    verify_only_nul_bytes => verify_stdin("verify: only NUL bytes", |_| vec![0; 66], "malformed"),
    verify_a_nul_byte_in_the_token => verify_stdin(
        "verify: a NUL byte in the token",
        |t| replaced(t, 30, "\0"),
        "malformed",
    ),
    verify_a_nul_byte_after_the_token => verify_stdin(
        "verify: a NUL byte after the token",
        |t| with_line_end(t, "\0\n"),
        "malformed",
    ),
    verify_invalid_utf8_in_the_token => verify_stdin(
        "verify: invalid UTF-8 in the token",
        |t| {
            let mut bytes = with_line_end(t, "\n");
            bytes[30] = 0xff;
            bytes
        },
        "malformed",
    ),
    verify_cyrillic_a_in_place_of_a_character => verify_stdin(
        "verify: Cyrillic a in place of a character",
        |t| replaced(t, 30, "\u{430}"),
        "malformed",
    ),
    verify_a_look_alike_across_the_ids_end => verify_stdin(
        "verify: a two-byte look-alike across the id's end, same byte length",
        |t| {
            let mut out = t[..15].to_owned();
            out.push('\u{430}');
            out.push_str(&t[17..]);
            assert_eq!(out.len(), 66);
            with_line_end(&out, "\n")
        },
        "malformed",
    ),
    verify_a_fullwidth_digit_ending_the_checksum => verify_stdin(
        "verify: a fullwidth digit ending the checksum, same byte length",
        |t| {
            let out = format!("{}\u{ff11}", &t[..63]);
            assert_eq!(out.len(), 66);
            with_line_end(&out, "\n")
        },
        "malformed",
    ),
    verify_the_whole_token_in_fullwidth_characters => verify_stdin(
        "verify: the whole token in fullwidth characters",
        fullwidth,
        "malformed",
    ),
    verify_a_byte_order_mark_before_the_token_is_stripped => Case::new(
        "verify: a byte-order mark before the token is stripped (valid)",
        Db::Demo,
        &["verify"],
    )
    .stdin(Input::Token(|t| {
        with_line_end(&format!("\u{feff}{t}"), "\n")
    }))
    .expect(0, Valid)
    .check(Check::LastUsed),
    verify_a_byte_order_mark_inside_the_token => verify_stdin(
        "verify: a byte-order mark inside the token",
        |t| with_line_end(&format!("{}\u{feff}{}", &t[..20], &t[20..]), "\n"),
        "malformed",
    ),
    verify_the_token_twice_on_one_line => verify_stdin(
        "verify: the token twice on one line",
        |t| format!("{t} {t}\n").into_bytes(),
        "malformed",
    ),
    verify_the_token_twice_run_together => verify_stdin(
        "verify: the token twice, run together",
        |t| format!("{t}{t}\n").into_bytes(),
        "malformed",
    ),
    verify_a_crlf_line_ending_is_trimmed => Case::new(
        "verify: CRLF line ending is trimmed (valid)",
        Db::Demo,
        &["verify"],
    )
    .stdin(Input::Token(|t| with_line_end(t, "\r\n")))
    .expect(0, Valid)
    .check(Check::LastUsed),
    verify_the_token_on_the_command_line_is_refused_unechoed => Case::new(
        "verify: the token on the command line is refused unechoed",
        Db::Demo,
        &["verify", "{token}"],
    )
    .expect(2, Error("does not take the token as an argument")),
    // --- verify: the token in AUTHEONA_TOKEN ---
    verify_env_empty => verify_env("verify env: empty", |_| Vec::new(), "malformed"),
    verify_env_only_whitespace => verify_env(
        "verify env: only whitespace",
        |_| b" \t ".to_vec(),
        "malformed",
    ),
    verify_env_right_id_wrong_secret => verify_env(
        "verify env: right id, wrong secret",
        |t| forge(id_of(t), &"c".repeat(43)).into_bytes(),
        "unknown",
    ),
    verify_env_invalid_utf8 => verify_env(
        "verify env: invalid UTF-8",
        |t| {
            let mut bytes = t.as_bytes().to_vec();
            bytes[20] = 0xfe;
            bytes
        },
        "malformed",
    ),
    verify_env_cyrillic_a_in_place_of_a_character => verify_env(
        "verify env: Cyrillic a in place of a character",
        |t| replaced(t, 40, "\u{430}").trim_ascii_end().to_vec(),
        "malformed",
    ),
    verify_env_the_token_twice => verify_env(
        "verify env: the token twice",
        |t| format!("{t} {t}").into_bytes(),
        "malformed",
    ),
    verify_env_garbage_there_wins_over_a_valid_token_on_stdin => Case::new(
        "verify env: garbage there wins over a valid token on stdin",
        Db::Demo,
        &["verify"],
    )
    .token_env(Input::Bytes(b"garbage"))
    .stdin(Input::Token(|t| with_line_end(t, "\n")))
    .expect(1, Invalid("malformed")),
    // --- project names ---
    name_empty => bad_name("name: empty", "", "empty"),
    name_65_characters => bad_name("name: 65 characters", &"a".repeat(65), "65 characters"),
    name_dot_dot_x => bad_name("name: ../x", "../x", "invalid project name"),
    name_spaces => bad_name("name: spaces", "my project", "invalid project name"),
    name_control_characters => bad_name(
        "name: control characters",
        "a\u{7}b\tc",
        "invalid project name",
    ),
    name_ansi_escape_sequence => bad_name(
        "name: ANSI escape sequence",
        "red\u{1b}[31mname",
        "invalid project name",
    ),
    name_right_to_left_override => bad_name(
        "name: right-to-left override",
        "abc\u{202e}txt",
        "invalid project name",
    ),
    name_emoji => bad_name("name: emoji", "rocket\u{1f680}", "invalid project name"),
    name_sql => bad_name("name: SQL", SQL, "invalid project name"),
    name_starts_with_a_hyphen => bad_name("name: starts with a hyphen", "-x", "unexpected argument"),
    name_not_utf8 => bad_name("name: not UTF-8", "{invalid-utf8}", "UTF-8"),
    name_a_pasted_token_is_not_echoed => bad_name(
        "name: a pasted token is not echoed",
        "{token}",
        "66 characters",
    ),
    // --- descriptions ---
    description_empty_means_none => good_description("description: empty means none", ""),
    description_201_characters => bad_description(
        "description: 201 characters",
        &"d".repeat(201),
        "201 characters",
    ),
    description_dot_dot_x_is_text => good_description("description: ../x is text", "../x"),
    description_spaces_are_kept_verbatim => good_description("description: spaces are kept verbatim", "  two  spaces  "),
    description_a_newline => bad_description("description: a newline", "one\ntwo", "U+000A"),
    description_a_tab_and_a_bell => bad_description("description: a tab and a bell", "a\tb\u{7}", "U+0009"),
    description_ansi_escape_sequence => bad_description(
        "description: ANSI escape sequence",
        "\u{1b}[31mred",
        "U+001B",
    ),
    description_right_to_left_override => bad_description(
        "description: right-to-left override",
        "abc\u{202e}txt",
        "U+202E",
    ),
    description_zero_width_space => bad_description("description: zero-width space", "a\u{200b}b", "U+200B"),
    description_emoji => good_description(
        "description: emoji",
        "\u{1f680} deploy \u{1f469}\u{200d}\u{1f4bb} bot",
    ),
    description_sql_is_kept_verbatim => good_description("description: SQL is kept verbatim, tables intact", SQL),
    // --- the database path ---
    db_a_directory_token_list => Case::new(
        "db: a directory (token list)",
        Db::Directory,
        &["token", "list"],
    )
    .expect(3, Error("is a directory"))
    .check(Check::Bytes),
    db_a_directory_verify_db_flag => Case::new("db: a directory (verify, --db)", Db::Directory, &["verify"])
        .db_flag()
        .stdin(Input::Token(|t| with_line_end(t, "\n")))
        .expect(3, Error("is a directory"))
        .check(Check::Bytes),
    db_a_directory_project_create => Case::new(
        "db: a directory (project create)",
        Db::Directory,
        &["project", "create", "demo"],
    )
    .expect(3, Error("is a directory"))
    .check(Check::Bytes),
    db_missing_parent_directory_token_list => Case::new(
        "db: missing parent directory (token list)",
        Db::MissingParent,
        &["token", "list"],
    )
    .expect(0, EmptyWithHint)
    .check(Check::Bytes),
    db_missing_parent_directory_verify => Case::new(
        "db: missing parent directory (verify)",
        Db::MissingParent,
        &["verify"],
    )
    .stdin(Input::Token(|t| with_line_end(t, "\n")))
    .expect(3, Error("no database"))
    .check(Check::Bytes),
    db_missing_parent_directory_token_create_db_flag => Case::new(
        "db: missing parent directory (token create, --db)",
        Db::MissingParent,
        &["token", "create", "-p", "demo", "-e", "30"],
    )
    .db_flag()
    .expect(3, Error("no database"))
    .check(Check::Bytes),
    db_missing_parent_directory_project_create_makes_it => Case::new(
        "db: missing parent directory (project create makes it)",
        Db::MissingParent,
        &["project", "create", "fresh"],
    )
    .expect(0, CreatedProject)
    .check(Check::NewDatabase("fresh")),
    db_not_sqlite_token_list => Case::new(
        "db: not SQLite (token list)",
        Db::NotSqlite,
        &["token", "list"],
    )
    .expect(3, Error("not an autheona database"))
    .check(Check::Bytes),
    db_not_sqlite_verify => Case::new("db: not SQLite (verify)", Db::NotSqlite, &["verify"])
        .stdin(Input::Token(|t| with_line_end(t, "\n")))
        .expect(3, Error("not an autheona database"))
        .check(Check::Bytes),
    db_zero_length_file_token_list => Case::new(
        "db: zero-length file (token list)",
        Db::ZeroLength,
        &["token", "list"],
    )
    .expect(3, Error("is empty"))
    .check(Check::Bytes),
    db_zero_length_file_verify_db_flag => Case::new(
        "db: zero-length file (verify, --db)",
        Db::ZeroLength,
        &["verify"],
    )
    .db_flag()
    .stdin(Input::Token(|t| with_line_end(t, "\n")))
    .expect(3, Error("is empty"))
    .check(Check::Bytes),
    db_truncated_token_list => Case::new(
        "db: truncated (token list)",
        Db::Truncated,
        &["token", "list"],
    )
    .expect(3, Error("truncated.db"))
    .check(Check::Bytes),
    db_truncated_verify => Case::new("db: truncated (verify)", Db::Truncated, &["verify"])
        .stdin(Input::Token(|t| with_line_end(t, "\n")))
        .expect(3, Error("truncated.db"))
        .check(Check::Bytes),
    db_from_a_newer_version_token_list => Case::new(
        "db: from a newer version (token list)",
        Db::Newer,
        &["token", "list"],
    )
    .expect(3, Error("newer autheona"))
    .check(Check::Bytes),
    db_from_a_newer_version_verify => Case::new("db: from a newer version (verify)", Db::Newer, &["verify"])
        .stdin(Input::Token(|t| with_line_end(t, "\n")))
        .expect(3, Error("newer autheona"))
        .check(Check::Bytes),
    db_from_a_newer_version_token_create => Case::new(
        "db: from a newer version (token create)",
        Db::Newer,
        &["token", "create", "-p", "demo", "-e", "30"],
    )
    .expect(3, Error("newer autheona"))
    .check(Check::Bytes),
    db_read_only_file_token_list => Case::new(
        "db: read-only file (token list)",
        Db::ReadOnly,
        &["token", "list"],
    )
    .expect(0, Lists(&["{id}"]))
    .check(Check::Bytes),
    db_read_only_file_verify_warns_still_valid => Case::new(
        "db: read-only file (verify warns, still valid)",
        Db::ReadOnly,
        &["verify"],
    )
    .stdin(Input::Token(|t| with_line_end(t, "\n")))
    .expect(0, ValidWarning("not recorded"))
    .check(Check::Bytes),
    db_read_only_file_token_create => Case::new(
        "db: read-only file (token create)",
        Db::ReadOnly,
        &["token", "create", "-p", "demo", "-e", "30"],
    )
    .expect(3, Error("read-only"))
    .check(Check::Bytes),
    db_read_only_in_a_read_only_directory_token_list => Case::new(
        "db: read-only file in a read-only directory, no -wal or -shm (token list)",
        Db::ReadOnlyInReadOnlyDir,
        &["token", "list"],
    )
    .expect(0, Lists(&["{id}"]))
    .check(Check::Bytes),
    db_read_only_in_a_read_only_directory_verify => Case::new(
        "db: read-only file in a read-only directory, no -wal or -shm (verify)",
        Db::ReadOnlyInReadOnlyDir,
        &["verify"],
    )
    .stdin(Input::Token(|t| with_line_end(t, "\n")))
    .expect(0, ValidWarning("not recorded"))
    .check(Check::Bytes),
    db_read_only_without_its_log_verify => Case::new(
        "db: read-only file, no -wal or -shm, writable directory (verify)",
        Db::ReadOnlyNoLog,
        &["verify"],
    )
    .stdin(Input::Token(|t| with_line_end(t, "\n")))
    .expect(0, ValidWarning("not recorded"))
    .check(Check::Rows),
    db_writable_again_after_a_read_only_verify_token_create => Case::new(
        "db: write permission given back after a read-only verify (token create)",
        Db::WritableAgain,
        &["token", "create", "-p", "demo", "-e", "30"],
    )
    .expect(0, NewToken)
    .check(Check::NewToken(None)),
    db_another_users_file_with_a_private_log_token_list => Case::new(
        "db: another user's file readable by all, its log private (token list)",
        Db::OthersPrivateLog,
        &["token", "list"],
    )
    .expect(3, Error("autheona.db"))
    .check(Check::Bytes),
    db_directory_without_write_permission_project_create => Case::new(
        "db: directory without write permission (project create)",
        Db::NoWriteDir,
        &["project", "create", "demo"],
    )
    .expect(3, Error("cannot create database"))
    .check(Check::Bytes),
    // --- the terminal ---
    no_terminal_token_create_without_flags => Case::new(
        "no terminal: token create without flags",
        Db::Demo,
        &["token", "create"],
    )
    .expect(2, Error("--project is required")),
    no_terminal_token_revoke_without_yes => Case::new(
        "no terminal: token revoke without --yes",
        Db::Demo,
        &["token", "revoke", "{id}"],
    )
    .expect(2, Error("there is no terminal to ask")),
    no_terminal_project_delete_without_yes => Case::new(
        "no terminal: project delete without --yes",
        Db::Demo,
        &["project", "delete", "demo"],
    )
    .expect(2, Error("there is no terminal to ask")),
    closed_stdout_token_create_keeps_no_token => Case::new(
        "closed stdout: token create keeps no token",
        Db::Demo,
        &["token", "create", "-p", "demo", "-e", "30"],
    )
    .stdout_closed()
    .expect(3, Error("it was not kept")),
    closed_stdout_token_list_ends_quietly => Case::new(
        "closed stdout: token list ends quietly",
        Db::Demo,
        &["token", "list"],
    )
    .stdout_closed()
    .expect(0, Quiet),
    token_revoke_a_pasted_token_is_refused_unechoed => Case::new(
        "token id: a pasted token is refused unechoed (token revoke)",
        Db::Demo,
        &["token", "revoke", "{token}", "--yes"],
    )
    .expect(2, Error("not a token id")),
    token_list_a_pasted_token_is_refused_unechoed => Case::new(
        "stray argument: a pasted token is refused unechoed (token list)",
        Db::Demo,
        &["token", "list", "{token}"],
    )
    .expect(2, Error("unexpected argument")),
    // --- text from the database on the terminal ---
    terminal_safety_token_list => Case::new("terminal safety: token list", Db::Evil, &["token", "list"])
        .expect(0, Lists(&[EVIL_ID, "{id}", "\\u{1b}[2J", "\\u{202e}"])),
    terminal_safety_token_list_json => Case::new(
        "terminal safety: token list --json",
        Db::Evil,
        &["token", "list", "--json"],
    )
    .expect(0, ListsJson("description", EVIL_DESCRIPTION)),
    terminal_safety_project_list => Case::new(
        "terminal safety: project list",
        Db::Evil,
        &["project", "list"],
    )
    .expect(0, Lists(&["evil\\u{1b}]0;pwned\\u{7}\\u{202e}gnp"])),
    terminal_safety_project_list_json => Case::new(
        "terminal safety: project list --json",
        Db::Evil,
        &["project", "list", "--json"],
    )
    .expect(0, ListsJson("name", EVIL_NAME)),
    terminal_safety_token_revokes_question_inserted_row => Case::new(
        "terminal safety: token revoke's question (inserted row)",
        Db::Evil,
        &["token", "revoke", EVIL_ID],
    )
    .expect(2, Error("Revoke token EviLEviLEviL")),
    terminal_safety_token_revokes_question_real_token => Case::new(
        "terminal safety: token revoke's question (real token)",
        Db::Evil,
        &["token", "revoke", "{id}"],
    )
    .expect(2, Error("Revoke token")),
    terminal_safety_token_list_p_error => Case::new(
        "terminal safety: the name in token list -p's error",
        Db::Evil,
        &["token", "list", "-p", EVIL_NAME],
    )
    .expect(2, Error("invalid project name")),
    terminal_safety_project_delete_error => Case::new(
        "terminal safety: the name in project delete's error",
        Db::Evil,
        &["project", "delete", EVIL_NAME, "--yes"],
    )
    .expect(2, Error("invalid project name")),
    terminal_safety_token_create_error => Case::new(
        "terminal safety: the name in token create's error",
        Db::Evil,
        &["token", "create", "-p", EVIL_NAME, "-e", "30"],
    )
    .expect(2, Error("invalid project name")),
    terminal_safety_verify_valid_line => Case::new(
        "terminal safety: verify's valid line",
        Db::Evil,
        &["verify"],
    )
    .stdin(Input::Token(|t| with_line_end(t, "\n")))
    .expect(0, Valid)
    .check(Check::LastUsed),
    terminal_safety_verify_json => Case::new(
        "terminal safety: verify --json",
        Db::Evil,
        &["verify", "--json"],
    )
    .stdin(Input::Token(|t| with_line_end(t, "\n")))
    .expect(0, ValidJson)
    .check(Check::LastUsed),
}

// ---------------------------------------------------------------------------------------------
// Setting up

/// One case's world: its own environment, the database path the command is given, and a real
/// token that must never show up in the output.
struct Fixture {
    env: TestEnv,
    db: PathBuf,
    token: String,
    /// For the unprivileged cases: a directory under /tmp that user can reach.
    shared: Option<TempDir>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Whatever a case made read-only, so that the directory can be removed.
        if let Some(shared) = &self.shared {
            let _ = std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o755));
        }
    }
}

/// Project `demo` and a token in it, made by autheona in the database at `db` (the test's own
/// store when `db` is [`TestEnv::db`]).
fn demo_database(env: &TestEnv, db: &Path) -> String {
    let mut token = None;
    for args in [
        &["project", "create", "demo"][..],
        &["token", "create", "-p", "demo", "-e", "30"],
    ] {
        let mut cmd = env.std_cmd();
        if db != env.db() {
            cmd.env("AUTHEONA_DB", db);
        }
        cmd.args(args);
        let out = output(cmd);
        assert!(out.status.success(), "setup {args:?}: {out:?}");
        token = printed_token(&out.stdout);
    }
    token.expect("setup: token create printed a token")
}

/// Copies the log into the database and closes, so that no -wal or -shm file is left.
fn checkpoint_away(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(conn);
    for suffix in ["-wal", "-shm"] {
        assert!(!sidecar(db, suffix).exists(), "{suffix} left after closing");
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Gives `paths` to the unprivileged user (a no-op when the tests do not run as root: the
/// files are then already that user's).
fn give_to_unprivileged(paths: &[PathBuf]) {
    if running_as_root() {
        for path in paths {
            std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).unwrap();
        }
    }
}

fn setup(db: Db) -> Fixture {
    let env = TestEnv::new();
    let mut fixture = Fixture {
        db: env.db().to_owned(),
        token: String::new(),
        shared: None,
        env,
    };
    if db.unprivileged() {
        let shared = tempfile::Builder::new()
            .prefix("autheona-hostile-")
            .tempdir_in("/tmp")
            .unwrap();
        set_mode(shared.path(), 0o755);
        let dir = shared.path().to_owned();
        fixture.db = dir.join("autheona.db");
        if db == Db::NoWriteDir {
            // The token lives in the usual place; this directory stays empty.
            fixture.token = demo_database(&fixture.env, fixture.env.db());
            set_mode(&dir, 0o555);
            fixture.shared = Some(shared);
            return fixture;
        }
        fixture.token = demo_database(&fixture.env, &fixture.db);
        let files: Vec<PathBuf> = ["", "-wal", "-shm"]
            .iter()
            .map(|suffix| sidecar(&fixture.db, suffix))
            .collect();
        match db {
            Db::ReadOnly => {
                give_to_unprivileged(&[&[dir][..], &files].concat());
                set_mode(&fixture.db, 0o400);
            }
            Db::ReadOnlyInReadOnlyDir => {
                checkpoint_away(&fixture.db);
                give_to_unprivileged(&[dir.clone(), fixture.db.clone()]);
                set_mode(&fixture.db, 0o400);
                set_mode(&dir, 0o555);
            }
            Db::ReadOnlyNoLog | Db::WritableAgain => {
                checkpoint_away(&fixture.db);
                give_to_unprivileged(&[dir.clone(), fixture.db.clone()]);
                set_mode(&fixture.db, 0o400);
                if db == Db::WritableAgain {
                    let mut verify = fixture.env.bare_std_cmd();
                    verify.env("AUTHEONA_DB", &fixture.db).arg("verify");
                    let mut verify = unprivileged(&verify);
                    verify.current_dir(&dir);
                    let out = Process::new(verify)
                        .stdin(Stdin::Bytes(with_line_end(&fixture.token, "\n")))
                        .run();
                    assert!(out.status.success(), "setup: read-only verify: {out:?}");
                    set_mode(&fixture.db, 0o600);
                }
            }
            Db::OthersPrivateLog => {
                set_mode(&fixture.db, 0o444);
                for file in &files[1..] {
                    assert_eq!(std::fs::metadata(file).unwrap().mode() & 0o777, 0o600);
                }
            }
            _ => unreachable!(),
        }
        fixture.shared = Some(shared);
        return fixture;
    }
    fixture.token = demo_database(&fixture.env, &fixture.db);
    let dir = fixture.env.dir().to_owned();
    match db {
        Db::Demo => {}
        Db::Evil => {
            let mut sql = fixture.env.sql();
            let (lift, restore) = match backend() {
                Backend::Sqlite => {
                    let trigger = sql
                        .value("SELECT sql FROM sqlite_schema WHERE name = 'tokens_are_immutable'")
                        .unwrap();
                    ("DROP TRIGGER tokens_are_immutable".to_owned(), trigger)
                }
                Backend::Postgres => (
                    "ALTER TABLE tokens DISABLE TRIGGER tokens_are_immutable".to_owned(),
                    "ALTER TABLE tokens ENABLE TRIGGER tokens_are_immutable".to_owned(),
                ),
            };
            sql.batch(&lift).unwrap();
            sql.execute("UPDATE projects SET name = $1", &[EVIL_NAME])
                .unwrap();
            sql.execute("UPDATE tokens SET description = $1", &[EVIL_DESCRIPTION])
                .unwrap();
            sql.execute(
                "INSERT INTO tokens (id, project_id, secret_hash, description, created_at)
                 SELECT $1, id, 'not a hash', $2, 1800000000 FROM projects",
                &[EVIL_ID, EVIL_DESCRIPTION],
            )
            .unwrap();
            sql.batch(&restore).unwrap();
        }
        Db::Directory => {
            fixture.db = dir.join("a-directory.db");
            std::fs::create_dir(&fixture.db).unwrap();
        }
        Db::MissingParent => fixture.db = dir.join("missing/deeper/autheona.db"),
        Db::NotSqlite => {
            fixture.db = dir.join("notes.db");
            std::fs::write(
                &fixture.db,
                b"just some notes, not a database\n".repeat(100),
            )
            .unwrap();
        }
        Db::ZeroLength => {
            fixture.db = dir.join("empty.db");
            std::fs::write(&fixture.db, b"").unwrap();
        }
        Db::Truncated => {
            checkpoint_away(fixture.env.db());
            let bytes = std::fs::read(fixture.env.db()).unwrap();
            assert!(bytes.len() > 1124, "the database is too small to truncate");
            fixture.db = dir.join("truncated.db");
            std::fs::write(&fixture.db, &bytes[..1024 + 100]).unwrap();
        }
        Db::Newer => {
            fixture.env.sql().batch("PRAGMA user_version = 99").unwrap();
        }
        _ => unreachable!(),
    }
    fixture
}

// ---------------------------------------------------------------------------------------------
// Running

fn arg(template: &str, token: &str) -> OsString {
    match template {
        "{token}" => token.into(),
        "{id}" => id_of(token).into(),
        "{invalid-utf8}" => OsString::from_vec(b"name\xff\xfe".to_vec()),
        other => other.into(),
    }
}

fn input_bytes(input: Input, token: &str) -> Vec<u8> {
    match input {
        Input::Null => Vec::new(),
        Input::Bytes(bytes) => bytes.to_vec(),
        Input::Token(make) | Input::Stream(make) => make(token),
    }
}

fn run(case: &Case, fixture: &Fixture) -> Run {
    let token = &fixture.token;
    // The test's own store as the environment names it (a URL in the PostgreSQL pass), else
    // the path the case set up.
    let db = if fixture.db == fixture.env.db() {
        fixture.env.db_arg()
    } else {
        fixture.db.clone().into_os_string()
    };
    let mut cmd = fixture.env.std_cmd();
    if case.db_flag {
        cmd.env_remove("AUTHEONA_DB").arg("--db").arg(&db);
    } else {
        cmd.env("AUTHEONA_DB", &db);
    }
    cmd.args(case.args.iter().map(|a| arg(a, token)));
    if let Some(input) = case.token_env {
        cmd.env(
            "AUTHEONA_TOKEN",
            OsString::from_vec(input_bytes(input, token)),
        );
    }
    let cmd = if case.db.unprivileged() {
        let mut wrapped = unprivileged(&cmd);
        wrapped.current_dir(fixture.shared.as_ref().unwrap().path());
        wrapped
    } else {
        cmd
    };
    let stdin = match case.stdin {
        Input::Null => Stdin::Null,
        Input::Stream(make) => Stdin::Endless {
            head: make(token),
            len: STREAM_LEN,
        },
        other => Stdin::Bytes(input_bytes(other, token)),
    };
    let process = Process::new(cmd).stdin(stdin).kill_after(CASE_GUARD);
    if case.stdout_closed {
        process.stdout_closed().run()
    } else {
        process.run()
    }
}

// ---------------------------------------------------------------------------------------------
// Looking at the database

#[derive(Debug, Clone, PartialEq)]
struct TokenRow {
    id: String,
    project_id: i64,
    secret_hash: String,
    description: Option<String>,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
}

/// Everything in an autheona database, read without writing.
#[derive(Debug, Clone, PartialEq)]
struct Dump {
    user_version: i64,
    application_id: i64,
    schema: Vec<(String, String, Option<String>)>,
    projects: Vec<(i64, String, i64)>,
    tokens: Vec<TokenRow>,
}

/// Everything in the case's database: on PostgreSQL the test's own database, read through a
/// connection of its own; for SQLite see [`dump_file`].
fn dump(fixture: &Fixture) -> Result<Dump, String> {
    match backend() {
        Backend::Sqlite => dump_file(&fixture.db),
        Backend::Postgres => dump_postgres(&fixture.env),
    }
}

/// The rows of autheona's schema on PostgreSQL; its schema version stands for SQLite's
/// `user_version`, and it has no application id (0).
fn dump_postgres(env: &TestEnv) -> Result<Dump, String> {
    let mut sql = env.sql();
    if sql
        .value("SELECT to_regclass('autheona.tokens') IS NOT NULL")
        .as_deref()
        != Some("t")
    {
        return Err("no autheona schema in the test's database".into());
    }
    let text = |v: &Option<String>| v.clone().ok_or("an unexpected NULL".to_owned());
    let number = |v: &Option<String>| -> Result<i64, String> {
        text(v)?.parse().map_err(|e| format!("not a number: {e}"))
    };
    let optional = |v: &Option<String>| v.as_ref().map(|n| n.parse().unwrap());
    let schema = sql
        .rows(POSTGRES_SCHEMA_OBJECTS)
        .into_iter()
        .map(|row| Ok((text(&row[0])?, text(&row[1])?, row[2].clone())))
        .collect::<Result<_, String>>()?;
    let projects = sql
        .rows("SELECT id, name, created_at FROM projects ORDER BY id")
        .into_iter()
        .map(|row| Ok((number(&row[0])?, text(&row[1])?, number(&row[2])?)))
        .collect::<Result<_, String>>()?;
    let tokens = sql
        .rows(
            "SELECT id, project_id, secret_hash, description, created_at, expires_at,
                    last_used_at
             FROM tokens ORDER BY seq",
        )
        .into_iter()
        .map(|row| {
            Ok(TokenRow {
                id: text(&row[0])?,
                project_id: number(&row[1])?,
                secret_hash: text(&row[2])?,
                description: row[3].clone(),
                created_at: number(&row[4])?,
                expires_at: optional(&row[5]),
                last_used_at: optional(&row[6]),
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(Dump {
        user_version: sql.count("SELECT version FROM schema_version"),
        application_id: 0,
        schema,
        projects,
        tokens,
    })
}

/// Reads a copy of the database and its log: opening the file itself, even read-only, could
/// create its `-shm` and `-wal` files, and so change what the command finds.
fn dump_file(db: &Path) -> Result<Dump, String> {
    if !db.is_file() {
        return Err(format!("no database file at {}", db.display()));
    }
    let scratch = tempfile::tempdir().unwrap();
    let copy = scratch.path().join("copy.db");
    std::fs::copy(db, &copy).map_err(|e| e.to_string())?;
    if sidecar(db, "-wal").exists() {
        std::fs::copy(sidecar(db, "-wal"), sidecar(&copy, "-wal")).map_err(|e| e.to_string())?;
    }
    let conn = rusqlite::Connection::open_with_flags(
        &copy,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| e.to_string())?;
    let read = || -> rusqlite::Result<Dump> {
        let pragma = |name: &str| conn.pragma_query_value(None, name, |r| r.get(0));
        let schema = conn
            .prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY type, name")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let projects = conn
            .prepare("SELECT id, name, created_at FROM projects ORDER BY id")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let tokens = conn
            .prepare(
                "SELECT id, project_id, secret_hash, description, created_at, expires_at,
                        last_used_at
                 FROM tokens ORDER BY rowid",
            )?
            .query_map([], |r| {
                Ok(TokenRow {
                    id: r.get(0)?,
                    project_id: r.get(1)?,
                    secret_hash: r.get(2)?,
                    description: r.get(3)?,
                    created_at: r.get(4)?,
                    expires_at: r.get(5)?,
                    last_used_at: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Dump {
            user_version: pragma("user_version")?,
            application_id: pragma("application_id")?,
            schema,
            projects,
            tokens,
        })
    };
    read().map_err(|e| e.to_string())
}

/// What is at a path, byte for byte, and what is beside it.
#[derive(Debug, PartialEq)]
enum PathState {
    Missing,
    Dir(Vec<String>),
    File {
        main: Vec<u8>,
        wal: Option<Vec<u8>>,
        shm: bool,
    },
}

fn entries(dir: &Path) -> Option<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Some(names)
}

fn path_state(db: &Path) -> (PathState, Option<Vec<String>>) {
    let state = if db.is_dir() {
        PathState::Dir(entries(db).unwrap())
    } else if db.exists() {
        PathState::File {
            main: std::fs::read(db).unwrap(),
            wal: std::fs::read(sidecar(db, "-wal")).ok(),
            shm: sidecar(db, "-shm").exists(),
        }
    } else {
        PathState::Missing
    };
    (state, db.parent().and_then(entries))
}

// ---------------------------------------------------------------------------------------------
// Judging

/// Characters that drive a terminal: escape, bell, right-to-left override.
const RAW_CONTROLS: &[(&str, &[u8])] = &[
    ("ESC", b"\x1b"),
    ("BEL", b"\x07"),
    ("U+202E", "\u{202e}".as_bytes()),
];

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn check_shape(case: &Case, fixture: &Fixture, run: &Run, problems: &mut Vec<String>) {
    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    let err = lines(&run.stderr);
    let id = id_of(&fixture.token);
    let mut fail = |what: String| problems.push(what);
    let stderr_empty = |fail: &mut dyn FnMut(String)| {
        if !run.stderr.is_empty() {
            fail("expected nothing on stderr".into());
        }
    };
    let valid_line = |fail: &mut dyn FnMut(String)| {
        let prefix = format!("valid: token {id} (project ");
        if !(out.starts_with(&prefix) && out.ends_with(")\n") && out.lines().count() == 1) {
            fail(format!("expected one line starting {prefix:?} on stdout"));
        }
    };
    match case.shape {
        Shape::Error(text) => {
            if !out.is_empty() {
                fail("expected nothing on stdout".into());
            }
            let one_error = err.len() == 1 || (err.len() == 2 && err[1].starts_with("hint: "));
            if !one_error || !err[0].starts_with("error: ") || err[0].len() <= "error: ".len() {
                fail("expected one `error: ` line, optionally one `hint: ` line, on stderr".into());
            } else if !err[0].contains(text) {
                fail(format!("expected the error to mention {text:?}"));
            }
        }
        Shape::Invalid(reason) => {
            if out != format!("invalid: {reason}\n") {
                fail(format!("expected exactly `invalid: {reason}` on stdout"));
            }
            stderr_empty(&mut fail);
        }
        Shape::Valid => {
            valid_line(&mut fail);
            stderr_empty(&mut fail);
        }
        Shape::ValidJson => {
            match serde_json::from_str::<serde_json::Value>(&out) {
                Ok(json) if json["valid"] == true && json["id"] == id => {}
                _ => fail("expected JSON with \"valid\": true and the token's id".into()),
            }
            stderr_empty(&mut fail);
        }
        Shape::ValidWarning(text) => {
            valid_line(&mut fail);
            if !(err.len() == 1 && err[0].starts_with("warning: ") && err[0].contains(text)) {
                fail(format!(
                    "expected one `warning: ` line mentioning {text:?} on stderr"
                ));
            }
        }
        Shape::Lists(texts) => {
            for text in texts {
                let text = text.replace("{id}", id);
                if !out.contains(&text) {
                    fail(format!("expected {text:?} on stdout"));
                }
            }
            stderr_empty(&mut fail);
        }
        Shape::ListsJson(key, value) => {
            let found = serde_json::from_str::<serde_json::Value>(&out)
                .ok()
                .and_then(|json| json.as_array().cloned())
                .is_some_and(|items| items.iter().any(|item| item[key] == value));
            if !found {
                fail(format!(
                    "expected a JSON array with an element whose {key:?} is {value:?}"
                ));
            }
            stderr_empty(&mut fail);
        }
        Shape::Quiet => stderr_empty(&mut fail),
        Shape::EmptyWithHint => {
            if !out.is_empty() {
                fail("expected nothing on stdout".into());
            }
            let hinted = err.iter().any(|l| l.starts_with("hint: "));
            let alarmed = err
                .iter()
                .any(|l| l.starts_with("error") || l.starts_with("warning"));
            if !hinted || alarmed {
                fail("expected a `hint: ` line and no error or warning on stderr".into());
            }
        }
        Shape::NewToken => {
            let token = out.strip_suffix('\n').unwrap_or_default();
            let shaped = token.len() == 66
                && token.starts_with("aut_")
                && !token.contains('\n')
                && token != fixture.token;
            if !shaped {
                fail("expected exactly one new token on stdout".into());
            }
            let alarmed = err
                .iter()
                .any(|l| l.starts_with("error") || l.starts_with("warning"));
            if alarmed || !err.iter().any(|l| l.starts_with("Created token")) {
                fail("expected `Created token` and no error or warning on stderr".into());
            }
        }
        Shape::CreatedProject => {
            if !out.is_empty() {
                fail("expected nothing on stdout".into());
            }
            if err.len() != 1 || !err[0].starts_with("Created project") {
                fail("expected one `Created project` line on stderr".into());
            }
        }
    }
}

/// What a check compares.
enum Snapshot {
    Rows(Result<Dump, String>),
    Path(PathState, Option<Vec<String>>),
}

fn snapshot(check: Check, fixture: &Fixture) -> Snapshot {
    match check {
        Check::Bytes | Check::NewDatabase(_) => {
            let (state, beside) = path_state(&fixture.db);
            Snapshot::Path(state, beside)
        }
        Check::Rows | Check::NewToken(_) | Check::LastUsed => Snapshot::Rows(dump(fixture)),
    }
}

fn describe(state: &PathState, beside: &Option<Vec<String>>) -> String {
    match state {
        PathState::File { main, wal, shm } => format!(
            "a file of {} bytes, -wal {:?} bytes, -shm {shm}; beside it {beside:?}",
            main.len(),
            wal.as_ref().map(Vec::len),
        ),
        other => format!("{other:?}; beside it {beside:?}"),
    }
}

fn check_database(case: &Case, fixture: &Fixture, before: &Snapshot, run: &Run) -> Option<String> {
    let before_rows = match (case.check, before) {
        (Check::Bytes, Snapshot::Path(state, beside)) => {
            let (after_state, after_beside) = path_state(&fixture.db);
            return ((&after_state, &after_beside) != (state, beside)).then(|| {
                format!(
                    "the database path changed: before {}, after {}",
                    describe(state, beside),
                    describe(&after_state, &after_beside)
                )
            });
        }
        (_, Snapshot::Rows(Err(err))) => {
            return Some(format!("setup: cannot read the database: {err}"));
        }
        (_, Snapshot::Rows(Ok(rows))) => Some(rows),
        (_, Snapshot::Path(..)) => None,
    };
    let after = match dump(fixture) {
        Ok(rows) => rows,
        Err(err) => return Some(format!("cannot read the database after: {err}")),
    };
    let Some(before) = before_rows else {
        let Check::NewDatabase(name) = case.check else {
            unreachable!("rows are compared with rows")
        };
        let fresh = matches!(before, Snapshot::Path(PathState::Missing, _))
            && after.projects.len() == 1
            && after.projects[0].1 == name
            && after.tokens.is_empty()
            && after.user_version == i64::from(autheona::store::SCHEMA_VERSION)
            && after.application_id == 0x4155_5448;
        return (!fresh)
            .then(|| format!("expected a new database with only project {name}: {after:?}"));
    };
    match expected_rows(case.check, before, &after, &fixture.token, &run.stdout) {
        Ok(expected) if expected == after => None,
        Ok(expected) => Some(format!(
            "the database is not as expected:\n      {}",
            diff(&expected, &after)
        )),
        Err(what) => Some(format!("{what}:\n      {}", diff(before, &after))),
    }
}

/// What differs between two dumps, line by line (`-` only before, `+` only after).
fn diff(before: &Dump, after: &Dump) -> String {
    let mut out = Vec::new();
    let header = |d: &Dump| (d.user_version, d.application_id);
    if header(before) != header(after) {
        out.push(format!(
            "user_version, application_id: {:?} -> {:?}",
            header(before),
            header(after)
        ));
    }
    let names = |d: &Dump| d.schema.iter().map(|s| s.1.clone()).collect::<Vec<_>>();
    if before.schema != after.schema {
        out.push(format!("schema: {:?} -> {:?}", names(before), names(after)));
    }
    if before.projects != after.projects {
        out.push(format!(
            "projects: {:?} -> {:?}",
            before.projects, after.projects
        ));
    }
    for row in &before.tokens {
        if !after.tokens.contains(row) {
            out.push(format!("- {row:?}"));
        }
    }
    for row in &after.tokens {
        if !before.tokens.contains(row) {
            out.push(format!("+ {row:?}"));
        }
    }
    if out.is_empty() {
        out.push("no difference".into());
    }
    out.join("\n      ")
}

/// The rows a check expects after the command, or why there can be none.
fn expected_rows(
    check: Check,
    before: &Dump,
    after: &Dump,
    token: &str,
    stdout: &[u8],
) -> Result<Dump, String> {
    let real = |dump: &Dump| dump.tokens.iter().position(|t| t.id == id_of(token));
    let Some(index) = real(before) else {
        return Err("setup: the real token is not in the database".into());
    };
    let mut expected = before.clone();
    match check {
        Check::Rows => {}
        Check::NewToken(description) => {
            let new_id = String::from_utf8_lossy(stdout)
                .get(4..16)
                .map(str::to_owned);
            let new = after.tokens.last().filter(|new| {
                Some(&new.id) == new_id.as_ref()
                    && new.project_id == before.tokens[index].project_id
                    && new.description.as_deref() == description
                    && new.last_used_at.is_none()
            });
            let Some(new) = new else {
                return Err(format!(
                    "expected one new token (its id on stdout: {new_id:?}), described \
                     {description:?}"
                ));
            };
            expected.tokens.push(new.clone());
        }
        Check::LastUsed => {
            let used = real(after).and_then(|i| after.tokens[i].last_used_at);
            if before.tokens[index].last_used_at.is_some() || used.is_none() {
                return Err("expected the token's last-used time to be set".into());
            }
            expected.tokens[index].last_used_at = used;
        }
        Check::Bytes | Check::NewDatabase(_) => unreachable!("not about rows"),
    }
    Ok(expected)
}

/// Runs one case; returns what went wrong, if anything.
fn judge(case: &Case) -> Vec<String> {
    let fixture = setup(case.db);
    let before = snapshot(case.check, &fixture);
    let started = Instant::now();
    let run = run(case, &fixture);
    let elapsed = started.elapsed();
    let mut problems = Vec::new();

    let hung = run.killed_at_deadline;
    if hung {
        problems.push(format!("still running after {CASE_GUARD:?}: killed"));
    } else if let Some(signal) = run.status.signal() {
        problems.push(format!("killed by signal {signal}"));
    }
    let code = run.status.code();
    if code == Some(101) || contains(&run.stderr, b"panicked") {
        problems.push("panicked".into());
    }
    if !hung && code != Some(case.code) {
        problems.push(format!("exit code {code:?}, expected {}", case.code));
    }
    check_shape(case, &fixture, &run, &mut problems);
    for (stream, bytes) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        for (name, raw) in RAW_CONTROLS {
            if contains(bytes, raw) {
                problems.push(format!("a raw {name} on {stream}"));
            }
        }
        if contains(bytes, fixture.token.as_bytes()) {
            problems.push(format!("the token on {stream}"));
        }
        if contains(bytes, secret_of(&fixture.token).as_bytes()) {
            problems.push(format!("the token's secret on {stream}"));
        }
    }
    if let Input::Stream(_) = case.stdin {
        // Reading a bounded prefix means the pipe broke long before the end.
        if run.stdin_written >= STREAM_LEN {
            problems.push(format!("all {} MiB of stdin were read", STREAM_LEN >> 20));
        }
    }
    problems.extend(check_database(case, &fixture, &before, &run));

    if !problems.is_empty() {
        problems.push(format!(
            "(took {elapsed:?}; stdout {:?}; stderr {:?})",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        ));
    }
    problems
}

/// One case, as its own test: skipped when it needs a second user and there is none.
fn run_case(case: Case) {
    if case.db.sqlite_only() {
        sqlite_only!();
    }
    if case.db == Db::OthersPrivateLog && !running_as_root() {
        // Needs a second user; CI runs as root and has one.
        eprintln!("skipped, needs root: {}", case.name);
        return;
    }
    let problems = judge(&case);
    assert!(
        problems.is_empty(),
        "{}:\n    {}",
        case.name,
        problems.join("\n    ")
    );
}

/// What the README says of the cases, kind by kind (each case is a test of its own).
#[test]
fn the_readme_counts_the_cases() {
    let cases = cases();
    assert_eq!(cases.len(), 100, "the README claims 100 hostile inputs");
    let count = |what: fn(&Case) -> bool| cases.iter().filter(|case| what(case)).count();
    assert_eq!(
        count(|c| matches!(c.shape, Shape::Error(_)) && matches!(c.code, 2 | 3)),
        47,
        "refused with one error line, exit 2 or 3"
    );
    assert_eq!(
        count(|c| matches!(c.shape, Shape::Invalid(_)) && c.code == 1),
        30,
        "verify says invalid, exit 1"
    );
    assert_eq!(
        count(|c| !matches!(c.shape, Shape::Error(_) | Shape::Invalid(_)) && c.code == 0),
        23,
        "accepted with their documented output, exit 0"
    );
    assert_eq!(
        count(|c| matches!(c.check, Check::Rows | Check::Bytes)),
        88,
        "change nothing in the database"
    );
    assert_eq!(
        count(|c| matches!(
            c.check,
            Check::NewToken(_) | Check::LastUsed | Check::NewDatabase(_)
        ) && c.code == 0),
        12,
        "make only the change their command documents"
    );
    let mut names = std::collections::HashSet::new();
    for case in &cases {
        assert!(names.insert(case.name), "two cases named {}", case.name);
    }
}
