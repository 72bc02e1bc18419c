//! The random-number generator behind initialization, shuffling, dropout and data splits.
//!
//! `feedforward` carries its own small generator, xoshiro256++ seeded through SplitMix64, instead
//! of depending on `rand`, for two reasons: the stream for a given seed must never change with a
//! dependency upgrade (the same seed, data and thread count give a bit-identical model file), and
//! its whole state is four `u64` words that a checkpoint stores so that a resumed run continues
//! the same stream.

use serde::{Deserialize, Serialize};

/// xoshiro256++ (Blackman and Vigna, 2019): 256 bits of state, period 2^256 − 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rng {
    state: [u64; 4],
}

impl Rng {
    /// Creates a generator from a 64-bit seed. Each seed gives its own stream, seed 0 included.
    pub fn new(seed: u64) -> Self {
        // SplitMix64 spreads the seed over the four words, so that no state is all zeros.
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            state: [next(), next(), next(), next()],
        }
    }

    /// True for the all-zero state, from which xoshiro256++ returns only zeros. [`Rng::new`]
    /// never produces it, so a checkpoint containing it is damaged.
    pub(crate) fn has_zero_state(&self) -> bool {
        self.state == [0; 4]
    }

    /// Returns the next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Returns a uniform sample from `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Returns a uniform sample from `[low, high)`.
    pub fn uniform_range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }

    /// Returns a standard normal sample (mean 0, variance 1) by the Box–Muller transform.
    pub fn normal(&mut self) -> f64 {
        // 1 - uniform() lies in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Returns a uniform integer from `0..n` without modulo bias (Lemire's method).
    ///
    /// # Panics
    ///
    /// When `n` is 0, since `0..0` has no integer to return.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below needs a positive bound");
        let n = n as u64;
        loop {
            let product = (self.next_u64() as u128) * (n as u128);
            let low = product as u64;
            if low >= n.wrapping_neg() % n {
                return (product >> 64) as usize;
            }
        }
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// Returns a random permutation of `0..n`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        self.shuffle(&mut order);
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn different_seeds_differ() {
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn uniform_mean_and_range() {
        let mut rng = Rng::new(3);
        let samples: Vec<f64> = (0..100_000).map(|_| rng.uniform()).collect();
        assert!(samples.iter().all(|&u| (0.0..1.0).contains(&u)));
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
    }

    #[test]
    fn normal_moments() {
        let mut rng = Rng::new(4);
        let samples: Vec<f64> = (0..200_000).map(|_| rng.normal()).collect();
        let n = samples.len() as f64;
        let mean = samples.iter().sum::<f64>() / n;
        let variance = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((variance - 1.0).abs() < 0.02, "variance {variance}");
    }

    #[test]
    fn below_covers_range_evenly() {
        let mut rng = Rng::new(5);
        let mut counts = [0usize; 6];
        for _ in 0..60_000 {
            counts[rng.below(6)] += 1;
        }
        for count in counts {
            assert!((9_000..11_000).contains(&count), "counts {counts:?}");
        }
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut order = Rng::new(6).permutation(1000);
        assert_ne!(order, (0..1000).collect::<Vec<_>>());
        order.sort_unstable();
        assert_eq!(order, (0..1000).collect::<Vec<_>>());
    }
}
