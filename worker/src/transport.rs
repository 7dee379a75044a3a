//! Transports: how protocol messages reach a worker runtime and come back.
//!
//! The runtime ([`crate::runtime::serve`]) is generic over [`Transport`], so the same loop serves a
//! worker process over ipc-channel ([`IpcTransport`]) and a worker thread inside the supervisor
//! over in-process channels ([`ChannelTransport`]); a remote worker serves it over a byte stream
//! ([`crate::stream::StreamTransport`]), in frames ([`crate::frame`]).

use crossbeam_channel::{Receiver, Sender};
use ipc_channel::ipc::{IpcReceiver, IpcSender};
use thiserror::Error;

use crate::protocol::{FromWorker, ToWorker};

/// A transport failed; in every case the conversation is over.
#[derive(Debug, Error)]
pub enum TransportError {
    #[error("the supervisor closed the channel")]
    Closed,
    #[error("IPC failed: {0}")]
    Ipc(String),
}

/// One end of a conversation with the supervisor, as a worker sees it.
pub trait Transport {
    /// Waits for the next message from the supervisor.
    fn recv(&mut self) -> Result<ToWorker, TransportError>;
    /// The next message if one is already waiting; never blocks.
    fn try_recv(&mut self) -> Result<Option<ToWorker>, TransportError>;
    /// Sends a message to the supervisor.
    fn send(&mut self, msg: FromWorker) -> Result<(), TransportError>;
}

/// A worker process's transport: a pair of ipc-channel ends.
#[derive(Debug)]
pub struct IpcTransport {
    rx: IpcReceiver<ToWorker>,
    tx: IpcSender<FromWorker>,
}

impl IpcTransport {
    pub fn new(rx: IpcReceiver<ToWorker>, tx: IpcSender<FromWorker>) -> Self {
        IpcTransport { rx, tx }
    }
}

impl Transport for IpcTransport {
    fn recv(&mut self) -> Result<ToWorker, TransportError> {
        use ipc_channel::IpcError;
        self.rx.recv().map_err(|e| match e {
            IpcError::Disconnected => TransportError::Closed,
            other => TransportError::Ipc(other.to_string()),
        })
    }

    fn try_recv(&mut self) -> Result<Option<ToWorker>, TransportError> {
        use ipc_channel::TryRecvError;
        match self.rx.try_recv() {
            Ok(msg) => Ok(Some(msg)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::IpcError(ipc_channel::IpcError::Disconnected)) => {
                Err(TransportError::Closed)
            }
            Err(TryRecvError::IpcError(e)) => Err(TransportError::Ipc(e.to_string())),
        }
    }

    fn send(&mut self, msg: FromWorker) -> Result<(), TransportError> {
        self.tx
            .send(msg)
            .map_err(|e| TransportError::Ipc(e.to_string()))
    }
}

/// A worker thread's transport: in-process channels. Replies are wrapped into the supervisor's
/// own event type `E`, so they land straight in its inbox.
#[derive(Debug)]
pub struct ChannelTransport<E> {
    rx: Receiver<ToWorker>,
    tx: Sender<E>,
    index: u32,
    wrap: fn(u32, FromWorker) -> E,
}

impl<E> ChannelTransport<E> {
    /// `wrap` turns a reply from worker `index` into an inbox event.
    pub fn new(
        rx: Receiver<ToWorker>,
        tx: Sender<E>,
        index: u32,
        wrap: fn(u32, FromWorker) -> E,
    ) -> Self {
        ChannelTransport {
            rx,
            tx,
            index,
            wrap,
        }
    }
}

impl<E> Transport for ChannelTransport<E> {
    fn recv(&mut self) -> Result<ToWorker, TransportError> {
        self.rx.recv().map_err(|_| TransportError::Closed)
    }

    fn try_recv(&mut self) -> Result<Option<ToWorker>, TransportError> {
        match self.rx.try_recv() {
            Ok(msg) => Ok(Some(msg)),
            Err(crossbeam_channel::TryRecvError::Empty) => Ok(None),
            Err(crossbeam_channel::TryRecvError::Disconnected) => Err(TransportError::Closed),
        }
    }

    fn send(&mut self, msg: FromWorker) -> Result<(), TransportError> {
        self.tx
            .send((self.wrap)(self.index, msg))
            .map_err(|_| TransportError::Closed)
    }
}
