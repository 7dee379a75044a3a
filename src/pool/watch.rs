//! The exit watch: notices at once when a spawned worker ends before it has connected.
//!
//! A spawned worker's reader thread blocks in the one-shot server's `accept`, which has no
//! timeout and cannot be polled. One watch thread for the whole pool polls the pidfd of every
//! worker that is still starting; when one becomes readable (the worker ended), the watch
//! connects to that worker's bootstrap socket itself and hangs up, which wakes the reader thread
//! with an empty connection. The reader then reports how the worker ended. The reader tells the
//! watch when its worker connected, and the watch forgets it.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ipc_channel::ipc::IpcSender;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use troop_worker::protocol::Bootstrap;

/// One worker being watched.
#[derive(Debug)]
struct Entry {
    pidfd: Arc<OwnedFd>,
    server: String,
    /// Set when the worker connected, or when its end was handled.
    done: Arc<AtomicBool>,
}

#[derive(Debug)]
struct Shared {
    entries: Mutex<Vec<Entry>>,
    /// Wakes the watch thread when the entries change.
    wake: OwnedFd,
    /// Set when the pool is done with the watch: its thread ends.
    closed: AtomicBool,
}

/// The pool's exit watch; its thread starts with the first worker it watches.
#[derive(Debug, Default)]
pub struct ExitWatch {
    shared: Option<Arc<Shared>>,
}

/// Tells the watch that a worker no longer needs watching.
#[derive(Debug, Clone)]
pub struct Watched {
    done: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

impl Watched {
    /// The worker connected (or its start was otherwise settled): stop watching it.
    pub fn settle(&self) {
        self.done.store(true, Ordering::SeqCst);
        wake(&self.shared.wake);
    }
}

impl ExitWatch {
    /// Watches `pidfd`; when the process ends first, connects to `server` to wake its reader.
    pub fn watch(&mut self, pidfd: Arc<OwnedFd>, server: String) -> std::io::Result<Watched> {
        let shared = match &self.shared {
            Some(s) => s.clone(),
            None => {
                let shared = Arc::new(Shared {
                    entries: Mutex::new(Vec::new()),
                    wake: eventfd()?,
                    closed: AtomicBool::new(false),
                });
                let thread_shared = shared.clone();
                std::thread::Builder::new()
                    .name("troop-startwatch".into())
                    .stack_size(64 * 1024)
                    .spawn(move || run(&thread_shared))?;
                self.shared.insert(shared).clone()
            }
        };
        let done = Arc::new(AtomicBool::new(false));
        shared
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Entry {
                pidfd,
                server,
                done: done.clone(),
            });
        wake(&shared.wake);
        Ok(Watched { done, shared })
    }
}

impl Drop for ExitWatch {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.closed.store(true, Ordering::SeqCst);
            wake(&shared.wake);
        }
    }
}

/// The watch thread: polls the wake descriptor and every watched pidfd until the watch is
/// dropped; it sleeps in `poll` when nothing happens.
fn run(shared: &Shared) {
    while !shared.closed.load(Ordering::SeqCst) {
        // Only this thread drops entries, so the descriptors stay open while it polls them.
        let watched: Vec<(i32, String, Arc<AtomicBool>)> = {
            let mut entries = shared
                .entries
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            entries.retain(|e| !e.done.load(Ordering::SeqCst));
            entries
                .iter()
                .map(|e| (e.pidfd.as_raw_fd(), e.server.clone(), e.done.clone()))
                .collect()
        };
        let mut fds = Vec::with_capacity(watched.len() + 1);
        fds.push(PollFd::new(shared.wake.as_fd(), PollFlags::POLLIN));
        for (fd, _, _) in &watched {
            // SAFETY: the entry that owns `fd` stays in the list until this thread removes it,
            // at the top of the next round.
            fds.push(PollFd::new(
                unsafe { BorrowedFd::borrow_raw(*fd) },
                PollFlags::POLLIN,
            ));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        if ready[0] {
            drain(&shared.wake);
        }
        for ((_, server, done), ready) in watched.iter().zip(&ready[1..]) {
            if *ready && !done.swap(true, Ordering::SeqCst) {
                // The worker ended before it connected: wake its reader with an empty
                // connection. (If the server is already gone, the reader is awake anyway.)
                drop(IpcSender::<Bootstrap>::connect(server.clone()));
            }
        }
    }
}

fn eventfd() -> std::io::Result<OwnedFd> {
    // SAFETY: eventfd takes an initial value and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn wake(fd: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64 to an eventfd.
    unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

fn drain(fd: &OwnedFd) {
    let mut count: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64 from a non-blocking eventfd.
    unsafe { libc::read(fd.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
}
