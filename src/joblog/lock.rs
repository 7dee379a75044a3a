//! The advisory lock that keeps two runs from writing one job log at once.
//!
//! A run takes an exclusive `flock` on each job-log file before it reads (`--resume`) or
//! truncates it, and holds it until the run ends; the kernel drops it when the process dies,
//! however it dies. A second run that finds the lock taken is refused before it runs anything,
//! and is told the pid that holds it, read from `/proc/locks`. Only regular files are locked:
//! a log written to a pipe or a terminal is nobody else's to share.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::JobLogError;

/// The locks on a run's job logs, held while this value lives.
#[derive(Debug, Default)]
pub struct LogLock {
    held: Vec<Flock<File>>,
}

impl LogLock {
    /// Locks each path, creating files that do not exist yet (but changing none). Fails with
    /// [`JobLogError::Locked`] when another process holds one, and [`JobLogError::Create`] when
    /// one cannot be opened.
    pub fn acquire<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Result<LogLock, JobLogError> {
        let mut lock = LogLock::default();
        for path in paths {
            // One file named twice (`--joblog` and `--joblog-json` alike) is locked once.
            let same = |f: &Flock<File>| {
                let (a, b) = (f.metadata(), std::fs::metadata(path));
                matches!((a, b), (Ok(a), Ok(b)) if a.dev() == b.dev() && a.ino() == b.ino())
            };
            if lock.held.iter().any(same) {
                continue;
            }
            if let Some(held) = lock_one(path)? {
                lock.held.push(held);
            }
        }
        Ok(lock)
    }
}

fn lock_one(path: &Path) -> Result<Option<Flock<File>>, JobLogError> {
    let create_error = |source| JobLogError::Create {
        path: path.to_path_buf(),
        source,
    };
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Ok(None);
    }
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(create_error)?;
    let locked = Flock::lock(file, FlockArg::LockExclusiveNonblock);
    match locked {
        Ok(held) => Ok(Some(held)),
        Err((file, Errno::EWOULDBLOCK)) => Err(JobLogError::Locked {
            path: path.to_path_buf(),
            holder: holder(&file),
        }),
        Err((_, errno)) if errno == Errno::ENOLCK || errno == Errno::EINVAL => Ok(None),
        Err((_, errno)) => Err(create_error(std::io::Error::from(errno))),
    }
}

/// The pid holding a `flock` on `file`, from `/proc/locks`.
fn holder(file: &File) -> Option<u32> {
    let meta = file.metadata().ok()?;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    holder_in(&locks, meta.dev(), meta.ino())
}

/// The pid of the first `FLOCK` line of `/proc/locks` text on the file `dev`:`ino`.
///
/// A line reads `1: FLOCK  ADVISORY  WRITE 1234 fe:00:10011299 0 EOF`: the device's major and
/// minor numbers in hex, then the inode in decimal. Lines of waiters start with `->`.
fn holder_in(locks: &str, dev: u64, ino: u64) -> Option<u32> {
    let want = format!(
        "{:02x}:{:02x}:{ino}",
        libc::major(dev as libc::dev_t),
        libc::minor(dev as libc::dev_t)
    );
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, "FLOCK", _, _, pid, file, ..] if *file == want => pid.parse().ok(),
            _ => None,
        }
    })
}

/// A message naming the holder, for [`JobLogError::Locked`].
pub(super) fn holder_words(holder: Option<u32>) -> String {
    match holder {
        Some(pid) => format!("pid {pid}"),
        None => "another process".into(),
    }
}

/// The paths that a run with these logs locks.
pub fn paths<'a>(tsv: Option<&'a PathBuf>, json: Option<&'a PathBuf>) -> Vec<&'a Path> {
    tsv.into_iter().chain(json).map(PathBuf::as_path).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let held = LogLock::acquire([log.as_path()]).unwrap();
        assert!(log.exists(), "the lock creates the log");
        let err = LogLock::acquire([log.as_path()]).unwrap_err();
        let JobLogError::Locked { holder, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*holder, Some(std::process::id()));
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id()))
        );
        drop(held);
        drop(LogLock::acquire([log.as_path()]).unwrap());
    }

    #[test]
    fn proc_locks_lines_are_read() {
        let text = "1: POSIX  ADVISORY  WRITE 7 fe:00:42 0 EOF\n\
                    2: FLOCK  ADVISORY  WRITE 1234 fe:00:42 0 EOF\n\
                    2: -> FLOCK  ADVISORY  WRITE 99 fe:00:42 0 EOF\n";
        let dev = libc::makedev(0xfe, 0);
        assert_eq!(holder_in(text, dev, 42), Some(1234));
        assert_eq!(holder_in(text, dev, 43), None);
    }

    #[test]
    fn one_file_named_twice_is_locked_once() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let link = dir.path().join("link");
        std::fs::write(&log, "").unwrap();
        std::os::unix::fs::symlink(&log, &link).unwrap();
        let lock = LogLock::acquire([log.as_path(), link.as_path(), log.as_path()]).unwrap();
        assert_eq!(lock.held.len(), 1);
    }

    #[test]
    fn a_pipe_is_not_locked() {
        let lock = LogLock::acquire([Path::new("/dev/null")]).unwrap();
        assert!(lock.held.is_empty());
    }
}
