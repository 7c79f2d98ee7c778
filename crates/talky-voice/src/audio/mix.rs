//! Two-track mixing for call recordings (behaviour H2): caller and agent tracks on one
//! timeline become either a mono mix (summed, clipped to s16) or a stereo file (left = caller,
//! right = agent). The shorter track is padded with silence.

use super::pcm::{extend_samples_from_le, samples_to_le_bytes};

/// Sums two tracks sample by sample with saturation; the result is as long as the longer one.
pub fn mix_mono(a: &[i16], b: &[i16]) -> Vec<i16> {
    let len = a.len().max(b.len());
    (0..len)
        .map(|i| {
            let x = a.get(i).copied().unwrap_or(0);
            let y = b.get(i).copied().unwrap_or(0);
            x.saturating_add(y)
        })
        .collect()
}

/// Interleaves two tracks into stereo frames `L, R, L, R, …` (left = caller, right = agent),
/// padding the shorter one with silence.
pub fn interleave_stereo(left: &[i16], right: &[i16]) -> Vec<i16> {
    let len = left.len().max(right.len());
    let mut out = Vec::with_capacity(len * 2);
    for i in 0..len {
        out.push(left.get(i).copied().unwrap_or(0));
        out.push(right.get(i).copied().unwrap_or(0));
    }
    out
}

/// [`mix_mono`] over s16le byte tracks (trailing odd bytes are ignored).
pub fn mix_mono_s16le(a: &[u8], b: &[u8]) -> Vec<u8> {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    extend_samples_from_le(a, &mut x);
    extend_samples_from_le(b, &mut y);
    samples_to_le_bytes(&mix_mono(&x, &y))
}

/// [`interleave_stereo`] over s16le byte tracks (trailing odd bytes are ignored).
pub fn interleave_stereo_s16le(left: &[u8], right: &[u8]) -> Vec<u8> {
    let (mut l, mut r) = (Vec::new(), Vec::new());
    extend_samples_from_le(left, &mut l);
    extend_samples_from_le(right, &mut r);
    samples_to_le_bytes(&interleave_stereo(&l, &r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mono_mix_sums_and_clips() {
        assert_eq!(
            mix_mono(&[1, 2, 30_000, -30_000], &[10, -20, 10_000, -10_000]),
            [11, -18, 32_767, -32_768]
        );
    }

    #[test]
    fn mono_mix_pads_shorter_track() {
        assert_eq!(mix_mono(&[1, 2, 3], &[10]), [11, 2, 3]);
        assert_eq!(mix_mono(&[], &[5, 6]), [5, 6]);
        assert!(mix_mono(&[], &[]).is_empty());
    }

    #[test]
    fn stereo_interleaves_left_caller_right_agent() {
        assert_eq!(interleave_stereo(&[1, 2, 3], &[-1]), [1, -1, 2, 0, 3, 0]);
        assert_eq!(interleave_stereo(&[7], &[8, 9]), [7, 8, 0, 9]);
    }

    #[test]
    fn byte_variants() {
        let a = samples_to_le_bytes(&[0x0102, 0x7FFF]);
        let b = samples_to_le_bytes(&[0x0001, 0x0001, -2]);
        assert_eq!(
            mix_mono_s16le(&a, &b),
            samples_to_le_bytes(&[0x0103, 0x7FFF, -2])
        );
        assert_eq!(
            interleave_stereo_s16le(&a, &b),
            samples_to_le_bytes(&[0x0102, 1, 0x7FFF, 1, 0, -2])
        );
    }
}
