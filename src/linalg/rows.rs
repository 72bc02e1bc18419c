//! Elementwise passes split by rows across the product threads.
//!
//! The passes between products (adding the bias, an activation and its derivative, the bias
//! gradient's row sums, the gradient norm, gathering a mini-batch) are cheap per element but touch every element of
//! `Z[l]` or `dZ[l]`. On one thread they leave the other cores idle for a few percent of a
//! training step. Here each thread takes whole rows, so a pass whose rows are independent
//! gives the same bits for any thread count; [`sum_blocks`] does the same for a sum by fixing
//! its blocks from the length alone.

use std::ops::Range;

use ndarray::{ArrayView2, ArrayViewMut2, ShapeBuilder};

use super::{for_each_range, pool, threads};

/// Smallest block of a split pass, in elements, so a pass is split only from twice this size.
/// By estimate a block of 2^15 values takes a few microseconds, several times the 0.2 to 1 µs
/// that a dispatch to another core was measured to cost on the machine of BENCHMARKS.md.
pub(crate) const PARALLEL_MIN: usize = 1 << 15;

/// A view's pointer, shape and strides, shared by the threads that each take a block of rows.
struct RawRows<T> {
    ptr: *mut T,
    cols: usize,
    strides: (usize, usize),
}

// SAFETY: threads take disjoint blocks of rows (mutable views) or only read (shared views),
// and the caller keeps the underlying view borrowed for the whole pass.
unsafe impl<T: Send> Sync for RawRows<T> {}

impl<T> RawRows<T> {
    /// Returns the raw parts, or `None` for a negative stride, which the blocks do not handle.
    fn new(ptr: *mut T, cols: usize, strides: &[isize]) -> Option<Self> {
        let row = usize::try_from(strides[0]).ok()?;
        let col = usize::try_from(strides[1]).ok()?;
        Some(RawRows {
            ptr,
            cols,
            strides: (row, col),
        })
    }

    /// # Safety
    ///
    /// `rows` must lie inside the view, which must outlive the result, and no other live view
    /// may overlap these rows.
    #[allow(clippy::mut_from_ref)]
    unsafe fn rows_mut(&self, rows: Range<usize>) -> ArrayViewMut2<'_, T> {
        let shape = (rows.len(), self.cols).strides(self.strides);
        // SAFETY: guaranteed by the caller. The offset is that of row `rows.start`.
        unsafe { ArrayViewMut2::from_shape_ptr(shape, self.ptr.add(rows.start * self.strides.0)) }
    }

    /// # Safety
    ///
    /// `rows` must lie inside the view, which must outlive the result and not be written
    /// meanwhile.
    unsafe fn rows(&self, rows: Range<usize>) -> ArrayView2<'_, T> {
        let shape = (rows.len(), self.cols).strides(self.strides);
        // SAFETY: as in `rows_mut`, read only.
        unsafe { ArrayView2::from_shape_ptr(shape, self.ptr.add(rows.start * self.strides.0)) }
    }
}

/// Calls `work(rows, block)` on disjoint blocks of whole rows that cover `x`, on up to
/// [`threads()`] threads when `x` has room for two blocks of at least [`PARALLEL_MIN`]
/// elements.
pub(crate) fn map_row_blocks<T: Send>(
    mut x: ArrayViewMut2<'_, T>,
    work: &(dyn Fn(Range<usize>, ArrayViewMut2<'_, T>) + Sync),
) {
    let (rows, cols) = x.dim();
    let raw = RawRows::new(x.as_mut_ptr(), cols, x.strides());
    match raw {
        Some(raw) if x.len() >= PARALLEL_MIN && threads() > 1 => {
            for_each_range(rows, PARALLEL_MIN.div_ceil(cols.max(1)), &|range| {
                // SAFETY: the ranges are disjoint and inside `x`, borrowed for this call.
                work(range.clone(), unsafe { raw.rows_mut(range) });
            });
        }
        _ => work(0..rows, x),
    }
}

/// Calls `work(block_x, block_y)` on the same disjoint blocks of whole rows of `x` and `y`
/// (`y.nrows() == x.nrows()`), split like [`map_row_blocks`].
///
/// # Panics
///
/// When the row counts differ.
pub(crate) fn zip_row_blocks<T: Send, U: Send + Sync>(
    mut x: ArrayViewMut2<'_, T>,
    y: ArrayView2<'_, U>,
    work: &(dyn Fn(ArrayViewMut2<'_, T>, ArrayView2<'_, U>) + Sync),
) {
    assert_eq!(
        x.nrows(),
        y.nrows(),
        "zip_row_blocks needs equal row counts"
    );
    let rows = x.nrows();
    let raw_x = RawRows::new(x.as_mut_ptr(), x.ncols(), x.strides());
    let raw_y = RawRows::new(y.as_ptr().cast_mut(), y.ncols(), y.strides());
    let len = x.len().max(y.len());
    match (raw_x, raw_y) {
        (Some(raw_x), Some(raw_y)) if len >= PARALLEL_MIN && threads() > 1 => {
            let per_row = (len / rows.max(1)).max(1);
            for_each_range(rows, PARALLEL_MIN.div_ceil(per_row), &|range| {
                // SAFETY: the ranges are disjoint and inside both views, and `y` is only read.
                let (block, other) =
                    unsafe { (raw_x.rows_mut(range.clone()), raw_y.rows(range.clone())) };
                work(block, other);
            });
        }
        _ => work(x, y),
    }
}

/// Returns `Σ_b part(block_b)` over blocks that cover `0..len`, added in block order. The
/// blocks depend on `len` alone and are computed on up to [`threads()`] threads, so the
/// result is the same for any thread count.
pub(crate) fn sum_blocks(len: usize, part: &(dyn Fn(Range<usize>) -> f64 + Sync)) -> f64 {
    let blocks = (len / PARALLEL_MIN).clamp(1, pool::MAX_CHUNKS);
    if blocks == 1 {
        return part(0..len);
    }
    let sums: [std::sync::atomic::AtomicU64; pool::MAX_CHUNKS] =
        std::array::from_fn(|_| std::sync::atomic::AtomicU64::new(0));
    let bounds = |block: usize| block * len / blocks;
    pool::run(threads(), blocks, &|block| {
        let sum = part(bounds(block)..bounds(block + 1));
        sums[block].store(sum.to_bits(), std::sync::atomic::Ordering::Relaxed);
    });
    sums[..blocks]
        .iter()
        .map(|bits| f64::from_bits(bits.load(std::sync::atomic::Ordering::Relaxed)))
        .fold(0.0, |total, sum| total + sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, s};

    #[test]
    fn blocks_cover_every_row_once() {
        let mut x = Array2::<u32>::zeros((300, 250));
        map_row_blocks(x.view_mut(), &|rows, mut block| {
            assert_eq!(block.nrows(), rows.len());
            assert!(rows.end <= 300);
            block.mapv_inplace(|v| v + 1);
        });
        assert!(x.iter().all(|&v| v == 1));
    }

    #[test]
    fn zipped_rows_line_up() {
        let y = Array2::from_shape_fn((400, 100), |(i, j)| (i * 1000 + j) as u64);
        let mut x = Array2::<u64>::zeros((400, 100));
        zip_row_blocks(x.view_mut(), y.t().t(), &|mut block, other| {
            block.assign(&other);
        });
        assert_eq!(x, y);
        // A strided second view.
        let wide = Array2::from_shape_fn((400, 200), |(i, j)| (i * 1000 + j) as u64);
        zip_row_blocks(
            x.view_mut(),
            wide.slice(s![.., ..;2]),
            &|mut block, other| {
                block.assign(&other);
            },
        );
        assert_eq!(x, wide.slice(s![.., ..;2]));
    }

    #[test]
    fn block_sum_is_exact_on_integers() {
        let len = 5 * PARALLEL_MIN + 7;
        let total = sum_blocks(len, &|range| range.map(|i| i as f64).sum());
        assert_eq!(total, (len * (len - 1) / 2) as f64);
    }
}
