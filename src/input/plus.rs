//! `--plus`'s editing strings, modelled on the shell's `${var…}` edits: `{:-default}`,
//! `{:N}`, `{:N:M}`, `{#re}`, `{##re}`, `{%re}`, `{%%re}`, `{/re/with}` (and `{//…}`, `{/#…}`,
//! `{/%…}`), `{^re}`, `{^^re}`, `{,re}` and `{,,re}`, each applied to the value `{}` stands for.
//!
//! GNU parallel runs these as Perl substitutions; troop runs them with the `regex` crate, whose
//! syntax is Perl's for everything these strings are used for (no look-around, no
//! back-references).

use std::borrow::Cow;

use regex::bytes::{Captures, Regex};

/// One editing string, parsed and compiled.
#[derive(Debug, Clone)]
pub(super) enum Edit {
    /// `{:-text}`: `text` when the value is empty.
    Default(Vec<u8>),
    /// `{:N}` (no length) and `{:N:M}`: the value from byte N, M bytes long.
    Substring { from: usize, len: Option<usize> },
    /// `{#re}`, `{##re}`, `{%re}`, `{%%re}`, `{/re/with}` and its anchored and global forms:
    /// a substitution. `global` replaces every match instead of the first.
    Replace {
        re: Regex,
        with: Vec<u8>,
        global: bool,
    },
    /// `{^re}`, `{^^re}`, `{,re}`, `{,,re}`: upper- or lower-case what matches.
    Case {
        re: Regex,
        upper: bool,
        global: bool,
    },
}

impl Edit {
    /// Reads the text between the braces; `None` when it is not an editing string (or its
    /// pattern is not a valid regular expression).
    pub(super) fn parse(inner: &[u8]) -> Option<Edit> {
        let text = std::str::from_utf8(inner).ok()?;
        // `{##}` is GNU parallel's number of jobs, which troop does not give: not an edit.
        if matches!(text, "##" | "%%" | "^^" | ",,") {
            return None;
        }
        let regex = |pattern: &str| Regex::new(pattern).ok();
        if let Some(default) = text.strip_prefix(":-") {
            return (!default.is_empty()).then(|| Edit::Default(default.as_bytes().to_vec()));
        }
        if let Some(rest) = text.strip_prefix(':') {
            let (from, len) = match rest.split_once(':') {
                Some((from, len)) => (from, Some(len)),
                None => (rest, None),
            };
            let number = |s: &str| {
                (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| s.parse().ok())
                    .flatten()
            };
            return Some(Edit::Substring {
                from: number(from)?,
                len: match len {
                    Some(len) => Some(number(len)?),
                    None => None,
                },
            });
        }
        let replace = |pattern: String, with: &str, global: bool| {
            Some(Edit::Replace {
                re: regex(&pattern)?,
                with: with.as_bytes().to_vec(),
                global,
            })
        };
        if let Some(re) = text.strip_prefix("##").filter(|re| !re.is_empty()) {
            return replace(format!("^(?:{re})"), "", false);
        }
        if let Some(re) = text.strip_prefix('#').filter(|re| !re.is_empty()) {
            return replace(format!("^(?:{})", ungreedy(re)), "", false);
        }
        if let Some(re) = text.strip_prefix("%%").filter(|re| !re.is_empty()) {
            return replace(format!("(?:{re})$"), "", false);
        }
        if let Some(re) = text.strip_prefix('%').filter(|re| !re.is_empty()) {
            // The shortest suffix: everything before it as long as can be.
            return replace(format!("^(?s)(.*)(?:{})$", ungreedy(re)), "${1}", false);
        }
        if let Some(rest) = text.strip_prefix('/') {
            let (anchor, global, rest) = match rest.as_bytes().first() {
                Some(b'/') => ("", true, &rest[1..]),
                Some(b'#') => ("^", false, &rest[1..]),
                Some(b'%') => ("$", false, &rest[1..]),
                _ => ("", false, rest),
            };
            let (re, with) = rest.split_once('/')?;
            if re.is_empty() {
                return None;
            }
            let pattern = match anchor {
                "^" => format!("^(?:{re})"),
                "$" => format!("(?:{re})$"),
                _ => re.to_string(),
            };
            // The replacement is literal text.
            return replace(pattern, &with.replace('$', "$$"), global);
        }
        for (prefix, upper, global) in [
            ("^^", true, true),
            ("^", true, false),
            (",,", false, true),
            (",", false, false),
        ] {
            if let Some(re) = text.strip_prefix(prefix).filter(|re| !re.is_empty()) {
                let pattern = if global {
                    re.to_string()
                } else {
                    format!("^(?:{re})")
                };
                return Some(Edit::Case {
                    re: regex(&pattern)?,
                    upper,
                    global,
                });
            }
        }
        None
    }

    /// The edited value.
    pub(super) fn apply<'v>(&self, value: &'v [u8]) -> Cow<'v, [u8]> {
        match self {
            Edit::Default(text) if value.is_empty() => Cow::Owned(text.clone()),
            Edit::Default(_) => Cow::Borrowed(value),
            Edit::Substring { from, len } => {
                let rest = value.get(*from..).unwrap_or_default();
                Cow::Borrowed(&rest[..len.map_or(rest.len(), |n| n.min(rest.len()))])
            }
            Edit::Replace { re, with, global } => match global {
                true => re.replace_all(value, with.as_slice()),
                false => re.replace(value, with.as_slice()),
            },
            Edit::Case { re, upper, global } => {
                let change = |c: &Captures| match upper {
                    true => c[0].to_ascii_uppercase(),
                    false => c[0].to_ascii_lowercase(),
                };
                match global {
                    true => re.replace_all(value, change),
                    false => re.replace(value, change),
                }
            }
        }
    }
}

/// GNU parallel's `make_regexp_ungreedy`: every `*` and `+` that is not escaped becomes lazy.
fn ungreedy(re: &str) -> String {
    let mut out = String::with_capacity(re.len() + 4);
    let mut escaped = false;
    let mut chars = re.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if (c == '*' || c == '+') && chars.peek() != Some(&'?') {
            out.push('?');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(inner: &str, value: &str) -> String {
        let edit = Edit::parse(inner.as_bytes()).unwrap_or_else(|| panic!("{inner} parses"));
        String::from_utf8(edit.apply(value.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn edits_do_what_the_shells_do() {
        assert_eq!(edit(":-none", ""), "none");
        assert_eq!(edit(":-none", "a"), "a");
        assert_eq!(edit(":2", "abcdef"), "cdef");
        assert_eq!(edit(":2:3", "abcabc"), "cab");
        assert_eq!(edit(":9:3", "abc"), "");
        assert_eq!(edit("#z.*z.", "z.z.z.foo"), "z.foo");
        assert_eq!(edit("##z.*z.", "z.z.z.foo"), "foo");
        assert_eq!(edit("%.z.*z", "foo.z.z.z"), "foo.z");
        assert_eq!(edit("%%.z.*z", "foo.z.z.z"), "foo");
        assert_eq!(edit("%.gz", "a.tar.gz"), "a.tar");
        assert_eq!(edit("#a", "a.tar.gz"), ".tar.gz");
        assert_eq!(edit("/a/X", "abcabc"), "Xbcabc");
        assert_eq!(edit("//a/X", "abcabc"), "XbcXbc");
        assert_eq!(edit("/#a/X", "abca"), "Xbca");
        assert_eq!(edit("/%a/X", "abca"), "abcX");
        assert_eq!(edit("/a/$1", "abc"), "$1bc");
        assert_eq!(edit("^a", "abca"), "Abca");
        assert_eq!(edit("^^a", "abca"), "AbcA");
        assert_eq!(edit(",A", "ABCA"), "aBCA");
        assert_eq!(edit(",,A", "ABCA"), "aBCa");
    }

    #[test]
    fn other_texts_are_not_edits() {
        for inner in [
            "", "#", "##", "%", "%%", ":", ":x", ":-", "/a", "//", "a", "1",
        ] {
            assert!(Edit::parse(inner.as_bytes()).is_none(), "{inner:?}");
        }
        assert_eq!(ungreedy(r"a*b+c*?\*"), r"a*?b+?c*?\*");
    }
}
