//! JSON that is safe on a terminal too.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};
use zeroize::Zeroizing;

use crate::ops::verify::{Reason, VerifiedToken};
use crate::text::is_unsafe_char;
use crate::ui::time;

/// What `verify --json` prints, and `serve` answers to `POST /v1/verify`.
#[derive(Serialize)]
pub struct VerificationJson<'a> {
    valid: bool,
    reason: Option<&'static str>,
    id: Option<&'a str>,
    project: Option<&'a str>,
    expires_at: Option<String>,
}

impl<'a> VerificationJson<'a> {
    /// Valid when there is no `reason`; `token` is what may be told about it, when its secret
    /// matched.
    pub fn new(reason: Option<Reason>, token: Option<&'a VerifiedToken>) -> Self {
        VerificationJson {
            valid: reason.is_none(),
            reason: reason.map(Reason::as_str),
            id: token.map(|t| t.id.as_str()),
            project: token.map(|t| t.project.as_str()),
            expires_at: token.and_then(|t| t.expires_at).map(time::rfc3339),
        }
    }
}

/// A value as pretty JSON with a closing newline, as every command prints it; wiped when
/// dropped, since it may hold a token.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Zeroizing<Vec<u8>>> {
    // Room for a created token's JSON up front: a reallocation would free a copy unwiped.
    let mut json = Zeroizing::new(Vec::with_capacity(4096));
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut *json, SafeFormatter::default());
    value.serialize(&mut serializer)?;
    json.push(b'\n');
    Ok(json)
}

/// serde_json's pretty output, except that characters unsafe on a terminal are written as
/// `\uXXXX` escapes: serde_json escapes controls, but not format characters such as the
/// right-to-left override. A JSON parser reads back the same string.
#[derive(Default)]
pub struct SafeFormatter(PrettyFormatter<'static>);

/// A string's characters, with those unsafe on a terminal as `\uXXXX` escapes.
fn write_safe_fragment<W: ?Sized + Write>(writer: &mut W, fragment: &str) -> io::Result<()> {
    // serde_json escapes the controls below space itself, so below DEL all is safe: one
    // comparison a byte, which a list of a million tokens feels.
    if fragment.bytes().all(|b| b < 0x7f) {
        return writer.write_all(fragment.as_bytes());
    }
    let mut rest = fragment;
    while let Some((at, c)) = rest.char_indices().find(|&(_, c)| is_unsafe_char(c)) {
        writer.write_all(&rest.as_bytes()[..at])?;
        let mut units = [0u16; 2];
        for unit in c.encode_utf16(&mut units) {
            write!(writer, "\\u{unit:04x}")?;
        }
        rest = &rest[at + c.len_utf8()..];
    }
    writer.write_all(rest.as_bytes())
}

/// [`SafeFormatter`]'s strings, on one line (JSON Lines).
#[derive(Default)]
pub struct SafeCompactFormatter;

impl Formatter for SafeCompactFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_safe_fragment(writer, fragment)
    }
}

impl Formatter for SafeFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_safe_fragment(writer, fragment)
    }

    // Everything else as PrettyFormatter does it.
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode<T: Serialize>(value: &T) -> String {
        let mut out = Vec::new();
        let mut serializer =
            serde_json::Serializer::with_formatter(&mut out, SafeFormatter::default());
        value.serialize(&mut serializer).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn unsafe_characters_are_escaped_and_read_back_the_same() {
        let text = "a\u{202e}b\u{1b}[31m\u{7}c\u{7f} 👩\u{200d}💻 \u{e0001}é";
        let json = encode(&vec![text]);
        assert!(
            !json.chars().any(|c| c != '\n' && is_unsafe_char(c)),
            "{json:?}"
        );
        assert!(
            json.contains("\\u202e") && json.contains("\\udb40\\udc01"),
            "{json}"
        );
        let back: Vec<String> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, [text]);
    }

    #[test]
    fn ordinary_output_is_serde_jsons_pretty_output() {
        let value = serde_json::json!({"id": "abc", "n": [1, 2], "none": null});
        assert_eq!(
            encode(&value),
            serde_json::to_string_pretty(&value).unwrap()
        );
    }
}
