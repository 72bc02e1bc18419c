//! `y = W x` for one column `x`, computed as a sum of the columns of `W` that meet a nonzero
//! `x[k]`: `y = Σ_{k : x[k] ≠ 0} x[k] W[:, k]`.
//!
//! A batch of one reads every weight once, so its time is the time to stream `W` from the
//! cache. Inputs are often zero in many places: the background pixels of an image, one-hot
//! features, and about half of a ReLU layer's outputs. Column `k` of `W` contributes nothing
//! when `x[k] = 0`, so this form skips it and reads only the columns it needs.
//!
//! [`ColumnPanels`] stores `W` (`n x k`) for that access. Its rows are cut into panels of
//! [`PANEL`] outputs, and within a panel the weights of each column are contiguous, so one
//! input reads one run of 256 bytes (`f32`) per panel. The last panel contains the remaining rows
//! rounded up to a multiple of 8 and padded with zeros, so a layer of 10 outputs reads 64 bytes
//! per input, not 256.
//!
//! Numerics: output `i` is `fma(x[k], W[i, k], ...)` over the listed `k` in increasing order,
//! starting from zero. In `f32` with AVX2 and FMA that is the order and rounding of the
//! crate's own matrix product for inner dimensions up to its block of 1,024 steps. On a CPU with
//! AVX-512F, panels of a multiple of 16 rows take 512-bit vectors, with the same order and
//! rounding. A batch of
//! one then gives the same bits as the same column in a larger batch. Skipping `x[k] = 0` leaves
//! the sum unchanged only when `W[:, k]` is finite, because `0 * inf` is NaN. Callers skip
//! zeros only for finite weights ([`ColumnPanels::all_finite`]).

#[cfg(target_arch = "x86_64")]
use std::any::TypeId;
use std::ops::Range;

use ndarray::ArrayView2;

use crate::float::Float;

/// Outputs per panel: eight AVX vectors of eight `f32`, one accumulator register each.
pub(crate) const PANEL: usize = 64;

/// Bytes to which the stored panels are aligned: one cache line.
const LINE: usize = 64;

/// A weight matrix `W` (`n x k`) stored for [`ColumnPanels::multiply`]. Panel `p` contains
/// `W[p PANEL .. (p + 1) PANEL, :]` column by column, [`ColumnPanels::width`] values per
/// column, from `stored()[p PANEL k]` on.
///
/// The stored values start on a cache line ([`LINE`] bytes). In `f32`, a column of a full panel
/// is then exactly four lines and each 512-bit load reads one line. The allocator gives no such
/// promise: in one run it put two of the three panels of a 784-256-128-10 network 32 and 48
/// bytes past a line, which split every load of theirs in two. On the Ice Lake server of
/// BENCHMARKS.md, aligning them took 16% off that network's batch-of-one latency.
#[derive(Debug)]
pub(crate) struct ColumnPanels<T> {
    /// The panels from `values[start]` on, with padding before them to reach a line boundary.
    values: Vec<T>,
    /// Index of the first stored value in `values`.
    start: usize,
    rows: usize,
    cols: usize,
    all_finite: bool,
}

impl<T> ColumnPanels<T> {
    /// Values of padding kept before the panels, enough to reach the next line boundary.
    fn padding() -> usize {
        (LINE / std::mem::size_of::<T>()).max(1)
    }

    /// Returns the panels, without the padding around them.
    fn stored(&self) -> &[T] {
        let len = self.values.len() - Self::padding();
        &self.values[self.start..self.start + len]
    }
}

impl<T: Float> ColumnPanels<T> {
    /// Copies `weights` (any strides) into panels.
    pub(crate) fn new(weights: ArrayView2<'_, T>) -> Self {
        let (rows, cols) = weights.dim();
        let last_width = (rows - rows / PANEL * PANEL).next_multiple_of(8);
        let len = rows / PANEL * PANEL * cols + last_width * cols;
        let mut panels = ColumnPanels::zeros(len, rows, cols);
        panels.all_finite = weights.iter().all(|w| w.is_finite());
        let start = panels.start;
        for ((i, k), &w) in weights.indexed_iter() {
            let panel = i / PANEL;
            let width = panels.width(panel);
            panels.values[start + panel * PANEL * cols + k * width + i % PANEL] = w;
        }
        panels
    }

    /// Allocates `len` zeros that begin on a line boundary, for a matrix of `rows x cols`.
    fn zeros(len: usize, rows: usize, cols: usize) -> Self {
        let values = vec![T::zero(); len + Self::padding()];
        // `align_offset` may in principle fail (usize::MAX). The panels then start unaligned,
        // which is slower but reads the same values.
        let start = values.as_ptr().align_offset(LINE).min(Self::padding());
        ColumnPanels {
            values,
            start,
            rows,
            cols,
            all_finite: true,
        }
    }

    /// Values stored per column in panel `panel`: [`PANEL`], or for the last panel its rows
    /// rounded up to a multiple of 8.
    pub(crate) fn width(&self, panel: usize) -> usize {
        (self.rows - panel * PANEL).min(PANEL).next_multiple_of(8)
    }

    /// Number of outputs `n`, the rows of `W`.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Number of inputs `k`, the columns of `W`.
    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// Number of panels, `ceil(n / PANEL)`.
    pub(crate) fn panels(&self) -> usize {
        self.rows.div_ceil(PANEL)
    }

    /// Returns whether every weight is finite, so that skipping a zero input cannot change a sum.
    pub(crate) fn all_finite(&self) -> bool {
        self.all_finite
    }

    /// Computes the outputs of the panels `panels`: `y[i - first] = Σ_{k in columns} x[k] W[i, k]`
    /// for the rows `i` the panels cover, where `first` is the first panel's first row.
    ///
    /// `columns` lists the inputs to sum. Listed in increasing order, as [`nonzero_columns`]
    /// builds them, they are summed in the matrix product's order.
    /// `y` has one entry per covered row (fewer than `panels.len() * PANEL` for the last panel).
    ///
    /// # Panics
    ///
    /// When `x.len() != self.cols()`, a listed column is out of range, or `y` has the wrong
    /// length. Callers size these from the same matrix.
    pub(crate) fn multiply(&self, x: &[T], columns: &[u32], y: &mut [T], panels: Range<usize>) {
        assert_eq!(x.len(), self.cols, "input length");
        let first = panels.start * PANEL;
        let end = (panels.end * PANEL).min(self.rows);
        assert_eq!(y.len(), end.saturating_sub(first), "output length");
        // Check the largest entry, not the last, because the kernel reads every listed column
        // without bounds checks and the list need not be sorted.
        if let Some(largest) = columns.iter().copied().max() {
            assert!(
                (largest as usize) < self.cols,
                "column {largest} out of range"
            );
        }

        for (panel, out) in panels.zip(y.chunks_mut(PANEL)) {
            let width = self.width(panel);
            let start = panel * PANEL * self.cols;
            let weights = &self.stored()[start..start + width * self.cols];
            let mut sums = [T::zero(); PANEL];
            sum_panel(weights, width, x, columns, &mut sums[..width]);
            out.copy_from_slice(&sums[..out.len()]);
        }
    }
}

/// A clone stores its panels on a line boundary of its own allocation, which a copy of the
/// whole `Vec` (and of `start`) would not.
impl<T: Clone> Clone for ColumnPanels<T> {
    fn clone(&self) -> Self {
        // The copy only sizes the new allocation. The panels are then written at its own
        // line boundary.
        let mut values = self.values.clone();
        let start = values.as_ptr().align_offset(LINE).min(Self::padding());
        let stored = self.stored();
        values[start..start + stored.len()].clone_from_slice(stored);
        ColumnPanels {
            values,
            start,
            rows: self.rows,
            cols: self.cols,
            all_finite: self.all_finite,
        }
    }
}

/// Writes the indices `k` with `x[k] != 0` to the front of `columns`, in increasing order, and
/// returns how many there are. NaN counts as nonzero, so it reaches the output.
///
/// The loop has no data-dependent branch, because scattered zeros, such as a ReLU layer's,
/// would make a branch mispredict about half the time.
///
/// # Panics
///
/// When `columns` is shorter than `x`.
pub(crate) fn nonzero_columns<T: Float>(x: &[T], columns: &mut [u32]) -> usize {
    assert!(columns.len() >= x.len(), "room for every index");
    let mut count = 0;
    let mut start = 0;

    #[cfg(target_arch = "x86_64")]
    if TypeId::of::<T>() == TypeId::of::<f32>() && super::kernel::available() {
        // SAFETY: `T` is `f32` (same `TypeId`), so the cast only renames the element type of
        // the same memory, and the CPU has AVX2.
        unsafe {
            let x = std::slice::from_raw_parts(x.as_ptr().cast::<f32>(), x.len());
            (count, start) = avx2::nonzero_columns_f32(x, columns);
        }
    }

    for (k, &value) in x.iter().enumerate().skip(start) {
        columns[count] = k as u32;
        count += usize::from(value != T::zero());
    }
    count
}

/// Writes `0, 1, ..., x.len() - 1` to `columns` and returns `x.len()`, so that no column is
/// skipped.
pub(crate) fn all_columns<T>(x: &[T], columns: &mut [u32]) -> usize {
    for (k, column) in columns[..x.len()].iter_mut().enumerate() {
        *column = k as u32;
    }
    x.len()
}

/// Sets `sums[j] = Σ_{k in columns} x[k] weights[k width + j]` for one panel, where `width` is
/// a multiple of 8 up to [`PANEL`] and `sums` has `width` values.
fn sum_panel<T: Float>(weights: &[T], width: usize, x: &[T], columns: &[u32], sums: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if TypeId::of::<T>() == TypeId::of::<f32>() && super::kernel::available() {
        // SAFETY: `T` is `f32` (same `TypeId`), so the casts only rename the element type of
        // the same memory. The CPU has AVX2 and FMA, and `multiply` checked every listed column
        // against `x.len()`, which is the number of columns whose `width` values `weights` contains.
        unsafe {
            let weights = std::slice::from_raw_parts(weights.as_ptr().cast::<f32>(), weights.len());
            let x = std::slice::from_raw_parts(x.as_ptr().cast::<f32>(), x.len());
            let sums = std::slice::from_raw_parts_mut(sums.as_mut_ptr().cast::<f32>(), sums.len());
            if super::kernel512::available() && width.is_multiple_of(16) {
                match width / 16 {
                    1 => avx512::sum_panel_f32::<1>(weights, x, columns, sums),
                    2 => avx512::sum_panel_f32::<2>(weights, x, columns, sums),
                    3 => avx512::sum_panel_f32::<3>(weights, x, columns, sums),
                    4 => avx512::sum_panel_f32::<4>(weights, x, columns, sums),
                    _ => unreachable!("panel width {width} is not 16, 32, 48 or {PANEL}"),
                }
                return;
            }
            match width / 8 {
                1 => avx2::sum_panel_f32::<1>(weights, x, columns, sums),
                2 => avx2::sum_panel_f32::<2>(weights, x, columns, sums),
                3 => avx2::sum_panel_f32::<3>(weights, x, columns, sums),
                4 => avx2::sum_panel_f32::<4>(weights, x, columns, sums),
                5 => avx2::sum_panel_f32::<5>(weights, x, columns, sums),
                6 => avx2::sum_panel_f32::<6>(weights, x, columns, sums),
                7 => avx2::sum_panel_f32::<7>(weights, x, columns, sums),
                8 => avx2::sum_panel_f32::<8>(weights, x, columns, sums),
                _ => unreachable!("panel width {width} is not 8, 16, ... or {PANEL}"),
            }
        }
        return;
    }

    for &k in columns {
        let k = k as usize;
        let column = &weights[k * width..(k + 1) * width];
        for (sum, &w) in sums.iter_mut().zip(column) {
            *sum = x[k].mul_add(w, *sum);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
    };

    /// Computes `sum_panel` in `f32` for a panel of `16 V` outputs, as the AVX2 version does
    /// with half as many 512-bit accumulators and loads. Each output gets the same fused
    /// multiply-adds in the same order, so the two give the same bits.
    ///
    /// Unlike the AVX2 version, it prefetches no column. On the Ice Lake server of
    /// BENCHMARKS.md, with the panels on line boundaries, a 784-256-128-10 network's
    /// batch-of-one latency took 13 to 19% less time without prefetches than with the AVX2
    /// version's (eight columns ahead, five lines each). Four or sixteen columns ahead, or two
    /// lines per column, gained less than none. A likely reason, not measured: the listed
    /// columns come in increasing order, which the hardware prefetchers can follow, and each
    /// prefetch takes a load slot.
    ///
    /// # Safety
    ///
    /// The CPU must have AVX-512F, `sums.len() == 16 V`, and every listed `k` must satisfy
    /// `k < x.len()` and `(k + 1) 16 V <= weights.len()`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn sum_panel_f32<const V: usize>(
        weights: &[f32],
        x: &[f32],
        columns: &[u32],
        sums: &mut [f32],
    ) {
        let width = 16 * V;
        let mut acc = [_mm512_setzero_ps(); V];
        for &k in columns {
            let k = k as usize;
            // SAFETY: guaranteed by the caller for every listed `k`.
            unsafe {
                let scale = _mm512_set1_ps(*x.get_unchecked(k));
                let column = weights.as_ptr().add(k * width);
                for (j, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm512_fmadd_ps(scale, _mm512_loadu_ps(column.add(16 * j)), *acc);
                }
            }
        }
        for (j, acc) in acc.iter().enumerate() {
            // SAFETY: `sums` has `16 V = 16 * acc.len()` values.
            unsafe { _mm512_storeu_ps(sums.as_mut_ptr().add(16 * j), *acc) };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _CMP_NEQ_UQ, _MM_HINT_T0, _mm_cvtsi64_si128, _mm_prefetch, _mm256_add_epi32,
        _mm256_broadcast_ss, _mm256_cmp_ps, _mm256_cvtepu8_epi32, _mm256_fmadd_ps, _mm256_loadu_ps,
        _mm256_movemask_ps, _mm256_permutevar8x32_epi32, _mm256_set1_epi32, _mm256_setr_epi32,
        _mm256_setzero_ps, _mm256_storeu_ps, _mm256_storeu_si256,
    };

    /// How many listed columns ahead the kernel prefetches. On a Zen 3 core, 6 to 12 took
    /// about 10% off the latency of a 784-256-128-10 network against no prefetch; 8 sits in
    /// the middle of that range. That was before the panels started on a cache line. On the
    /// Ice Lake server of BENCHMARKS.md, with aligned panels and the AVX-512 kernel turned off,
    /// the AVX2 loop was 4 to 10% faster without prefetches. This loop keeps them for CPUs
    /// without AVX-512, such as that Zen 3, where they were measured to help.
    pub(super) const PREFETCH_AHEAD: usize = 8;

    /// Asks the CPU to load column `k` of a panel `width` values wide into L1.
    ///
    /// # Safety
    ///
    /// Column `k` must lie inside `weights`, which has `width` values per column.
    #[inline(always)]
    pub(super) unsafe fn prefetch_column(weights: &[f32], width: usize, k: usize) {
        // SAFETY: guaranteed by the caller, so every cache line touched lies inside `weights`.
        unsafe {
            let column = weights.as_ptr().add(k * width).cast::<i8>();
            for offset in (0..4 * width).step_by(64) {
                _mm_prefetch::<_MM_HINT_T0>(column.add(offset));
            }
            // The column need not start on a cache line, so it may end on one more.
            _mm_prefetch::<_MM_HINT_T0>(column.add(4 * width - 1));
        }
    }

    /// Indices of the set bits of each byte, in increasing order, one index per byte of the
    /// entry: entry `0b0000_0101` is `0x0200` (indices 0 and 2).
    const SET_BITS: [u64; 256] = {
        let mut table = [0u64; 256];
        let mut mask = 0;
        while mask < 256 {
            let (mut bit, mut found) = (0, 0);
            while bit < 8 {
                if mask & (1 << bit) != 0 {
                    table[mask] |= (bit as u64) << (8 * found);
                    found += 1;
                }
                bit += 1;
            }
            mask += 1;
        }
        table
    };

    /// Computes `nonzero_columns` in `f32` for the first `x.len() / 8 * 8` values, and returns
    /// how many indices it wrote and where the caller goes on.
    ///
    /// Each step compares eight values with zero, looks up the positions of the nonzero ones
    /// and writes their indices with one eight-lane store. The store may write up to seven
    /// values past the count, but never past the block, so `columns` needs no room beyond
    /// `x.len()`.
    ///
    /// # Safety
    ///
    /// The CPU must have AVX2, and `columns.len() >= x.len()`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn nonzero_columns_f32(x: &[f32], columns: &mut [u32]) -> (usize, usize) {
        let blocks = x.len() / 8 * 8;
        let mut count = 0;
        let mut indices = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let step = _mm256_set1_epi32(8);
        for start in (0..blocks).step_by(8) {
            // SAFETY: `start + 8 <= blocks <= x.len()`. The store writes `count .. count + 8`,
            // and `count <= start`, so it stays below `start + 8 <= columns.len()`.
            unsafe {
                let values = _mm256_loadu_ps(x.as_ptr().add(start));
                // Unordered: NaN counts as nonzero, like `value != 0.0`.
                let nonzero = _mm256_cmp_ps::<_CMP_NEQ_UQ>(values, _mm256_setzero_ps());
                let mask = _mm256_movemask_ps(nonzero) as usize;
                let order = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(SET_BITS[mask] as i64));
                let packed = _mm256_permutevar8x32_epi32(indices, order);
                _mm256_storeu_si256(columns.as_mut_ptr().add(count).cast::<__m256i>(), packed);
                count += mask.count_ones() as usize;
            }
            indices = _mm256_add_epi32(indices, step);
        }
        (count, blocks)
    }

    /// Computes `sum_panel` in `f32` for a panel of `8 V` outputs, with `V` accumulators of eight
    /// outputs, one broadcast of `x[k]` and `V` fused multiply-adds per listed column.
    ///
    /// # Safety
    ///
    /// The CPU must have AVX2 and FMA, `sums.len() == 8 V`, and every listed `k` must satisfy
    /// `k < x.len()` and `(k + 1) 8 V <= weights.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn sum_panel_f32<const V: usize>(
        weights: &[f32],
        x: &[f32],
        columns: &[u32],
        sums: &mut [f32],
    ) {
        let width = 8 * V;
        let mut acc = [_mm256_setzero_ps(); V];
        for (i, &k) in columns.iter().enumerate() {
            let k = k as usize;
            // The columns listed are scattered, so the hardware prefetchers cannot foresee
            // them. Ask for the column `PREFETCH_AHEAD` places on while this one is summed.
            if let Some(&ahead) = columns.get(i + PREFETCH_AHEAD) {
                // SAFETY: the caller guarantees that every listed column lies inside `weights`.
                unsafe { prefetch_column(weights, width, ahead as usize) };
            }
            // SAFETY: guaranteed by the caller for every listed `k`.
            unsafe {
                let scale = _mm256_broadcast_ss(x.get_unchecked(k));
                let column = weights.as_ptr().add(k * width);
                for (j, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm256_fmadd_ps(scale, _mm256_loadu_ps(column.add(8 * j)), *acc);
                }
            }
        }
        for (j, acc) in acc.iter().enumerate() {
            // SAFETY: `sums` has `8 V = 8 * acc.len()` values.
            unsafe { _mm256_storeu_ps(sums.as_mut_ptr().add(8 * j), *acc) };
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    fn weights(rows: usize, cols: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(i, k)| ((i * 7 + k * 3) % 11) as f32 - 5.0)
    }

    #[test]
    fn multiply_matches_plain_product() {
        // 81 rows: one full panel and one of 17 rows, stored 24 wide.
        let w = weights(81, 9);
        let x = [0.0, 1.5, 0.0, -2.0, 0.25, 0.0, 0.0, 3.0, -1.0f32];
        let panels = ColumnPanels::new(w.view());
        let mut columns = [0u32; 9];
        let count = nonzero_columns(&x, &mut columns);
        assert_eq!(&columns[..count], &[1, 3, 4, 7, 8]);

        assert_eq!(panels.width(1), 24);
        let mut y = vec![f32::NAN; 81];
        panels.multiply(&x, &columns[..count], &mut y, 0..panels.panels());
        for (i, &got) in y.iter().enumerate() {
            let want: f32 = (0..9).map(|k| w[[i, k]] * x[k]).sum();
            assert_eq!(got, want, "row {i}");
        }
    }

    #[test]
    fn clones_stay_line_aligned() {
        let w = weights(81, 9);
        let x = [0.5, 1.5, 0.0, -2.0, 0.25, 0.0, 1.0, 3.0, -1.0f32];
        let mut columns = [0u32; 9];
        let count = nonzero_columns(&x, &mut columns);
        let original = ColumnPanels::new(w.view());
        let mut want = vec![0.0f32; 81];
        original.multiply(&x, &columns[..count], &mut want, 0..2);
        // Each clone is a new allocation, which may begin at another offset from a line.
        let mut clones = vec![original.clone()];
        for _ in 0..8 {
            let _shift = vec![0u8; 4 * clones.len() + 4];
            clones.push(clones.last().unwrap().clone());
        }
        // So may new panels, after allocations of other sizes.
        let mut fresh = Vec::new();
        for size in 0..8 {
            let _shift = vec![0u8; 16 * size + 8];
            fresh.push(ColumnPanels::new(w.view()));
        }
        for panels in std::iter::once(&original).chain(&clones).chain(&fresh) {
            assert_eq!(panels.stored().as_ptr() as usize % LINE, 0);
            assert_eq!(panels.stored(), original.stored());
            let mut y = vec![0.0f32; 81];
            panels.multiply(&x, &columns[..count], &mut y, 0..2);
            assert_eq!(y, want);
        }
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn multiply_rejects_any_column_out_of_range() {
        let panels = ColumnPanels::new(weights(8, 4).view());
        let mut y = vec![0.0f32; 8];
        panels.multiply(&[1.0; 4], &[1 << 26, 0], &mut y, 0..1);
    }

    #[test]
    fn multiply_second_panel_alone() {
        let w = weights(70, 4);
        let x = [1.0, 2.0, 3.0, 4.0f32];
        let panels = ColumnPanels::new(w.view());
        let mut columns = [0u32; 4];
        let count = all_columns(&x, &mut columns);
        let mut y = vec![0.0f32; 6];
        panels.multiply(&x, &columns[..count], &mut y, 1..2);
        for (j, &got) in y.iter().enumerate() {
            let want: f32 = (0..4).map(|k| w[[64 + j, k]] * x[k]).sum();
            assert_eq!(got, want, "row {}", 64 + j);
        }
    }

    #[test]
    fn split_over_threads_matches_one_call() {
        // 256 x 784 is above the parallel threshold, so `multiply_columns` splits its four
        // panels when there are several threads.
        let w = weights(256, 784);
        let x: Vec<f32> = (0..784)
            .map(|k| ((k % 5) as f32 - 2.0).max(0.0) / 3.0)
            .collect();
        let panels = ColumnPanels::new(w.view());
        let mut columns = vec![0u32; 784];
        let count = nonzero_columns(&x, &mut columns);
        let mut whole = vec![0.0f32; 256];
        panels.multiply(&x, &columns[..count], &mut whole, 0..4);
        let mut split = vec![0.0f32; 256];
        crate::linalg::multiply_columns(&panels, &x, &columns[..count], &mut split);
        assert_eq!(split, whole);
    }

    #[test]
    fn avx512_panels_match_avx2_bits() {
        // Read while no other test forces the AVX2 kernel.
        if !crate::linalg::kernel512::with_kernel(false, crate::linalg::kernel512::available) {
            eprintln!("skipped: this CPU has no AVX-512F, so every panel takes the AVX2 loop");
            return;
        }
        // Panels of 64, 48 (AVX-512) and 24 rows (AVX2 alone), with values whose products
        // round, so that any other order or rounding of the sums changes bits.
        let mut rng = crate::rng::Rng::new(7);
        for rows in [64, 112, 88] {
            let w = Array2::from_shape_simple_fn((rows, 300), || rng.normal() as f32);
            let x: Vec<f32> = (0..300).map(|_| rng.normal().max(0.0) as f32).collect();
            let panels = ColumnPanels::new(w.view());
            let mut columns = vec![0u32; 300];
            let count = nonzero_columns(&x, &mut columns);
            let columns = &columns[..count];

            let mut wide = vec![0.0f32; rows];
            crate::linalg::kernel512::with_kernel(false, || {
                panels.multiply(&x, columns, &mut wide, 0..panels.panels())
            });
            let mut narrow = vec![0.0f32; rows];
            crate::linalg::kernel512::with_kernel(true, || {
                panels.multiply(&x, columns, &mut narrow, 0..panels.panels())
            });

            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&wide), bits(&narrow), "{rows} rows");
        }
    }

    #[test]
    fn nonzero_columns_keeps_nan() {
        let x = [0.0, f32::NAN, -0.0, 2.0];
        let mut columns = [9u32; 4];
        let count = nonzero_columns(&x, &mut columns);
        assert_eq!(&columns[..count], &[1, 3]);
    }

    #[test]
    fn nonzero_columns_matches_filter() {
        // 8-value blocks take the vector path and the last 5 values the scalar loop.
        let x: Vec<f32> = (0..101)
            .map(|k| match k % 7 {
                0 | 3 => 0.0,
                5 => -0.0,
                6 if k % 2 == 0 => f32::NAN,
                _ => k as f32,
            })
            .collect();
        let want: Vec<u32> = (0..101u32).filter(|&k| x[k as usize] != 0.0).collect();
        let mut columns = vec![u32::MAX; 101];
        let count = nonzero_columns(&x, &mut columns);
        assert_eq!(&columns[..count], &want[..]);

        let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let count = nonzero_columns(&x64, &mut columns);
        assert_eq!(&columns[..count], &want[..]);
    }

    #[test]
    fn all_finite_detects_infinity() {
        let mut w = weights(3, 3);
        assert!(ColumnPanels::new(w.view()).all_finite());
        w[[2, 1]] = f32::INFINITY;
        assert!(!ColumnPanels::new(w.view()).all_finite());
    }

    #[test]
    fn panels_of_f64_use_portable_path() {
        let w = weights(5, 3).mapv(f64::from);
        let x = [2.0, 0.0, -1.0f64];
        let panels = ColumnPanels::new(w.view());
        let mut columns = [0u32; 3];
        let count = nonzero_columns(&x, &mut columns);
        let mut y = vec![0.0f64; 5];
        panels.multiply(&x, &columns[..count], &mut y, 0..1);
        for (i, &got) in y.iter().enumerate() {
            assert_eq!(got, 2.0 * w[[i, 0]] - w[[i, 2]], "row {i}");
        }
    }
}
