//! Content-defined chunking with the repository's secret gear seed.

use std::io::Read;

use fastcdc::v2020::{FastCDC, Normalization, StreamCDC};

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

    /// Largest chunk size.
    pub fn max_size(&self) -> usize {
        self.max
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

    /// Chunks of a stream, each as owned bytes.
    pub fn stream<R: Read>(&self, reader: R) -> impl Iterator<Item = std::io::Result<Vec<u8>>> {
        StreamCDC::with_level_and_seed(reader, self.min, self.avg, self.max, self.level, self.seed)
            .map(|r| {
                r.map(|c| c.data).map_err(|e| match e {
                    fastcdc::v2020::Error::IoError(io) => io,
                    other => std::io::Error::other(other.to_string()),
                })
            })
    }
}

#[cfg(test)]
mod tests {
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
        let from_stream: Vec<Vec<u8>> = c
            .stream(&data[..])
            .collect::<Result<_, _>>()
            .expect("in-memory read");
        assert_eq!(from_slice, from_stream);
    }
}
