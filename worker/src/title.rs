//! The process title: what `ps -o args`, `top -c` and `/proc/PID/cmdline` show for a troop
//! process, rewritten in place as the process works.
//!
//! Linux has no `setproctitle`. The kernel shows, as a process's command line, the bytes of the
//! area where it laid out `argv` at `execve` ([`Area::argv`]: `arg_start..arg_end` of
//! `/proc/self/stat`), and when the byte at `arg_end - 1` is no longer a NUL it reads on into the
//! environment strings that follow (`env_start..env_end`) up to the first NUL. A title can thus
//! only be as long as those areas, and every write must stay inside them: [`write_title`] never
//! writes past the end of the slice it is given, always leaves its last byte a NUL, and clears
//! only what the previous title used.
//!
//! Room is made deliberately:
//! - a spawned worker gets [`ROOM`] spaces as an extra argument from the supervisor
//!   ([`room_arg`]), so its `argv` area alone holds a task's title;
//! - a forked worker's area is the supervisor's command line, often short, so it first moves its
//!   environment to the heap ([`Area::argv_and_environ`]) and then uses that area too;
//! - the supervisor uses only its own `argv` area (its environment is still read later).
//!
//! After a rewrite, `std::env::args` reads the title, not the original arguments: read them first.
//! The per-task update ([`task_started`], [`idle`]) formats into a buffer kept from the last call
//! and copies it into the area: no allocation once the buffer has grown, no system call.

use std::io::Write as _;
use std::sync::{Mutex, PoisonError};

use crate::protocol::Job;

/// The room a spawned worker's extra argument makes for its title, in bytes.
pub const ROOM: usize = 160;

/// The longest command a task's title shows, in bytes (longer ones end in `...`).
pub const COMMAND_SHOWN: usize = 80;

/// The kernel reads at most one page of a rewritten title.
const MAX_TITLE: usize = 4096;

/// The extra argument that makes room for a spawned worker's title: [`ROOM`] spaces.
pub fn room_arg() -> String {
    " ".repeat(ROOM)
}

/// True for the argument [`room_arg`] makes.
pub fn is_room_arg(arg: &str) -> bool {
    !arg.is_empty() && arg.bytes().all(|b| b == b' ')
}

/// The memory a process's title lives in: part of its initial stack, as `execve` laid it out.
#[derive(Debug)]
pub struct Area {
    start: *mut u8,
    len: usize,
    /// Bytes of the last title written, which the next write must clear.
    used: usize,
}

// SAFETY: the area is process-global memory that no Rust reference points into (see `argv`);
// moving the handle to another thread moves the sole writer.
unsafe impl Send for Area {}

/// `arg_start`, `arg_end`, `env_start`, `env_end` of `/proc/self/stat` (fields 48 to 51).
fn stat_areas() -> Option<[usize; 4]> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    // `after` starts at field 3, so field N is at index N - 3.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<usize>().ok());
    Some([field(48)?, field(49)?, field(50)?, field(51)?])
}

impl Area {
    /// This process's `argv` area. `None` when `/proc` cannot tell.
    ///
    /// # Safety
    /// Nothing may hold a Rust reference into the original argument strings while the `Area`
    /// lives (Rust's own `std::env::args` copies them), and there must be at most one `Area` in
    /// the process at a time, since each writes without a lock.
    pub unsafe fn argv() -> Option<Area> {
        let [start, end, _, _] = stat_areas()?;
        Area::new(start, end)
    }

    /// This process's `argv` area and, right after it, its environment strings, which are first
    /// copied to the heap so that the environment (and what child processes inherit) stays as it
    /// was. Falls back to the `argv` area alone when the two are not adjacent or when a variable
    /// still lies in the old area after the copy.
    ///
    /// # Safety
    /// As for [`Area::argv`]; and the process must be single-threaded, since the copy rewrites
    /// the environment (`setenv`) while nothing else may read it.
    pub unsafe fn argv_and_environ() -> Option<Area> {
        let [start, end, env_start, env_end] = stat_areas()?;
        if env_start != end || env_end <= env_start {
            return Area::new(start, end);
        }
        for (key, value) in std::env::vars_os() {
            // SAFETY: single-threaded (the caller's promise). setenv stores a fresh heap copy of
            // "key=value" in place of the pointer into the initial stack.
            unsafe { std::env::set_var(key, value) };
        }
        unsafe extern "C" {
            static environ: *const *const libc::c_char;
        }
        // SAFETY: `environ` is the C library's NULL-terminated array of pointers to the
        // environment, which only this (single) thread changes.
        let still_there = unsafe {
            let mut p = environ;
            let mut found = false;
            while !p.is_null() && !(*p).is_null() {
                let at = *p as usize;
                found |= (env_start..env_end).contains(&at);
                p = p.add(1);
            }
            found
        };
        Area::new(start, if still_there { end } else { env_end })
    }

    fn new(start: usize, end: usize) -> Option<Area> {
        (start != 0 && end > start).then(|| Area {
            start: start as *mut u8,
            len: (end - start).min(MAX_TITLE),
            used: (end - start).min(MAX_TITLE),
        })
    }

    /// The bytes a title can take here (one less than the area: a NUL always ends it).
    pub fn capacity(&self) -> usize {
        self.len.saturating_sub(1)
    }

    /// Shows `title` (cut to [`Area::capacity`]).
    pub fn set(&mut self, title: &[u8]) {
        // SAFETY: `start..start + len` is this process's own argv (and environ) area, mapped and
        // writable for its whole life (it sits on the initial stack, above `main`'s frame). The
        // constructor's caller promised that no Rust reference points into it and that this
        // `Area` is its only writer, so this slice is the only access.
        let area = unsafe { std::slice::from_raw_parts_mut(self.start, self.len) };
        self.used = write_title(area, self.used, title);
    }
}

/// Writes `title` at the start of `area`, cut so that at least the last byte of `area` stays a
/// NUL, and clears the rest of what the previous title used (`used` bytes). Returns how many
/// bytes the new title used. Never writes outside `area`.
pub fn write_title(area: &mut [u8], used: usize, title: &[u8]) -> usize {
    let Some(room) = area.len().checked_sub(1) else {
        return 0;
    };
    let n = title.len().min(room);
    area[..n].copy_from_slice(&title[..n]);
    let clear_to = used.max(n).min(area.len());
    area[n..clear_to].fill(0);
    if let Some(last) = area.last_mut() {
        *last = 0;
    }
    n
}

/// Appends a command to `out` as a title shows it, from its `parts` (bytes, joined as they come):
/// control bytes (a NUL would end the title) become spaces, and a command longer than `max` bytes
/// is cut at a character boundary and ends in `...`. Reads no more of the parts than it shows.
pub fn push_shortened<'a>(
    out: &mut Vec<u8>,
    parts: impl IntoIterator<Item = &'a [u8]>,
    max: usize,
) {
    let start = out.len();
    for part in parts {
        let room = (max + 1).saturating_sub(out.len() - start);
        out.extend(
            part.iter()
                .take(room)
                .map(|&b| if b < 0x20 || b == 0x7f { b' ' } else { b }),
        );
        if out.len() - start > max {
            break;
        }
    }
    if out.len() - start > max {
        // Back off to the start of a UTF-8 character (continuation bytes are 0b10xx_xxxx).
        let mut at = start + max.saturating_sub(3);
        while at > start && out[at] & 0xC0 == 0x80 {
            at -= 1;
        }
        out.truncate(at);
        out.extend_from_slice(b"...");
    }
}

/// Appends a job's command line: the words of an executed program joined by spaces, a shell
/// script, or a kernel's name.
fn push_job(out: &mut Vec<u8>, job: &Job) {
    match job {
        Job::Shell(script) => push_shortened(out, [script.as_slice()], COMMAND_SHOWN),
        Job::Exec(argv) => {
            let words = argv.iter().enumerate().flat_map(|(i, word)| {
                let sep: &[u8] = if i == 0 { b"" } else { b" " };
                [sep, word.as_slice()]
            });
            push_shortened(out, words, COMMAND_SHOWN)
        }
        Job::Kernel(kernel) => {
            let _ = write!(out, "{kernel}");
        }
        Job::Call { name, count, .. } => {
            let _ = write!(out, "{name} ({count} calls)");
        }
    }
}

/// A worker process's title: `<prefix> task <seq>: <command>` or `<prefix> idle`.
#[derive(Debug)]
struct WorkerTitle {
    area: Area,
    prefix: String,
    buf: Vec<u8>,
    idle: bool,
}

/// Set by a worker process (never a thread worker, which has no argv of its own).
static WORKER: Mutex<Option<WorkerTitle>> = Mutex::new(None);

/// Makes this process's per-task titles begin with `prefix` (`troop-worker [w3]`), in `area`.
pub fn enable_task_titles(area: Area, prefix: String) {
    let title = WorkerTitle {
        area,
        prefix,
        buf: Vec::with_capacity(ROOM),
        idle: false,
    };
    *WORKER.lock().unwrap_or_else(PoisonError::into_inner) = Some(title);
}

/// Formats the title of task `seq` running `job` after `prefix`, into `buf`.
pub fn format_task(buf: &mut Vec<u8>, prefix: &str, seq: u64, job: &Job) {
    buf.clear();
    let _ = write!(buf, "{prefix} task {seq}: ");
    push_job(buf, job);
}

/// The worker starts task `seq`: its title says so. Does nothing outside a worker process.
pub fn task_started(seq: u64, job: &Job) {
    let mut guard = WORKER.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(t) = guard.as_mut() {
        format_task(&mut t.buf, &t.prefix, seq, job);
        t.area.set(&t.buf);
        t.idle = false;
    }
}

/// The worker waits for work: its title says `idle`. Does nothing outside a worker process.
pub fn idle() {
    let mut guard = WORKER.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(t) = guard.as_mut().filter(|t| !t.idle) {
        t.buf.clear();
        let _ = write!(t.buf, "{} idle", t.prefix);
        t.area.set(&t.buf);
        t.idle = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Kernel;

    fn title(job: &Job) -> String {
        let mut buf = Vec::new();
        format_task(&mut buf, "troop-worker [w2]", 17, job);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn a_task_title_names_the_worker_the_task_and_its_command() {
        let exec = Job::Exec(vec![b"sleep".to_vec(), b"1".to_vec()]);
        assert_eq!(title(&exec), "troop-worker [w2] task 17: sleep 1");
        let shell = Job::Shell(b"echo a |\n wc -c".to_vec());
        assert_eq!(title(&shell), "troop-worker [w2] task 17: echo a |  wc -c");
        let kernel = Job::Kernel(Kernel::Sleep(50));
        assert_eq!(title(&kernel), "troop-worker [w2] task 17: @sleep 50");
    }

    #[test]
    fn a_long_command_is_cut_at_a_character_boundary() {
        let mut out = Vec::new();
        push_shortened(&mut out, ["ab\0c".as_bytes(), "défgh".as_bytes()], 9);
        // 6 bytes of room before "..." would end inside é: the cut backs off to before it.
        assert_eq!(String::from_utf8(out).unwrap(), "ab cd...");
        let mut out = Vec::new();
        push_shortened(&mut out, [b"short".as_slice()], 7);
        assert_eq!(out, b"short");
    }

    #[test]
    fn a_title_never_writes_past_its_area() {
        // The area is the middle of a larger buffer, whose guard bytes must stay untouched.
        let mut memory = [0xAAu8; 32];
        let (before, rest) = memory.split_at_mut(8);
        let (area, after) = rest.split_at_mut(10);
        let used = write_title(area, 10, b"a title much longer than the area");
        assert_eq!(used, 9);
        assert_eq!(&area[..9], b"a title m");
        assert_eq!(area[9], 0, "the last byte stays a NUL");
        assert!(before.iter().chain(after.iter()).all(|&b| b == 0xAA));
    }

    #[test]
    fn a_shorter_title_clears_what_the_longer_one_used() {
        let mut area = [b'x'; 12];
        let used = write_title(&mut area, 12, b"long title");
        assert_eq!(&area, b"long title\0\0");
        let used = write_title(&mut area, used, b"idle");
        assert_eq!(used, 4);
        assert_eq!(&area, b"idle\0\0\0\0\0\0\0\0");
        assert_eq!(write_title(&mut [], 0, b"x"), 0);
    }
}
