//! Matrix-vector product `y = W x` for a row-major `W`, the product of a batch of one example.
//!
//! A single column gains nothing from a GEMM's packing and blocking: every weight is read once
//! and used once, so the product is bound by the speed at which `W` streams through the cache.
//! [`gemv_rows`] reads each row of `W` as one contiguous run. For `f32` on x86-64 with AVX2
//! and FMA (detected at run time) it computes four rows at a time, so that each 8-lane load of
//! `x` serves four fused multiply-adds, with eight independent accumulators to hide the FMA
//! latency. Other element types and targets take a portable loop with eight partial sums.
//!
//! The function works on a range of rows and writes only that range's outputs, so callers can
//! split the rows of one product over threads.

#[cfg(target_arch = "x86_64")]
use std::any::TypeId;
use std::ops::Range;

use crate::error::{Error, Result};
use crate::float::Float;

/// Computes `y[j] = Σ_k W[rows.start + j, k] x[k]` for the rows `rows` of a row-major `W`.
///
/// Row `i` of `W` is `w[i * ld .. i * ld + x.len()]`: `ld >= x.len()` is the leading dimension,
/// the distance between the starts of two rows, and `x.len()` is the number of columns. `y` has
/// one entry per row in `rows`. Disjoint row ranges write disjoint outputs, so threads can
/// split one product by giving each a range and its part of `y`.
///
/// Numerics: each row is summed in several partial sums that are added at the end, and the
/// AVX2 path rounds once per fused multiply-add. The result can therefore differ in the last
/// bits from a plain loop, from [`crate::linalg::gemm`] and between the two paths. An empty
/// `x` gives zeros.
///
/// # Errors
///
/// [`Error::Shape`] when `ld < x.len()`, when `y.len() != rows.len()`, or when `w` is too short
/// for the last row in `rows`; `y` is then unchanged.
pub fn gemv_rows<T: Float>(
    w: &[T],
    ld: usize,
    x: &[T],
    y: &mut [T],
    rows: Range<usize>,
) -> Result<()> {
    check_arguments(w.len(), ld, x.len(), y.len(), &rows)?;
    compute_rows(w, ld, x, y, rows);
    Ok(())
}

/// Computes what [`gemv_rows`] does, for arguments that [`check_arguments`] accepted for these
/// rows or for a range that contains them.
pub(super) fn compute_rows<T: Float>(w: &[T], ld: usize, x: &[T], y: &mut [T], rows: Range<usize>) {
    if rows.is_empty() {
        return;
    }

    #[cfg(target_arch = "x86_64")]
    if TypeId::of::<T>() == TypeId::of::<f32>()
        && is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
    {
        // SAFETY: `T` is `f32` (same `TypeId`), so the casts only rename the element type of
        // the same memory. The CPU supports AVX2 and FMA, and `check_arguments` proved every
        // row in `rows` to lie inside `w`, which is what the kernel reads.
        unsafe {
            let w = std::slice::from_raw_parts(w.as_ptr().cast::<f32>(), w.len());
            let x = std::slice::from_raw_parts(x.as_ptr().cast::<f32>(), x.len());
            let y = std::slice::from_raw_parts_mut(y.as_mut_ptr().cast::<f32>(), y.len());
            avx2::gemv_rows_f32(w, ld, x, y, rows.start);
        }
        return;
    }

    gemv_rows_portable(w, ld, x, y, rows.start);
}

/// Checks that `w` holds the rows `rows` of a matrix with `k` columns and leading dimension
/// `ld`, and that `y` has one entry per row.
pub(super) fn check_arguments(
    w_len: usize,
    ld: usize,
    k: usize,
    y_len: usize,
    rows: &Range<usize>,
) -> Result<()> {
    if ld < k {
        return Err(Error::Shape(format!(
            "gemv: the leading dimension {ld} is smaller than the row length {k}; \
             pass the distance between row starts, at least the number of columns"
        )));
    }
    if y_len != rows.len() {
        return Err(Error::Shape(format!(
            "gemv: y has {y_len} entries but the row range {rows:?} has {}",
            rows.len()
        )));
    }
    if let Some(last) = rows.end.checked_sub(1).filter(|_| !rows.is_empty()) {
        let needed = last * ld + k;
        if needed > w_len {
            return Err(Error::Shape(format!(
                "gemv: row {last} needs {needed} elements of W, but it has {w_len}"
            )));
        }
    }
    Ok(())
}

/// Computes the rows one at a time, each in eight partial sums that the compiler can keep in
/// a vector register. Every type and target without the AVX2 kernel takes this path.
fn gemv_rows_portable<T: Float>(w: &[T], ld: usize, x: &[T], y: &mut [T], start: usize) {
    let k = x.len();
    for (j, out) in y.iter_mut().enumerate() {
        let row_start = (start + j) * ld;
        *out = dot(&w[row_start..row_start + k], x);
    }
}

fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    let mut partial = [T::zero(); 8];
    let a_chunks = a.chunks_exact(8);
    let b_chunks = b.chunks_exact(8);
    let tail = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .fold(T::zero(), |sum, (&p, &q)| sum + p * q);
    for (a_chunk, b_chunk) in a_chunks.zip(b_chunks) {
        for ((s, &p), &q) in partial.iter_mut().zip(a_chunk).zip(b_chunk) {
            *s += p * q;
        }
    }
    let quarter = [
        partial[0] + partial[4],
        partial[1] + partial[5],
        partial[2] + partial[6],
        partial[3] + partial[7],
    ];
    (quarter[0] + quarter[2]) + (quarter[1] + quarter[3]) + tail
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehl_ps, _mm_shuffle_ps,
        _mm256_add_ps, _mm256_castps256_ps128, _mm256_cmpgt_epi32, _mm256_extractf128_ps,
        _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_maskload_ps, _mm256_set1_epi32, _mm256_setr_epi32,
        _mm256_setzero_ps,
    };

    /// Computes `y[j] = Σ_k W[start + j, k] x[k]` for `j < y.len()`.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2 and FMA, `ld >= x.len()`, and `w` must hold
    /// `(start + y.len() - 1) * ld + x.len()` elements when `y` is not empty.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gemv_rows_f32(
        w: &[f32],
        ld: usize,
        x: &[f32],
        y: &mut [f32],
        start: usize,
    ) {
        let k = x.len();
        let k16 = k - k % 16;
        let k8 = k - k % 8;
        let tail = k - k8;
        let rows = y.len();
        let xp = x.as_ptr();

        // SAFETY: the caller guarantees the CPU features and that every row read below,
        // `w[(start + j) * ld ..][..k]` for `j < rows`, lies inside `w`. Every unmasked load
        // reads 8 elements at an offset `p <= k - 8`; the masked tail load reads only the
        // `tail` elements at `k8 .. k`, and masked-off lanes are never accessed.
        unsafe {
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let tail_mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(tail as i32), lanes);

            let mut j = 0;
            while j + 4 <= rows {
                let r0 = w.as_ptr().add((start + j) * ld);
                let r1 = r0.add(ld);
                let r2 = r1.add(ld);
                let r3 = r2.add(ld);
                // Two accumulators per row: one for each half of a 16-column step.
                let mut a0 = _mm256_setzero_ps();
                let mut a1 = _mm256_setzero_ps();
                let mut a2 = _mm256_setzero_ps();
                let mut a3 = _mm256_setzero_ps();
                let mut b0 = _mm256_setzero_ps();
                let mut b1 = _mm256_setzero_ps();
                let mut b2 = _mm256_setzero_ps();
                let mut b3 = _mm256_setzero_ps();
                let mut p = 0;
                while p < k16 {
                    let xa = _mm256_loadu_ps(xp.add(p));
                    let xb = _mm256_loadu_ps(xp.add(p + 8));
                    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0.add(p)), xa, a0);
                    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(r1.add(p)), xa, a1);
                    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(r2.add(p)), xa, a2);
                    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(r3.add(p)), xa, a3);
                    b0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0.add(p + 8)), xb, b0);
                    b1 = _mm256_fmadd_ps(_mm256_loadu_ps(r1.add(p + 8)), xb, b1);
                    b2 = _mm256_fmadd_ps(_mm256_loadu_ps(r2.add(p + 8)), xb, b2);
                    b3 = _mm256_fmadd_ps(_mm256_loadu_ps(r3.add(p + 8)), xb, b3);
                    p += 16;
                }
                if p < k8 {
                    let xa = _mm256_loadu_ps(xp.add(p));
                    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0.add(p)), xa, a0);
                    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(r1.add(p)), xa, a1);
                    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(r2.add(p)), xa, a2);
                    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(r3.add(p)), xa, a3);
                }
                if tail > 0 {
                    let xt = _mm256_maskload_ps(xp.add(k8), tail_mask);
                    b0 = _mm256_fmadd_ps(_mm256_maskload_ps(r0.add(k8), tail_mask), xt, b0);
                    b1 = _mm256_fmadd_ps(_mm256_maskload_ps(r1.add(k8), tail_mask), xt, b1);
                    b2 = _mm256_fmadd_ps(_mm256_maskload_ps(r2.add(k8), tail_mask), xt, b2);
                    b3 = _mm256_fmadd_ps(_mm256_maskload_ps(r3.add(k8), tail_mask), xt, b3);
                }
                y[j] = horizontal_sum(_mm256_add_ps(a0, b0));
                y[j + 1] = horizontal_sum(_mm256_add_ps(a1, b1));
                y[j + 2] = horizontal_sum(_mm256_add_ps(a2, b2));
                y[j + 3] = horizontal_sum(_mm256_add_ps(a3, b3));
                j += 4;
            }

            // The last `rows % 4` rows, one at a time.
            while j < rows {
                let r = w.as_ptr().add((start + j) * ld);
                let mut a = _mm256_setzero_ps();
                let mut b = _mm256_setzero_ps();
                let mut p = 0;
                while p < k16 {
                    a = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(p)), _mm256_loadu_ps(xp.add(p)), a);
                    b = _mm256_fmadd_ps(
                        _mm256_loadu_ps(r.add(p + 8)),
                        _mm256_loadu_ps(xp.add(p + 8)),
                        b,
                    );
                    p += 16;
                }
                if p < k8 {
                    a = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(p)), _mm256_loadu_ps(xp.add(p)), a);
                }
                if tail > 0 {
                    let xt = _mm256_maskload_ps(xp.add(k8), tail_mask);
                    b = _mm256_fmadd_ps(_mm256_maskload_ps(r.add(k8), tail_mask), xt, b);
                }
                y[j] = horizontal_sum(_mm256_add_ps(a, b));
                j += 1;
            }
        }
    }

    /// Returns the sum of the 8 lanes of `v`.
    #[target_feature(enable = "avx2,fma")]
    fn horizontal_sum(v: __m256) -> f32 {
        let low = _mm256_castps256_ps128(v);
        let high = _mm256_extractf128_ps(v, 1);
        let four = _mm_add_ps(low, high);
        let two = _mm_add_ps(four, _mm_movehl_ps(four, four));
        let one = _mm_add_ss(two, _mm_shuffle_ps(two, two, 1));
        _mm_cvtss_f32(one)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// `y = W x` for the rows `rows`, summed in `f64` in column order.
    fn naive<T: Float>(w: &[T], ld: usize, x: &[T], rows: Range<usize>) -> Vec<f64> {
        rows.map(|i| {
            (0..x.len())
                .map(|p| w[i * ld + p].to_f64().unwrap() * x[p].to_f64().unwrap())
                .sum()
        })
        .collect()
    }

    /// Returns `Σ_k |W[i,k] x[k]|` for each row, the scale of its allowed rounding error.
    fn magnitude<T: Float>(w: &[T], ld: usize, x: &[T], rows: Range<usize>) -> Vec<f64> {
        rows.map(|i| {
            (0..x.len())
                .map(|p| (w[i * ld + p].to_f64().unwrap() * x[p].to_f64().unwrap()).abs())
                .sum()
        })
        .collect()
    }

    /// A function with the signature of [`compute_rows`].
    type Kernel<T> = fn(&[T], usize, &[T], &mut [T], Range<usize>);

    fn random<T: Float>(n: usize, rng: &mut Rng) -> Vec<T> {
        (0..n).map(|_| T::of(rng.normal())).collect()
    }

    /// Checks `kernel` against `naive` for odd row counts, row lengths around multiples of 8
    /// and 16, padded leading dimensions and row ranges that start past row 0.
    fn check_sizes<T: Float>(kernel: Kernel<T>, relative_tolerance: f64) {
        let mut rng = Rng::new(7);
        for total_rows in [1, 3, 4, 5, 7, 9, 13] {
            for k in [1, 5, 7, 8, 9, 15, 16, 17, 23, 31, 33, 100] {
                for padding in [0, 3] {
                    let ld = k + padding;
                    let w = random::<T>(total_rows * ld, &mut rng);
                    let x = random::<T>(k, &mut rng);
                    for start in [0, 1.min(total_rows - 1)] {
                        let rows = start..total_rows;
                        let mut y = vec![T::of(f64::NAN); rows.len()];
                        kernel(&w, ld, &x, &mut y, rows.clone());
                        let expected = naive(&w, ld, &x, rows.clone());
                        let scale = magnitude(&w, ld, &x, rows.clone());
                        for (j, (&got, &want)) in y.iter().zip(&expected).enumerate() {
                            let got = got.to_f64().unwrap();
                            assert!(
                                (got - want).abs() <= relative_tolerance * scale[j] + 1e-30,
                                "rows {rows:?} k {k} ld {ld} row {}: {got} vs {want}",
                                rows.start + j
                            );
                        }
                    }
                }
            }
        }
    }

    fn portable<T: Float>(w: &[T], ld: usize, x: &[T], y: &mut [T], rows: Range<usize>) {
        check_arguments(w.len(), ld, x.len(), y.len(), &rows).unwrap();
        gemv_rows_portable(w, ld, x, y, rows.start);
    }

    #[test]
    fn f32_matches_naive() {
        check_sizes::<f32>(compute_rows, 1e-6);
    }

    #[test]
    fn f64_matches_naive() {
        check_sizes::<f64>(compute_rows, 1e-14);
    }

    #[test]
    fn portable_f32_matches_naive() {
        check_sizes::<f32>(portable, 1e-6);
    }

    #[test]
    fn row_ranges_concatenate() {
        let mut rng = Rng::new(3);
        let (rows, k) = (11, 37);
        let w = random::<f32>(rows * k, &mut rng);
        let x = random::<f32>(k, &mut rng);
        let mut whole = vec![0.0f32; rows];
        gemv_rows(&w, k, &x, &mut whole, 0..rows).unwrap();
        let mut split = vec![0.0f32; rows];
        let (first, second) = split.split_at_mut(6);
        gemv_rows(&w, k, &x, first, 0..6).unwrap();
        gemv_rows(&w, k, &x, second, 6..rows).unwrap();
        // Some rows run in a 4-row group in one call and alone in the other, and both kernels
        // sum in the same order, so the results are equal bit for bit.
        assert_eq!(whole, split);
    }

    #[test]
    fn empty_row_is_zero() {
        let mut y = vec![f32::NAN; 2];
        gemv_rows(&[0.0f32; 4], 0, &[], &mut y, 0..2).unwrap();
        assert_eq!(y, [0.0, 0.0]);
    }

    #[test]
    fn empty_range_writes_nothing() {
        let mut y: Vec<f64> = Vec::new();
        gemv_rows(&[], 3, &[1.0, 2.0, 3.0], &mut y, 5..5).unwrap();
        assert!(y.is_empty());
    }

    #[test]
    fn short_matrix_is_error() {
        let mut y = vec![0.0f32; 2];
        let err = gemv_rows(&[1.0f32; 8], 4, &[1.0; 4], &mut y, 1..3).unwrap_err();
        assert!(
            err.to_string().contains("row 2 needs 12 elements of W"),
            "{err}"
        );
        assert_eq!(y, [0.0, 0.0]);
    }

    #[test]
    fn small_leading_dimension_is_error() {
        let mut y = vec![0.0f32; 1];
        let err = gemv_rows(&[1.0f32; 8], 2, &[1.0; 3], &mut y, 0..1).unwrap_err();
        assert!(err.to_string().contains("leading dimension 2"), "{err}");
    }

    #[test]
    fn output_length_mismatch_is_error() {
        let mut y = vec![0.0f32; 3];
        let err = gemv_rows(&[1.0f32; 8], 4, &[1.0; 4], &mut y, 0..2).unwrap_err();
        assert!(err.to_string().contains("y has 3 entries"), "{err}");
    }
}
