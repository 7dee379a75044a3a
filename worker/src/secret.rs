//! The run's secret, which a worker that connects back over TCP proves it holds: how it is
//! made, written (hex, in the worker's environment), taken out of the worker's environment, and
//! the HMAC-SHA256 proofs of [`crate::handshake`] made with it.

use std::io::Read;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

use crate::protocol::PROTOCOL_VERSION;

/// The variable that carries the run's secret, in hex, to a worker that connects back.
pub const ENV_SECRET: &str = "TROOP_WORKER_SECRET";
/// The bytes of a secret the supervisor makes.
pub const SECRET_LEN: usize = 32;
/// The fewest bytes a secret may have.
pub const MIN_SECRET_LEN: usize = 16;

/// What each side's proof is bound to besides the nonce, so that neither passes for the other;
/// the worker's names the protocol version too.
const SUPERVISOR_LABEL: &str = "troop supervisor";

fn worker_label() -> String {
    format!("troop worker v{PROTOCOL_VERSION}")
}

/// A secret that is not one.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("{ENV_SECRET} is not set; troop sets it for the workers it starts")]
    Missing,
    #[error("{ENV_SECRET} must be at least {} hex digits", 2 * MIN_SECRET_LEN)]
    Malformed,
}

/// A run's secret. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A fresh secret of [`SECRET_LEN`] random bytes.
    pub fn generate() -> std::io::Result<Secret> {
        Ok(Secret(random::<SECRET_LEN>()?.to_vec()))
    }

    pub fn from_hex(hex: &str) -> Result<Secret, SecretError> {
        let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        let hex = hex.trim().as_bytes();
        if hex.len() % 2 != 0 || hex.len() < 2 * MIN_SECRET_LEN {
            return Err(SecretError::Malformed);
        }
        hex.chunks(2)
            .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
            .collect::<Option<Vec<u8>>>()
            .map(Secret)
            .ok_or(SecretError::Malformed)
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn mac(&self, nonce: &[u8], label: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(nonce);
        mac.update(label.as_bytes());
        mac
    }

    /// The worker's answer to the supervisor's challenge `nonce`.
    pub fn worker_proof(&self, nonce: &[u8]) -> [u8; 32] {
        self.mac(nonce, &worker_label())
            .finalize()
            .into_bytes()
            .into()
    }

    /// The supervisor's answer to the worker's challenge `nonce`.
    pub fn supervisor_proof(&self, nonce: &[u8]) -> [u8; 32] {
        self.mac(nonce, SUPERVISOR_LABEL)
            .finalize()
            .into_bytes()
            .into()
    }

    /// Checks a worker's proof in constant time.
    pub fn verify_worker(&self, nonce: &[u8], proof: &[u8]) -> bool {
        self.mac(nonce, &worker_label()).verify_slice(proof).is_ok()
    }

    /// Checks the supervisor's proof in constant time.
    pub fn verify_supervisor(&self, nonce: &[u8], proof: &[u8]) -> bool {
        self.mac(nonce, SUPERVISOR_LABEL)
            .verify_slice(proof)
            .is_ok()
    }
}

/// `N` bytes from the kernel's random source.
pub fn random<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// Reads the secret and removes it from the environment. Its bytes are overwritten first where
/// they lie, in the environment block the process started with, so that `/proc/PID/environ` no
/// longer shows it either.
///
/// Must run while the process is single-threaded.
pub fn take_secret() -> Result<Secret, SecretError> {
    let value = std::env::var(ENV_SECRET);
    let key = std::ffi::CString::new(ENV_SECRET).expect("no NUL in the name");
    // SAFETY: single-threaded (the caller's promise), so nothing reads the environment
    // meanwhile. getenv points into the live environment, writable memory that holds `strlen`
    // bytes of the value; the variable is removed right after.
    unsafe {
        let at = libc::getenv(key.as_ptr());
        if !at.is_null() {
            std::ptr::write_bytes(at, 0, libc::strlen(at));
        }
        std::env::remove_var(ENV_SECRET);
    }
    match value {
        Ok(hex) => Secret::from_hex(&hex),
        Err(std::env::VarError::NotPresent) => Err(SecretError::Missing),
        Err(std::env::VarError::NotUnicode(_)) => Err(SecretError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> Secret {
        Secret(vec![byte; SECRET_LEN])
    }

    const NONCE_LEN: usize = crate::handshake::NONCE_LEN;

    #[test]
    fn the_proofs_are_plain_hmac_sha256_of_the_nonce_then_the_label() {
        // RFC 4231, test case 2, with the data split into a nonce and a label.
        let mac = Secret(b"Jefe".to_vec()).mac(b"what do ya want ", "for nothing?");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let nonce = [7u8; NONCE_LEN];
        let mut expected = Secret(b"Jefe".to_vec()).mac(&nonce, "");
        expected.update(format!("troop worker v{PROTOCOL_VERSION}").as_bytes());
        assert_eq!(
            Secret(b"Jefe".to_vec()).worker_proof(&nonce),
            <[u8; 32]>::from(expected.finalize().into_bytes())
        );
    }

    #[test]
    fn proofs_are_bound_to_the_secret_the_nonce_and_the_side() {
        let (a, b) = (secret(1), secret(2));
        let nonce = [5u8; NONCE_LEN];
        let proof = a.worker_proof(&nonce);
        assert!(a.verify_worker(&nonce, &proof));
        assert!(!b.verify_worker(&nonce, &proof), "another secret");
        assert!(!a.verify_worker(&[6; NONCE_LEN], &proof), "another nonce");
        assert!(
            !a.verify_supervisor(&nonce, &proof),
            "the other side's label"
        );
        assert!(!a.verify_worker(&nonce, &proof[..16]), "a truncated proof");
        assert!(a.verify_supervisor(&nonce, &a.supervisor_proof(&nonce)));
    }

    #[test]
    fn secrets_travel_as_hex_and_short_or_odd_ones_are_refused() {
        let s = Secret::generate().unwrap();
        assert_eq!(s.to_hex().len(), 2 * SECRET_LEN);
        assert_eq!(Secret::from_hex(&s.to_hex()), Ok(s.clone()));
        assert_ne!(s, Secret::generate().unwrap(), "fresh randomness");
        assert_eq!(format!("{s:?}"), "Secret(..)");
        for bad in ["", "abc", &"0".repeat(30), &"g".repeat(64), &"0".repeat(65)] {
            assert_eq!(Secret::from_hex(bad), Err(SecretError::Malformed), "{bad}");
        }
    }
}
