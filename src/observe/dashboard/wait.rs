//! The drawing thread's one wait: until the next frame is due, a key is typed, or the run ends
//! ([`Waker::wake`]), in one poll(2) on the terminal and a pipe. A terminal that hangs up is
//! dropped from the wait (crossterm would read its end of file forever).

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Wakes the drawing thread: the run is over.
#[derive(Debug)]
pub struct Waker(File);

impl Waker {
    pub fn wake(&self) {
        let _ = (&self.0).write(&[1]);
    }
}

/// What ended a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woke {
    /// The time ran out.
    Timeout,
    /// The terminal has input (a key).
    Input,
    /// [`Waker::wake`] was called.
    Stop,
}

/// The waiting end.
#[derive(Debug)]
pub struct Wait {
    wake: OwnedFd,
    /// The terminal keys come from (as crossterm chooses it: stdin when it is a terminal,
    /// /dev/tty otherwise); -1 once it hung up or when there is none.
    tty: RawFd,
    _opened: Option<File>,
}

/// A waker and the wait it wakes.
pub fn pair() -> io::Result<(Waker, Wait)> {
    let (read, write) = nix::unistd::pipe().map_err(io::Error::from)?;
    let (tty, opened) = if io::stdin().is_terminal() {
        (io::stdin().as_raw_fd(), None)
    } else {
        match File::open("/dev/tty") {
            Ok(file) => (file.as_raw_fd(), Some(file)),
            Err(_) => (-1, None),
        }
    };
    Ok((
        Waker(File::from(write)),
        Wait {
            wake: read,
            tty,
            _opened: opened,
        },
    ))
}

impl Wait {
    /// Waits up to `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Woke {
        let mut fds = [
            libc::pollfd {
                fd: self.wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.tty,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: fds is a valid array of two pollfd; poll ignores a negative fd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        if n <= 0 {
            return Woke::Timeout; // the time ran out, or a signal came (EINTR)
        }
        if fds[0].revents != 0 {
            return Woke::Stop;
        }
        let tty = fds[1].revents;
        if tty & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            self.tty = -1;
            return Woke::Timeout;
        }
        if tty & libc::POLLIN != 0 {
            Woke::Input
        } else {
            Woke::Timeout
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_ends_when_woken_or_when_its_time_runs_out() {
        let (waker, mut wait) = pair().unwrap();
        wait.tty = -1;
        let start = std::time::Instant::now();
        assert_eq!(wait.wait(Duration::from_millis(30)), Woke::Timeout);
        assert!(start.elapsed() >= Duration::from_millis(25));
        waker.wake();
        assert_eq!(wait.wait(Duration::from_secs(30)), Woke::Stop);
    }
}
