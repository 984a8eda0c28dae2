//! How input a person typed is shown back to them in an error: quoted
//! short, and character by character where one character is the fault.

/// How refused input is quoted back in a message: its first 40 characters,
/// and `…` when there were more, so the explanation around it stays
/// readable whatever was typed.
pub fn quote(s: &str) -> String {
    cut(s, 40)
}

/// The most characters of a command the bot offers to be sent: more than
/// any command holds (names of 253, an image of a few hundred), so an
/// offer is whole unless what was typed could never be a command.
pub const OFFERED: usize = 1000;

/// How a command the bot offers to be sent ("send '…' to make it", "did
/// you mean '…'?") is quoted: whole, as it is there to be copied, up to
/// [`OFFERED`] characters.
pub fn offer(s: &str) -> String {
    cut(s, OFFERED)
}

/// `s` to its first `shown` characters, and `…` when there were more.
fn cut(s: &str, shown: usize) -> String {
    match s.char_indices().nth(shown) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

/// Describes one character for an error message. A printable one is
/// quoted, with its code point when it is not ASCII, since it may only look
/// like the letter expected (a Cyrillic 'е' for 'e'). One that cannot be
/// seen or shows nothing alone (spaces other than ' ', controls, zero-width
/// and direction marks, combining marks) is given by its code point only.
pub fn describe(c: char) -> String {
    if c == '\'' {
        // Quoted, it would read as three quotes.
        "an apostrophe (')".to_owned()
    } else if c.is_ascii_graphic() {
        format!("'{c}'")
    } else if c == ' ' {
        "a space".to_owned()
    } else if c.is_control() || c.is_whitespace() || is_invisible(c) || is_combining(c) {
        format!("the character U+{:04X}", u32::from(c))
    } else {
        format!("'{c}' (U+{:04X})", u32::from(c))
    }
}

/// A note on the first character of `s` that is not ASCII, for a message
/// where `s` looks right and is not (a Cyrillic 'ѕ' in "scale", a
/// full-width '３'): " (it contains 'ѕ' (U+0455))", " (U+FF13)" for a
/// word of that one character, or nothing.
pub fn odd_characters(s: &str) -> String {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        // The character itself is already in the message: its number is
        // what is missing.
        (Some(c), None) if !c.is_ascii() => format!(" (U+{:04X})", u32::from(c)),
        _ => s
            .chars()
            .find(|c| !c.is_ascii())
            .map(|c| format!(" (it contains {})", describe(c)))
            .unwrap_or_default(),
    }
}

/// `n` and the noun, singular or plural: "1 replica", "3 replicas".
pub fn count<N>(n: N, one: &str, many: &str) -> String
where
    N: std::fmt::Display + PartialEq + From<u8>,
{
    let noun = if n == N::from(1) { one } else { many };
    format!("{n} {noun}")
}

/// A character that must not be shown as itself, where text is shown to a
/// person (a reply, a terminal): a control character, which can move a
/// cursor or end a line, or an invisible one. Its code point instead.
pub fn spelled_out(c: char) -> Option<String> {
    (c.is_control() || is_invisible(c)).then(|| format!("U+{:04X}", u32::from(c)))
}

/// Characters that print as nothing yet change what text means or how it
/// is laid out: zero-width spaces and joiners, direction marks, embeddings
/// and isolates, fillers, tags. (Variation selectors are left out: they
/// only choose how the character before them looks, as in an emoji.)
pub fn is_invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x061C
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFEFF
            | 0xFFA0
            | 0xFFF9..=0xFFFB
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

/// Marks that combine with the character before them or select how it
/// looks, so shown alone in quotes they would sit on the quote.
fn is_combining(c: char) -> bool {
    matches!(
        u32::from(c),
        0x0300..=0x036F
            | 0x1AB0..=0x1AFF
            | 0x1DC0..=0x1DFF
            | 0x20D0..=0x20FF
            | 0xFE00..=0xFE0F
            | 0xFE20..=0xFE2F
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_short_whatever_was_typed() {
        assert_eq!(quote("web"), "web");
        assert_eq!(quote(&"x".repeat(40)), "x".repeat(40));
        assert_eq!(quote(&"é".repeat(41)), format!("{}…", "é".repeat(40)));
    }

    #[test]
    fn counts_agree_with_their_nouns() {
        assert_eq!(count(1, "replica", "replicas"), "1 replica");
        assert_eq!(count(0, "replica", "replicas"), "0 replicas");
        assert_eq!(count(1usize, "word", "words"), "1 word");
        assert_eq!(spelled_out('\u{1b}').as_deref(), Some("U+001B"));
        assert_eq!(spelled_out('é'), None);
    }

    #[test]
    fn only_what_is_not_ascii_is_noted() {
        assert_eq!(odd_characters("scale"), "");
        assert_eq!(odd_characters("ѕcale"), " (it contains 'ѕ' (U+0455))");
        assert_eq!(odd_characters("３"), " (U+FF13)");
        assert_eq!(odd_characters("１０"), " (it contains '１' (U+FF11))");
    }

    #[test]
    fn characters_are_shown_as_seen_and_by_code_point_when_they_could_mislead() {
        let cases = [
            ('/', "'/'"),
            ('\'', "an apostrophe (')"),
            (' ', "a space"),
            ('é', "'é' (U+00E9)"),
            ('е', "'е' (U+0435)"), // Cyrillic, looks like 'e'
            ('漢', "'漢' (U+6F22)"),
            ('\n', "the character U+000A"),
            ('\u{a0}', "the character U+00A0"),
            ('\u{200b}', "the character U+200B"),
            ('\u{2067}', "the character U+2067"), // right-to-left isolate
            ('\u{301}', "the character U+0301"),  // combining acute accent
            ('\u{fe0f}', "the character U+FE0F"), // emoji presentation
            ('\u{e0041}', "the character U+E0041"),
        ];
        for (c, shown) in cases {
            assert_eq!(describe(c), shown, "{:04X}", u32::from(c));
        }
    }
}
