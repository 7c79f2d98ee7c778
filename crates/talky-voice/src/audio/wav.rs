//! WAV (RIFF/WAVE, 16-bit PCM) for call recordings (protocols §1.6).
//!
//! * [`WavWriter`] streams to any `Write + Seek` sink: it writes the 44-byte header with
//!   placeholder sizes up front, appends PCM as the call runs, and patches the RIFF and data
//!   sizes (offsets 4 and 40) in [`WavWriter::finish`].
//! * [`wav_bytes`] builds a complete file in memory.
//! * [`read_wav`] is a deliberately small reader (fmt + data chunks, unknown chunks skipped)
//!   for tests and the simulated caller.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::time::Duration;

use super::pcm::{extend_samples_from_le, samples_to_le_bytes};
use super::AudioError;

/// Length of the canonical PCM WAV header.
pub const WAV_HEADER_LEN: usize = 44;

/// Size written to the RIFF and data size fields until [`WavWriter::finish`] patches them
/// ("length unknown", as used for streamed WAV). [`read_wav`] tolerates it.
pub const PLACEHOLDER_SIZE: u32 = u32::MAX;

const FORMAT_PCM: u16 = 1;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// Layout of a 16-bit PCM WAV stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavSpec {
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// 1 (mono mix) or 2 (stereo: left = caller, right = agent).
    pub channels: u16,
}

impl WavSpec {
    /// Mono at `sample_rate` Hz.
    pub fn mono(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            channels: 1,
        }
    }

    /// Stereo at `sample_rate` Hz.
    pub fn stereo(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            channels: 2,
        }
    }

    /// Bytes per sample frame (`channels × 2`).
    pub fn block_align(&self) -> u16 {
        self.channels * 2
    }

    /// Bytes per second (`rate × channels × 2`).
    pub fn byte_rate(&self) -> u32 {
        self.sample_rate * u32::from(self.block_align())
    }

    /// Playing time of `data_len` bytes of PCM.
    pub fn duration_of(&self, data_len: u64) -> Duration {
        let rate = u64::from(self.byte_rate().max(1));
        Duration::from_secs(data_len / rate)
            + Duration::from_nanos((data_len % rate) * 1_000_000_000 / rate)
    }

    /// Largest data chunk that fits the 32-bit RIFF size, rounded down to whole blocks.
    fn max_data_len(&self) -> u64 {
        let limit = u64::from(u32::MAX) - 36;
        let block = u64::from(self.block_align().max(1));
        limit - limit % block
    }
}

/// The 44-byte header for `data_len` bytes of 16-bit PCM.
pub fn wav_header(spec: WavSpec, data_len: u32) -> [u8; WAV_HEADER_LEN] {
    header_with_sizes(spec, data_len.saturating_add(36), data_len)
}

fn header_with_sizes(spec: WavSpec, riff_size: u32, data_len: u32) -> [u8; WAV_HEADER_LEN] {
    let mut h = [0u8; WAV_HEADER_LEN];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&riff_size.to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&FORMAT_PCM.to_le_bytes());
    h[22..24].copy_from_slice(&spec.channels.to_le_bytes());
    h[24..28].copy_from_slice(&spec.sample_rate.to_le_bytes());
    h[28..32].copy_from_slice(&spec.byte_rate().to_le_bytes());
    h[32..34].copy_from_slice(&spec.block_align().to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

/// Builds a complete WAV file from interleaved s16le `pcm`. The data is zero-padded to a
/// whole number of sample frames (block align) and truncated at the 4 GiB RIFF limit.
pub fn wav_bytes(spec: WavSpec, pcm: &[u8]) -> Vec<u8> {
    let block = usize::from(spec.block_align().max(1));
    let max = usize::try_from(spec.max_data_len()).unwrap_or(usize::MAX);
    let pcm = &pcm[..pcm.len().min(max)];
    let data_len = pcm.len().div_ceil(block) * block;
    let mut out = Vec::with_capacity(WAV_HEADER_LEN + data_len);
    out.extend_from_slice(&wav_header(spec, data_len as u32));
    out.extend_from_slice(pcm);
    out.resize(WAV_HEADER_LEN + data_len, 0);
    out
}

/// Streaming WAV writer over any `Write + Seek` sink (wrap files in a `BufWriter`).
///
/// The header is written at the sink's current position with [`PLACEHOLDER_SIZE`] sizes;
/// [`finish`](Self::finish) pads the data to whole sample frames and patches the sizes.
/// Dropping the writer without `finish` leaves the placeholders in place.
#[derive(Debug)]
pub struct WavWriter<W: Write + Seek> {
    inner: W,
    spec: WavSpec,
    start: u64,
    data_len: u64,
}

impl<W: Write + Seek> WavWriter<W> {
    /// Writes the placeholder header and returns a writer ready for PCM.
    pub fn new(mut inner: W, spec: WavSpec) -> io::Result<Self> {
        if spec.channels == 0 || spec.sample_rate == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "WAV needs at least one channel and a non-zero rate",
            ));
        }
        let start = inner.stream_position()?;
        inner.write_all(&header_with_sizes(spec, PLACEHOLDER_SIZE, PLACEHOLDER_SIZE))?;
        Ok(Self {
            inner,
            spec,
            start,
            data_len: 0,
        })
    }

    /// The stream layout.
    pub fn spec(&self) -> WavSpec {
        self.spec
    }

    /// PCM bytes written so far.
    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    /// Playing time written so far.
    pub fn duration(&self) -> Duration {
        self.spec.duration_of(self.data_len)
    }

    /// Appends interleaved s16le PCM. Chunks need not be whole samples; the data is padded
    /// at [`finish`](Self::finish). Fails without writing if the 4 GiB RIFF limit would be
    /// exceeded.
    pub fn write_pcm(&mut self, pcm: &[u8]) -> io::Result<()> {
        if self.data_len + pcm.len() as u64 > self.spec.max_data_len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "WAV data would exceed the 4 GiB RIFF limit",
            ));
        }
        self.inner.write_all(pcm)?;
        self.data_len += pcm.len() as u64;
        Ok(())
    }

    /// Appends interleaved samples.
    pub fn write_samples(&mut self, samples: &[i16]) -> io::Result<()> {
        self.write_pcm(&samples_to_le_bytes(samples))
    }

    /// Pads to whole sample frames, patches the RIFF and data sizes, flushes, and returns the
    /// sink positioned at the end of the file.
    pub fn finish(mut self) -> io::Result<W> {
        let block = u64::from(self.spec.block_align());
        let pad = (block - self.data_len % block) % block;
        if pad > 0 {
            self.inner.write_all(&[0u8; 4][..pad as usize])?;
            self.data_len += pad;
        }
        let data_len = u32::try_from(self.data_len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "WAV data too long"))?;
        self.inner.seek(SeekFrom::Start(self.start + 4))?;
        self.inner.write_all(&(data_len + 36).to_le_bytes())?;
        self.inner.seek(SeekFrom::Start(self.start + 40))?;
        self.inner.write_all(&data_len.to_le_bytes())?;
        self.inner.seek(SeekFrom::Start(
            self.start + WAV_HEADER_LEN as u64 + self.data_len,
        ))?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// A parsed 16-bit PCM WAV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavData {
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// Channel count.
    pub channels: u16,
    /// Interleaved s16le sample data (whole sample frames only).
    pub pcm: Vec<u8>,
}

impl WavData {
    /// The layout of this file.
    pub fn spec(&self) -> WavSpec {
        WavSpec {
            sample_rate: self.sample_rate,
            channels: self.channels,
        }
    }

    /// Interleaved samples.
    pub fn samples(&self) -> Vec<i16> {
        let mut out = Vec::with_capacity(self.pcm.len() / 2);
        extend_samples_from_le(&self.pcm, &mut out);
        out
    }

    /// The samples of one channel (0 = left/caller, 1 = right/agent); empty if out of range.
    pub fn channel(&self, index: u16) -> Vec<i16> {
        if index >= self.channels {
            return Vec::new();
        }
        self.samples()
            .into_iter()
            .skip(usize::from(index))
            .step_by(usize::from(self.channels))
            .collect()
    }

    /// Playing time.
    pub fn duration(&self) -> Duration {
        self.spec().duration_of(self.pcm.len() as u64)
    }
}

/// Reads a whole WAV file from `reader` and parses it with [`read_wav`].
pub fn read_wav_from(mut reader: impl Read) -> Result<WavData, AudioError> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes)?;
    read_wav(&bytes)
}

fn invalid(msg: &str) -> AudioError {
    AudioError::InvalidWav(msg.to_string())
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses a RIFF/WAVE file holding 16-bit PCM (format 1, or WAVE_FORMAT_EXTENSIBLE with a
/// PCM sub-format). Unknown chunks are skipped. A data chunk whose size is a placeholder or
/// runs past the end of the input (an unfinished recording) yields the bytes present, cut to
/// whole sample frames.
pub fn read_wav(bytes: &[u8]) -> Result<WavData, AudioError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" {
        return Err(invalid("not a RIFF file"));
    }
    if &bytes[8..12] != b"WAVE" {
        return Err(invalid("not a WAVE file"));
    }
    let mut fmt: Option<(u32, u16)> = None;
    let mut data: Option<&[u8]> = None;
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = le_u32(bytes, pos + 4) as usize;
        let body_start = pos + 8;
        let available = bytes.len() - body_start;
        match id {
            b"fmt " => {
                if size < 16 || size > available {
                    return Err(invalid("truncated fmt chunk"));
                }
                let f = &bytes[body_start..body_start + size];
                let mut format = le_u16(f, 0);
                let channels = le_u16(f, 2);
                let rate = le_u32(f, 4);
                let block_align = le_u16(f, 12);
                let bits = le_u16(f, 14);
                if format == FORMAT_EXTENSIBLE {
                    // cbSize(2) validBits(2) channelMask(4) then the sub-format GUID.
                    if size < 40 {
                        return Err(invalid("truncated WAVE_FORMAT_EXTENSIBLE"));
                    }
                    format = le_u16(f, 24);
                }
                if format != FORMAT_PCM {
                    return Err(AudioError::InvalidWav(format!(
                        "unsupported format tag {format}"
                    )));
                }
                if bits != 16 {
                    return Err(AudioError::InvalidWav(format!(
                        "unsupported {bits}-bit samples"
                    )));
                }
                if channels == 0 || rate == 0 || block_align != channels * 2 {
                    return Err(invalid("inconsistent fmt chunk"));
                }
                fmt = Some((rate, channels));
            }
            b"data" => {
                let len = size.min(available);
                data = Some(&bytes[body_start..body_start + len]);
                if size > available {
                    break;
                }
            }
            _ => {
                if size > available {
                    return Err(AudioError::InvalidWav(format!(
                        "truncated {:?} chunk",
                        String::from_utf8_lossy(id)
                    )));
                }
            }
        }
        // Chunks are word-aligned: an odd-sized chunk is followed by one pad byte.
        pos = body_start + size + (size & 1);
        if fmt.is_some() && data.is_some() {
            break;
        }
    }
    let (sample_rate, channels) = fmt.ok_or_else(|| invalid("missing fmt chunk"))?;
    let data = data.ok_or_else(|| invalid("missing data chunk"))?;
    let block = usize::from(channels) * 2;
    let whole = data.len() - data.len() % block;
    Ok(WavData {
        sample_rate,
        channels,
        pcm: data[..whole].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::pcm::tone_s16le;
    use std::io::Cursor;

    #[test]
    fn header_bytes_mono_16k() {
        let h = wav_header(WavSpec::mono(16_000), 32_000);
        let expected: [u8; 44] = [
            b'R', b'I', b'F', b'F', //
            0x24, 0x7D, 0x00, 0x00, // 36 + 32000 = 32036
            b'W', b'A', b'V', b'E', //
            b'f', b'm', b't', b' ', //
            16, 0, 0, 0, // fmt size
            1, 0, // PCM
            1, 0, // channels
            0x80, 0x3E, 0, 0, // 16000
            0x00, 0x7D, 0, 0, // byte rate 32000
            2, 0, // block align
            16, 0, // bits
            b'd', b'a', b't', b'a', //
            0x00, 0x7D, 0x00, 0x00, // 32000
        ];
        assert_eq!(h, expected);
    }

    #[test]
    fn header_fields_stereo() {
        let h = wav_header(WavSpec::stereo(16_000), 64_000);
        assert_eq!(le_u32(&h, 4), 64_036);
        assert_eq!(le_u16(&h, 22), 2);
        assert_eq!(le_u32(&h, 24), 16_000);
        assert_eq!(le_u32(&h, 28), 64_000);
        assert_eq!(le_u16(&h, 32), 4);
        assert_eq!(le_u16(&h, 34), 16);
        assert_eq!(le_u32(&h, 40), 64_000);
        assert_eq!(
            WavSpec::stereo(16_000).duration_of(64_000),
            Duration::from_secs(1)
        );
        assert_eq!(
            WavSpec::mono(16_000).duration_of(48_000),
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn streaming_writer_matches_in_memory_builder() {
        let pcm = tone_s16le(16_000, 440.0, 8000, 250);
        let mut w = WavWriter::new(Cursor::new(Vec::new()), WavSpec::mono(16_000)).unwrap();
        // Placeholder header is there before any data.
        assert_eq!(&w.inner.get_ref()[4..8], &[0xFF; 4]);
        assert_eq!(&w.inner.get_ref()[40..44], &[0xFF; 4]);
        for chunk in pcm.chunks(333) {
            w.write_pcm(chunk).unwrap();
        }
        assert_eq!(w.data_len(), 8000);
        assert_eq!(w.duration(), Duration::from_millis(250));
        let cursor = w.finish().unwrap();
        assert_eq!(cursor.position(), 44 + 8000);
        let file = cursor.into_inner();
        assert_eq!(file, wav_bytes(WavSpec::mono(16_000), &pcm));
        assert_eq!(le_u32(&file, 4), 8036);
        assert_eq!(le_u32(&file, 40), 8000);
    }

    #[test]
    fn writer_starts_at_current_position() {
        let mut cursor = Cursor::new(Vec::new());
        cursor.write_all(b"prefix").unwrap();
        let mut w = WavWriter::new(cursor, WavSpec::mono(8_000)).unwrap();
        w.write_samples(&[1, -1]).unwrap();
        let file = w.finish().unwrap().into_inner();
        assert_eq!(&file[..6], b"prefix");
        assert_eq!(
            &file[6..],
            &wav_bytes(WavSpec::mono(8_000), &[1, 0, 0xFF, 0xFF])[..]
        );
    }

    #[test]
    fn writer_pads_to_block_align() {
        let mut w = WavWriter::new(Cursor::new(Vec::new()), WavSpec::stereo(16_000)).unwrap();
        w.write_pcm(&[1, 2, 3, 4, 5]).unwrap();
        let file = w.finish().unwrap().into_inner();
        assert_eq!(file.len(), 44 + 8);
        assert_eq!(le_u32(&file, 40), 8);
        assert_eq!(&file[44..], &[1, 2, 3, 4, 5, 0, 0, 0]);

        let built = wav_bytes(WavSpec::mono(16_000), &[7, 8, 9]);
        assert_eq!(le_u32(&built, 40), 4);
        assert_eq!(&built[44..], &[7, 8, 9, 0]);
    }

    #[test]
    fn writer_refuses_to_pass_riff_limit() {
        let mut w = WavWriter::new(Cursor::new(Vec::new()), WavSpec::mono(16_000)).unwrap();
        w.data_len = WavSpec::mono(16_000).max_data_len() - 2;
        w.write_pcm(&[0, 0]).unwrap();
        let err = w.write_pcm(&[0, 0]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(WavWriter::new(Cursor::new(Vec::new()), WavSpec::mono(0)).is_err());
    }

    #[test]
    fn writer_works_on_a_buffered_file() {
        let path = std::env::temp_dir().join(format!(
            "talky-voice-wav-test-{}-{:?}.wav",
            std::process::id(),
            std::thread::current().id()
        ));
        let pcm = tone_s16le(16_000, 1000.0, 5000, 100);
        {
            let file = std::fs::File::create(&path).unwrap();
            let mut w = WavWriter::new(io::BufWriter::new(file), WavSpec::mono(16_000)).unwrap();
            w.write_pcm(&pcm).unwrap();
            w.finish().unwrap();
        }
        let parsed = read_wav_from(std::fs::File::open(&path).unwrap()).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(parsed.pcm, &pcm[..]);
    }

    #[test]
    fn reader_round_trips_writer() {
        let left: Vec<i16> = (0..500).map(|i| i * 3).collect();
        let right: Vec<i16> = (0..500).map(|i| -i).collect();
        let stereo = crate::audio::mix::interleave_stereo(&left, &right);
        let mut w = WavWriter::new(Cursor::new(Vec::new()), WavSpec::stereo(16_000)).unwrap();
        w.write_samples(&stereo).unwrap();
        let file = w.finish().unwrap().into_inner();
        let parsed = read_wav(&file).unwrap();
        assert_eq!(parsed.spec(), WavSpec::stereo(16_000));
        assert_eq!(parsed.samples(), stereo);
        assert_eq!(parsed.channel(0), left);
        assert_eq!(parsed.channel(1), right);
        assert!(parsed.channel(2).is_empty());
        assert_eq!(parsed.duration(), Duration::from_micros(31_250));
    }

    #[test]
    fn reader_reads_unfinished_recording() {
        let mut w = WavWriter::new(Cursor::new(Vec::new()), WavSpec::mono(16_000)).unwrap();
        w.write_pcm(&[1, 0, 2, 0, 3]).unwrap();
        let unfinished = w.inner.into_inner();
        assert_eq!(le_u32(&unfinished, 40), PLACEHOLDER_SIZE);
        let parsed = read_wav(&unfinished).unwrap();
        assert_eq!(parsed.samples(), [1, 2]);
    }

    fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut c = id.to_vec();
        c.extend_from_slice(&(body.len() as u32).to_le_bytes());
        c.extend_from_slice(body);
        if body.len() % 2 == 1 {
            c.push(0);
        }
        c
    }

    fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = chunks.concat();
        let mut f = b"RIFF".to_vec();
        f.extend_from_slice(&(body.len() as u32 + 4).to_le_bytes());
        f.extend_from_slice(b"WAVE");
        f.extend_from_slice(&body);
        f
    }

    fn fmt_body(format: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
        let block = channels * bits / 8;
        let mut b = Vec::new();
        b.extend_from_slice(&format.to_le_bytes());
        b.extend_from_slice(&channels.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
        b.extend_from_slice(&block.to_le_bytes());
        b.extend_from_slice(&bits.to_le_bytes());
        b
    }

    #[test]
    fn reader_skips_unknown_chunks_with_padding() {
        let file = riff(&[
            chunk(b"LIST", b"odd"), // 3 bytes + pad byte
            chunk(b"fmt ", &fmt_body(1, 1, 8_000, 16)),
            chunk(b"fact", &[0, 0, 0, 0]),
            chunk(b"data", &[0x10, 0x00, 0xF0, 0xFF]),
            chunk(b"junk", b"trailing"),
        ]);
        let parsed = read_wav(&file).unwrap();
        assert_eq!(parsed.sample_rate, 8_000);
        assert_eq!(parsed.channels, 1);
        assert_eq!(parsed.samples(), [16, -16]);
    }

    #[test]
    fn reader_accepts_data_before_fmt_and_extensible() {
        let file = riff(&[
            chunk(b"data", &[1, 0]),
            chunk(b"fmt ", &fmt_body(1, 1, 22_050, 16)),
        ]);
        assert_eq!(read_wav(&file).unwrap().sample_rate, 22_050);

        let mut ext = fmt_body(FORMAT_EXTENSIBLE, 2, 48_000, 16);
        ext.extend_from_slice(&22u16.to_le_bytes()); // cbSize
        ext.extend_from_slice(&16u16.to_le_bytes()); // valid bits
        ext.extend_from_slice(&3u32.to_le_bytes()); // channel mask
        ext.extend_from_slice(&[
            1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71,
        ]);
        let file = riff(&[chunk(b"fmt ", &ext), chunk(b"data", &[1, 0, 2, 0])]);
        let parsed = read_wav(&file).unwrap();
        assert_eq!(parsed.spec(), WavSpec::stereo(48_000));
        assert_eq!(parsed.samples(), [1, 2]);
    }

    #[test]
    fn reader_rejects_bad_input() {
        let err = |b: &[u8]| match read_wav(b) {
            Err(AudioError::InvalidWav(m)) => m,
            other => panic!("expected InvalidWav, got {other:?}"),
        };
        assert_eq!(err(b"RIFX\0\0\0\0WAVE"), "not a RIFF file");
        assert_eq!(err(b"RIFF\0\0\0\0AVI "), "not a WAVE file");
        assert_eq!(err(b"RIF"), "not a RIFF file");
        assert_eq!(err(&riff(&[chunk(b"data", &[0, 0])])), "missing fmt chunk");
        assert_eq!(
            err(&riff(&[chunk(b"fmt ", &fmt_body(1, 1, 16_000, 16))])),
            "missing data chunk"
        );
        assert_eq!(
            err(&riff(&[
                chunk(b"fmt ", &fmt_body(1, 1, 16_000, 8)),
                chunk(b"data", &[0])
            ])),
            "unsupported 8-bit samples"
        );
        assert_eq!(
            err(&riff(&[
                chunk(b"fmt ", &fmt_body(3, 1, 16_000, 32)),
                chunk(b"data", &[0; 4])
            ])),
            "unsupported format tag 3"
        );
        assert_eq!(
            err(&riff(&[chunk(b"fmt ", &[1, 0, 1, 0])])),
            "truncated fmt chunk"
        );
        let mut bad_block = fmt_body(1, 2, 16_000, 16);
        bad_block[12] = 2;
        assert_eq!(
            err(&riff(&[
                chunk(b"fmt ", &bad_block),
                chunk(b"data", &[0; 4])
            ])),
            "inconsistent fmt chunk"
        );
    }

    #[test]
    fn in_memory_builder_round_trips() {
        let pcm = tone_s16le(24_000, 300.0, 20_000, 40);
        let file = wav_bytes(WavSpec::mono(24_000), &pcm);
        assert_eq!(file.len(), 44 + pcm.len());
        let parsed = read_wav(&file).unwrap();
        assert_eq!(parsed.sample_rate, 24_000);
        assert_eq!(parsed.pcm, &pcm[..]);
    }
}
