//! Plain-text rules shared by validation (`ops`) and display (`ui`).

use std::borrow::Cow;
use std::fmt::Write;

use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

use crate::token::PREFIX;

const ZERO_WIDTH_JOINER: char = '\u{200d}';
const EMOJI_PRESENTATION: char = '\u{fe0f}';

/// Characters that could move the cursor, hide text or reorder it on a terminal: Unicode
/// controls (Cc, escape sequences start here), format characters (Cf: bidi overrides,
/// zero-width characters) and line and paragraph separators.
pub fn is_unsafe_char(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

fn is_pictograph(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::OtherSymbol | GeneralCategory::ModifierSymbol
    )
}

/// The unsafe characters of `text`, with their char positions. A zero-width joiner between
/// two pictographs is part of an emoji (👩‍💻) and not counted.
fn unsafe_positions(text: &str) -> Vec<usize> {
    // Printable ASCII, by far the most common text, is safe: skip the Unicode tables.
    if text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Vec::new();
    }
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len())
        .filter(|&i| {
            let c = chars[i];
            if c != ZERO_WIDTH_JOINER {
                return is_unsafe_char(c);
            }
            let before = chars[..i].iter().rev().find(|&&p| p != EMOJI_PRESENTATION);
            let after = chars.get(i + 1);
            !(before.is_some_and(|&p| is_pictograph(p)) && after.is_some_and(|&n| is_pictograph(n)))
        })
        .collect()
}

/// The first unsafe character of `text`, if any.
pub fn first_unsafe(text: &str) -> Option<char> {
    let position = *unsafe_positions(text).first()?;
    text.chars().nth(position)
}

/// `text` with each unsafe character shown escaped, like `\u{1b}`.
pub fn escape_unsafe(text: &str) -> Cow<'_, str> {
    let positions = unsafe_positions(text);
    if positions.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8 * positions.len());
    for (i, c) in text.chars().enumerate() {
        if positions.binary_search(&i).is_ok() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Characters that are letters or symbols to Unicode but draw nothing: fillers (Hangul U+115F,
/// U+1160, U+3164, U+FFA0), the blank braille pattern U+2800 and the Khmer inherent vowels.
/// With whitespace and combining marks, they make text that looks empty.
fn is_blank_looking(c: char) -> bool {
    matches!(
        c,
        '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}' | '\u{2800}' | '\u{3164}' | '\u{ffa0}'
    )
}

fn is_mark(c: char) -> bool {
    c.general_category_group() == GeneralCategoryGroup::Mark
}

/// Whether `text` has a character that shows: not whitespace, not a combining mark (U+034F,
/// variation selectors such as U+FE0F, accents), not one that draws nothing.
pub fn has_visible(text: &str) -> bool {
    text.chars()
        .any(|c| !c.is_whitespace() && !is_mark(c) && !is_blank_looking(c))
}

/// The longest run of consecutive combining marks in `text` (stacked on one character, or on
/// none at the start).
pub fn longest_mark_run(text: &str) -> usize {
    let (mut longest, mut run) = (0, 0);
    for c in text.chars() {
        run = if is_mark(c) { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// A file name's bytes as text that tells any two names apart: a backslash doubled, bytes that
/// are not UTF-8 as `\xNN`, the rest as it is. (Lossy decoding would show every such byte as
/// U+FFFD, and a name holding the four characters `\xE9` would read like the byte.)
pub fn escape_name_bytes(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes)
        && !text.contains('\\')
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        out.push_str(&chunk.valid().replace('\\', "\\\\"));
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02X}");
        }
    }
    Cow::Owned(out)
}

/// Where the first thing shaped like a token starts and ends in `text`: `aut_` and at least 8
/// more token characters. Loose on purpose (a truncated or mistyped token counts), so that
/// neither an error quoting user input nor a stored description can hold one.
fn token_shape(text: &str) -> Option<(usize, usize)> {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(found) = text[from..].find(PREFIX) {
        let start = from + found;
        let tail = &text[start + PREFIX.len()..];
        let len = tail.find(|c: char| !is_token_char(c)).unwrap_or(tail.len());
        let end = start + PREFIX.len() + len;
        if len >= 8 {
            return Some((start, end));
        }
        from = end;
    }
    None
}

/// Whether `text` holds a token or part of one, to refuse it where text is stored: `aut_`
/// followed by what reads as a token id (12 letters or digits, then `_` or the end of the
/// word), or by 40 or more token characters (a token with a mistyped id). Stricter than
/// [`redact_tokens`], which may hide too much in a message but must not refuse
/// `aut_payments` as a name.
pub fn has_token_shape(text: &str) -> bool {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(PREFIX).any(|(start, _)| {
        let tail = &text[start + PREFIX.len()..];
        let word = &tail[..tail.find(|c: char| !is_token_char(c)).unwrap_or(tail.len())];
        let id = word.bytes().take_while(u8::is_ascii_alphanumeric).count();
        (id == 12 && matches!(word.as_bytes().get(12), None | Some(b'_'))) || word.len() >= 40
    })
}

/// `text` with anything shaped like a token (`aut_` and at least 8 more token characters)
/// replaced, so that an error quoting user input cannot leak one.
pub fn redact_tokens(text: &str) -> Cow<'_, str> {
    let Some(mut shape) = token_shape(text) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let (start, end) = shape;
        out.push_str(&rest[..start + PREFIX.len()]);
        out.push_str("<redacted>");
        rest = &rest[end..];
        match token_shape(rest) {
            Some(next) => shape = next,
            None => break,
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_bytes_are_escaped_so_that_names_stay_apart() {
        assert_eq!(escape_name_bytes("café".as_bytes()), "café");
        assert_eq!(escape_name_bytes(b"caf\xe9"), "caf\\xE9");
        assert_eq!(escape_name_bytes(b"a\xff\xfeb\xc3"), "a\\xFF\\xFEb\\xC3");
        assert_eq!(escape_name_bytes(br"caf\xE9"), r"caf\\xE9");
        assert_eq!(escape_name_bytes(br"a\b"), r"a\\b");
        assert_ne!(
            escape_name_bytes(b"caf\xe9"),
            escape_name_bytes(br"caf\xE9")
        );
    }

    #[test]
    fn unsafe_characters() {
        for c in [
            '\u{1b}', '\n', '\r', '\t', '\0', '\u{7f}', '\u{202e}', '\u{200b}', '\u{2028}',
            '\u{feff}',
        ] {
            assert!(is_unsafe_char(c), "{c:?}");
        }
        for c in ['a', ' ', 'é', '日', '🚀', '\u{0301}'] {
            assert!(!is_unsafe_char(c), "{c:?}");
        }
    }

    #[test]
    fn a_joiner_inside_an_emoji_is_fine_elsewhere_not() {
        for emoji in [
            "👩\u{200d}💻",
            "👩🏽\u{200d}💻",
            "❤\u{fe0f}\u{200d}🔥",
            "👨\u{200d}👩\u{200d}👧",
        ] {
            assert_eq!(first_unsafe(emoji), None, "{emoji}");
            assert_eq!(escape_unsafe(emoji), emoji);
        }
        for text in [
            "a\u{200d}b",
            "\u{200d}💻",
            "👩\u{200d}",
            "👩\u{200d}\u{200d}💻",
        ] {
            assert_eq!(first_unsafe(text), Some(ZERO_WIDTH_JOINER), "{text:?}");
        }
    }

    #[test]
    fn visible_text_and_stacked_marks() {
        for blank in [
            "",
            "   ",
            "\u{3164}",
            "\u{2800}\u{2800}",
            "\u{34f}",
            "\u{fe0f}\u{fe0f}\u{fe0f}",
            "\u{301}\u{301}",
            "\u{3000}\u{a0}",
        ] {
            assert!(!has_visible(blank), "{blank:?}");
        }
        for shown in ["a", " x ", "🚀", "❤\u{fe0f}", "1\u{fe0f}\u{20e3}", "é"] {
            assert!(has_visible(shown), "{shown:?}");
        }
        assert_eq!(longest_mark_run("plain"), 0);
        assert_eq!(longest_mark_run("e\u{323}\u{302} and e\u{301}"), 2);
        assert_eq!(longest_mark_run("1\u{fe0f}\u{20e3}"), 2);
        assert_eq!(
            longest_mark_run(&format!("a{}", "\u{301}".repeat(199))),
            199
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_unsafe("plain é 🚀"), "plain é 🚀");
        assert_eq!(escape_unsafe("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(escape_unsafe("x\u{202e}y\nz"), "x\\u{202e}y\\u{a}z");
    }

    #[test]
    fn token_shapes_are_redacted() {
        let token = format!("aut_{}_{}", "A".repeat(12), "b".repeat(49));
        assert_eq!(
            redact_tokens(&format!("unexpected argument '{token}' found")),
            "unexpected argument 'aut_<redacted>' found"
        );
        assert_eq!(redact_tokens("aut_short and aut_"), "aut_short and aut_");
        assert_eq!(redact_tokens("no token here"), "no token here");
        assert_eq!(
            redact_tokens("aut_x aut_12345678 and aut_abcdefgh_ij."),
            "aut_x aut_<redacted> and aut_<redacted>."
        );
        assert!(has_token_shape(&token));
        assert!(has_token_shape("key=aut_3kTMd9aPq0Zx."));
        assert!(has_token_shape("aut_3kTMd9aPq0Zx_T0kx"));
        assert!(has_token_shape(&format!(
            "aut_3kTMd9aPq0Z_{}",
            "x".repeat(40)
        )));
        assert!(!has_token_shape("aut_short, autheona, aut_"));
        assert!(!has_token_shape(
            "aut_payments aut_payments_v2 aut_paymentsystem"
        ));
    }
}
