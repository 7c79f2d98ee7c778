//! The byte carry (protocols §1.3): re-chunks an arbitrary byte stream into exact fixed-size
//! frames (640 bytes = 20 ms at 16 kHz s16le by default).
//!
//! Providers deliver chunks of any length, including odd lengths that split a sample in half.
//! Dropping or mis-aligning a single byte byte-swaps everything after it (loud buzz), so the
//! framer never drops or reorders bytes: leftovers stay in one [`BytesMut`] and are prepended
//! to the next chunk. Frames are cut with `split_to(..).freeze()`, which shares the buffer's
//! allocation instead of allocating per frame.

use bytes::{Bytes, BytesMut};

/// How many frames of headroom the internal buffer reserves at a time.
const RESERVE_FRAMES: usize = 8;

/// Splits a stream of byte chunks into exact `frame_len`-byte frames.
#[derive(Debug)]
pub struct Framer {
    buf: BytesMut,
    frame_len: usize,
    silence: u8,
}

impl Framer {
    /// Creates a framer producing `frame_len`-byte frames padded with `0x00` (s16le silence).
    ///
    /// # Panics
    /// If `frame_len` is 0.
    pub fn new(frame_len: usize) -> Self {
        Self::with_silence(frame_len, 0x00)
    }

    /// Creates a framer whose [`flush`](Self::flush) pads with `silence` (e.g. `0xFF` for
    /// μ-law, `0xD5` for A-law).
    ///
    /// # Panics
    /// If `frame_len` is 0.
    pub fn with_silence(frame_len: usize, silence: u8) -> Self {
        assert!(frame_len > 0, "frame length must be non-zero");
        Self {
            buf: BytesMut::with_capacity(frame_len * RESERVE_FRAMES),
            frame_len,
            silence,
        }
    }

    /// The frame size in bytes.
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// Bytes buffered and not yet returned as frames.
    pub fn pending_len(&self) -> usize {
        self.buf.len()
    }

    /// Appends a chunk of any length (including odd lengths) to the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.buf.capacity() - self.buf.len() < chunk.len() {
            self.buf
                .reserve(chunk.len().max(self.frame_len * RESERVE_FRAMES));
        }
        self.buf.extend_from_slice(chunk);
    }

    /// Returns the next complete frame, or `None` if fewer than `frame_len` bytes are pending.
    pub fn next_frame(&mut self) -> Option<Bytes> {
        if self.buf.len() >= self.frame_len {
            Some(self.buf.split_to(self.frame_len).freeze())
        } else {
            None
        }
    }

    /// Drains every complete frame currently available.
    pub fn frames(&mut self) -> impl Iterator<Item = Bytes> + '_ {
        std::iter::from_fn(move || self.next_frame())
    }

    /// Ends the stream: returns the next complete frame if one is pending, else the partial
    /// remainder padded with silence to a full frame, else `None`. Call it in a loop
    /// (`while let Some(f) = framer.flush()`) to drain everything. A dangling half sample is
    /// padded like any other byte.
    pub fn flush(&mut self) -> Option<Bytes> {
        if let Some(frame) = self.next_frame() {
            return Some(frame);
        }
        if self.buf.is_empty() {
            return None;
        }
        self.buf.resize(self.frame_len, self.silence);
        self.next_frame()
    }

    /// Discards pending bytes (e.g. when an utterance is interrupted).
    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::pcm::tone_s16le;

    fn reassemble(data: &[u8], chunk_sizes: &[usize]) -> (Vec<u8>, usize) {
        let mut f = Framer::new(640);
        let mut out = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < data.len() {
            let n = chunk_sizes[i % chunk_sizes.len()].min(data.len() - pos);
            f.push(&data[pos..pos + n]);
            pos += n;
            i += 1;
            for frame in f.frames() {
                assert_eq!(frame.len(), 640);
                out.extend_from_slice(&frame);
            }
        }
        (out, f.pending_len())
    }

    #[test]
    fn exact_frames_pass_through() {
        let mut f = Framer::new(640);
        let data: Vec<u8> = (0..1280u32).map(|i| (i * 7 % 251) as u8).collect();
        f.push(&data);
        let a = f.next_frame().unwrap();
        let b = f.next_frame().unwrap();
        assert!(f.next_frame().is_none());
        assert_eq!(&a[..], &data[..640]);
        assert_eq!(&b[..], &data[640..]);
        assert_eq!(f.pending_len(), 0);
        assert!(f.flush().is_none());
    }

    #[test]
    fn odd_chunks_reassemble_bit_exactly() {
        // 1 s of a tone with non-trivial low and high bytes.
        let tone = tone_s16le(16_000, 523.25, 20_000, 1000);
        assert_eq!(tone.len(), 32_000);
        for sizes in [
            &[1usize][..],
            &[3],
            &[7, 1, 639, 641],
            &[333],
            &[641],
            &[1279, 1],
            &[5, 11, 17, 997],
            &[32_000],
        ] {
            let (out, pending) = reassemble(&tone, sizes);
            assert_eq!(pending, 0, "sizes {sizes:?}");
            assert_eq!(out.len(), 32_000, "sizes {sizes:?}");
            assert!(out[..] == tone[..], "mismatch for sizes {sizes:?}");
        }
    }

    #[test]
    fn half_sample_is_carried() {
        let mut f = Framer::new(4);
        f.push(&[0x34]);
        assert!(f.next_frame().is_none());
        assert_eq!(f.pending_len(), 1);
        f.push(&[0x12, 0x78]);
        assert!(f.next_frame().is_none());
        f.push(&[0x56, 0xAA]);
        let frame = f.next_frame().unwrap();
        assert_eq!(&frame[..], &[0x34, 0x12, 0x78, 0x56]);
        assert_eq!(
            i16::from_le_bytes([frame[0], frame[1]]),
            0x1234,
            "sample split across chunks"
        );
        assert_eq!(f.pending_len(), 1);
    }

    #[test]
    fn flush_pads_with_silence() {
        let mut f = Framer::new(640);
        f.push(&[1u8; 1000]);
        let first = f.flush().unwrap();
        assert_eq!(&first[..], &[1u8; 640][..]);
        let last = f.flush().unwrap();
        assert_eq!(last.len(), 640);
        assert!(last[..360].iter().all(|&b| b == 1));
        assert!(last[360..].iter().all(|&b| b == 0));
        assert!(f.flush().is_none());
        assert_eq!(f.pending_len(), 0);

        let mut u = Framer::with_silence(160, 0xFF);
        u.push(&[0x10; 3]);
        let frame = u.flush().unwrap();
        assert_eq!(frame.len(), 160);
        assert_eq!(&frame[..4], &[0x10, 0x10, 0x10, 0xFF]);
        assert!(frame[3..].iter().all(|&b| b == 0xFF));
    }

    #[test]
    fn odd_flush_pads_half_sample() {
        let mut f = Framer::new(640);
        f.push(&[0xAB; 3]);
        let frame = f.flush().unwrap();
        assert_eq!(&frame[..4], &[0xAB, 0xAB, 0xAB, 0x00]);
        assert_eq!(frame.len(), 640);
    }

    #[test]
    fn clear_discards_pending() {
        let mut f = Framer::new(640);
        f.push(&[9u8; 700]);
        f.clear();
        assert_eq!(f.pending_len(), 0);
        assert!(f.flush().is_none());
        f.push(&[2u8; 640]);
        assert_eq!(&f.next_frame().unwrap()[..], &[2u8; 640][..]);
    }

    #[test]
    fn frames_stay_valid_after_more_pushes() {
        let mut f = Framer::new(640);
        f.push(&[1u8; 640]);
        let a = f.next_frame().unwrap();
        for round in 2..50u8 {
            f.push(&[round; 640]);
        }
        let rest: Vec<Bytes> = f.frames().collect();
        assert_eq!(rest.len(), 48);
        assert!(a.iter().all(|&b| b == 1));
        for (i, fr) in rest.iter().enumerate() {
            assert!(fr.iter().all(|&b| b == i as u8 + 2));
        }
    }

    #[test]
    fn frames_share_one_allocation() {
        // Frames cut from the same push are adjacent slices of one buffer, not fresh copies.
        let mut f = Framer::new(640);
        f.push(&[0u8; 640 * 3]);
        let a = f.next_frame().unwrap();
        let b = f.next_frame().unwrap();
        let c = f.next_frame().unwrap();
        assert_eq!(b.as_ptr() as usize, a.as_ptr() as usize + 640);
        assert_eq!(c.as_ptr() as usize, b.as_ptr() as usize + 640);
    }

    #[test]
    #[should_panic(expected = "non-zero")]
    fn zero_frame_len_panics() {
        let _ = Framer::new(0);
    }
}
