//! ITU-T G.711 μ-law and A-law codecs (protocols §1.4), used for Twilio Media Streams and
//! RTP PT 0 / PT 8.
//!
//! Encoding follows the standard segment/mantissa bit algorithm described in the spec; decoding
//! uses 256-entry tables computed at compile time from the same algorithm. One s16 sample maps
//! to one byte. Silence is `0xFF` (μ-law) and `0xD5` (A-law).

use bytes::{BufMut, BytesMut};

/// μ-law code for digital silence.
pub const ULAW_SILENCE: u8 = 0xFF;
/// A-law code for digital silence.
pub const ALAW_SILENCE: u8 = 0xD5;

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32_635;
const ALAW_SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

/// Encodes one s16 sample as μ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut magnitude = i32::from(sample);
    let sign = if magnitude < 0 {
        magnitude = -magnitude;
        0x80
    } else {
        0
    };
    magnitude = magnitude.min(ULAW_CLIP) + ULAW_BIAS;
    let top = magnitude >> 7; // 1..=255 after biasing
    let exponent = if top <= 1 {
        0
    } else {
        31 - (top as u32).leading_zeros() as i32
    };
    let mantissa = (magnitude >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

const fn ulaw_decode_calc(byte: u8) -> i16 {
    let b = !byte;
    let exponent = (b >> 4) & 0x07;
    let mantissa = (b & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if b & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_decode_calc(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let mut t = ((a & 0x0F) as i32) << 4;
    let seg = ((a >> 4) & 0x07) as i32;
    if seg == 0 {
        t += 8;
    } else {
        t += 0x108;
        if seg >= 2 {
            t <<= seg - 1;
        }
    }
    if a & 0x80 != 0 {
        t as i16
    } else {
        -t as i16
    }
}

const ULAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_decode_calc(i as u8);
        i += 1;
    }
    table
};

const ALAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_decode_calc(i as u8);
        i += 1;
    }
    table
};

/// Decodes one μ-law byte to s16.
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_DECODE[code as usize]
}

/// Encodes one s16 sample as A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut v = i32::from(sample) >> 3;
    let mask = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    let Some(seg) = ALAW_SEG_END.iter().position(|&end| v <= end) else {
        return 0x7F ^ mask;
    };
    let shift = if seg < 2 { 1 } else { seg };
    let quant = (v >> shift) & 0x0F;
    (((seg as i32) << 4) | quant) as u8 ^ mask
}

/// Decodes one A-law byte to s16.
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_DECODE[code as usize]
}

/// Which G.711 companding law a stream uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711Law {
    /// μ-law (PCMU, RTP payload type 0, Twilio).
    Ulaw,
    /// A-law (PCMA, RTP payload type 8).
    Alaw,
}

impl G711Law {
    /// Encodes one sample.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Self::Ulaw => linear_to_ulaw(sample),
            Self::Alaw => linear_to_alaw(sample),
        }
    }

    /// Decodes one byte.
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Self::Ulaw => ulaw_to_linear(code),
            Self::Alaw => alaw_to_linear(code),
        }
    }

    /// The code for digital silence.
    pub fn silence(self) -> u8 {
        match self {
            Self::Ulaw => ULAW_SILENCE,
            Self::Alaw => ALAW_SILENCE,
        }
    }

    /// Encodes samples, appending one byte per sample to `out`.
    pub fn encode_samples(self, samples: &[i16], out: &mut Vec<u8>) {
        out.extend(samples.iter().map(|&s| self.encode(s)));
    }

    /// Decodes bytes, appending one sample per byte to `out`.
    pub fn decode_samples(self, codes: &[u8], out: &mut Vec<i16>) {
        out.extend(codes.iter().map(|&c| self.decode(c)));
    }

    /// Encodes s16le bytes (a trailing odd byte is ignored), appending codes to `out`.
    pub fn encode_s16le(self, pcm: &[u8], out: &mut BytesMut) {
        out.reserve(pcm.len() / 2);
        for b in pcm.chunks_exact(2) {
            out.put_u8(self.encode(i16::from_le_bytes([b[0], b[1]])));
        }
    }

    /// Decodes codes, appending s16le bytes to `out`.
    pub fn decode_s16le(self, codes: &[u8], out: &mut BytesMut) {
        out.reserve(codes.len() * 2);
        for &c in codes {
            out.put_i16_le(self.decode(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_spec_vectors() {
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x7F), 0); // "negative zero"
        assert_eq!(linear_to_ulaw(32767), 0x80);
        assert_eq!(linear_to_ulaw(-32768), 0x00);
        // Classic reference points.
        assert_eq!(linear_to_ulaw(-1), 0x7F);
        assert_eq!(linear_to_ulaw(1000), 0xCE);
        assert_eq!(ulaw_to_linear(0xCE), 988);
        assert_eq!(linear_to_ulaw(-1000), 0x4E);
        assert_eq!(ulaw_to_linear(0xF0), 120);
    }

    #[test]
    fn alaw_spec_vectors() {
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(32767), 0xAA);
        assert_eq!(linear_to_alaw(-32768), 0x2A);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(linear_to_alaw(1000), 0xFA);
        assert_eq!(alaw_to_linear(0xFA), 1008);
    }

    #[test]
    fn every_code_round_trips() {
        for code in 0..=255u8 {
            let expected_ulaw = if code == 0x7F { 0xFF } else { code };
            assert_eq!(
                linear_to_ulaw(ulaw_to_linear(code)),
                expected_ulaw,
                "{code:#04x}"
            );
            assert_eq!(linear_to_alaw(alaw_to_linear(code)), code, "{code:#04x}");
        }
    }

    #[test]
    fn quantisation_is_monotonic_and_bounded() {
        let mut prev_u = i16::MIN;
        let mut prev_a = i16::MIN;
        for s in i16::MIN..=i16::MAX {
            let u = ulaw_to_linear(linear_to_ulaw(s));
            let a = alaw_to_linear(linear_to_alaw(s));
            assert!(u >= prev_u && a >= prev_a, "not monotonic at {s}");
            prev_u = u;
            prev_a = a;
            let mag = i32::from(s).abs();
            let err_u = (i32::from(u) - i32::from(s)).abs();
            let err_a = (i32::from(a) - i32::from(s)).abs();
            if mag <= ULAW_CLIP {
                assert!(err_u <= mag / 16 + 8, "ulaw error {err_u} at {s}");
            } else {
                assert!(err_u <= 644, "ulaw clip error {err_u} at {s}");
            }
            assert!(err_a <= mag / 32 + 16, "alaw error {err_a} at {s}");
        }
    }

    #[test]
    fn full_scale_sine_round_trip() {
        let sine = crate::audio::pcm::sine(8_000, 1004.0, i16::MAX, 100);
        for law in [G711Law::Ulaw, G711Law::Alaw] {
            let mut codes = Vec::new();
            law.encode_samples(&sine, &mut codes);
            assert_eq!(codes.len(), sine.len());
            let mut back = Vec::new();
            law.decode_samples(&codes, &mut back);
            let worst = sine
                .iter()
                .zip(&back)
                .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
                .max()
                .unwrap();
            assert!(worst < 4000, "{law:?} worst {worst}");
            assert!(worst <= 644, "{law:?} worst {worst}");
        }
    }

    #[test]
    fn byte_helpers_and_silence() {
        let pcm = crate::audio::pcm::samples_to_le_bytes(&[0, 1000, -1000, 0]);
        let mut codes = BytesMut::new();
        G711Law::Ulaw.encode_s16le(&pcm, &mut codes);
        assert_eq!(&codes[..], &[0xFF, 0xCE, 0x4E, 0xFF]);
        let mut back = BytesMut::new();
        G711Law::Ulaw.decode_s16le(&codes, &mut back);
        assert_eq!(
            crate::audio::pcm::le_bytes_to_samples(&back),
            [0, 988, -988, 0]
        );
        assert_eq!(G711Law::Ulaw.silence(), 0xFF);
        assert_eq!(G711Law::Alaw.silence(), 0xD5);
        assert_eq!(G711Law::Alaw.encode(0), G711Law::Alaw.silence());
        assert_eq!(G711Law::Ulaw.decode(G711Law::Ulaw.silence()), 0);
    }
}
