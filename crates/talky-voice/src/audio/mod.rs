//! Audio primitives for the voice pipeline (protocols §1).
//!
//! Talky's canonical format is signed 16-bit little-endian PCM, mono, 16 kHz, moved around as
//! [`bytes::Bytes`] in 20 ms / 640-byte frames. Everything that touches samples lives here so the
//! rest of the crate never does ad-hoc byte arithmetic:
//!
//! * [`pcm`]: sample/byte conversion, f32 <-> s16, tone and silence generators;
//! * [`framer`]: the byte carry that turns arbitrary chunks into exact frames;
//! * [`resample`]: streaming polyphase windowed-sinc resampler (8/22.05/24/44.1/48 kHz <-> 16 kHz);
//! * [`g711`]: μ-law and A-law codecs;
//! * [`level`]: RMS / dBFS measurement and the pre-encode DC + silence gate;
//! * [`wav`]: streaming WAV writer, in-memory builder and a minimal reader;
//! * [`mix`]: mono mix and stereo interleave for recordings.
//!
//! [`self_test`] exercises the conversion chain and is meant to run at startup (behaviour G18).

pub mod framer;
pub mod g711;
pub mod level;
pub mod mix;
pub mod pcm;
pub mod resample;
pub mod wav;

pub use framer::Framer;
pub use g711::{alaw_to_linear, linear_to_alaw, linear_to_ulaw, ulaw_to_linear};
pub use level::{dbfs, rms, rms_s16le, VOICED_RMS_THRESHOLD};
pub use mix::{interleave_stereo, mix_mono};
pub use pcm::{le_bytes_to_samples, samples_to_le_bytes, silence_s16le, tone_s16le};
pub use resample::Resampler;
pub use wav::{read_wav, wav_bytes, WavData, WavSpec, WavWriter};

/// Canonical sample rate (Hz).
pub const SAMPLE_RATE: u32 = 16_000;
/// Bytes per s16 sample.
pub const BYTES_PER_SAMPLE: usize = 2;
/// Duration of one frame (ms).
pub const FRAME_MS: u32 = 20;
/// Samples per 20 ms frame at 16 kHz.
pub const FRAME_SAMPLES: usize = 320;
/// Bytes per 20 ms frame at 16 kHz s16le mono.
pub const FRAME_BYTES: usize = FRAME_SAMPLES * BYTES_PER_SAMPLE;
/// Smallest inbound chunk accepted from any source (10 ms at 16 kHz s16le).
pub const MIN_CHUNK_BYTES: usize = 320;
/// Largest inbound chunk accepted from any source (1 s at 16 kHz s16le).
pub const MAX_CHUNK_BYTES: usize = 32_000;

/// Number of s16 samples in `ms` milliseconds of mono audio at `rate` Hz (rounded down).
pub const fn samples_for_ms(rate: u32, ms: u32) -> usize {
    (rate as u64 * ms as u64 / 1000) as usize
}

/// Number of s16le bytes in `ms` milliseconds of mono audio at `rate` Hz.
pub const fn bytes_for_ms(rate: u32, ms: u32) -> usize {
    samples_for_ms(rate, ms) * BYTES_PER_SAMPLE
}

/// Bytes in one 20 ms s16le mono frame at `rate` Hz (640 at 16 kHz, 320 at 8 kHz).
pub const fn frame_bytes(rate: u32) -> usize {
    bytes_for_ms(rate, FRAME_MS)
}

/// Errors raised by the audio module.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The resampler cannot convert between these rates.
    #[error("unsupported resampling ratio {from} Hz -> {to} Hz")]
    UnsupportedRatio {
        /// Input rate.
        from: u32,
        /// Output rate.
        to: u32,
    },
    /// An inbound chunk is not a whole number of samples or is outside 10 ms..=1 s.
    #[error("invalid audio chunk of {len} bytes")]
    InvalidChunk {
        /// Length of the rejected chunk in bytes.
        len: usize,
    },
    /// A WAV file could not be parsed or is not 16-bit PCM.
    #[error("invalid WAV: {0}")]
    InvalidWav(String),
    /// An I/O error from the underlying WAV sink.
    #[error("audio I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The startup self-test failed.
    #[error("audio self-test failed: {0}")]
    SelfTest(String),
}

/// Validates an inbound 16 kHz s16le chunk: whole samples and 10 ms..=1 s long (behaviour G18).
pub fn validate_chunk(chunk: &[u8]) -> Result<(), AudioError> {
    let len = chunk.len();
    let half_sample = len & 1 == 1; // BYTES_PER_SAMPLE is 2
    if half_sample || !(MIN_CHUNK_BYTES..=MAX_CHUNK_BYTES).contains(&len) {
        return Err(AudioError::InvalidChunk { len });
    }
    Ok(())
}

/// Startup self-test of the conversion chain (protocols §1.3, behaviour G18).
///
/// Checks the G.711 reference vectors, odd-chunk reassembly through the [`Framer`], every
/// supported resampling ratio (a 1 kHz tone must come out at the right level and phase), and a
/// WAV write/read round trip. Any failure is returned as [`AudioError::SelfTest`]; callers
/// should abort startup on error.
pub fn self_test() -> Result<(), AudioError> {
    fn check(ok: bool, what: &str) -> Result<(), AudioError> {
        if ok {
            Ok(())
        } else {
            Err(AudioError::SelfTest(what.to_string()))
        }
    }

    // G.711 reference vectors.
    check(linear_to_ulaw(0) == 0xFF, "ulaw encode(0)")?;
    check(ulaw_to_linear(0xFF) == 0, "ulaw decode(0xFF)")?;
    check(ulaw_to_linear(0x00) == -32124, "ulaw decode(0x00)")?;
    check(linear_to_alaw(0) == 0xD5, "alaw encode(0)")?;
    check(alaw_to_linear(0xD5) == 8, "alaw decode(0xD5)")?;
    check(alaw_to_linear(0x55) == -8, "alaw decode(0x55)")?;

    // Byte carry: odd-sized chunks must reassemble bit-exactly.
    let tone = tone_s16le(SAMPLE_RATE, 440.0, 8000, 100);
    let mut framer = Framer::new(FRAME_BYTES);
    let mut out = Vec::with_capacity(tone.len());
    for chunk in tone.chunks(333) {
        framer.push(chunk);
        while let Some(frame) = framer.next_frame() {
            check(frame.len() == FRAME_BYTES, "framer frame size")?;
            out.extend_from_slice(&frame);
        }
    }
    check(out[..] == tone[..], "framer reassembly")?;

    // Resampler: every supported ratio preserves a 1 kHz tone.
    for &(from, to) in resample::SUPPORTED_RATIOS {
        let err = resample::tone_error(from, to, 1000.0, 97)?;
        if err > 0.005 {
            return Err(AudioError::SelfTest(format!(
                "resampler {from}->{to}: relative error {err:.4}"
            )));
        }
    }

    // WAV round trip.
    let wav = wav_bytes(WavSpec::mono(SAMPLE_RATE), &tone);
    let parsed = read_wav(&wav)?;
    check(
        parsed.sample_rate == SAMPLE_RATE && parsed.channels == 1 && parsed.pcm[..] == tone[..],
        "wav round trip",
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_spec_table() {
        assert_eq!(FRAME_BYTES, 640);
        assert_eq!(frame_bytes(16_000), 640);
        assert_eq!(frame_bytes(8_000), 320);
        assert_eq!(frame_bytes(24_000), 960);
        assert_eq!(bytes_for_ms(16_000, 1000), 32_000);
        assert_eq!(bytes_for_ms(16_000, 80), 2560);
        assert_eq!(samples_for_ms(44_100, 20), 882);
    }

    #[test]
    fn validate_chunk_bounds() {
        assert!(validate_chunk(&[0; 320]).is_ok());
        assert!(validate_chunk(&[0; 32_000]).is_ok());
        assert!(validate_chunk(&[0; 640]).is_ok());
        assert!(matches!(
            validate_chunk(&[0; 318]),
            Err(AudioError::InvalidChunk { len: 318 })
        ));
        assert!(validate_chunk(&[0; 32_002]).is_err());
        assert!(validate_chunk(&[0; 641]).is_err());
        assert!(validate_chunk(&[]).is_err());
    }

    #[test]
    fn self_test_passes() {
        self_test().unwrap();
    }
}
