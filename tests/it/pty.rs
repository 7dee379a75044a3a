//! A terminal for the tests: runs `troop` with its stdin, stdout and stderr on a pseudo-terminal
//! and keeps a screen (vt100) of what it drew, so a test can look at the screen, type keys and
//! wait for the process to end.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::pty::{OpenptyResult, Winsize, openpty};

/// A command running on a pseudo-terminal of `rows` × `cols`.
pub struct Term {
    pub child: Child,
    master: std::fs::File,
    screen: Arc<Mutex<vt100::Parser>>,
    /// Every byte the command wrote to the terminal, in order.
    raw: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Term {
    /// Starts `troop args…` on a new terminal. Stdin, stdout and stderr are all the terminal,
    /// unless `stdin` is given (then stdin reads those bytes from a pipe).
    pub fn troop(args: &[&str], rows: u16, cols: u16) -> Term {
        Term::spawn(super::util::TROOP, args, rows, cols, |_| {})
    }

    /// Starts `program args…` on a new terminal; `adjust` may change the command first (its
    /// stdout, say).
    pub fn spawn(
        program: &str,
        args: &[&str],
        rows: u16,
        cols: u16,
        adjust: impl FnOnce(&mut Command),
    ) -> Term {
        let size = Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let OpenptyResult { master, slave } = openpty(Some(&size), None).expect("openpty");
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup pty"));
        let mut command = Command::new(program);
        command
            .args(args)
            .env("TERM", "xterm-256color")
            .env_remove("NO_COLOR")
            .stdin(stdio(&slave))
            .stdout(stdio(&slave))
            .stderr(stdio(&slave));
        // The terminal becomes the child's controlling terminal, as a shell would arrange.
        let slave_fd = slave.as_raw_fd();
        // SAFETY: setsid and ioctl are async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(slave_fd, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        adjust(&mut command);
        let child = command.spawn().expect("start the command on a pty");
        drop(slave);
        let master = std::fs::File::from(master);
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            std::num::NonZero::new(rows).expect("rows"),
            std::num::NonZero::new(cols).expect("columns"),
            0,
        )));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let mut reading = master.try_clone().expect("dup pty master");
        let (screen2, raw2) = (screen.clone(), raw.clone());
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            // EIO once every holder of the terminal's other end has closed it.
            while let Ok(n) = reading.read(&mut buf) {
                if n == 0 {
                    break;
                }
                screen2.lock().unwrap().process(&buf[..n]);
                raw2.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Term {
            child,
            master,
            screen,
            raw,
            reader: Some(reader),
        }
    }

    /// The screen's text now, rows joined by newlines.
    pub fn contents(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// Everything written to the terminal so far, escape sequences included.
    pub fn raw(&self) -> Vec<u8> {
        self.raw.lock().unwrap().clone()
    }

    /// Types these bytes.
    pub fn send(&mut self, keys: &[u8]) {
        self.master.write_all(keys).expect("write to the pty");
        self.master.flush().expect("flush the pty");
    }

    /// Waits until the screen satisfies `ok`, up to `limit`; returns the screen either way
    /// and whether it was satisfied.
    pub fn wait_screen(&self, limit: Duration, ok: impl Fn(&str) -> bool) -> (bool, String) {
        let start = Instant::now();
        loop {
            let text = self.contents();
            if ok(&text) {
                return (true, text);
            }
            if start.elapsed() > limit {
                return (false, text);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the terminal is in the alternate screen (a full-screen program is drawing).
    pub fn alternate_screen(&self) -> bool {
        self.screen.lock().unwrap().screen().alternate_screen()
    }

    /// Waits for the command to end (killing it after `limit`) and for all it wrote; returns
    /// its exit code, `None` when a signal ended it.
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let status = self.child.wait().expect("wait");
                panic!(
                    "the command did not end within {limit:?} ({status}); screen:\n{}",
                    self.contents()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader ends once the last holder of the terminal (a grandchild, say) is gone.
        if let Some(reader) = self.reader.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !reader.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
        status.code()
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn the_terminal_shows_what_a_command_prints_and_passes_keys() {
    let mut term = Term::spawn(
        "sh",
        &["-c", "printf 'hello\\n'; read -r line; echo \"got $line\""],
        10,
        40,
        |_| {},
    );
    let (ok, screen) = term.wait_screen(Duration::from_secs(10), |s| s.contains("hello"));
    assert!(ok, "{screen}");
    term.send(b"abc\r");
    assert_eq!(term.wait(Duration::from_secs(10)), Some(0));
    assert!(term.contents().contains("got abc"), "{}", term.contents());
}

#[test]
fn troop_on_a_terminal_prints_plainly_without_a_watching_option() {
    let mut term = Term::troop(&["run", "-j2", "echo", ":::", "one", "two"], 10, 60);
    assert_eq!(term.wait(Duration::from_secs(30)), Some(0));
    assert!(!term.alternate_screen());
    let raw = String::from_utf8_lossy(&term.raw()).into_owned();
    let mut lines: Vec<&str> = raw.split("\r\n").filter(|l| !l.is_empty()).collect();
    lines.sort();
    assert_eq!(lines, ["one", "two"], "{raw:?}");
}
