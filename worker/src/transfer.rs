//! Files that travel with a task to a worker on another host and back (GNU parallel's
//! `--transferfile`, `--return`, `--cleanup`, `--basefile`), on the worker's side.
//!
//! Before the task runs, each file sent is written at its path (relative to the worker's working
//! directory, a remote login's home), its directories made first and its permission bits kept.
//! After the task ended, each file asked back is read into the report; one that is missing is
//! said on the task's stderr, as rsync would say it in GNU parallel. With `cleanup`, both are
//! removed afterwards. A file that cannot be written fails the task before it starts: it would
//! run on the wrong input.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::protocol::{FileCopy, Transfer};

/// Writes the files a task needs before it runs; the first that cannot be written, in words.
pub fn place(transfer: &Transfer) -> Result<(), String> {
    for file in transfer.base.iter().chain(&transfer.send) {
        let path = Path::new(&file.path);
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(path, &file.bytes)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(file.mode & 0o7777))
        };
        write().map_err(|e| format!("cannot write the transferred file {}: {e}", file.path))?;
    }
    Ok(())
}

/// Reads the files asked back after the task ended. Returns them, and a line for the task's
/// stderr for each that could not be read.
pub fn collect(transfer: &Transfer) -> (Vec<FileCopy>, Vec<u8>) {
    let mut files = Vec::new();
    let mut complaints = Vec::new();
    for path in &transfer.fetch {
        match std::fs::read(path) {
            Ok(bytes) => {
                let mode = std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode());
                files.push(FileCopy {
                    path: path.clone(),
                    bytes,
                    mode,
                });
            }
            Err(e) => complaints.extend_from_slice(
                format!("troop-worker: --return {path}: cannot read it: {e}\n").as_bytes(),
            ),
        }
    }
    (files, complaints)
}

/// Removes the files sent and the files asked back (`--cleanup`).
pub fn clean(transfer: &Transfer) {
    if !transfer.cleanup {
        return;
    }
    for path in transfer
        .send
        .iter()
        .map(|f| f.path.as_str())
        .chain(transfer.fetch.iter().map(String::as_str))
    {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_placed_collected_and_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        let transfer = Transfer {
            base: vec![FileCopy {
                path: at("base.txt"),
                bytes: b"kept".to_vec(),
                mode: 0o644,
            }],
            send: vec![FileCopy {
                path: at("in/deep/data.txt"),
                bytes: b"abc".to_vec(),
                mode: 0o750,
            }],
            fetch: vec![at("out.txt"), at("missing.txt")],
            cleanup: true,
        };
        place(&transfer).unwrap();
        let placed = Path::new(&transfer.send[0].path);
        assert_eq!(std::fs::read(placed).unwrap(), b"abc");
        assert_eq!(
            std::fs::metadata(placed).unwrap().permissions().mode() & 0o777,
            0o750
        );
        std::fs::write(at("out.txt"), b"result").unwrap();
        let (files, complaints) = collect(&transfer);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].bytes, b"result");
        let complaints = String::from_utf8(complaints).unwrap();
        assert!(complaints.contains("missing.txt"), "{complaints}");
        clean(&transfer);
        assert!(!placed.exists() && !dir.path().join("out.txt").exists());
        assert!(dir.path().join("base.txt").exists(), "a base file stays");
    }

    #[test]
    fn a_file_that_cannot_be_written_says_which() {
        let transfer = Transfer {
            base: Vec::new(),
            send: vec![FileCopy {
                path: "/proc/troop-cannot/x".into(),
                bytes: Vec::new(),
                mode: 0o644,
            }],
            fetch: Vec::new(),
            cleanup: false,
        };
        let e = place(&transfer).unwrap_err();
        assert!(e.contains("/proc/troop-cannot/x"), "{e}");
    }
}
