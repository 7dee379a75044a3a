//! The run's private directory: mode 0700 under `$TMPDIR`, where workers spill output that
//! outgrows memory. It is removed when the run ends, and by the workers if the supervisor dies.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// A directory only this user can enter, removed on drop.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Creates `$TMPDIR/troop-<pid>-<random>` with mode 0700, whatever the umask.
    pub fn create(random: &str) -> io::Result<RunDir> {
        RunDir::create_in(&std::env::temp_dir(), random)
    }

    /// Creates `DIR/troop-<pid>-<random>` with mode 0700, whatever the umask (`--tmpdir DIR`).
    pub fn create_in(dir: &Path, random: &str) -> io::Result<RunDir> {
        let path = dir.join(format!(
            "troop-{}-{}",
            std::process::id(),
            &random[..8.min(random.len())]
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        // The mode given to mkdir is masked by the umask; make sure it is exactly 0700.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
        Ok(RunDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn is_private_whatever_the_umask_and_removed_on_drop() {
        let dir = RunDir::create("0123456789abcdef").unwrap();
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::write(dir.path().join("x"), b"y").unwrap();
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn goes_in_the_directory_given() {
        let parent = tempfile::tempdir().unwrap();
        let dir = RunDir::create_in(parent.path(), "0123456789abcdef").unwrap();
        assert_eq!(dir.path().parent(), Some(parent.path()));
        assert!(dir.path().is_dir());
    }
}
