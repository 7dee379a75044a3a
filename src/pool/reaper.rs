//! The reaper: a small process that outlives troop to clean up after an in-process pool.
//!
//! In the thread, gil and async modes, commands are troop's own children, and no worker process
//! stands between troop and them to notice troop's death. So [`Reaper::start`] forks a reaper for
//! the run. It holds the read end of a pipe whose only write end is troop's; each command's
//! process group is written to it as the command starts, and taken back once the command is
//! reaped and its group is empty (see `troop_worker::exec::reaper_watch`). When the pipe reaches
//! end of file because troop died in whatever way, SIGKILL included, the reaper kills every group
//! it still knows (the running commands and what they started in their groups, and what finished
//! tasks left running in theirs), removes the run directory, and exits. At the end of a run that
//! ends well, troop first tells it that nothing is left to kill ([`Reaper::finish`]), then closes
//! the pipe and reaps it.
//!
//! The reaper is forked from a process that may already run threads, so from the fork on it
//! calls only async-signal-safe functions: raw system calls on memory prepared before the fork.
//! It does not depend on how commands are started, so a command started with `posix_spawn` is
//! covered just as one started with fork and exec.
//!
//! [`sweep_leftovers`] is the other half, for a run that ends normally in any mode: troop is a
//! child subreaper during a run, so whatever a task left running (a background process, a daemon
//! that called `setsid`) comes to troop once its parent exits, and is killed when the run ends.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, killpg, pthread_sigmask};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, getpgid, getpgrp};

use super::PoolError;

/// How many process groups the reaper can watch at once (a table reserved before the fork: only
/// the pages it uses take memory).
const CAPACITY: usize = 1 << 16;

/// The reaper of one run; dropping it closes the pipe and reaps the reaper.
#[derive(Debug)]
pub struct Reaper {
    pid: Pid,
}

impl Reaper {
    /// Forks the reaper of a run whose private directory is `rundir`, and hands the write end of
    /// its pipe to the command starters of this process.
    pub fn start(rundir: &Path) -> Result<Reaper, PoolError> {
        let err = PoolError::Reaper;
        let dir = CString::new(rundir.as_os_str().as_bytes())
            .map_err(|_| err("the run directory's path holds a NUL byte".into()))?;
        // Both ends close on exec: no command inherits the write end, which would hold the pipe
        // open after troop's death.
        let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| err(format!("cannot create the reaper's pipe: {e}")))?;
        let mut table: Vec<i32> = Vec::with_capacity(CAPACITY);
        let title = argv_area();
        // Signals wait until the child has reset troop's handlers: one run in the child would
        // write to troop's own signal pipe, which the child shares until then.
        let all = SigSet::all();
        let mut old = SigSet::empty();
        let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&all), Some(&mut old));
        // SAFETY: the child runs only `reaper_main`, which makes async-signal-safe system calls
        // on memory allocated before the fork, and ends in `_exit`.
        let forked = match unsafe { fork() } {
            Ok(ForkResult::Child) => reaper_main(read_end.as_raw_fd(), &mut table, &dir, title),
            Ok(ForkResult::Parent { child }) => Ok(child),
            Err(e) => Err(e),
        };
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
        let pid = forked.map_err(|e| err(format!("fork failed: {e}")))?;
        drop(read_end);
        troop_worker::exec::set_reaper(Some(write_end));
        Ok(Reaper { pid })
    }

    /// The reaper's pid.
    pub fn pid(&self) -> u32 {
        self.pid.as_raw() as u32
    }
}

impl Reaper {
    /// Ends a run whose tasks are all over: nothing is left for the reaper to kill.
    pub fn finish(self) {
        troop_worker::exec::reaper_done();
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        // Closing the only write end lets the reaper see the end of the run. It exits at once;
        // one that was stopped by hand is killed rather than waited for.
        drop(troop_worker::exec::set_reaper(None));
        if !super::wait_exit(self.pid.as_raw(), std::time::Duration::from_secs(5)) {
            let _ = kill(self.pid, Signal::SIGKILL);
        }
        let _ = waitpid(self.pid, None);
    }
}

/// Kills every child of troop in a process group other than troop's own (the reaper `keep`
/// aside), with its whole group, at once and without reaping it: the in-process workers that
/// wait for those commands reap them. This is how an in-process run kills everything now,
/// commands whose start it has not heard of yet included.
pub fn kill_children(keep: Option<u32>) {
    let own_group = getpgrp();
    for pid in super::children_of_self() {
        if Some(pid) == keep {
            continue;
        }
        let p = Pid::from_raw(pid as i32);
        if let Ok(group) = getpgid(Some(p))
            && group != own_group
        {
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

/// Kills whatever the run's tasks left running, once no task runs and every worker is reaped:
/// each child of troop in a process group other than troop's own (the reaper `keep` aside),
/// with its whole group, until none is left. Such orphans came to troop, a child subreaper;
/// every command runs in a group of its own, so a child in troop's group is none of the run's
/// (a child that the program embedding troop started). Returns how many were killed.
pub fn sweep_leftovers(keep: Option<u32>) -> usize {
    let own_group = getpgrp();
    let mut swept = 0;
    // Killing an orphan hands its own children to troop: sweep again until none is left (a bound
    // keeps a fork bomb from holding troop forever).
    for _ in 0..64 {
        let left: Vec<(Pid, Pid)> = super::children_of_self()
            .into_iter()
            .filter(|&p| Some(p) != keep)
            .filter_map(|p| {
                let pid = Pid::from_raw(p as i32);
                let group = getpgid(Some(pid)).ok()?;
                (group != own_group).then_some((pid, group))
            })
            .collect();
        if left.is_empty() {
            break;
        }
        for (pid, group) in left {
            let _ = killpg(group, Signal::SIGKILL);
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            swept += 1;
        }
    }
    swept
}

/// How often, in finished tasks, [`reap_exited_leftovers`] should run.
pub const REAP_EVERY: u64 = 256;

/// Reaps the leftovers of finished tasks that have exited since they came to troop, so that a
/// long run of tasks that leave short background jobs does not pile up zombies (each holds a
/// pid until it is reaped). Only processes that cannot be a command some waiter will reap are
/// touched: a command leads its own group in troop's session, whereas a leftover is in a task's
/// group without leading it, or in a session of its own. Returns how many were reaped.
pub fn reap_exited_leftovers() -> usize {
    let own_group = getpgrp().as_raw();
    let Ok(own_session) = nix::unistd::getsid(None).map(Pid::as_raw) else {
        return 0;
    };
    let mut reaped = 0;
    for pid in super::children_of_self() {
        let Some((state, group, session)) = stat_of(pid as i32) else {
            continue;
        };
        let leftover = (group != pid as i32 && group != own_group) || session != own_session;
        if state == 'Z' && leftover {
            // Nobody else waits for a leftover, so it stays a zombie until this call reaps it.
            let _ = waitpid(
                Pid::from_raw(pid as i32),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
            // The last of a group is always reaped here: the reaper forgets the group once it is
            // empty, before its number can be reused.
            troop_worker::exec::reaper_forget(group);
            reaped += 1;
        }
    }
    reaped
}

/// The state, process group and session of process `pid`, from /proc/PID/stat.
fn stat_of(pid: i32) -> Option<(char, i32, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let group = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    Some((state, group, session))
}

/// The reaper's whole life. Only async-signal-safe calls from here on: no allocation, no lock,
/// no panic.
fn reaper_main(
    pipe: i32,
    table: &mut Vec<i32>,
    rundir: &CString,
    title: Option<(usize, usize)>,
) -> ! {
    // SAFETY: plain system calls on integers and on buffers owned by this function.
    unsafe {
        // Troop's handlers would write to troop's signal pipe (closed below). Signals are
        // blocked until they are gone.
        for sig in 1..32 {
            libc::signal(sig, libc::SIG_DFL);
        }
        for sig in [libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGPIPE] {
            libc::signal(sig, libc::SIG_IGN);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        // A group of its own, so that a terminal's Ctrl-C does not reach it: troop decides.
        libc::setpgid(0, 0);
        let name = b"troop-reaper\0";
        libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0);
        // `ps` would otherwise show troop's own command line twice.
        if let Some((start, len)) = title {
            let area = std::slice::from_raw_parts_mut(start as *mut u8, len);
            let n = (name.len() - 1).min(len - 1);
            area[..n].copy_from_slice(&name[..n]);
            area[n..].fill(0);
        }
        // Keep only the pipe (as descriptor 3) and /dev/null as stdio: troop's other descriptors
        // (the pipe's write end among them) would keep its output and its tasks' pipes open.
        if pipe != 3 {
            libc::dup2(pipe, 3);
        }
        close_from(4);
        for fd in 0..3 {
            libc::close(fd);
        }
        if libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) == 0 {
            libc::dup2(0, 1);
            libc::dup2(0, 2);
        }
    }
    watch(3, table);
    for &group in table.iter() {
        // SAFETY: killpg has no memory effects.
        unsafe { libc::killpg(group, libc::SIGKILL) };
    }
    remove_dir(rundir);
    // SAFETY: _exit ends the process without running troop's inherited destructors.
    unsafe { libc::_exit(0) }
}

/// Where this process's command line lies in its memory (fields 48 and 49 of /proc/self/stat,
/// `arg_start` and `arg_end`), read before the fork: the reaper overwrites it with its name.
fn argv_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 2..)?
        .split_whitespace()
        .collect();
    // `fields` starts at field 3.
    let start: usize = fields.get(45)?.parse().ok()?;
    let end: usize = fields.get(46)?.parse().ok()?;
    (end > start + 1).then_some((start, end - start))
}

/// Reads the pipe until end of file, keeping `table` as the set of watched groups: a positive
/// record adds a group, a negative one removes it, and 0 (the run ended) removes them all.
fn watch(fd: i32, table: &mut Vec<i32>) {
    const RECORD: usize = std::mem::size_of::<i32>();
    let mut buf = [0u8; 4096];
    let mut have = 0;
    loop {
        let Some(free) = buf.get_mut(have..) else {
            return;
        };
        // SAFETY: `free` is valid for writes of its length.
        let n = unsafe { libc::read(fd, free.as_mut_ptr().cast(), free.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        if n == 0 {
            return;
        }
        have += n as usize;
        let whole = have - have % RECORD;
        for chunk in buf[..whole].chunks_exact(RECORD) {
            let mut bytes = [0u8; RECORD];
            bytes.copy_from_slice(chunk);
            record(table, i32::from_ne_bytes(bytes));
        }
        buf.copy_within(whole..have, 0);
        have -= whole;
    }
}

/// Applies one record to the table, within its reserved capacity.
fn record(table: &mut Vec<i32>, value: i32) {
    if value < 0 {
        if let Some(i) = table.iter().position(|&g| g == -value) {
            table.swap_remove(i);
        }
        return;
    }
    if value == 0 {
        table.clear();
        return;
    }
    if table.len() == table.capacity() {
        // Forget any group that is gone without its record.
        // SAFETY: killpg with signal 0 only checks that the group exists.
        table.retain(|&g| unsafe { libc::killpg(g, 0) } == 0);
    }
    if table.len() < table.capacity() {
        table.push(value);
    }
}

/// Closes every descriptor from `first` up.
fn close_from(first: u32) {
    // SAFETY: close_range takes integers and has no memory effects.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) };
    if r == 0 {
        return;
    }
    // Kernels before 5.9: close one by one, up to the descriptor limit.
    // SAFETY: rlimit is plain old data; getrlimit writes it; close has no memory effects.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 {
            rl.rlim_cur.min(1 << 20) as i32
        } else {
            1024
        };
        for fd in first as i32..max {
            libc::close(fd);
        }
    }
}

/// Removes the run directory: its files (workers spill there; it holds no sub-directories)
/// and then the directory itself, with raw system calls.
fn remove_dir(path: &CString) {
    // SAFETY: `path` is NUL-terminated; `buf` is valid for writes of its length; the entries
    // read from it are bounded by the length getdents64 returned and by each d_reclen.
    unsafe {
        let dir = libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if dir < 0 {
            return;
        }
        let mut buf = [0u8; 4096];
        loop {
            let n = libc::syscall(
                libc::SYS_getdents64,
                dir,
                buf.as_mut_ptr(),
                buf.len() as libc::c_uint,
            );
            if n <= 0 {
                break;
            }
            let mut at = 0usize;
            while at + 19 < n as usize {
                // struct linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name.
                let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
                if reclen == 0 {
                    break;
                }
                let name = buf.as_ptr().add(at + 19).cast::<libc::c_char>();
                let dot = *name == b'.' as libc::c_char
                    && (*name.add(1) == 0
                        || (*name.add(1) == b'.' as libc::c_char && *name.add(2) == 0));
                if !dot && libc::unlinkat(dir, name, 0) != 0 {
                    libc::unlinkat(dir, name, libc::AT_REMOVEDIR);
                }
                at += reclen;
            }
        }
        libc::close(dir);
        libc::rmdir(path.as_ptr());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_adds_and_removes_groups() {
        let mut table = Vec::with_capacity(4);
        for v in [5, 7, 9, -7, -100] {
            record(&mut table, v);
        }
        assert_eq!(table, vec![5, 9]);
        record(&mut table, 0);
        assert!(table.is_empty());
    }

    #[test]
    fn a_full_table_forgets_the_groups_that_are_gone() {
        // Pids above the kernel's limit name no group.
        let mut table = Vec::with_capacity(2);
        record(&mut table, i32::MAX - 1);
        record(&mut table, i32::MAX - 2);
        record(&mut table, 42);
        assert_eq!(table, vec![42]);
    }

    #[test]
    fn the_run_directory_is_removed_with_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        for i in 0..300 {
            std::fs::write(run.join(format!("{i}-file-with-a-long-name.out")), b"x").unwrap();
        }
        remove_dir(&CString::new(run.as_os_str().as_bytes()).unwrap());
        assert!(!run.exists());
    }
}
