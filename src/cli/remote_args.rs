//! The remote-worker options (`-S`, `--slf`, `--ssh`, `--remote-worker`, `--heartbeat`) into a
//! [`RemoteSpec`], refusing the combinations remote workers cannot serve yet.

use std::time::Duration;

use troop_worker::stream::Heartbeat;

use super::args::{LauncherArg, RunArgs};
use crate::config::Mode;
use crate::error::RunError;
use crate::hosts::{Login, Placement, SshLogin};
use crate::pool::remote::RemoteSpec;
use crate::pool::slurm::SlurmSpec;
use crate::units;

/// The remote workers the options ask for, `None` when every worker runs here. `jobs` is the
/// number of workers per host that does not say its own.
pub fn remote_spec(
    args: &RunArgs,
    jobs: usize,
    mode: Mode,
    pipe: bool,
    jobs_file: bool,
) -> Result<Option<RemoteSpec>, RunError> {
    let mut hosts = Vec::new();
    for list in &args.sshlogin {
        hosts.extend(SshLogin::parse_list(list).map_err(|e| usage(format!("-S: {e}")))?);
    }
    for file in &args.sshloginfile {
        hosts.extend(SshLogin::read_file(file).map_err(usage)?);
    }
    if args.sshlogin.is_empty() && args.sshloginfile.is_empty() {
        if args.launcher == Some(LauncherArg::Ssh) {
            return Err(usage(
                "--launcher ssh: give the hosts with -S or --sshloginfile".into(),
            ));
        }
        return Ok(None);
    }
    if let Some(other @ (LauncherArg::Local | LauncherArg::Slurm)) = args.launcher {
        let name = if other == LauncherArg::Local {
            "local"
        } else {
            "slurm"
        };
        return Err(usage(format!(
            "-S/--sshloginfile: the hosts are for --launcher ssh, not --launcher {name}"
        )));
    }
    if hosts.is_empty() {
        return Err(usage("-S/--sshloginfile: no host given".into()));
    }
    if hosts.iter().all(|h| h.login == Login::Local) {
        // `-S :` alone is this machine: an ordinary run.
        return Ok(None);
    }
    refuse_with_remote("-S", mode, pipe, jobs_file)?;
    let ssh = match &args.ssh {
        None => vec!["ssh".to_string()],
        Some(cmd) => match shlex::split(cmd) {
            Some(words) if !words.is_empty() => words,
            _ => return Err(usage(format!("--ssh `{cmd}`: give a command"))),
        },
    };
    if args.remote_worker.is_empty() {
        return Err(usage("--remote-worker: give a program".into()));
    }
    // Variables named with --env go with each remote worker; `_` (all of them) means only
    // what the host's own login gives, as there is no list of what to leave out.
    let env = args
        .env
        .iter()
        .filter(|name| name.as_str() != "_" && !name.contains(['*', '?']))
        .filter_map(|name| Some((name.clone(), std::env::var(name).ok()?)))
        .collect();
    Ok(Some(RemoteSpec {
        placement: Placement::new(hosts, jobs),
        ssh,
        worker: args.remote_worker.clone(),
        transfer: args.transfer_worker,
        env,
        beat: heartbeat(&args.heartbeat)?,
    }))
}

/// The Slurm workers `--launcher slurm` asks for, `None` for other launchers.
pub fn slurm_spec(
    args: &RunArgs,
    mode: Mode,
    pipe: bool,
    jobs_file: bool,
) -> Result<Option<SlurmSpec>, RunError> {
    if args.launcher != Some(LauncherArg::Slurm) {
        for (given, option) in [
            (args.slurm_args.is_some(), "--slurm-args"),
            (args.listen.is_some(), "--listen"),
        ] {
            if given {
                return Err(usage(format!("{option} is for --launcher slurm")));
            }
        }
        return Ok(None);
    }
    refuse_with_remote("--launcher slurm", mode, pipe, jobs_file)?;
    let words = match &args.slurm_args {
        None => Vec::new(),
        Some(text) => shlex::split(text)
            .ok_or_else(|| usage(format!("--slurm-args `{text}`: unbalanced quotes")))?,
    };
    if let Some(mem) = &args.mem {
        units::parse_size(mem).map_err(|e| usage(format!("--mem: {e}")))?;
    }
    Ok(Some(SlurmSpec {
        srun: std::env::var("TROOP_SRUN").unwrap_or_else(|_| "srun".into()),
        args: words,
        cpus_per_task: args.cpus_per_task,
        mem: args.mem.clone(),
        worker: args.remote_worker.clone(),
        listen: args.listen.clone(),
        beat: heartbeat(&args.heartbeat)?,
    }))
}

/// What remote workers cannot do yet: run inside this process, read `--pipe` blocks from this
/// host's files, or follow `-j FILE`.
fn refuse_with_remote(what: &str, mode: Mode, pipe: bool, jobs_file: bool) -> Result<(), RunError> {
    if mode != Mode::Process {
        return Err(usage(format!(
            "{what}: remote workers are processes; --mode {} runs every task inside this process",
            mode.name()
        )));
    }
    if pipe {
        return Err(usage(format!(
            "{what}: --pipe and --pipepart are not supported with remote workers yet"
        )));
    }
    if jobs_file {
        return Err(usage(format!(
            "{what}: -j FILE is not supported with remote workers; give the number of workers"
        )));
    }
    Ok(())
}

/// The files that go with remote tasks, `None` when no option asks for any.
pub fn transfer_spec(
    args: &RunArgs,
    options: &crate::input::template::TemplateOptions,
) -> Result<Option<crate::config::TransferSpec>, RunError> {
    use crate::input::template::Text;
    let mut send: Vec<&str> = args.transferfile.iter().map(String::as_str).collect();
    let mut fetch: Vec<&str> = args.return_file.iter().map(String::as_str).collect();
    if args.transfer || !args.trc.is_empty() {
        send.push("{}");
    }
    fetch.extend(args.trc.iter().map(String::as_str));
    let cleanup = args.cleanup || !args.trc.is_empty();
    if send.is_empty() && fetch.is_empty() && args.basefile.is_empty() {
        return Ok(None);
    }
    for file in &args.basefile {
        if !file.is_file() {
            return Err(usage(format!(
                "--basefile {}: no such file",
                file.display()
            )));
        }
    }
    let parse = |t: &&str| Text::parse(t.as_bytes(), options);
    Ok(Some(crate::config::TransferSpec {
        send: send.iter().map(parse).collect(),
        fetch: fetch.iter().map(parse).collect(),
        cleanup,
        basefiles: args.basefile.clone(),
    }))
}

/// `EVERY[/LIMIT]`.
fn heartbeat(text: &str) -> Result<Heartbeat, RunError> {
    let parse = |s: &str| units::parse_duration(s).map_err(|e| usage(format!("--heartbeat: {e}")));
    let (every, limit) = match text.split_once('/') {
        Some((every, limit)) => (parse(every)?, Some(parse(limit)?)),
        None => (parse(text)?, None),
    };
    let limit = limit.unwrap_or(every * 10);
    if every < Duration::from_millis(10) || limit <= every {
        return Err(usage(format!(
            "--heartbeat `{text}`: EVERY must be at least 10ms and LIMIT longer than EVERY"
        )));
    }
    Ok(Heartbeat { every, limit })
}

fn usage(message: String) -> RunError {
    RunError::Usage(message)
}
