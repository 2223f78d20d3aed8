//! JSON as JavaScript's `JSON.parse` and `JSON.stringify` write and read it.
//!
//! serde_json already matches `JSON.stringify` on everything but numbers: compact output,
//! keys in insertion order (with the `preserve_order` feature), and the same string escapes
//! (`\b \t \n \f \r \" \\`, other control characters as lowercase `\u00xx`, nothing else
//! escaped). Numbers differ: JavaScript writes `1` for `1.0`, `1e+21` for `1e21` and
//! `100000000000000000000` for `1e20`; [`JsFormatter`] writes doubles as ECMAScript's
//! `Number::toString` does (ECMA-262 §6.1.6.1.20).
//!
//! On the way in, a string escape holding a lone UTF-16 surrogate (`"\ud83d"`, what
//! `JSON.stringify` writes for a string cut in the middle of an emoji) is valid for
//! `JSON.parse` but cannot be a Rust `String`; it is read as U+FFFD rather than failing the
//! whole packet.

use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;
use serde_json::Value;

use super::error::DecodeError;

/// A [`serde_json`] formatter with `JSON.stringify`'s compact output and number format.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsFormatter;

impl Formatter for JsFormatter {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        write_js_number(writer, value)
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        // Shortest digits of the f32, so 1.1f32 is written `1.1` and not as its widened
        // double 1.100000023841858.
        write_js_number(writer, value)
    }
}

/// Appends `value` to `buf` as `JSON.stringify` would write it.
///
/// Fails only if `value`'s `Serialize` impl fails (a map with non-string keys); a
/// [`Value`] never does.
pub fn write_json<T: Serialize + ?Sized>(buf: &mut Vec<u8>, value: &T) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(buf, JsFormatter);
    value.serialize(&mut ser)
}

/// Parses a packet's JSON as `JSON.parse` would, into a [`Value`].
pub(crate) fn parse(text: &str) -> Result<Value, DecodeError> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(_) => match replace_lone_surrogates(text) {
            Some(repaired) => serde_json::from_str(&repaired).map_err(|_| DecodeError::InvalidJson),
            None => Err(DecodeError::InvalidJson),
        },
    }
}

/// Rewrites every `\uXXXX` escape of an unpaired UTF-16 surrogate inside a JSON string to
/// `\ufffd`; `None` if there is none. Only called once parsing has failed, so valid input
/// pays nothing for it.
fn replace_lone_surrogates(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut in_string = false;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if !in_string {
            in_string = c == b'"';
            i += 1;
            continue;
        }
        match c {
            b'"' => {
                in_string = false;
                i += 1;
            }
            b'\\' if b.get(i + 1) == Some(&b'u') => {
                let Some(unit) = hex4(b, i + 2) else {
                    i += 2; // malformed: leave it to the parser's error
                    continue;
                };
                let paired = (0xD800..0xDC00).contains(&unit)
                    && b.get(i + 6) == Some(&b'\\')
                    && b.get(i + 7) == Some(&b'u')
                    && hex4(b, i + 8).is_some_and(|low| (0xDC00..0xE000).contains(&low));
                if paired {
                    i += 12;
                } else if (0xD800..0xE000).contains(&unit) {
                    // ASCII positions, so both slice ends are char boundaries.
                    let s = out.get_or_insert_with(|| String::with_capacity(text.len()));
                    s.push_str(text.get(copied..i)?);
                    s.push_str("\\ufffd");
                    i += 6;
                    copied = i;
                } else {
                    i += 6;
                }
            }
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    let mut s = out?;
    s.push_str(text.get(copied..)?);
    Some(s)
}

fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let digits = b.get(at..at + 4)?;
    digits.iter().try_fold(0u32, |acc, &d| {
        let v = char::from(d).to_digit(16)?;
        Some(acc << 4 | v)
    })
}

/// Writes a number as ECMAScript `Number::toString(10)` (ECMA-262 §6.1.6.1.20): the
/// shortest digits that round-trip, laid out without an exponent from 1e-7 to 1e21.
fn write_js_number<W, F>(w: &mut W, value: F) -> io::Result<()>
where
    W: ?Sized + io::Write,
    F: zmij::Float + Into<f64> + Copy,
{
    let v: f64 = value.into();
    if !v.is_finite() {
        // serde_json writes `null` before it gets here, as JSON.stringify does.
        return w.write_all(b"null");
    }
    let sign: &[u8] = if v < 0.0 { b"-" } else { b"" };
    let abs = v.abs();
    // Integers, the common case, need no float formatting (also -0: JSON.stringify(-0) is "0").
    if abs.fract() == 0.0 && abs < 9_007_199_254_740_992.0 {
        w.write_all(sign)?;
        return w.write_all(format_u64(abs as u64, &mut [0; 20]));
    }
    let mut buf = zmij::Buffer::new();
    let formatted = buf.format_finite(value);
    // zmij writes plain decimals only between 1e-5 and 1e16, inside JavaScript's plain
    // range, and then as JavaScript does, but for the ".0" of integers past 2^53.
    if !formatted.contains('e') && !formatted.ends_with(".0") {
        return w.write_all(formatted.as_bytes());
    }
    w.write_all(sign)?;
    let (digits, n) = decimal_digits(formatted);
    let digits = digits.as_slice();
    let k = digits.len() as i32;
    // value = 0.d1d2...dk × 10^n
    if k <= n && n <= 21 {
        w.write_all(digits)?;
        write_zeros(w, (n - k) as usize)
    } else if 0 < n && n <= 21 {
        // Here n < k: the point falls inside the digits.
        let (int, frac) = digits.split_at_checked(n as usize).unwrap_or((digits, &[]));
        w.write_all(int)?;
        w.write_all(b".")?;
        w.write_all(frac)
    } else if -6 < n && n <= 0 {
        w.write_all(b"0.")?;
        write_zeros(w, (-n) as usize)?;
        w.write_all(digits)
    } else {
        let (first, rest) = digits.split_at_checked(1).unwrap_or((digits, &[]));
        w.write_all(first)?;
        if !rest.is_empty() {
            w.write_all(b".")?;
            w.write_all(rest)?;
        }
        let e = n - 1;
        w.write_all(if e < 0 { b"e-" } else { b"e+" })?;
        w.write_all(format_u64(u64::from(e.unsigned_abs()), &mut [0; 20]))
    }
}

/// The significant digits of a formatted positive number (`12.5`, `0.001`, `1.5e+200`),
/// without leading or trailing zeros, and `n` such that the number is 0.digits × 10^n.
fn decimal_digits(formatted: &str) -> (Digits, i32) {
    let unsigned = formatted.trim_start_matches('-');
    let (mantissa, exp) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (unsigned, 0),
    };
    let int_len = mantissa.find('.').unwrap_or(mantissa.len());
    let mut n = int_len as i32 + exp;
    let mut digits = Digits::default();
    for d in mantissa.bytes().filter(u8::is_ascii_digit) {
        if digits.len == 0 && d == b'0' {
            n -= 1;
        } else {
            digits.push(d);
        }
    }
    while digits.as_slice().last() == Some(&b'0') {
        digits.len -= 1;
    }
    (digits, n)
}

/// Up to 32 decimal digits (a double has at most 17 significant ones).
#[derive(Default)]
struct Digits {
    buf: [u8; 32],
    len: usize,
}

impl Digits {
    fn push(&mut self, d: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = d;
            self.len += 1;
        }
    }

    fn as_slice(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// `n` in decimal, written at the end of `buf`.
pub(crate) fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(d) = buf.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    buf.get(i..).unwrap_or_default()
}

fn write_zeros<W: ?Sized + io::Write>(w: &mut W, n: usize) -> io::Result<()> {
    const ZEROS: [u8; 21] = [b'0'; 21];
    w.write_all(ZEROS.get(..n).unwrap_or(&ZEROS))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn js(v: f64) -> String {
        let mut out = Vec::new();
        write_js_number(&mut out, v).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_are_written_as_javascript_does() {
        // Expected strings are what `String(x)` prints in Node.
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (-1.0, "-1"),
            (1.5, "1.5"),
            (-1.5, "-1.5"),
            (100.0, "100"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (123.456, "123.456"),
            (1e20, "100000000000000000000"),
            (1.2345678901234568e20, "123456789012345680000"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (1.2345678901234568e22, "1.2345678901234568e+22"),
            (9007199254740992.0, "9007199254740992"),
            (0.000001, "0.000001"),
            (0.0000015, "0.0000015"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (-1.5e-7, "-1.5e-7"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN, "-1.7976931348623157e+308"),
            (0.0, "0"),
            (-0.0, "0"),
            (f64::NAN, "null"),
            (1e15, "1000000000000000"),
            (1e16, "10000000000000000"),
            (1.5e16, "15000000000000000"),
            (12.5, "12.5"),
            (0.00001, "0.00001"),
            (0.001, "0.001"),
            (-2.5, "-2.5"),
            (1.5e200, "1.5e+200"),
            (-1e-300, "-1e-300"),
            (9007199254740994.0, "9007199254740994"),
            (-9007199254740994.0, "-9007199254740994"),
            (1.0000000000000002, "1.0000000000000002"),
            (-0.000015, "-0.000015"),
            (-1.5e16, "-15000000000000000"),
        ];
        for (v, want) in cases {
            assert_eq!(js(*v), *want, "{v:e}");
        }
        let mut out = Vec::new();
        write_js_number(&mut out, 1.1f32).unwrap();
        assert_eq!(out, b"1.1");
    }

    /// Node's `String(x)` for 3,500 doubles: every layout boundary of Number::toString, a
    /// shortest-digit tie (999900000000000.25 is "…0.2", the even digit), random values.
    #[test]
    fn numbers_match_node() {
        let fixture = include_str!("../../testdata/js-number-tostring.txt");
        let mut checked = 0;
        for line in fixture.lines().filter(|l| !l.starts_with('#')) {
            let (bits, want) = line.split_once(' ').unwrap();
            let v = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
            assert_eq!(js(v), want, "{v:e} ({bits})");
            checked += 1;
        }
        assert!(checked > 3000);
    }

    #[test]
    fn stringify_matches_javascript() {
        let v: Value = serde_json::from_str(
            r#"{"b":1.0,"a":[1e2,-0,1e21,"\u0001\b\t\n\f\r\"\\/\u007f\u2028é"],"c":null}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        write_json(&mut out, &v).unwrap();
        // Node: JSON.stringify(JSON.parse(<the same text>))
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"b\":1,\"a\":[100,0,1e+21,\"\\u0001\\b\\t\\n\\f\\r\\\"\\\\/\u{7f}\u{2028}é\"],\"c\":null}"
        );
        let mut out = Vec::new();
        write_json(&mut out, &f64::INFINITY).unwrap();
        assert_eq!(out, b"null");
    }

    #[test]
    fn numbers_parse_correctly_rounded() {
        // JSON.parse rounds to the nearest double, as Rust's parser does.
        for text in [
            "1.5e200",
            "1.5000000000000001e+200",
            "2.2250738585072014e-308",
            "0.1",
        ] {
            let want: f64 = text.parse().unwrap();
            let got = parse(text).unwrap().as_f64().unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{text}");
        }
    }

    #[test]
    fn keys_keep_insertion_order_and_last_duplicate_wins() {
        let v = parse(r#"{"b":1,"a":2,"b":3}"#).unwrap();
        let mut out = Vec::new();
        write_json(&mut out, &v).unwrap();
        assert_eq!(out, br#"{"b":3,"a":2}"#);
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        assert_eq!(parse(r#"["\ud83d"]"#), Ok(json!(["\u{FFFD}"])));
        assert_eq!(parse(r#"["\udc00x"]"#), Ok(json!(["\u{FFFD}x"])));
        assert_eq!(
            parse(r#"{"\ud800":"a\ud83d\ude00b\ud800\u0041"}"#),
            Ok(json!({"\u{FFFD}": "a😀b\u{FFFD}A"}))
        );
        // An escaped backslash before `u` is not an escape.
        assert_eq!(parse(r#"["\\ud800"]"#), Ok(json!(["\\ud800"])));
        assert_eq!(replace_lone_surrogates(r#"["\\ud800"]"#), None);
        // Only inside strings; the result must still be valid JSON to be accepted.
        assert_eq!(parse(r#"[\ud800]"#), Err(DecodeError::InvalidJson));
        assert_eq!(parse(r#"["\ud800",]"#), Err(DecodeError::InvalidJson));
        assert_eq!(parse(r#"["\ud8"]"#), Err(DecodeError::InvalidJson));
    }

    #[test]
    fn invalid_json_and_trailing_garbage_fail() {
        for bad in [
            "", "[", "[1,]", "[1] x", "abc", "'a'", "[1]]", "{\"a\"}", "[NaN]", "1e400",
        ] {
            assert_eq!(parse(bad), Err(DecodeError::InvalidJson), "{bad:?}");
        }
        // JSON.parse allows surrounding JSON whitespace.
        assert_eq!(parse(" [1] \n"), Ok(json!([1])));
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = "[".repeat(127) + &"]".repeat(127);
        assert!(parse(&ok).is_ok());
        let deep = "[".repeat(128) + &"]".repeat(128);
        assert_eq!(parse(&deep), Err(DecodeError::InvalidJson));
    }
}
