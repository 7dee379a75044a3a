//! Signals become inbox events: a watcher thread turns each one into [`Msg::Signal`].
//!
//! No work happens in signal context: signal-hook's handler only writes to a pipe, and the
//! watcher thread forwards what it reads to the supervisor's one loop.

use crossbeam_channel::Sender;
use signal_hook::consts::{SIGCONT, SIGHUP, SIGINT, SIGTERM, SIGTSTP, SIGUSR1};
use signal_hook::iterator::{Handle, Signals};

use crate::error::RunError;
use crate::inbox::Msg;

/// Stops the watcher when the run is over.
#[derive(Debug)]
pub struct Watch(Handle);

impl Watch {
    /// Stops forwarding signals.
    pub fn close(self) {
        self.0.close();
    }
}

/// Forwards SIGINT, SIGTERM, SIGHUP, SIGTSTP, SIGCONT and SIGUSR1 (list the running tasks) to
/// `inbox` until [`Watch::close`].
pub fn watch(inbox: Sender<Msg>) -> Result<Watch, RunError> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP, SIGTSTP, SIGCONT, SIGUSR1])
        .map_err(RunError::Signals)?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("troop-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if inbox.send(Msg::Signal(sig)).is_err() {
                    break;
                }
            }
        })
        .map_err(RunError::Signals)?;
    Ok(Watch(handle))
}
