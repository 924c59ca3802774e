//! Plain-text rules shared by validation (`ops`) and display (`ui`).

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_characters() {
        for c in [
            '\u{1b}', '\n', '\r', '\t', '\0', '\u{7f}', '\u{202e}', '\u{200b}', '\u{2028}',
            '\u{feff}',
        ] {
            assert!(is_unsafe_char(c), "{:?}", c);
        }
        for c in ['a', ' ', 'é', '日', '🚀', '\u{0301}'] {
            assert!(!is_unsafe_char(c), "{:?}", c);
        }
    }
}
