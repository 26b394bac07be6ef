//! Content-defined chunking with the repository's secret gear seed.

use std::io::Read;

use fastcdc::v2020::{FastCDC, Normalization};

use crate::format::ChunkerParams;

/// Splits data into chunks exactly as every writer of this repository does.
#[derive(Clone, Debug)]
pub struct Chunker {
    min: usize,
    avg: usize,
    max: usize,
    level: Normalization,
    seed: u64,
}

impl Chunker {
    /// A chunker for `params` with the repository's secret `seed`.
    pub fn new(params: &ChunkerParams, seed: u64) -> Self {
        let level = match params.normalization {
            0 => Normalization::Level0,
            1 => Normalization::Level1,
            2 => Normalization::Level2,
            _ => Normalization::Level3,
        };
        Chunker {
            min: params.min_size as usize,
            avg: params.avg_size as usize,
            max: params.max_size as usize,
            level,
            seed,
        }
    }

    /// Chunk boundaries of an in-memory buffer as `(offset, length)` pairs.
    pub fn cut_points(&self, data: &[u8]) -> Vec<(usize, usize)> {
        if data.is_empty() {
            return Vec::new();
        }
        FastCDC::with_level_and_seed(data, self.min, self.avg, self.max, self.level, self.seed)
            .map(|c| (c.offset, c.length))
            .collect()
    }

    /// Smallest chunk size: data up to this size is always one chunk.
    pub fn min_size(&self) -> usize {
        self.min
    }

    /// Length of the first chunk of `data`. With `at_end` false, `None`
    /// means more data is needed before the boundary is certain.
    fn first_cut(&self, data: &[u8], at_end: bool) -> Option<usize> {
        if data.is_empty() {
            return None;
        }
        if !at_end && data.len() <= self.min {
            return None;
        }
        let len =
            FastCDC::with_level_and_seed(data, self.min, self.avg, self.max, self.level, self.seed)
                .next()
                .map(|c| c.length)?;
        // A cut at the very end of a short buffer may only mean "no boundary
        // found yet"; it is final at the end of input or at max_size.
        if len == data.len() && !at_end && len < self.max {
            return None;
        }
        Some(len)
    }

    /// Cut a stream into chunks, calling `emit` with each one in order.
    ///
    /// `buffer` is reused between calls (one per thread), so no per-file
    /// window is allocated. The buffer holds at most `max_size` bytes and
    /// is compacted only when no boundary is certain in what it holds, so
    /// data is moved rarely (unlike a window that shifts after every chunk).
    pub fn chunk_stream<R: Read + ?Sized, E>(
        &self,
        reader: &mut R,
        buffer: &mut Vec<u8>,
        mut emit: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<std::io::Error>,
    {
        // Stale bytes from an earlier call are never read (only
        // `start..end` is), so a buffer already large enough is reused
        // without zeroing its `max_size` bytes again.
        if buffer.len() < self.max {
            buffer.resize(self.max, 0);
        }
        let (mut start, mut end, mut at_end) = (0usize, 0usize, false);
        loop {
            match self.first_cut(&buffer[start..end], at_end) {
                Some(len) => {
                    emit(&buffer[start..start + len])?;
                    start += len;
                }
                None if at_end => return Ok(()),
                None => {
                    // Need more data: move the unconsumed tail to the front
                    // (at most max_size bytes, and only now), then fill.
                    if start > 0 {
                        buffer.copy_within(start..end, 0);
                        end -= start;
                        start = 0;
                    }
                    while end < buffer.len() {
                        match reader.read(&mut buffer[end..]) {
                            Ok(0) => {
                                at_end = true;
                                break;
                            }
                            Ok(n) => end += n,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        // Deterministic pseudo-random bytes (xorshift), so boundaries vary.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn small_params() -> ChunkerParams {
        ChunkerParams {
            min_size: 2048,
            avg_size: 8192,
            max_size: 32768,
            ..ChunkerParams::default()
        }
    }

    #[test]
    fn deterministic_for_a_seed_and_different_across_seeds() {
        let data = sample(1 << 20);
        let a = Chunker::new(&small_params(), 42);
        let b = Chunker::new(&small_params(), 43);
        assert_eq!(a.cut_points(&data), a.cut_points(&data));
        assert_ne!(a.cut_points(&data), b.cut_points(&data));
        let covered: usize = a.cut_points(&data).iter().map(|c| c.1).sum();
        assert_eq!(covered, data.len());
    }

    #[test]
    fn stream_and_slice_agree() {
        let data = sample(300_000);
        let c = Chunker::new(&small_params(), 7);
        let from_slice: Vec<Vec<u8>> = c
            .cut_points(&data)
            .into_iter()
            .map(|(o, l)| data[o..o + l].to_vec())
            .collect();
        // A reader returning small, irregular pieces exercises refills.
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.1 = (self.1 * 7 + 3) % 5000 + 1;
                let n = self.1.min(buf.len()).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut whole: &[u8] = &data;
        let mut trickle = Trickle(&data, 1);
        for reader in [&mut whole as &mut dyn Read, &mut trickle] {
            let mut from_stream: Vec<Vec<u8>> = Vec::new();
            let mut buffer = Vec::new();
            c.chunk_stream(reader, &mut buffer, |chunk| {
                from_stream.push(chunk.to_vec());
                Ok::<(), std::io::Error>(())
            })
            .expect("in-memory read");
            assert_eq!(from_slice, from_stream);
        }
    }
}
