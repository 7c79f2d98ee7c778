//! Level measurement (protocols §1.5) and the pre-encode cleanup gate (§1.3).
//!
//! Frame RMS on the s16 scale drives the energy VAD, barge-in, the STT watchdog and quiet
//! detection; one implementation here keeps those thresholds consistent.

use super::BYTES_PER_SAMPLE;

/// Frame RMS at or above which a frame counts as voiced (below it the frame is quiet).
pub const VOICED_RMS_THRESHOLD: f32 = 500.0;

/// RMS below which a frame is replaced by digital silence before G.711 encoding (−62 dBFS).
pub const SILENCE_GATE_RMS: f32 = 26.0;

/// Root mean square of s16 samples (0.0 for an empty slice).
pub fn rms(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: u64 = samples
        .iter()
        .map(|&s| {
            let v = i64::from(s);
            (v * v) as u64
        })
        .sum();
    (sum as f64 / samples.len() as f64).sqrt() as f32
}

/// Root mean square of an s16le frame (a trailing odd byte is ignored; 0.0 when empty).
pub fn rms_s16le(frame: &[u8]) -> f32 {
    let mut sum: u64 = 0;
    let mut n: u64 = 0;
    for b in frame.chunks_exact(BYTES_PER_SAMPLE) {
        let v = i64::from(i16::from_le_bytes([b[0], b[1]]));
        sum += (v * v) as u64;
        n += 1;
    }
    if n == 0 {
        0.0
    } else {
        (sum as f64 / n as f64).sqrt() as f32
    }
}

/// Converts an s16-scale RMS to dBFS: `20·log10(rms / 32768)` (−∞ for 0).
pub fn dbfs(rms: f32) -> f32 {
    20.0 * (rms / 32768.0).log10()
}

/// True when an s16le frame is voiced (`RMS >= threshold`).
pub fn is_voiced(frame: &[u8], threshold: f32) -> bool {
    rms_s16le(frame) >= threshold
}

/// Cleans one frame in place before G.711 encoding: subtracts the frame mean (DC), then
/// replaces the frame with digital silence if its RMS is below `gate_rms`
/// (normally [`SILENCE_GATE_RMS`]). Returns true if the frame was silenced.
pub fn remove_dc_and_gate(samples: &mut [i16], gate_rms: f32) -> bool {
    if samples.is_empty() {
        return false;
    }
    let sum: i64 = samples.iter().map(|&s| i64::from(s)).sum();
    let mean = (sum as f64 / samples.len() as f64).round() as i32;
    if mean != 0 {
        for s in samples.iter_mut() {
            *s = (i32::from(*s) - mean).clamp(-32768, 32767) as i16;
        }
    }
    if rms(samples) < gate_rms {
        samples.fill(0);
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::pcm::{samples_to_le_bytes, sine};

    #[test]
    fn rms_exact_values() {
        assert_eq!(rms(&[]), 0.0);
        assert_eq!(rms(&[0; 320]), 0.0);
        assert_eq!(rms(&[500; 320]), 500.0);
        assert_eq!(rms(&[3, -4]), (12.5f32).sqrt());
        assert_eq!(rms(&[i16::MIN; 4]), 32768.0);
        assert_eq!(rms(&[300, -300, 300, -300]), 300.0);
    }

    #[test]
    fn rms_bytes_matches_samples() {
        let s = sine(16_000, 440.0, 10_000, 20);
        let bytes = samples_to_le_bytes(&s);
        assert_eq!(rms_s16le(&bytes), rms(&s));
        // Sine RMS is amplitude / sqrt(2).
        assert!((rms(&s) - 7071.07).abs() < 30.0, "{}", rms(&s));
        assert_eq!(rms_s16le(&[]), 0.0);
        assert_eq!(rms_s16le(&[0x10]), 0.0);
        assert_eq!(rms_s16le(&[0xF4, 0x01, 0x77]), 500.0);
    }

    #[test]
    fn voiced_threshold() {
        let loud = samples_to_le_bytes(&[500; 320]);
        let quiet = samples_to_le_bytes(&[499; 320]);
        assert!(is_voiced(&loud, VOICED_RMS_THRESHOLD));
        assert!(!is_voiced(&quiet, VOICED_RMS_THRESHOLD));
    }

    #[test]
    fn dbfs_values() {
        assert_eq!(dbfs(32768.0), 0.0);
        assert!((dbfs(16384.0) + 6.0206).abs() < 1e-3);
        assert!((dbfs(SILENCE_GATE_RMS) + 61.99).abs() < 0.05);
        assert!(dbfs(0.0).is_infinite());
    }

    #[test]
    fn dc_removal_and_gate() {
        // Pure DC offset is removed; what is left is silence.
        let mut dc = [1000i16; 320];
        assert!(remove_dc_and_gate(&mut dc, SILENCE_GATE_RMS));
        assert!(dc.iter().all(|&s| s == 0));

        // Quiet hiss below the gate is zeroed.
        let mut hiss: Vec<i16> = (0..320)
            .map(|i| if i % 2 == 0 { 20 } else { -20 })
            .collect();
        assert!(remove_dc_and_gate(&mut hiss, SILENCE_GATE_RMS));
        assert!(hiss.iter().all(|&s| s == 0));

        // Real signal survives, minus its offset.
        let mut sig: Vec<i16> = (0..320)
            .map(|i| if i % 2 == 0 { 1100 } else { -900 })
            .collect();
        assert!(!remove_dc_and_gate(&mut sig, SILENCE_GATE_RMS));
        assert_eq!(&sig[..4], &[1000, -1000, 1000, -1000]);

        assert!(!remove_dc_and_gate(&mut [], SILENCE_GATE_RMS));
    }
}
