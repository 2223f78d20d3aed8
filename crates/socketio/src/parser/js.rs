//! The JavaScript `Number()` conversion that socket.io-parser's header grammar inherits.
//!
//! socket.io-parser reads the packet type, the attachment count and the ack id with
//! `Number(...)` and loose `==` comparisons, so what it accepts there is whatever
//! ECMAScript's StringToNumber accepts: surrounding whitespace, an empty string (0), and
//! for the attachment count even `1.0`, `1e0` or `0x1`. This module reproduces exactly that.

/// ECMAScript `StrWhiteSpaceChar`: WhiteSpace or LineTerminator (ECMA-262 §12.2, §12.3).
///
/// Differs from [`char::is_whitespace`]: U+FEFF is JavaScript whitespace, U+0085 is not.
pub(crate) fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{9}' | '\u{A}' | '\u{B}' | '\u{C}' | '\u{D}' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{FEFF}'
    )
}

/// `Number(c)` for a one-character string, when it is not NaN: a digit's value, or 0 for
/// whitespace (`Number(" ") === 0`).
///
/// A character outside the BMP is two UTF-16 units in JavaScript and `charAt` sees a lone
/// surrogate, which is NaN; so is every other character here.
pub(crate) fn char_number(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        c if is_js_whitespace(c) => Some(0),
        _ => None,
    }
}

/// `Number(s)`: ECMA-262 §7.1.4.1.1 StringToNumber. NaN when `s` is not a numeric literal.
pub(crate) fn string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(is_js_whitespace);
    if t.is_empty() {
        return 0.0;
    }
    // NonDecimalIntegerLiteral: 0x / 0o / 0b, no sign, no numeric separators.
    for (prefixes, radix) in [(["0x", "0X"], 16), (["0o", "0O"], 8), (["0b", "0B"], 2)] {
        for p in prefixes {
            if let Some(digits) = t.strip_prefix(p) {
                return parse_radix(digits, radix);
            }
        }
    }
    let (sign, unsigned) = if let Some(rest) = t.strip_prefix('+') {
        (1.0, rest)
    } else if let Some(rest) = t.strip_prefix('-') {
        (-1.0, rest)
    } else {
        (1.0, t)
    };
    if unsigned == "Infinity" {
        return sign * f64::INFINITY;
    }
    if !is_unsigned_decimal_literal(unsigned) {
        return f64::NAN;
    }
    // The grammar check above leaves only what Rust's float parser reads the same way.
    unsigned.parse::<f64>().map_or(f64::NAN, |v| sign * v)
}

fn parse_radix(digits: &str, radix: u32) -> f64 {
    if digits.is_empty() {
        return f64::NAN;
    }
    let mut value = 0.0f64;
    for c in digits.chars() {
        match c.to_digit(radix) {
            Some(d) => value = value * f64::from(radix) + f64::from(d),
            None => return f64::NAN,
        }
    }
    value
}

/// StrUnsignedDecimalLiteral without `Infinity`:
/// `digits [. digits?] [exp]` or `. digits [exp]`, where `exp` is `[eE] [+-]? digits`.
fn is_unsigned_decimal_literal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let int_digits = count_digits(b, i);
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = count_digits(b, i);
        i += frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_digits = count_digits(b, i);
        if exp_digits == 0 {
            return false;
        }
        i += exp_digits;
    }
    i == b.len()
}

fn count_digits(b: &[u8], from: usize) -> usize {
    b.get(from..).map_or(0, |rest| {
        rest.iter().take_while(|c| c.is_ascii_digit()).count()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_is_javascripts() {
        for c in [
            '\t', '\n', '\u{B}', '\u{C}', '\r', ' ', '\u{A0}', '\u{FEFF}', '\u{3000}',
        ] {
            assert!(is_js_whitespace(c), "{c:?}");
            assert_eq!(char_number(c), Some(0));
        }
        for c in ['\u{85}', '\u{180E}', '\u{200B}', 'a', '-', '+', '.'] {
            assert!(!is_js_whitespace(c), "{c:?}");
            assert_eq!(char_number(c), None);
        }
        assert_eq!(char_number('7'), Some(7));
    }

    #[test]
    fn string_to_number_matches_ecmascript() {
        let cases: &[(&str, f64)] = &[
            ("", 0.0),
            ("  ", 0.0),
            ("1", 1.0),
            (" 12\t", 12.0),
            ("1.0", 1.0),
            ("1.", 1.0),
            (".5", 0.5),
            ("1e1", 10.0),
            ("1E+1", 10.0),
            ("+3", 3.0),
            ("-3", -3.0),
            ("0x1F", 31.0),
            ("0o17", 15.0),
            ("0B101", 5.0),
            ("Infinity", f64::INFINITY),
            ("+Infinity", f64::INFINITY),
            ("007", 7.0),
        ];
        for (s, want) in cases {
            assert_eq!(string_to_number(s), *want, "{s:?}");
        }
        for s in [
            "a", "1a", "1 2", ".", "e1", "1e", "1e+", "0x", "0xg", "+0x1", "inf", "NaN", "1_0",
            "infinity", "--1", "1..2",
        ] {
            assert!(string_to_number(s).is_nan(), "{s:?}");
        }
    }
}
