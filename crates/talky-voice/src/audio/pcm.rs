//! Raw PCM helpers: s16le bytes <-> `i16` samples, f32 <-> s16 (protocols §1.3), and tone /
//! silence generators used by tests, the simulated caller and load generation.
//!
//! Kept separate from the framer and codecs so every other module shares one definition of
//! "little-endian s16" and one float conversion rule.

use bytes::{BufMut, Bytes, BytesMut};

use super::{samples_for_ms, BYTES_PER_SAMPLE};

/// Decodes s16le bytes into samples. A trailing odd byte (half a sample) is ignored; use a
/// [`Framer`](super::Framer) upstream when chunks may split samples.
pub fn le_bytes_to_samples(bytes: &[u8]) -> Vec<i16> {
    let mut out = Vec::with_capacity(bytes.len() / BYTES_PER_SAMPLE);
    extend_samples_from_le(bytes, &mut out);
    out
}

/// Appends the samples decoded from s16le `bytes` to `out` (a trailing odd byte is ignored).
pub fn extend_samples_from_le(bytes: &[u8], out: &mut Vec<i16>) {
    out.extend(
        bytes
            .chunks_exact(BYTES_PER_SAMPLE)
            .map(|b| i16::from_le_bytes([b[0], b[1]])),
    );
}

/// Encodes samples as s16le bytes.
pub fn samples_to_le_bytes(samples: &[i16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * BYTES_PER_SAMPLE);
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Appends samples as s16le bytes to `out`.
pub fn extend_le_from_samples(samples: &[i16], out: &mut BytesMut) {
    out.reserve(samples.len() * BYTES_PER_SAMPLE);
    for &s in samples {
        out.put_i16_le(s);
    }
}

/// Converts one float sample to s16: `clamp(trunc(x * 32768), -32768, 32767)`; NaN maps to 0.
pub fn f32_to_s16(x: f32) -> i16 {
    // `as` truncates toward zero, saturates at the i16 bounds and maps NaN to 0.
    (x * 32768.0) as i16
}

/// Converts one s16 sample to float: `s / 32768`.
pub fn s16_to_f32(s: i16) -> f32 {
    f32::from(s) / 32768.0
}

/// Decodes f32le bytes (e.g. float TTS output) into s16 samples; trailing partial floats are
/// ignored.
pub fn f32le_bytes_to_samples(bytes: &[u8], out: &mut Vec<i16>) {
    out.extend(
        bytes
            .chunks_exact(4)
            .map(|b| f32_to_s16(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
    );
}

/// `ms` milliseconds of digital silence as s16le mono at `rate` Hz.
pub fn silence_s16le(rate: u32, ms: u32) -> Bytes {
    Bytes::from(vec![0u8; samples_for_ms(rate, ms) * BYTES_PER_SAMPLE])
}

/// `ms` milliseconds of a sine tone (`freq_hz`, peak `amplitude`) as samples at `rate` Hz,
/// starting at phase 0.
pub fn sine(rate: u32, freq_hz: f32, amplitude: i16, ms: u32) -> Vec<i16> {
    let mut gen = ToneGenerator::new(rate, freq_hz, amplitude);
    let mut out = Vec::with_capacity(samples_for_ms(rate, ms));
    gen.fill(samples_for_ms(rate, ms), &mut out);
    out
}

/// `ms` milliseconds of a sine tone as s16le mono bytes at `rate` Hz.
pub fn tone_s16le(rate: u32, freq_hz: f32, amplitude: i16, ms: u32) -> Bytes {
    Bytes::from(samples_to_le_bytes(&sine(rate, freq_hz, amplitude, ms)))
}

/// Phase-continuous sine generator: successive calls produce one unbroken tone, so load
/// generators can emit frame after frame without clicks.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    rate: u32,
    freq_hz: f64,
    amplitude: f64,
    /// Index of the next sample (phase is recomputed from it to avoid drift).
    n: u64,
}

impl ToneGenerator {
    /// Creates a generator for `freq_hz` at peak `amplitude`, sampled at `rate` Hz.
    pub fn new(rate: u32, freq_hz: f32, amplitude: i16) -> Self {
        Self {
            rate,
            freq_hz: f64::from(freq_hz),
            amplitude: f64::from(amplitude),
            n: 0,
        }
    }

    /// Appends the next `count` samples to `out`.
    pub fn fill(&mut self, count: usize, out: &mut Vec<i16>) {
        let w = 2.0 * std::f64::consts::PI * self.freq_hz / f64::from(self.rate.max(1));
        out.reserve(count);
        for _ in 0..count {
            let v = (w * self.n as f64).sin() * self.amplitude;
            out.push(v.round().clamp(-32768.0, 32767.0) as i16);
            self.n += 1;
        }
    }

    /// Returns the next `ms` milliseconds as s16le bytes.
    pub fn next_s16le(&mut self, ms: u32) -> Bytes {
        let mut samples = Vec::new();
        self.fill(samples_for_ms(self.rate, ms), &mut samples);
        let mut out = BytesMut::new();
        extend_le_from_samples(&samples, &mut out);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_round_trip_and_byte_order() {
        let samples = [0i16, 1, -1, 0x1234, i16::MIN, i16::MAX];
        let bytes = samples_to_le_bytes(&samples);
        assert_eq!(
            bytes,
            [0, 0, 1, 0, 0xFF, 0xFF, 0x34, 0x12, 0x00, 0x80, 0xFF, 0x7F]
        );
        assert_eq!(le_bytes_to_samples(&bytes), samples);
        let mut b = BytesMut::new();
        extend_le_from_samples(&samples, &mut b);
        assert_eq!(&b[..], &bytes[..]);
    }

    #[test]
    fn odd_trailing_byte_is_ignored() {
        assert_eq!(le_bytes_to_samples(&[0x34, 0x12, 0x99]), [0x1234]);
        assert!(le_bytes_to_samples(&[0x99]).is_empty());
    }

    #[test]
    fn f32_conversion_vectors() {
        assert_eq!(f32_to_s16(0.0), 0);
        assert_eq!(f32_to_s16(0.5), 16384);
        assert_eq!(f32_to_s16(-0.5), -16384);
        assert_eq!(f32_to_s16(1.0), 32767);
        assert_eq!(f32_to_s16(-1.0), -32768);
        assert_eq!(f32_to_s16(2.0), 32767);
        assert_eq!(f32_to_s16(-3.0), -32768);
        assert_eq!(f32_to_s16(f32::NAN), 0);
        // Round toward zero, not to nearest.
        assert_eq!(f32_to_s16(0.99999 / 32768.0), 0);
        assert_eq!(f32_to_s16(-1.9 / 32768.0), -1);
        assert_eq!(s16_to_f32(16384), 0.5);
        assert_eq!(s16_to_f32(-32768), -1.0);
        let mut out = Vec::new();
        let mut bytes = Vec::new();
        for x in [0.5f32, -1.0, 1.0] {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        bytes.push(0xAA);
        f32le_bytes_to_samples(&bytes, &mut out);
        assert_eq!(out, [16384, -32768, 32767]);
    }

    #[test]
    fn silence_and_tone_lengths() {
        assert_eq!(silence_s16le(16_000, 20).len(), 640);
        assert!(silence_s16le(16_000, 20).iter().all(|&b| b == 0));
        assert_eq!(silence_s16le(8_000, 20).len(), 320);
        let tone = tone_s16le(16_000, 1000.0, 10_000, 100);
        assert_eq!(tone.len(), 3200);
    }

    #[test]
    fn sine_values() {
        // 4 kHz at 16 kHz: exactly 0, A, 0, -A, ...
        let s = sine(16_000, 4000.0, 1000, 1);
        assert_eq!(
            s,
            [0, 1000, 0, -1000, 0, 1000, 0, -1000, 0, 1000, 0, -1000, 0, 1000, 0, -1000]
        );
        let peak = sine(16_000, 440.0, 12_000, 100)
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap();
        assert!((11_990..=12_000).contains(&peak), "peak {peak}");
    }

    #[test]
    fn generator_is_phase_continuous() {
        let whole = sine(16_000, 440.0, 9000, 200);
        let mut gen = ToneGenerator::new(16_000, 440.0, 9000);
        let mut pieces = Vec::new();
        for _ in 0..10 {
            pieces.extend_from_slice(&gen.next_s16le(20));
        }
        assert_eq!(pieces, samples_to_le_bytes(&whole));
    }
}
