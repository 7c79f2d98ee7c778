//! The session's two pipes to the media socket.
//!
//! * Inbound: the server's socket reader calls [`InboundSender`] methods, which never block.
//!   Audio frames go into a bounded queue that drops its **oldest** audio frame when full and
//!   counts it (G6): stale caller audio is worth less than fresh audio, and the reader must never
//!   stall on a busy session. Control events (close, DTMF, notify, …) are never dropped.
//! * Outbound: a bounded channel of [`Outbound`] items that the server's socket writer drains
//!   and writes as they come (binary for audio, text for JSON). Pacing happens in the session,
//!   so the writer is a dumb pump and never needs a timer.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::Notify;

use super::report::EndReason;
use crate::vonage::{self, AudioRejection, VonageEvent};

/// Inbound audio frames buffered before the oldest is dropped (1 s of 20 ms frames).
pub const INBOUND_AUDIO_CAPACITY: usize = 50;

/// Outbound channel capacity (messages). The pacer keeps about 15–50 frames in flight, so a
/// full channel means the socket writer has stalled.
pub const OUTBOUND_CAPACITY: usize = 256;

/// Something from the media socket (or the server) for the session.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// `websocket:connected`: the carrier is ready; the recording timeline starts here.
    Connected {
        /// Media sample rate from the content type.
        sample_rate: u32,
    },
    /// A binary caller-audio frame that passed [`vonage::check_audio`].
    Audio(Bytes),
    /// A binary frame that was refused (counted).
    BadAudio(AudioRejection),
    /// A key press (G29).
    Dtmf {
        /// The digit.
        digit: String,
        /// Duration in ms, when known.
        duration_ms: Option<u64>,
    },
    /// `websocket:cleared`.
    Cleared,
    /// `websocket:notify` with its payload.
    Notify(Value),
    /// Unparsable text (counted, never treated as audio).
    Malformed(String),
    /// An event name the session does not handle.
    UnknownEvent(String),
    /// The socket closed: the call is over at the carrier.
    Closed,
    /// The server ends the call (campaign stopped, shutdown): hang up and persist.
    Stop(EndReason),
}

impl Inbound {
    /// Converts a text frame.
    pub fn from_text(text: &str) -> Self {
        match vonage::parse_text(text) {
            Ok(VonageEvent::Connected { sample_rate, .. }) => Inbound::Connected { sample_rate },
            Ok(VonageEvent::Dtmf { digit, duration_ms }) => Inbound::Dtmf { digit, duration_ms },
            Ok(VonageEvent::Cleared) => Inbound::Cleared,
            Ok(VonageEvent::Notify { payload }) => Inbound::Notify(payload),
            Ok(VonageEvent::Unknown { event }) => Inbound::UnknownEvent(event),
            Err(e) => Inbound::Malformed(e.to_string()),
        }
    }

    /// Converts a binary frame.
    pub fn from_binary(frame: Bytes) -> Self {
        match vonage::check_audio(&frame) {
            Ok(()) => Inbound::Audio(frame),
            Err(rejection) => Inbound::BadAudio(rejection),
        }
    }
}

/// Something for the socket writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// A binary frame: exactly one 20 ms frame (640 bytes at 16 kHz).
    Audio(Bytes),
    /// A text frame (JSON action).
    Text(String),
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Inbound>,
    audio: usize,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    notify: Notify,
    dropped_audio: AtomicU64,
    closed: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A poisoned lock only means a panic elsewhere while holding it; the queue itself is
        // still consistent (every mutation is a single push/pop).
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The server's handle for feeding the session. Cheap to clone; never blocks.
#[derive(Debug, Clone)]
pub struct InboundSender {
    shared: Arc<Shared>,
}

impl InboundSender {
    /// Queues an event. Returns false once the session has ended (stop reading the socket).
    pub fn send(&self, event: Inbound) -> bool {
        if self.shared.closed.load(Ordering::Acquire) {
            return false;
        }
        {
            let mut q = self.shared.lock();
            if matches!(event, Inbound::Audio(_)) {
                if q.audio >= INBOUND_AUDIO_CAPACITY {
                    if let Some(pos) = q.items.iter().position(|e| matches!(e, Inbound::Audio(_))) {
                        q.items.remove(pos);
                        q.audio -= 1;
                        self.shared.dropped_audio.fetch_add(1, Ordering::Relaxed);
                    }
                }
                q.audio += 1;
            }
            q.items.push_back(event);
        }
        self.shared.notify.notify_one();
        true
    }

    /// Queues a text frame from the socket.
    pub fn text(&self, text: &str) -> bool {
        self.send(Inbound::from_text(text))
    }

    /// Queues a binary frame from the socket.
    pub fn binary(&self, frame: Bytes) -> bool {
        self.send(Inbound::from_binary(frame))
    }

    /// Reports that the socket closed.
    pub fn closed(&self) -> bool {
        self.send(Inbound::Closed)
    }

    /// True once the session stopped accepting input.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }
}

/// The session's end of the inbound queue.
#[derive(Debug)]
pub(crate) struct InboundReceiver {
    shared: Arc<Shared>,
}

impl InboundReceiver {
    /// Waits for the next event.
    pub(crate) async fn recv(&mut self) -> Inbound {
        loop {
            if let Some(ev) = self.try_recv() {
                return ev;
            }
            self.shared.notify.notified().await;
        }
    }

    /// Takes the next event if one is queued.
    pub(crate) fn try_recv(&mut self) -> Option<Inbound> {
        let mut q = self.shared.lock();
        let ev = q.items.pop_front()?;
        if matches!(ev, Inbound::Audio(_)) {
            q.audio -= 1;
        }
        Some(ev)
    }

    /// Audio frames dropped because the queue was full.
    pub(crate) fn dropped_audio(&self) -> u64 {
        self.shared.dropped_audio.load(Ordering::Relaxed)
    }

    /// Stops accepting input and discards what is queued.
    pub(crate) fn close(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        let mut q = self.shared.lock();
        q.items.clear();
        q.audio = 0;
    }
}

impl Drop for InboundReceiver {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
    }
}

/// Creates the inbound pipe.
pub(crate) fn inbound_pair() -> (InboundSender, InboundReceiver) {
    let shared = Arc::new(Shared::default());
    (
        InboundSender {
            shared: shared.clone(),
        },
        InboundReceiver { shared },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_queue_drops_oldest_audio_only() {
        let (tx, mut rx) = inbound_pair();
        tx.send(Inbound::Dtmf {
            digit: "1".into(),
            duration_ms: None,
        });
        for i in 0..(INBOUND_AUDIO_CAPACITY + 3) {
            assert!(tx.binary(Bytes::from(vec![i as u8; 640])));
        }
        tx.closed();
        assert_eq!(rx.dropped_audio(), 3);
        assert!(matches!(rx.recv().await, Inbound::Dtmf { .. }));
        match rx.recv().await {
            Inbound::Audio(b) => assert_eq!(b[0], 3, "the three oldest frames were dropped"),
            other => panic!("{other:?}"),
        }
        let mut n = 1;
        loop {
            match rx.recv().await {
                Inbound::Audio(_) => n += 1,
                Inbound::Closed => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(n, INBOUND_AUDIO_CAPACITY);
        drop(rx);
        assert!(!tx.binary(Bytes::from_static(&[0; 640])));
        assert!(tx.is_closed());
    }

    #[test]
    fn conversions() {
        assert_eq!(
            Inbound::from_text(
                r#"{"event":"websocket:connected","content-type":"audio/l16;rate=16000"}"#
            ),
            Inbound::Connected {
                sample_rate: 16_000
            }
        );
        assert!(matches!(Inbound::from_text("{oops"), Inbound::Malformed(_)));
        assert_eq!(
            Inbound::from_binary(Bytes::from_static(&[0; 3])),
            Inbound::BadAudio(AudioRejection::PartialSample(3))
        );
    }
}
