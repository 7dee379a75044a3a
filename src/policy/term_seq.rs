//! `--term-seq`: how a task is stopped, as GNU parallel writes it (`TERM,200,TERM,100,KILL,25`).

use troop_worker::protocol::TermStep;

use super::PolicyError;
use super::retry::parse_signal;

/// Parses pairs of a signal and the milliseconds to wait after it.
pub fn parse_term_seq(text: &str) -> Result<Vec<TermStep>, PolicyError> {
    let bad = || PolicyError::InvalidTermSeq(text.to_string());
    let items: Vec<&str> = text.split(',').map(str::trim).collect();
    if items.len() % 2 != 0 || items.is_empty() {
        return Err(bad());
    }
    items
        .chunks(2)
        .map(|pair| {
            let signal = parse_signal(pair[0]).ok_or_else(bad)?;
            let wait_ms = pair[1].parse::<u64>().map_err(|_| bad())?;
            Ok(TermStep { signal, wait_ms })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_parallels_default_parses_to_ours() {
        let seq = parse_term_seq("TERM,200,TERM,100,TERM,50,KILL,25").unwrap();
        assert_eq!(seq, troop_worker::protocol::default_term_seq());
        assert_eq!(
            parse_term_seq("sigint, 10, KILL, 0").unwrap(),
            vec![
                TermStep {
                    signal: libc::SIGINT,
                    wait_ms: 10
                },
                TermStep {
                    signal: libc::SIGKILL,
                    wait_ms: 0
                }
            ]
        );
    }

    #[test]
    fn bad_sequences_quote_the_value() {
        for bad in ["", "TERM", "TERM,x", "BOGUS,10", "TERM,10,KILL"] {
            let err = parse_term_seq(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")), "{bad}: {err}");
        }
    }
}
