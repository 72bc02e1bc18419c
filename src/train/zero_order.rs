//! Orders the examples of a mini-batch so that similar inputs sit in neighbouring columns,
//! which gives the `f32` product more steps to skip.
//!
//! The product leaves out the steps of its sum at which a panel of 16 columns of `B` is all
//! zero (see [`crate::linalg`]). In training, `B` is the batch: `X` in `W[1] X`, the ReLU
//! output `A[1]` in `W[2] A[1]`, the masked gradient `dZ[2]` in `W[2]^T dZ[2]`. A step is zero
//! across a panel only when its 16 examples share that zero, so the count depends on which
//! examples are neighbours. Inputs that are zero in the same places, and inputs that switch
//! on the same hidden units, give panels with more common zeros.
//!
//! The order moves examples between columns but keeps the batch's members, so each gradient
//! is the same sum in another order: `dW = dZ A^T` and `db` add the same terms, rounded in a
//! different sequence. Dropout draws its masks by column, so with dropout the examples also
//! get other masks. The order depends on the shuffled batch and its inputs alone, so it is the
//! same for any thread count and after a checkpoint is resumed.
//!
//! Method: each example gets a signature of [`BITS`] bits, one per sampled feature: bit `r`
//! is set when feature `r n / BITS` is positive (every feature when `n <= BITS`). For
//! nonnegative inputs, such as pixels, that is where they are nonzero. Standardized inputs
//! have no zeros, but their signs still tell which inputs look alike. The batch is then
//! ordered as a greedy chain. It keeps its first example, and each next place goes to the
//! remaining example whose signature differs from the previous one's in the fewest bits. That
//! is `m² / 2` comparisons of two words per batch, about 0.14 ms for 512 examples on the
//! machine of BENCHMARKS.md. The signatures of 60,000 images of 784 pixels took 12 to 15 ms
//! on two threads.

use ndarray::{Array2, ArrayView1, ArrayView2};

use crate::linalg::rows;

/// Bits in an example's signature: two 64-bit words.
pub(crate) const BITS: usize = 128;

/// A signature: bit `r` is set when the `r`-th sampled feature is positive.
type Signature = [u64; 2];

/// Signatures of a training set and the buffer that orders one batch.
#[derive(Clone, Debug)]
pub(crate) struct ZeroOrder {
    /// Row `i` contains the two words of example `i`'s signature.
    signatures: Array2<u64>,
    /// The signatures of the batch being ordered, moved along with its indices.
    batch: Vec<Signature>,
}

impl Default for ZeroOrder {
    fn default() -> Self {
        ZeroOrder {
            signatures: Array2::zeros((0, 2)),
            batch: Vec::new(),
        }
    }
}

impl ZeroOrder {
    /// Computes the signature of every example (row) of `features`, split over the product
    /// threads. Allocates only when the number of examples changes.
    pub(crate) fn sign(&mut self, features: ArrayView2<'_, f32>) {
        let m = features.nrows();
        if self.signatures.nrows() != m {
            self.signatures = Array2::zeros((m, 2));
        }
        rows::map_row_blocks(self.signatures.view_mut(), &|range, mut block| {
            for (mut words, example) in block.rows_mut().into_iter().zip(range) {
                let signature = signature(features.row(example));
                words[0] = signature[0];
                words[1] = signature[1];
            }
        });
    }

    /// Reorders `indices`, examples of the set last passed to [`ZeroOrder::sign`], into the
    /// greedy chain of the module docs. Allocates only when `indices` is longer than every
    /// batch before it.
    ///
    /// # Panics
    ///
    /// When an index is out of range of that set.
    pub(crate) fn reorder(&mut self, indices: &mut [usize]) {
        self.batch.clear();
        self.batch.extend(indices.iter().map(|&example| {
            let words = self.signatures.row(example);
            [words[0], words[1]]
        }));
        chain(&mut self.batch, indices);
    }
}

/// Returns the signature of one example's `n` features: bit `r` is set when feature
/// `r n / BITS` is positive, for `r < min(n, BITS)`. NaN is not positive.
fn signature(features: ArrayView1<'_, f32>) -> Signature {
    let n = features.len();
    let bits = BITS.min(n);
    let mut words = [0u64; 2];
    for bit in 0..bits {
        let positive = features[bit * n / bits] > 0.0;
        words[bit / 64] |= u64::from(positive) << (bit % 64);
    }
    words
}

/// Returns how many bits differ between two signatures.
#[inline(always)]
fn distance(a: &Signature, b: &Signature) -> u32 {
    (a[0] ^ b[0]).count_ones() + (a[1] ^ b[1]).count_ones()
}

/// Orders `signatures` and `indices` together as a greedy chain, in place. On x86-64 CPUs
/// with the `popcnt` instruction, the distances use it. The order is the same either way.
fn chain(signatures: &mut [Signature], indices: &mut [usize]) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("popcnt") {
        // SAFETY: the CPU has the instruction that the attribute enables.
        unsafe { chain_popcnt(signatures, indices) };
        return;
    }
    chain_portable(signatures, indices);
}

/// Computes [`chain`] compiled with the `popcnt` instruction.
///
/// # Safety
///
/// The CPU must have `popcnt`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn chain_popcnt(signatures: &mut [Signature], indices: &mut [usize]) {
    chain_portable(signatures, indices);
}

/// Computes [`chain`]: place `i + 1` goes to the nearest remaining signature to place `i`'s,
/// the first one found on a tie.
#[inline(always)]
fn chain_portable(signatures: &mut [Signature], indices: &mut [usize]) {
    let m = signatures.len();
    for i in 0..m.saturating_sub(2) {
        let last = signatures[i];
        let mut best = i + 1;
        let mut best_distance = distance(&last, &signatures[best]);
        for (j, candidate) in signatures.iter().enumerate().skip(i + 2) {
            if best_distance == 0 {
                break;
            }
            let d = distance(&last, candidate);
            if d < best_distance {
                best = j;
                best_distance = d;
            }
        }
        signatures.swap(i + 1, best);
        indices.swap(i + 1, best);
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array1, Array2};

    use super::*;
    use crate::rng::Rng;

    fn random_signatures(m: usize, rng: &mut Rng) -> Vec<Signature> {
        (0..m).map(|_| [rng.next_u64(), rng.next_u64()]).collect()
    }

    #[test]
    fn signature_reads_sampled_features() {
        let mut x = Array1::<f32>::zeros(784);
        // 784 / 128 = 6.125, so bit 1 reads feature 6 and bit 127 reads feature 777.
        x[6] = 0.5;
        x[777] = 2.0;
        x[7] = 1.0; // not sampled
        x[0] = -1.0; // sampled, not positive
        x[12] = f32::NAN; // sampled as bit 2, not positive
        assert_eq!(signature(x.view()), [1 << 1, 1 << 63]);
    }

    #[test]
    fn short_input_reads_every_feature() {
        let x = Array1::from(vec![0.0f32, 3.0, -1.0, 0.1, 0.0]);
        assert_eq!(signature(x.view()), [0b01010, 0]);
    }

    #[test]
    fn chain_keeps_members_and_first() {
        let mut rng = Rng::new(1);
        for m in [0, 1, 2, 3, 17, 300] {
            let mut signatures = random_signatures(m, &mut rng);
            let before = signatures.clone();
            let mut indices: Vec<usize> = (0..m).collect();
            chain(&mut signatures, &mut indices);
            let mut sorted = indices.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..m).collect::<Vec<_>>(), "m = {m}");
            assert_eq!(indices.first(), (0..m).next().as_ref(), "m = {m}");
            for (signature, &index) in signatures.iter().zip(&indices) {
                assert_eq!(*signature, before[index], "signatures move with indices");
            }
        }
    }

    #[test]
    fn each_next_example_is_nearest() {
        let mut rng = Rng::new(2);
        // Few distinct bits, so that ties are common.
        let mut signatures: Vec<Signature> = (0..200)
            .map(|_| [rng.next_u64() & 0x0f0f, rng.next_u64() & 0x3])
            .collect();
        let mut indices: Vec<usize> = (0..200).collect();
        chain(&mut signatures, &mut indices);
        for i in 0..signatures.len() - 1 {
            let next = distance(&signatures[i], &signatures[i + 1]);
            for later in &signatures[i + 2..] {
                assert!(next <= distance(&signatures[i], later), "place {}", i + 1);
            }
        }
    }

    #[test]
    fn portable_order_matches() {
        let mut rng = Rng::new(3);
        let signatures: Vec<Signature> = (0..300).map(|_| [rng.next_u64() & 0xff, 0]).collect();
        let mut indices: Vec<usize> = (0..300).collect();
        let (mut portable, mut portable_indices) = (signatures.clone(), indices.clone());
        chain(&mut signatures.clone(), &mut indices);
        chain_portable(&mut portable, &mut portable_indices);
        assert_eq!(indices, portable_indices);
    }

    /// Counts the steps that the product would skip in `x` (`m x n`, examples as rows) taken
    /// in panels of 16 examples: a feature zero in all 16, in a panel with at least 1 such
    /// feature in 16.
    fn skippable_steps(x: &Array2<f32>, order: &[usize]) -> usize {
        let n = x.ncols();
        order
            .chunks_exact(16)
            .map(|panel| {
                let zero = (0..n)
                    .filter(|&k| panel.iter().all(|&e| x[[e, k]] == 0.0))
                    .count();
                if zero * 16 >= n { zero } else { 0 }
            })
            .sum()
    }

    #[test]
    fn ordered_batch_has_more_zero_steps() {
        // Four shapes, each nonzero on a random half of 256 features, with noise: examples of
        // one shape share zeros, examples of different shapes share few.
        let mut rng = Rng::new(4);
        let shapes: Vec<Vec<bool>> = (0..4)
            .map(|_| (0..256).map(|_| rng.uniform() < 0.5).collect())
            .collect();
        let shape_of: Vec<usize> = (0..512).map(|_| rng.below(4)).collect();
        let x = Array2::from_shape_fn((512, 256), |(e, k)| {
            let on = shapes[shape_of[e]][k] && rng.uniform() < 0.9;
            if on { rng.uniform() as f32 } else { 0.0 }
        });
        let shuffled: Vec<usize> = rng.permutation(512);
        let mut order = ZeroOrder::default();
        order.sign(x.view());
        let mut ordered = shuffled.clone();
        order.reorder(&mut ordered);

        let (before, after) = (
            skippable_steps(&x, &shuffled),
            skippable_steps(&x, &ordered),
        );
        assert!(
            after >= 4 * before.max(1),
            "{before} zero steps before, {after} after"
        );
    }

    #[test]
    fn sign_follows_set_size() {
        let mut order = ZeroOrder::default();
        order.sign(Array2::from_elem((5, 3), 1.0f32).view());
        assert_eq!(order.signatures.dim(), (5, 2));
        order.sign(Array2::from_elem((2, 3), -1.0f32).view());
        assert_eq!(order.signatures.dim(), (2, 2));
        assert!(order.signatures.iter().all(|&w| w == 0));
    }
}
