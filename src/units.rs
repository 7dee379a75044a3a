//! Units on the command line: durations (`10s`, `500ms`, `1.5h`) and sizes (`512M`, `2GiB`).
//!
//! Both parsers read the number as an exact decimal, so `0.1s` is exactly 100 ms and `1.5G` is
//! exactly 1610612736 bytes; nothing goes through floating point.

use std::time::Duration;

use thiserror::Error;

/// A duration or size that cannot be used.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum UnitError {
    /// Not a number with a known time unit.
    #[error(
        "invalid duration `{0}`: use a number with us, ms, s, m, h or d, e.g. 500ms or 10s \
         (a bare number means seconds)"
    )]
    InvalidDuration(String),
    /// A duration below zero.
    #[error("invalid duration `{0}`: a duration cannot be negative; use e.g. 500ms or 10s")]
    NegativeDuration(String),
    /// A duration beyond what [`Duration`] holds.
    #[error("duration `{0}` is too large: use at most 18446744073709551615s")]
    DurationTooLarge(String),
    /// Not a number with a known size unit.
    #[error(
        "invalid size `{0}`: use a number of bytes, optionally with K, M, G or T (powers of \
         1024, optionally followed by B or iB), e.g. 4096, 512M, 1.5G or 2GiB"
    )]
    InvalidSize(String),
    /// A size below zero.
    #[error("invalid size `{0}`: a size cannot be negative; use e.g. 4096, 512M or 1G")]
    NegativeSize(String),
    /// A size beyond 2^64 - 1 bytes.
    #[error("size `{0}` is too large: use at most 18446744073709551615 bytes (16 EiB)")]
    SizeTooLarge(String),
}

/// Nanoseconds in one unit of each accepted time suffix; no suffix means seconds.
const TIME_UNITS: &[(&str, u128)] = &[
    ("", 1_000_000_000),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];

/// Parses a duration: a non-negative decimal number followed by `us`, `ms`, `s`, `m`, `h` or `d`
/// (case-insensitive, spaces allowed before the unit). A bare number means seconds, as in GNU
/// parallel's `--timeout`. Precision below a nanosecond is dropped.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let t = s.trim();
    if t.starts_with('-') {
        return Err(UnitError::NegativeDuration(s.into()));
    }
    let invalid = || UnitError::InvalidDuration(s.into());
    let (number, unit) = split_number(t);
    let unit = unit.to_lowercase();
    let per_unit = TIME_UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|&(_, ns)| ns)
        .ok_or_else(invalid)?;
    let nanos = match Decimal::parse(number) {
        Parsed::Value(d) => d.scale(per_unit),
        Parsed::Invalid => return Err(invalid()),
        Parsed::TooLarge => None,
    }
    .ok_or_else(|| UnitError::DurationTooLarge(s.into()))?;
    let secs =
        u64::try_from(nanos / 1_000_000_000).map_err(|_| UnitError::DurationTooLarge(s.into()))?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Parses a size in bytes: a non-negative decimal number, optionally followed by `K`, `M`, `G`
/// or `T` (powers of 1024, case-insensitive) and an optional `B` or `iB`. A fractional number of
/// bytes is rounded down.
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let t = s.trim();
    if t.starts_with('-') {
        return Err(UnitError::NegativeSize(s.into()));
    }
    let invalid = || UnitError::InvalidSize(s.into());
    let (number, unit) = split_number(t);
    let unit = unit.to_lowercase();
    let prefix = unit
        .strip_suffix("ib")
        .filter(|p| !p.is_empty())
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let per_unit: u128 = match prefix {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(invalid()),
    };
    let bytes = match Decimal::parse(number) {
        Parsed::Value(d) => d.scale(per_unit),
        Parsed::Invalid => return Err(invalid()),
        Parsed::TooLarge => None,
    };
    bytes
        .and_then(|b| u64::try_from(b).ok())
        .ok_or_else(|| UnitError::SizeTooLarge(s.into()))
}

/// Splits `10.5 ms` into `("10.5", "ms")`: the leading digits and dots, then the rest with
/// leading spaces removed.
fn split_number(t: &str) -> (&str, &str) {
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    (&t[..end], t[end..].trim_start())
}

/// The most fraction digits kept: beyond 18, a digit is worth less than a nanosecond of a day.
const MAX_FRACTION_DIGITS: u32 = 18;

/// An exact non-negative decimal number: `int` + `frac` / 10^`frac_len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    int: u128,
    frac: u128,
    frac_len: u32,
}

/// The result of reading a decimal number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parsed {
    Value(Decimal),
    Invalid,
    TooLarge,
}

impl Decimal {
    /// Reads `12`, `12.5`, `.5` or `12.`; anything else (signs, exponents, `inf`, `NaN`, a second
    /// dot, no digits at all) is invalid.
    fn parse(text: &str) -> Parsed {
        let (int_text, frac_text) = text.split_once('.').unwrap_or((text, ""));
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int_text.len() + frac_text.len() == 0 || !all_digits(int_text) || !all_digits(frac_text)
        {
            return Parsed::Invalid;
        }
        let mut int: u128 = 0;
        for b in int_text.bytes() {
            match int
                .checked_mul(10)
                .and_then(|v| v.checked_add(u128::from(b - b'0')))
            {
                Some(v) => int = v,
                None => return Parsed::TooLarge,
            }
        }
        let mut frac: u128 = 0;
        let mut frac_len = 0;
        for b in frac_text.bytes().take(MAX_FRACTION_DIGITS as usize) {
            frac = frac * 10 + u128::from(b - b'0');
            frac_len += 1;
        }
        Parsed::Value(Decimal {
            int,
            frac,
            frac_len,
        })
    }

    /// The number times `unit`, rounded down; `None` on overflow.
    fn scale(self, unit: u128) -> Option<u128> {
        let whole = self.int.checked_mul(unit)?;
        let part = self.frac.checked_mul(unit)? / 10u128.pow(self.frac_len);
        whole.checked_add(part)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations_with_every_unit() {
        assert_eq!(parse_duration("10s"), Ok(ms(10_000)));
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("1d"), Ok(ms(86_400_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1_500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("250µs"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("0.1s"), Ok(ms(100)));
        assert_eq!(parse_duration(".5s"), Ok(ms(500)));
        assert_eq!(parse_duration("3."), Ok(ms(3_000)));
        assert_eq!(parse_duration(" 10 MS "), Ok(ms(10)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn a_bare_number_is_seconds() {
        assert_eq!(parse_duration("5"), Ok(ms(5_000)));
        assert_eq!(parse_duration("0.25"), Ok(ms(250)));
    }

    #[test]
    fn tiny_fractions_round_down_to_nanoseconds() {
        assert_eq!(parse_duration("1.0000000019s"), Ok(Duration::new(1, 1)));
        assert_eq!(
            parse_duration("0.0000000000000000000001h"),
            Ok(Duration::ZERO)
        );
    }

    #[test]
    fn bad_durations_quote_the_value() {
        for bad in [
            "", "abc", "10x", "1.2.3s", "NaN", "inf", "1e3", "s", ".", "+5s", "10 s s",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert_eq!(err, UnitError::InvalidDuration(bad.into()));
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
        assert_eq!(
            parse_duration("abc").unwrap_err().to_string(),
            "invalid duration `abc`: use a number with us, ms, s, m, h or d, e.g. 500ms or 10s \
             (a bare number means seconds)"
        );
    }

    #[test]
    fn negative_and_huge_durations_are_refused() {
        let err = parse_duration("-5s").unwrap_err();
        assert_eq!(err, UnitError::NegativeDuration("-5s".into()));
        assert!(err.to_string().contains("`-5s`"));
        let huge = "99999999999999999999999d";
        assert_eq!(
            parse_duration(huge),
            Err(UnitError::DurationTooLarge(huge.into()))
        );
        let digits = "9".repeat(60);
        assert_eq!(
            parse_duration(&digits),
            Err(UnitError::DurationTooLarge(digits.clone()))
        );
    }

    #[test]
    fn sizes_with_every_unit() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("100k"), Ok(100 * 1024));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1.5G"), Ok(1_610_612_736));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("2gib"), Ok(2 << 30));
        assert_eq!(parse_size("3TB"), Ok(3 << 40));
        assert_eq!(parse_size("10B"), Ok(10));
        assert_eq!(parse_size("1 KiB"), Ok(1024));
        assert_eq!(parse_size("0.5"), Ok(0));
        assert_eq!(parse_size("1.0009765625K"), Ok(1025));
    }

    #[test]
    fn bad_sizes_quote_the_value() {
        for bad in ["", "abc", "1X", "1iB", "1KK", "1.2.3M", "NaN", "1e6"] {
            let err = parse_size(bad).unwrap_err();
            assert_eq!(err, UnitError::InvalidSize(bad.into()));
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
        assert_eq!(
            parse_size("-1G").unwrap_err().to_string(),
            "invalid size `-1G`: a size cannot be negative; use e.g. 4096, 512M or 1G"
        );
        assert_eq!(
            parse_size("16777216T"),
            Err(UnitError::SizeTooLarge("16777216T".into()))
        );
        assert_eq!(parse_size("16777215T"), Ok(18_446_742_974_197_923_840));
    }
}
