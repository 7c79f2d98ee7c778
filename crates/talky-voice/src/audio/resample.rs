//! Streaming sample-rate conversion for s16 mono (protocols §1.3).
//!
//! # Choice of algorithm
//!
//! A polyphase windowed-sinc FIR rather than linear interpolation: linear interpolation has no
//! real anti-aliasing filter, so 16 k -> 8 k (and 44.1/48 k -> 16 k) would fold everything above
//! the new Nyquist back into the voice band, which the spec forbids. With `L/M = out/in` reduced
//! by their gcd, output sample `n` sits at input position `n·M/L`; its integer part indexes the
//! input and its fractional part `(n·M mod L)/L` picks one of `L` precomputed filter phases.
//!
//! * Kernel: `c·sinc(c·x)` with `c = 0.875 · min(1, out/in)` (cut-off 87.5 % of the lower
//!   Nyquist: 3.5 kHz for 16 k -> 8 k and 8 k -> 16 k, 7 kHz into 16 k), Kaiser window
//!   (β = 7, about 70 dB stop-band), 16 zero crossings per side. Every phase is normalised to
//!   unity DC gain.
//! * Streaming: the filter is made causal by delaying the output by `H` input samples (the
//!   kernel half-width, ≈ 1–2 ms). The only state kept between chunks is the last `2H − 1`
//!   input samples plus the integer/fractional read position, so the output depends only on the
//!   concatenated input, never on how it was chunked (chunked output is bit-identical to
//!   one-shot output). Before the first sample the history is silence.
//! * Length: after `N` input samples in total, exactly `ceil(N·out/in)` samples have been
//!   produced, regardless of chunking; [`Resampler::flush`] pushes out the delayed tail.
//!
//! Equal rates bypass the filter and copy samples unchanged.

use bytes::{BufMut, BytesMut};

use super::AudioError;

/// Rate pairs Talky uses and the self-test exercises (any pair with at most
/// [`MAX_PHASES`] filter phases is accepted).
pub const SUPPORTED_RATIOS: &[(u32, u32)] = &[
    (8_000, 16_000),
    (16_000, 8_000),
    (22_050, 16_000),
    (24_000, 16_000),
    (44_100, 16_000),
    (48_000, 16_000),
];

/// Largest number of polyphase branches (`out / gcd(in, out)`) accepted; bounds table memory.
pub const MAX_PHASES: usize = 1024;

const ZERO_CROSSINGS: f64 = 16.0;
const ROLLOFF: f64 = 0.875;
const KAISER_BETA: f64 = 7.0;

/// Streaming polyphase resampler for s16 mono audio; one instance per stream.
#[derive(Debug, Clone)]
pub struct Resampler {
    in_rate: u32,
    out_rate: u32,
    /// Interpolation factor L (number of phases).
    up: usize,
    /// Decimation factor M.
    down: usize,
    /// Taps per phase (`2H`); 0 in pass-through mode.
    taps: usize,
    /// `up * taps` coefficients, phase-major.
    table: Vec<f32>,
    /// Retained history followed by not-yet-consumed input.
    buf: Vec<f32>,
    /// Index in `buf` of the newest input sample the next output needs.
    pos: usize,
    /// Fractional read position, in units of 1/L.
    phase: usize,
    /// Dangling low byte of a sample split across byte chunks.
    carry: Option<u8>,
    scratch_in: Vec<i16>,
    scratch_out: Vec<i16>,
}

impl Resampler {
    /// Creates a resampler from `in_rate` to `out_rate` Hz.
    ///
    /// Fails with [`AudioError::UnsupportedRatio`] if a rate is 0 or the reduced ratio needs
    /// more than [`MAX_PHASES`] phases.
    pub fn new(in_rate: u32, out_rate: u32) -> Result<Self, AudioError> {
        let unsupported = AudioError::UnsupportedRatio {
            from: in_rate,
            to: out_rate,
        };
        if in_rate == 0 || out_rate == 0 {
            return Err(unsupported);
        }
        let g = gcd(in_rate, out_rate);
        let up = (out_rate / g) as usize;
        let down = (in_rate / g) as usize;
        if up > MAX_PHASES {
            return Err(unsupported);
        }
        let mut r = Self {
            in_rate,
            out_rate,
            up,
            down,
            taps: 0,
            table: Vec::new(),
            buf: Vec::new(),
            pos: 0,
            phase: 0,
            carry: None,
            scratch_in: Vec::new(),
            scratch_out: Vec::new(),
        };
        if in_rate != out_rate {
            let (taps, table) = design(up, down);
            r.taps = taps;
            r.table = table;
        }
        r.reset();
        Ok(r)
    }

    /// Input rate in Hz.
    pub fn in_rate(&self) -> u32 {
        self.in_rate
    }

    /// Output rate in Hz.
    pub fn out_rate(&self) -> u32 {
        self.out_rate
    }

    /// True when input and output rates are equal and samples are copied unchanged.
    pub fn is_passthrough(&self) -> bool {
        self.taps == 0
    }

    /// Signal delay introduced by the filter, in input samples (0 in pass-through mode).
    pub fn delay_input_samples(&self) -> usize {
        self.taps / 2
    }

    /// Signal delay introduced by the filter.
    pub fn latency(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(
            self.delay_input_samples() as f64 / f64::from(self.in_rate),
        )
    }

    /// Total output samples produced for `total_in` input samples (`ceil(total_in·out/in)`),
    /// excluding [`flush`](Self::flush).
    pub fn expected_output_len(&self, total_in: u64) -> u64 {
        (total_in * self.up as u64).div_ceil(self.down as u64)
    }

    /// Forgets all history (the next input starts a new stream preceded by silence).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.phase = 0;
        self.carry = None;
        if self.taps > 0 {
            self.buf.resize(self.taps - 1, 0.0);
            self.pos = self.taps - 1;
        } else {
            self.pos = 0;
        }
    }

    /// Resamples the next chunk of samples, appending the output to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        if self.taps == 0 {
            out.extend_from_slice(input);
            return;
        }
        let taps = self.taps;
        self.buf.extend(input.iter().map(|&s| f32::from(s)));
        out.reserve(input.len() * self.up / self.down + 1);
        while self.pos < self.buf.len() {
            let window = &self.buf[self.pos + 1 - taps..=self.pos];
            let coeffs = &self.table[self.phase * taps..(self.phase + 1) * taps];
            let acc: f32 = window.iter().zip(coeffs).map(|(x, h)| x * h).sum();
            out.push(acc.round().clamp(-32768.0, 32767.0) as i16);
            self.phase += self.down;
            self.pos += self.phase / self.up;
            self.phase %= self.up;
        }
        // Keep only the history the next output still needs.
        let consumed = (self.pos + 1 - taps).min(self.buf.len());
        self.buf.drain(..consumed);
        self.pos -= consumed;
    }

    /// Resamples a chunk of s16le bytes of any length, appending s16le output to `out`. A
    /// sample split across chunks (odd length) is carried to the next call.
    pub fn process_s16le(&mut self, input: &[u8], out: &mut BytesMut) {
        let mut samples = std::mem::take(&mut self.scratch_in);
        let mut produced = std::mem::take(&mut self.scratch_out);
        samples.clear();
        produced.clear();
        let mut rest = input;
        if let Some(lo) = self.carry {
            if let Some((&hi, tail)) = rest.split_first() {
                samples.push(i16::from_le_bytes([lo, hi]));
                self.carry = None;
                rest = tail;
            }
        }
        let mut pairs = rest.chunks_exact(2);
        samples.extend(pairs.by_ref().map(|b| i16::from_le_bytes([b[0], b[1]])));
        if let [lo] = pairs.remainder() {
            self.carry = Some(*lo);
        }
        self.process(&samples, &mut produced);
        out.reserve(produced.len() * 2);
        for &s in &produced {
            out.put_i16_le(s);
        }
        self.scratch_in = samples;
        self.scratch_out = produced;
    }

    /// Ends the stream: feeds silence through the filter to emit the delayed tail, appends it
    /// to `out`, then [`reset`](Self::reset)s. A dangling half sample is discarded.
    pub fn flush(&mut self, out: &mut Vec<i16>) {
        if self.taps > 0 {
            let zeros = vec![0i16; self.delay_input_samples()];
            self.process(&zeros, out);
        }
        self.reset();
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Zeroth-order modified Bessel function of the first kind (power series).
fn bessel_i0(x: f64) -> f64 {
    let half = x / 2.0;
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut k = 1.0;
    while term > sum * 1e-12 {
        term *= (half / k) * (half / k);
        sum += term;
        k += 1.0;
    }
    sum
}

/// Builds the polyphase table: returns (taps per phase, `up * taps` coefficients).
fn design(up: usize, down: usize) -> (usize, Vec<f32>) {
    let c = ROLLOFF * (up as f64 / down as f64).min(1.0);
    let half_width = ZERO_CROSSINGS / c;
    let h = half_width.ceil() as usize;
    let taps = 2 * h;
    let norm = bessel_i0(KAISER_BETA);
    let mut table = Vec::with_capacity(up * taps);
    let mut phase = vec![0f64; taps];
    for p in 0..up {
        let frac = p as f64 / up as f64;
        for (j, coeff) in phase.iter_mut().enumerate() {
            // Distance from the output instant to the input sample this tap multiplies.
            let x = frac + (h as f64 - 1.0) - j as f64;
            *coeff = if x.abs() < half_width {
                let r = x / half_width;
                let window = bessel_i0(KAISER_BETA * (1.0 - r * r).sqrt()) / norm;
                c * sinc(c * x) * window
            } else {
                0.0
            };
        }
        let sum: f64 = phase.iter().sum();
        table.extend(phase.iter().map(|&v| (v / sum) as f32));
    }
    (taps, table)
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// Resamples 300 ms of a `freq_hz` tone from `from` to `to` Hz in chunks of `chunk` samples
/// and returns the largest deviation from the ideal delayed tone, relative to its amplitude.
pub(crate) fn tone_error(
    from: u32,
    to: u32,
    freq_hz: f64,
    chunk: usize,
) -> Result<f64, AudioError> {
    let amp = 10_000.0;
    let mut r = Resampler::new(from, to)?;
    let n_in = from as usize * 300 / 1000;
    let input: Vec<i16> = (0..n_in)
        .map(|i| {
            let t = i as f64 / f64::from(from);
            (amp * (2.0 * std::f64::consts::PI * freq_hz * t).sin()).round() as i16
        })
        .collect();
    let mut out = Vec::new();
    for c in input.chunks(chunk.max(1)) {
        r.process(c, &mut out);
    }
    let delay = r.delay_input_samples() as f64 / f64::from(from);
    // Skip outputs whose filter window still reaches back before the first input sample.
    let warmup = (r.taps as f64 * f64::from(to) / f64::from(from)).ceil() as usize + 1;
    let mut worst: f64 = 0.0;
    for (n, &y) in out.iter().enumerate().skip(warmup) {
        let t = n as f64 / f64::from(to) - delay;
        let ideal = amp * (2.0 * std::f64::consts::PI * freq_hz * t).sin();
        worst = worst.max((f64::from(y) - ideal).abs() / amp);
    }
    if out.len() <= warmup {
        return Err(AudioError::SelfTest(format!(
            "resampler {from}->{to}: no output"
        )));
    }
    Ok(worst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::level::rms;
    use crate::audio::pcm::sine;

    /// A deterministic, non-periodic test signal with content across the band.
    fn test_signal(len: usize) -> Vec<i16> {
        let mut state: u32 = 0x1234_5678;
        (0..len)
            .map(|i| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = ((state >> 16) as i16) / 8;
                let tone = (8000.0 * (i as f64 * 0.05).sin()) as i16;
                tone.saturating_add(noise)
            })
            .collect()
    }

    fn chunked(r: &mut Resampler, input: &[i16], sizes: &[usize]) -> Vec<i16> {
        let mut out = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < input.len() {
            let n = sizes[i % sizes.len()].min(input.len() - pos);
            let before = out.len();
            r.process(&input[pos..pos + n], &mut out);
            // Per-chunk output length is within one sample of the ideal.
            let ideal = n as f64 * f64::from(r.out_rate()) / f64::from(r.in_rate());
            let got = (out.len() - before) as f64;
            assert!(
                (got - ideal).abs() <= 1.0,
                "chunk {n}: got {got}, ideal {ideal}"
            );
            pos += n;
            i += 1;
        }
        out
    }

    const CHUNKINGS: &[&[usize]] = &[
        &[1],
        &[2],
        &[3],
        &[7, 13],
        &[160],
        &[441],
        &[480, 1, 999],
        &[4096],
    ];

    #[test]
    fn output_length_and_chunk_independence() {
        for &(from, to) in SUPPORTED_RATIOS {
            let input = test_signal(from as usize / 2 + 37); // ~0.5 s, odd length
            let mut whole = Resampler::new(from, to).unwrap();
            let mut reference = Vec::new();
            whole.process(&input, &mut reference);
            let expected = whole.expected_output_len(input.len() as u64) as usize;
            assert_eq!(reference.len(), expected, "{from}->{to}");
            let ideal = input.len() as f64 * f64::from(to) / f64::from(from);
            assert!((reference.len() as f64 - ideal).abs() <= 1.0);
            for sizes in CHUNKINGS {
                let mut r = Resampler::new(from, to).unwrap();
                let out = chunked(&mut r, &input, sizes);
                assert_eq!(out.len(), expected, "{from}->{to} sizes {sizes:?}");
                assert!(out == reference, "{from}->{to} sizes {sizes:?} differs");
            }
        }
    }

    #[test]
    fn known_lengths() {
        let cases = [
            (8_000, 16_000, 160, 320),
            (16_000, 8_000, 320, 160),
            (24_000, 16_000, 480, 320),
            (48_000, 16_000, 960, 320),
            (44_100, 16_000, 882, 320),
            (22_050, 16_000, 441, 320),
            (22_050, 16_000, 1, 1),
            (44_100, 16_000, 100, 37), // ceil(36.28)
        ];
        for (from, to, n_in, n_out) in cases {
            let mut r = Resampler::new(from, to).unwrap();
            let mut out = Vec::new();
            r.process(&vec![0; n_in], &mut out);
            assert_eq!(out.len(), n_out, "{from}->{to} {n_in}");
        }
    }

    #[test]
    fn tone_is_preserved_in_level_and_phase() {
        for &(from, to) in SUPPORTED_RATIOS {
            for chunk in [1, 97, 320, 10_000] {
                let err = tone_error(from, to, 1000.0, chunk).unwrap();
                assert!(err < 0.001, "{from}->{to} chunk {chunk}: error {err}");
            }
            // Upper voice band too.
            let err = tone_error(from, to, 3000.0, 160).unwrap();
            assert!(err < 0.001, "{from}->{to} 3 kHz: error {err}");
        }
    }

    #[test]
    fn no_click_at_chunk_boundaries() {
        // A 440 Hz tone at amplitude 10000 changes by at most ~900 per 16 kHz sample; a
        // boundary glitch would show up as a much larger jump.
        for &(from, to) in SUPPORTED_RATIOS {
            let input = sine(from, 440.0, 10_000, 500);
            let mut r = Resampler::new(from, to).unwrap();
            let out = chunked(&mut r, &input, &[37, 211, 5]);
            let max_step_allowed =
                (10_000.0 * 2.0 * std::f64::consts::PI * 440.0 / f64::from(to) * 1.05) as i32 + 2;
            let warmup = 2 * r.delay_input_samples() * to as usize / from as usize + 2;
            for w in out[warmup..].windows(2) {
                let step = (i32::from(w[1]) - i32::from(w[0])).abs();
                assert!(step <= max_step_allowed, "{from}->{to}: step {step}");
            }
        }
    }

    #[test]
    fn downsampling_rejects_aliases() {
        // Components above the output Nyquist must not fold back into the voice band.
        for (from, to, freq) in [
            (16_000, 8_000, 6_000.0),
            (16_000, 8_000, 4_200.0),
            (48_000, 16_000, 12_000.0),
            (44_100, 16_000, 10_000.0),
            (24_000, 16_000, 9_500.0),
        ] {
            let input = sine(from, freq, 10_000, 300);
            let mut r = Resampler::new(from, to).unwrap();
            let mut out = Vec::new();
            r.process(&input, &mut out);
            let level = rms(&out[out.len() / 4..]);
            assert!(level < 10.0, "{from}->{to} {freq} Hz leaks rms {level}");
        }
    }

    #[test]
    fn upsampling_suppresses_images() {
        // 8k -> 16k of a 3 kHz tone: the 5 kHz image must be gone, so the output matches an
        // ideal 3 kHz tone (checked via tone_error) and its RMS is that of the tone alone.
        let err = tone_error(8_000, 16_000, 3000.0, 160).unwrap();
        assert!(err < 0.001, "error {err}");
    }

    #[test]
    fn dc_is_preserved_exactly() {
        for &(from, to) in SUPPORTED_RATIOS {
            let mut r = Resampler::new(from, to).unwrap();
            let mut out = Vec::new();
            r.process(&vec![1234; from as usize / 10], &mut out);
            let warmup = 2 * r.delay_input_samples() * to as usize / from as usize + 2;
            assert!(out[warmup..].iter().all(|&s| s == 1234), "{from}->{to}");
            // The very first output is before the signal arrives: silence.
            assert_eq!(out[0], 0);
        }
    }

    #[test]
    fn clips_instead_of_wrapping() {
        // A full-scale square wave overshoots (Gibbs); the output must saturate, not wrap.
        let input: Vec<i16> = (0..4000)
            .map(|i| {
                if (i / 40) % 2 == 0 {
                    i16::MAX
                } else {
                    i16::MIN
                }
            })
            .collect();
        let mut r = Resampler::new(48_000, 16_000).unwrap();
        let mut out = Vec::new();
        r.process(&input, &mut out);
        assert!(out.contains(&i16::MAX));
        assert!(out.contains(&i16::MIN));
        // No sign flips in the middle of a plateau (wrapping would produce them).
        let warmup = 60;
        for (n, &s) in out.iter().enumerate().skip(warmup) {
            let t_in = n * 3;
            let delay = r.delay_input_samples();
            let src = t_in - delay;
            let in_plateau = src % 40 > 12 && src % 40 < 28;
            if in_plateau {
                let high = (src / 40) & 1 == 0;
                assert_eq!(s > 0, high, "sample {n} = {s}");
            }
        }
    }

    #[test]
    fn byte_api_carries_half_samples() {
        let input = test_signal(8_000);
        let bytes = crate::audio::pcm::samples_to_le_bytes(&input);
        let mut r = Resampler::new(24_000, 16_000).unwrap();
        let mut reference = Vec::new();
        r.process(&input, &mut reference);

        for sizes in [&[1usize][..], &[3], &[333, 1, 2], &[999]] {
            let mut r = Resampler::new(24_000, 16_000).unwrap();
            let mut out = BytesMut::new();
            let mut pos = 0;
            let mut i = 0;
            while pos < bytes.len() {
                let n = sizes[i % sizes.len()].min(bytes.len() - pos);
                r.process_s16le(&bytes[pos..pos + n], &mut out);
                pos += n;
                i += 1;
            }
            assert_eq!(
                crate::audio::pcm::le_bytes_to_samples(&out),
                reference,
                "sizes {sizes:?}"
            );
        }
    }

    #[test]
    fn flush_emits_tail_and_resets() {
        let mut r = Resampler::new(8_000, 16_000).unwrap();
        let delay = r.delay_input_samples();
        let mut out = Vec::new();
        r.process(&vec![5000; 800], &mut out);
        assert_eq!(out.len(), 1600);
        r.flush(&mut out);
        assert_eq!(out.len() as u64, r.expected_output_len(800 + delay as u64));
        // The tail carries the last few ms of signal that the filter delay held back.
        assert_eq!(out[1600], 5000);
        assert!(out.len() > 1600 + delay);
        // After flush a new stream starts from silence again, identical to a fresh instance.
        let mut again = Vec::new();
        r.process(&vec![5000; 800], &mut again);
        assert_eq!(again, out[..1600]);
    }

    #[test]
    fn passthrough_for_equal_rates() {
        let mut r = Resampler::new(16_000, 16_000).unwrap();
        assert!(r.is_passthrough());
        assert_eq!(r.delay_input_samples(), 0);
        let input = test_signal(1000);
        let mut out = Vec::new();
        r.process(&input, &mut out);
        r.flush(&mut out);
        assert_eq!(out, input);
        let mut bytes_out = BytesMut::new();
        r.process_s16le(&[0x34], &mut bytes_out);
        r.process_s16le(&[0x12, 0x01], &mut bytes_out);
        assert_eq!(&bytes_out[..], &[0x34, 0x12]);
    }

    #[test]
    fn rejects_unusable_rates() {
        assert!(matches!(
            Resampler::new(0, 16_000),
            Err(AudioError::UnsupportedRatio {
                from: 0,
                to: 16_000
            })
        ));
        assert!(Resampler::new(16_000, 0).is_err());
        assert!(Resampler::new(44_101, 16_000).is_err());
        assert!(Resampler::new(11_025, 16_000).is_ok());
    }

    #[test]
    fn latency_is_small() {
        for &(from, to) in SUPPORTED_RATIOS {
            let r = Resampler::new(from, to).unwrap();
            assert!(
                r.latency() < std::time::Duration::from_millis(3),
                "{from}->{to}"
            );
            assert!(r.latency() > std::time::Duration::ZERO);
        }
    }

    #[test]
    fn design_phases_have_unity_gain() {
        let (taps, table) = design(160, 441);
        assert_eq!(table.len(), 160 * taps);
        for phase in table.chunks(taps) {
            let sum: f32 = phase.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "sum {sum}");
        }
        assert_eq!(gcd(44_100, 16_000), 100);
        assert_eq!(gcd(22_050, 16_000), 50);
        assert!((bessel_i0(0.0) - 1.0).abs() < 1e-12);
        assert!((bessel_i0(1.0) - 1.266_065_877_752_008_4).abs() < 1e-10);
    }
}
