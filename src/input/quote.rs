//! Shell quoting of substituted values, and the character and word classes that decide whether a
//! command line needs a shell at all.

/// Bytes that never need quoting in a value. `=` is left out so that a value can never turn a
/// command word into an assignment, and `^` because some historical shells treat it as a pipe.
fn is_safe_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'_' | b'-' | b'.' | b'/' | b',' | b':' | b'+' | b'@' | b'%'
        )
}

/// Bytes that may appear in the literal text of a command run without a shell: letters, digits,
/// space and `_ - . / , : + @ % ^ =` (with `=` refused in the first word by the caller).
pub(crate) fn is_plain_byte(b: u8) -> bool {
    is_safe_byte(b) || matches!(b, b' ' | b'^' | b'=')
}

/// Reserved words: bare, they change how the shell parses a line, so values equal to one are quoted.
const RESERVED_WORDS: &[&str] = &[
    "case", "coproc", "do", "done", "elif", "else", "esac", "fi", "for", "function", "if", "in",
    "select", "then", "time", "until", "while",
];

/// Builtins that only make sense inside a shell (or behave differently there), so a command whose
/// first word is one of these, or a reserved word, runs through `sh -c`. Builtins with an
/// equivalent program on every system (`echo`, `printf`, `test`, `true`, `false`, `pwd`) are not
/// listed, so commands starting with them run without a shell.
const SHELL_BUILTINS: &str = "\
    . : alias bg bind break builtin caller cd command compgen complete continue declare dirs \
    disown enable eval exec exit export fc fg getopts hash help history jobs kill let local \
    logout mapfile popd pushd read readarray readonly return set shift shopt source suspend \
    times trap type typeset ulimit umask unalias unset wait";

fn is_reserved(value: &[u8]) -> bool {
    value.len() <= 8 && RESERVED_WORDS.iter().any(|w| w.as_bytes() == value)
}

/// Whether `word`, as the first word of a command, is handled by the shell itself.
pub(crate) fn is_shell_word(word: &[u8]) -> bool {
    RESERVED_WORDS.iter().any(|w| w.as_bytes() == word)
        || SHELL_BUILTINS
            .split(' ')
            .any(|builtin| builtin.as_bytes() == word)
}

/// Appends `value` to `out` as exactly one shell word: bare when that is safe, otherwise in single
/// quotes with each embedded `'` written as `'\''`; the empty value becomes `''`. Any other byte,
/// UTF-8 or not, stands for itself inside single quotes.
pub(crate) fn push_quoted(out: &mut Vec<u8>, value: &[u8]) {
    if value.is_empty() {
        out.extend_from_slice(b"''");
    } else if value.iter().copied().all(is_safe_byte) && !is_reserved(value) {
        out.extend_from_slice(value);
    } else {
        out.push(b'\'');
        for (i, part) in value.split(|&b| b == b'\'').enumerate() {
            if i > 0 {
                out.extend_from_slice(b"'\\''");
            }
            out.extend_from_slice(part);
        }
        out.push(b'\'');
    }
}

/// `value` as one shell word (see [`push_quoted`]).
#[cfg(test)]
pub(crate) fn quote(value: &str) -> String {
    let mut out = Vec::with_capacity(value.len() + 2);
    push_quoted(&mut out, value.as_bytes());
    String::from_utf8(out).expect("quoting keeps UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_values_stay_bare() {
        for v in ["a", "abc123", "-n", "a.b/c_d", "x,y:z+w@h%", "/usr/bin"] {
            assert_eq!(quote(v), v);
        }
    }

    #[test]
    fn unsafe_values_are_single_quoted() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("'"), "''\\'''");
        assert_eq!(quote("a;b"), "'a;b'");
        assert_eq!(quote("$HOME"), "'$HOME'");
        assert_eq!(quote("~"), "'~'");
        assert_eq!(quote("a=b"), "'a=b'");
        assert_eq!(quote("^"), "'^'");
        assert_eq!(quote("é"), "'é'");
        assert_eq!(quote("a\nb"), "'a\nb'");
        assert_eq!(quote("if"), "'if'");
        assert_eq!(quote("done"), "'done'");
    }

    #[test]
    fn quoted_values_split_back_to_themselves() {
        for v in [
            "",
            "a b",
            "it's",
            "''",
            "a\\b",
            "\"q\"",
            "$(x)",
            "`x`",
            "*?[a]",
            "tab\there",
        ] {
            assert_eq!(shlex::split(&quote(v)), Some(vec![v.to_string()]), "{v:?}");
        }
    }

    #[test]
    fn shell_words_and_plain_bytes() {
        for w in [
            "cd", "export", "set", "source", ".", ":", "if", "for", "while", "case", "exit",
        ] {
            assert!(is_shell_word(w.as_bytes()), "{w}");
        }
        for w in ["echo", "printf", "true", "ls", "sleep", "cdx"] {
            assert!(!is_shell_word(w.as_bytes()), "{w}");
        }
        assert!(b"az09 _-./,:+@%^=".iter().all(|&b| is_plain_byte(b)));
        assert!(
            !b"'\"$|&;<>()*?[]~#\\`!{}\n\t"
                .iter()
                .any(|&b| is_plain_byte(b))
        );
    }
}
