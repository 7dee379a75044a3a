//! Thread workers: the worker runtime on a thread of the supervisor, over in-process channels,
//! with no lock (thread mode) or one global lock (gil mode).

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use troop_worker::gil::{Gil, GilHost};
use troop_worker::kernel::CancelHost;
use troop_worker::protocol::{Hello, PROTOCOL_VERSION};
use troop_worker::runtime;
use troop_worker::transport::ChannelTransport;

use super::PoolError;
use crate::inbox::{Link, Msg};

/// Sends [`Msg::WorkerGone`] when the worker thread ends, however it ends (a panic included).
struct GoneGuard(u32, Sender<Msg>);

impl Drop for GoneGuard {
    fn drop(&mut self) {
        let _ = self.1.send(Msg::WorkerGone(self.0));
    }
}

/// What a worker thread's kernels run under.
#[derive(Debug, Clone)]
pub enum ThreadHost {
    /// No lock: threads compute in parallel.
    Free(CancelHost),
    /// One global lock, handed over every switch interval.
    Gil {
        gil: Arc<Gil>,
        interval: Duration,
        cancel: CancelHost,
    },
}

/// Starts thread worker `index`; its hello is in `inbox` when this returns.
pub fn start(
    index: u32,
    token: &str,
    inbox: Sender<Msg>,
    host: ThreadHost,
) -> Result<JoinHandle<()>, PoolError> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let thread_inbox = inbox.clone();
    // `top -H` shows `troop-t<N>` (thread mode) or `troop-g<N>` (gil mode), N from 1.
    let letter = match host {
        ThreadHost::Free(_) => 't',
        ThreadHost::Gil { .. } => 'g',
    };
    let handle = std::thread::Builder::new()
        .name(format!("troop-{letter}{}", index + 1))
        .spawn(move || {
            let _gone = GoneGuard(index, thread_inbox.clone());
            let mut transport = ChannelTransport::new(rx, thread_inbox, index, Msg::from_worker);
            let _ = match host {
                ThreadHost::Free(cancel) => runtime::serve_free(&mut transport, cancel),
                ThreadHost::Gil {
                    gil,
                    interval,
                    cancel,
                } => runtime::serve(&mut transport, &mut GilHost::new(gil, interval, cancel)),
            };
        })
        .map_err(|e| PoolError::Start {
            worker: index + 1,
            reason: super::os_reason("cannot start a worker thread", &e),
        })?;
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        pid: std::process::id(),
        index,
        token: token.into(),
    };
    let _ = inbox.send(Msg::WorkerUp {
        index,
        hello,
        link: Link::Thread(tx),
    });
    Ok(handle)
}
