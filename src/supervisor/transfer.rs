//! The supervisor's side of the files that travel with remote tasks (`--transferfile`,
//! `--return`, `--cleanup`, `--basefile`): what a task takes along, read from this machine when
//! it is sent, and what comes back, written here when it is reported. Tasks that run on this
//! machine take nothing: their files are already where they are.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use troop_worker::protocol::{FileCopy, Transfer};

use crate::config::TransferSpec;
use crate::input::Record;

/// The files task `id` takes to its remote worker (slot `worker`), and those it brings back;
/// `basefiles` go along when this is the worker's first task. A file that cannot be read
/// refuses the task, naming it.
pub fn for_task(
    spec: &TransferSpec,
    basefiles: &[std::path::PathBuf],
    record: &Record,
    id: u64,
    worker: u32,
) -> Result<Transfer, String> {
    let render = |text: &crate::input::template::Text| {
        String::from_utf8_lossy(&text.render(record, id, worker + 1)).into_owned()
    };
    let read = |path: String| {
        let bytes = std::fs::read(&path)
            .map_err(|e| format!("cannot read the file to transfer, {path}: {e}"))?;
        let mode = std::fs::metadata(&path).map_or(0o644, |m| m.permissions().mode());
        Ok::<_, String>(FileCopy { path, bytes, mode })
    };
    let base = basefiles
        .iter()
        .map(|p| read(p.to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    let send = spec
        .send
        .iter()
        .map(|t| read(render(t)))
        .collect::<Result<_, _>>()?;
    Ok(Transfer {
        base,
        send,
        fetch: spec.fetch.iter().map(render).collect(),
        cleanup: spec.cleanup,
    })
}

/// Writes the files task `id` brought back, at their paths here; one that cannot be written
/// is said on stderr (the task's own outcome stands).
pub fn write_returned(id: u64, files: Vec<FileCopy>) {
    for file in files {
        let path = Path::new(&file.path);
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(path, &file.bytes)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(file.mode & 0o7777))
        };
        if let Err(e) = write() {
            troop_worker::process::eprint_line(&format!(
                "troop: warning: task {id}: cannot write the returned file {}: {e}",
                file.path
            ));
        }
    }
}
