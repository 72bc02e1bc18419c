//! Matrix products, the only place where the network's time goes at scale.
//!
//! [`gemm()`] computes `C = alpha A B + beta C` for any strides, so transposed operands such as
//! `A[l-1]^T` in `dW = dZ A[l-1]^T` are views, never copies.
//!
//! For `f32` on a CPU with AVX2 and FMA the product is this crate's own (`sgemm`), with a
//! second micro-kernel for CPUs that also have AVX-512F, which gives the same bits. It reads `A`
//! in place or packs it, packs `B` into per-thread buffers that are reused, and splits the work
//! over a small pool of its own. Once the pool's threads have started, it allocates nothing.
//! In products of at least 256 columns that are not split by rows, a panel of 16 columns of
//! `B` in which at least 1 step in 16 is all zero is summed over its other steps only. Tall
//! products with a row-major `A`, such as batch inference, do the same for each panel of 6
//! rows of `A` instead. A ReLU layer's output and an image's background often leave such
//! steps, and the result keeps every bit. Where the other operand's block holds an infinity or
//! a NaN, every step is summed, so that `inf * 0` still gives NaN.
//! It was chosen over the `gemm` and `faer` crates, which allocate packing buffers in every
//! call, by measurement on this project's layer shapes (BENCHMARKS.md). Other element types and
//! CPUs use the `gemm` crate (version 0.19) on rayon's pool.
//!
//! [`set_threads`] sets how many threads a product may use. The `f32` product gives
//! bit-identical results for any thread count: each element of `C` is summed in the same order.
//! The `gemm` crate's may differ in the last bits between thread counts.

pub(crate) mod columns;
pub mod gemv;
mod kernel;
pub(crate) mod kernel512;
mod pool;
pub(crate) mod rows;
mod sgemm;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::error::{Error, Result};
use crate::float::Float;

#[cfg(test)]
pub(crate) use sgemm::PACKED_B_BLOCKS;
pub(crate) use sgemm::PackedB;
use sgemm::Strided;

/// Returns whether `f32` products take this crate's own kernel (x86-64 with AVX2 and FMA),
/// which sums each element of `C` in one order whatever the thread count and orientation.
#[cfg(test)]
pub(crate) fn sgemm_available() -> bool {
    sgemm::available()
}

/// Returns whether an `f32` product with `columns` columns can leave out the steps at which a
/// panel of `B` is zero. That needs this crate's kernel and at least
/// [`sgemm::SKIP_MIN_COLUMNS`] columns, and even then a product split by rows lists no steps
/// of `B`.
pub(crate) fn skips_zero_steps(columns: usize) -> bool {
    columns >= sgemm::SKIP_MIN_COLUMNS && sgemm::available()
}

/// Number of threads a product may use; 0 means one per core.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Products with fewer multiply-adds than this run on one thread in the `gemm` crate's path.
const PARALLEL_MIN_MULTIPLY_ADDS: usize = 1 << 20;

/// Sets the number of threads for matrix products (0 means one per core).
///
/// The first call also sizes rayon's global pool, which the `gemm` crate's path uses. Later
/// calls can only lower that path's count below the pool's size.
pub fn set_threads(threads: usize) {
    // build_global fails when the pool already exists; then the existing pool stays in use.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
    THREADS.store(threads, Ordering::Relaxed);
}

/// Returns the number of threads products may use.
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => cores(),
        n => n,
    }
}

/// Number of cores, read once: the standard library's query reads files on Linux.
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Calls `work` on disjoint ranges that cover `0..len`, on up to [`threads()`] threads.
///
/// Ranges have at least `min_len` indices (except when `len` is smaller), so short loops stay
/// on the calling thread. Like the products, this allocates nothing. The ranges do not depend
/// on which thread runs them, so an elementwise `work` gives the same result for any thread
/// count.
pub(crate) fn for_each_range(
    len: usize,
    min_len: usize,
    work: &(dyn Fn(std::ops::Range<usize>) + Sync),
) {
    let threads = threads();
    let chunks = (len / min_len.max(1)).clamp(1, (4 * threads).min(pool::MAX_CHUNKS));
    if chunks == 1 {
        work(0..len);
        return;
    }
    pool::run(threads, chunks, &|chunk| {
        work(chunk * len / chunks..(chunk + 1) * len / chunks);
    });
}

/// Calls `work(first_row, rows)` on disjoint blocks of whole rows that cover `data`, a
/// row-major matrix with rows of `row_len` values, on up to [`threads()`] threads.
///
/// Blocks hold at least `min_len` values where `data` allows, so small matrices stay on the
/// calling thread. The blocks do not depend on which thread runs them, so a `work` that treats
/// each row alone gives the same result for any thread count.
pub(crate) fn for_each_row_block<T: Send>(
    data: &mut [T],
    row_len: usize,
    min_len: usize,
    work: &(dyn Fn(usize, &mut [T]) + Sync),
) {
    let rows = data.len().checked_div(row_len).unwrap_or(0);
    let out = OutputRows(data.as_mut_ptr());
    for_each_range(rows, min_len.div_ceil(row_len.max(1)), &|range| {
        // SAFETY: the ranges of rows are disjoint and inside `data`, which stays borrowed
        // mutably for the whole call.
        let block = unsafe { out.rows(range.start * row_len..range.end * row_len) };
        work(range.start, block);
    });
}

/// Products `W x` with fewer multiply-adds than this run on one thread.
const GEMV_PARALLEL_MIN: usize = 1 << 15;

/// Computes `y = W x` for a row-major `W` (`y.len()` rows of `x.len()` columns, rows `ld`
/// apart), splitting the rows across [`threads()`] threads when the product is large enough.
///
/// Each thread gets the same rows from one call to the next, so on a multi-core CPU each
/// core's cache keeps its part of `W`: that is what makes a batch of one fast. Every output is
/// computed in the same way whatever the split, so the result does not depend on the thread
/// count.
///
/// # Errors
///
/// [`Error::Shape`] when `ld < x.len()` or `w` is too short for `y.len()` rows; `y` is then
/// unchanged.
pub fn gemv<T: Float>(w: &[T], ld: usize, x: &[T], y: &mut [T]) -> Result<()> {
    let rows = y.len();
    gemv::check_arguments(w.len(), ld, x.len(), rows, &(0..rows))?;
    let threads = threads();
    // Chunks of whole 4-row groups (the kernel's unit), one per thread.
    let chunks = if rows * x.len() >= GEMV_PARALLEL_MIN {
        threads.min(rows / 4).min(pool::MAX_CHUNKS)
    } else {
        1
    };
    if chunks <= 1 {
        gemv::compute_rows(w, ld, x, y, 0..rows);
        return Ok(());
    }
    let bounds = |chunk: usize| (chunk * (rows / 4) / chunks * 4).min(rows);
    let out = OutputRows(y.as_mut_ptr());
    pool::run(threads, chunks, &|chunk| {
        let start = bounds(chunk);
        let end = if chunk + 1 == chunks {
            rows
        } else {
            bounds(chunk + 1)
        };
        // SAFETY: the chunks' row ranges are disjoint and inside `y`, which stays borrowed
        // mutably for the whole call.
        let part = unsafe { out.rows(start..end) };
        gemv::compute_rows(w, ld, x, part, start..end);
    });
    Ok(())
}

/// Products `W x` in column panels with fewer multiply-adds than this run on one thread.
///
/// The column path reads only the columns it needs, often half of `W`, so it needs twice the
/// work of [`gemv()`] to pay for waking a second thread. On the 2-core Zen 3 machine of
/// BENCHMARKS.md, a worker sometimes took about 0.6 us to start. Running the 128 x 256 layer
/// on one thread then took 1.4 us off a 7.8 us call, and at other times it changed nothing.
const COLUMNS_PARALLEL_MIN: usize = 1 << 17;

/// Computes `y = W x` for one column from `W` stored in panels, summing only the columns of
/// `W` listed in `columns` ([`columns::ColumnPanels::multiply`]).
///
/// Products with at least [`COLUMNS_PARALLEL_MIN`] multiply-adds split their panels over up to
/// [`threads()`] threads. Each output is computed by one thread in the same order, so the result
/// does not depend on the thread count.
pub(crate) fn multiply_columns<T: Float>(
    panels: &columns::ColumnPanels<T>,
    x: &[T],
    columns: &[u32],
    y: &mut [T],
) {
    let count = panels.panels();
    let threads = threads();
    let chunks = if panels.rows() * panels.cols() >= COLUMNS_PARALLEL_MIN {
        threads.min(count).min(pool::MAX_CHUNKS)
    } else {
        1
    };
    if chunks <= 1 {
        panels.multiply(x, columns, y, 0..count);
        return;
    }
    let rows = y.len();
    let out = OutputRows(y.as_mut_ptr());
    pool::run(threads, chunks, &|chunk| {
        let first = chunk * count / chunks;
        let end = (chunk + 1) * count / chunks;
        let start_row = first * columns::PANEL;
        let end_row = (end * columns::PANEL).min(rows);
        // SAFETY: the chunks' panel ranges, and so their row ranges, are disjoint and inside
        // `y`, which stays borrowed mutably for the whole call.
        let part = unsafe { out.rows(start_row..end_row) };
        panels.multiply(x, columns, part, first..end);
    });
}

/// The output of [`gemv()`], shared by the threads that write its disjoint row ranges.
struct OutputRows<T>(*mut T);

// SAFETY: each thread writes only its own range of rows.
unsafe impl<T: Send> Sync for OutputRows<T> {}

impl<T> OutputRows<T> {
    /// # Safety
    ///
    /// `range` must lie inside the output and not overlap a range another thread holds.
    #[allow(clippy::mut_from_ref)]
    unsafe fn rows(&self, range: std::ops::Range<usize>) -> &mut [T] {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(range.start), range.len()) }
    }
}

/// Computes `C = alpha A B + beta C`.
///
/// Shapes: `A` is `m x k`, `B` is `k x n`, `C` is `m x n`; any strides, including transposed
/// views. With `beta = 0` the old contents of `C` are ignored, so `C` may hold NaN or garbage.
///
/// # Errors
///
/// [`Error::Shape`] when the inner or outer dimensions disagree.
pub fn gemm<T: Float>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    c: &mut ArrayViewMut2<'_, T>,
) -> Result<()> {
    gemm_finite_a(alpha, a, b, beta, c, false)
}

/// Computes what [`gemm`] does. With `a_finite`, the caller guarantees that every value of
/// `A` is finite, and the `f32` kernel does not check before it leaves out the zero steps of
/// `B`. A layer passes it for its weights when they are known to be finite
/// ([`crate::Dense`]).
///
/// # Errors
///
/// As [`gemm`].
pub(crate) fn gemm_finite_a<T: Float>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    c: &mut ArrayViewMut2<'_, T>,
    a_finite: bool,
) -> Result<()> {
    gemm_rows_done(alpha, a, b, None, beta, c, a_finite, None)
}

/// Computes `C = alpha A B + beta C` for a row-major `C` (`m x n`, `n = b.ncols()`, in the
/// first `m n` values of `c`), and calls `then(first_row, rows)` on blocks of whole rows that
/// cover `C`, each once its values are final. Values of `c` past `m n` are left unchanged.
///
/// `packed_b`, from [`pack_b`] on the same values as `b`, spares the `f32` product the packing
/// of `B`, and gives the same bits. The caller must keep `b` unchanged since it was packed:
/// the product reads the packed copy only.
///
/// In `f32` with AVX2 and FMA, a product split by rows gives each block to `then` on the
/// thread that computed it, while the block is still in cache. That is the case for tall
/// products (many more rows than columns, as in batch inference with the examples as rows),
/// for products on one thread, and for those with too few columns to split. Products split by
/// columns, and other element types or CPUs, call `then` after the product. The blocks may run
/// on any product thread, so `then` must treat each row on its own for the result not to
/// depend on the thread count.
///
/// # Errors
///
/// [`Error::Shape`] when the inner dimensions disagree, or when `c` has fewer than
/// `a.nrows() x b.ncols()` values.
pub(crate) fn gemm_then<T: Float>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    c: &mut [T],
    then: &(dyn Fn(usize, &mut [T]) + Sync),
    packed_b: Option<&PackedB>,
) -> Result<()> {
    let (m, n) = (a.nrows(), b.ncols());
    let len = c.len();
    let values = m
        .checked_mul(n)
        .filter(|&values| values <= len)
        .ok_or_else(|| {
            Error::Shape(format!(
                "gemm_then: C needs {m} x {n} values for a {:?} by {:?} product, but has {len}",
                a.dim(),
                b.dim()
            ))
        })?;
    let mut view = ArrayViewMut2::from_shape((m, n), &mut c[..values])
        .expect("checked above: the slice has m x n values");
    // Taken from the view, through which the product also writes, so that neither pointer
    // invalidates the other.
    let rows = OutputRows(view.as_mut_ptr());
    let done = |range: std::ops::Range<usize>| {
        // SAFETY: each range of rows is final and given once, so no other thread reads or
        // writes it, and the rows lie inside the view, borrowed mutably for this whole call.
        let block = unsafe { rows.rows(range.start * n..range.end * n) };
        then(range.start, block);
    };
    gemm_rows_done(alpha, a, b, packed_b, beta, &mut view, false, Some(&done))
}

/// Returns `B` packed for the `f32` product ([`gemm_then`]'s `packed_b`), or `None` when `T` is
/// not `f32`, the CPU lacks AVX2 and FMA, or `B` is empty.
pub(crate) fn pack_b<T: Float>(b: ArrayView2<'_, T>) -> Option<PackedB> {
    let (k, n) = b.dim();
    if std::any::TypeId::of::<T>() != std::any::TypeId::of::<f32>()
        || !sgemm::available()
        || k == 0
        || n == 0
    {
        return None;
    }
    let strided = Strided {
        // `T` is `f32`, so this pointer points at `f32` values.
        ptr: b.as_ptr().cast::<f32>(),
        row: b.strides()[0],
        col: b.strides()[1],
    };
    // SAFETY: the CPU has AVX2 and FMA, the view is valid for `k x n` reads through its
    // strides, and `k` and `n` are positive.
    Some(unsafe { PackedB::new(strided, k, n) })
}

/// Computes what [`gemm_finite_a`] does, and calls `rows_done` (when given) once on ranges
/// that cover the rows of `C`, each once its rows are final. The `f32` product reads
/// `packed_b` instead of packing `b` when given.
#[allow(clippy::too_many_arguments)]
fn gemm_rows_done<T: Float>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    packed_b: Option<&PackedB>,
    beta: T,
    c: &mut ArrayViewMut2<'_, T>,
    a_finite: bool,
    rows_done: Option<sgemm::RowsDone<'_>>,
) -> Result<()> {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    if k != k2 || c.dim() != (m, n) {
        return Err(Error::Shape(format!(
            "cannot compute a {:?} matrix as the product of {:?} and {:?}",
            c.dim(),
            a.dim(),
            b.dim()
        )));
    }
    if m == 0 || n == 0 {
        // Rows of no values are final at once.
        call_rows_done(rows_done, m, n);
        return Ok(());
    }
    if k == 0 {
        // An empty sum: C = beta C.
        if beta == T::zero() {
            c.fill(T::zero());
        } else {
            c.map_inplace(|x| *x *= beta);
        }
        call_rows_done(rows_done, m, n);
        return Ok(());
    }

    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() && sgemm::available() {
        // `T` is `f32`, so these pointers point at `f32` values.
        let a = Strided {
            ptr: a.as_ptr().cast::<f32>(),
            row: a.strides()[0],
            col: a.strides()[1],
        };
        let b = Strided {
            ptr: b.as_ptr().cast::<f32>(),
            row: b.strides()[0],
            col: b.strides()[1],
        };
        let c = Strided {
            ptr: c.as_mut_ptr().cast::<f32>(),
            row: c.strides()[0],
            col: c.strides()[1],
        };
        let (alpha, beta) = (alpha.to_f32().unwrap_or(0.0), beta.to_f32().unwrap_or(0.0));
        // SAFETY: the CPU has AVX2 and FMA, and the views are valid for the checked shapes
        // through their strides. `c` is borrowed mutably, so it aliases neither `a` nor `b`,
        // and an ndarray view never maps two of its elements to one address.
        unsafe {
            sgemm::sgemm(
                (m, n, k),
                alpha,
                a,
                b,
                packed_b,
                beta,
                c,
                threads(),
                a_finite,
                rows_done,
            )
        };
        return Ok(());
    }

    let threads = threads().min(rayon::current_num_threads());
    let parallelism = if threads > 1 && m * n * k >= PARALLEL_MIN_MULTIPLY_ADDS {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let a_strides = a.strides();
    let b_strides = b.strides();
    let c_strides = [c.strides()[0], c.strides()[1]];

    // SAFETY: the three views are valid for the shapes checked above and their own strides, the
    // backend reads `a` and `b` and writes only the m x n elements of `c`, and `c` is borrowed
    // mutably, so it cannot alias `a` or `b`. The backend's `alpha` scales the old destination
    // and its `beta` the product, the reverse of the BLAS names used here.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_strides[1],
            c_strides[0],
            beta != T::zero(),
            a.as_ptr(),
            a_strides[1],
            a_strides[0],
            b.as_ptr(),
            b_strides[1],
            b_strides[0],
            beta,
            alpha,
            false,
            false,
            false,
            parallelism,
        );
    }
    call_rows_done(rows_done, m, n);
    Ok(())
}

/// Calls `rows_done` (when given) on ranges that cover the `m` rows of a complete `m x n`
/// product, split across the product threads when there are at least [`DONE_MIN`] values.
fn call_rows_done(rows_done: Option<sgemm::RowsDone<'_>>, m: usize, n: usize) {
    if let Some(done) = rows_done {
        for_each_range(m, DONE_MIN.div_ceil(n.max(1)), done);
    }
}

/// Values from which [`call_rows_done`] splits its ranges across threads, so that small
/// outputs stay on the calling thread. The value is an estimate, not tuned by measurement.
const DONE_MIN: usize = 1 << 15;

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, array};

    fn naive(a: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
        let mut c = Array2::zeros((a.nrows(), b.ncols()));
        for i in 0..a.nrows() {
            for j in 0..b.ncols() {
                for p in 0..a.ncols() {
                    c[[i, j]] += a[[i, p]] * b[[p, j]];
                }
            }
        }
        c
    }

    fn filled(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
        let mut rng = crate::rng::Rng::new(seed);
        Array2::from_shape_fn((rows, cols), |_| rng.normal())
    }

    #[test]
    fn gemm_matches_naive_with_transposes() {
        let a = filled(37, 19, 1);
        let b = filled(23, 19, 2);
        let mut c = filled(37, 23, 3);
        let expected = naive(&a, &b.t().to_owned()) * 2.0 + &c * 0.5;
        gemm(2.0, a.view(), b.t(), 0.5, &mut c.view_mut()).unwrap();
        for (x, y) in c.iter().zip(expected.iter()) {
            assert!((x - y).abs() < 1e-12, "{x} vs {y}");
        }
    }

    #[test]
    fn gemm_beta_zero_ignores_nan() {
        let a = array![[1.0f32, 2.0], [3.0, 4.0]];
        let mut c = Array2::from_elem((2, 2), f32::NAN);
        gemm(1.0, a.view(), a.view(), 0.0, &mut c.view_mut()).unwrap();
        assert_eq!(c, array![[7.0, 10.0], [15.0, 22.0]]);
    }

    #[test]
    fn gemm_large_parallel_matches_naive() {
        let a = filled(130, 140, 4);
        let b = filled(140, 120, 5);
        let mut c = Array2::zeros((130, 120));
        gemm(1.0, a.view(), b.view(), 0.0, &mut c.view_mut()).unwrap();
        let expected = naive(&a, &b);
        for (x, y) in c.iter().zip(expected.iter()) {
            assert!((x - y).abs() < 1e-10);
        }
    }

    /// Runs [`gemm_then`] with `then` doubling each value and adding one, and checks that the
    /// blocks cover every row once and that the result equals the product then the same map,
    /// bit for bit, with `B` packed by [`pack_b`] and without.
    fn check_gemm_then<T: Float>(m: usize, k: usize, n: usize) {
        let mut rng = crate::rng::Rng::new((m * 31 + k * 7 + n) as u64);
        let a = Array2::from_shape_simple_fn((m, k), || T::of(rng.normal()));
        let b = Array2::from_shape_simple_fn((n, k), || T::of(rng.normal()));
        let mut want = Array2::from_elem((m, n), T::zero());
        gemm(T::one(), a.view(), b.t(), T::zero(), &mut want.view_mut()).unwrap();
        want.mapv_inplace(|v| v + v + T::one());
        let packed = pack_b(b.t());
        let is_f32 = std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>();
        assert_eq!(
            packed.is_some(),
            is_f32 && sgemm_available() && k > 0 && n > 0
        );
        for packed in [None, packed.as_ref()] {
            check_gemm_then_packed(a.view(), b.t(), packed, &want);
        }
    }

    /// Checks what [`check_gemm_then`] does for one `packed_b`, against `want`.
    fn check_gemm_then_packed<T: Float>(
        a: ArrayView2<'_, T>,
        b: ArrayView2<'_, T>,
        packed: Option<&PackedB>,
        want: &Array2<T>,
    ) {
        let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
        let mut got = vec![T::nan(); m * n];
        let blocks = std::sync::Mutex::new(Vec::new());
        let then = |first: usize, rows: &mut [T]| {
            rows.iter_mut().for_each(|v| *v = *v + *v + T::one());
            blocks.lock().unwrap().push(first..first + rows.len() / n);
        };
        gemm_then(T::one(), a, b, T::zero(), &mut got, &then, packed).unwrap();

        let mut blocks = blocks.into_inner().unwrap();
        blocks.sort_by_key(|range| range.start);
        let mut next = 0;
        for range in &blocks {
            assert_eq!(
                range.start, next,
                "{m} x {k} x {n}: rows {range:?} out of turn"
            );
            next = range.end;
        }
        assert_eq!(
            next, m,
            "{m} x {k} x {n}: rows from {next} on never finished"
        );
        assert_eq!(got.as_slice(), want.as_slice().unwrap(), "{m} x {k} x {n}");
    }

    #[test]
    fn gemm_then_finishes_each_row_once() {
        // Tall products split by rows, one of them over two blocks of steps (k > 1,024) and one
        // over two blocks of columns (n > 512); a wide product split by columns; a product too
        // small to split; and an empty inner dimension.
        for (m, k, n) in [
            (301, 19, 5),
            (400, 1100, 24),
            (2100, 40, 520),
            (64, 70, 512),
            (5, 3, 4),
            (9, 0, 6),
        ] {
            check_gemm_then::<f32>(m, k, n);
        }
        // Other types take the `gemm` crate, and the blocks come after the product.
        check_gemm_then::<f64>(301, 19, 5);
    }

    #[test]
    fn gemm_then_finishes_rows_without_columns() {
        let a = Array2::<f32>::ones((4, 3));
        let b = Array2::<f32>::ones((3, 0));
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let then = |first: usize, rows: &mut [f32]| {
            assert_eq!((first, rows.len()), (0, 0));
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        gemm_then(1.0, a.view(), b.view(), 0.0, &mut [], &then, None).unwrap();
        assert_eq!(calls.into_inner(), 1);
    }

    #[test]
    fn gemm_then_rejects_short_output() {
        let a = Array2::<f32>::ones((4, 3));
        let b = Array2::<f32>::ones((3, 5));
        let mut c = vec![0.0f32; 19];
        let result = gemm_then(1.0, a.view(), b.view(), 0.0, &mut c, &|_, _| {}, None);
        assert!(matches!(result, Err(Error::Shape(_))));
    }

    #[test]
    fn gemm_empty_inner_dimension_scales_c() {
        let a = Array2::<f64>::zeros((2, 0));
        let b = Array2::<f64>::zeros((0, 3));
        let mut c = Array2::from_elem((2, 3), 4.0);
        gemm(1.0, a.view(), b.view(), 0.5, &mut c.view_mut()).unwrap();
        assert!(c.iter().all(|&x| x == 2.0));
    }

    #[test]
    fn gemv_short_matrix_is_error() {
        let w = vec![1.0f32; 10];
        let mut y = vec![0.0f32; 3];
        let err = gemv(&w, 4, &[1.0; 4], &mut y).unwrap_err();
        assert!(matches!(err, Error::Shape(_)), "{err}");
        assert_eq!(y, [0.0; 3]);
    }

    #[test]
    fn gemv_matches_rows_split_across_threads() {
        // 64 x 600 is above the parallel threshold, so the rows are split when threads > 1.
        let w = filled(64, 600, 6).mapv(|v| v as f32);
        let x: Vec<f32> = (0..600).map(|i| (i % 7) as f32 - 3.0).collect();
        let mut y = vec![0.0f32; 64];
        gemv(w.as_slice().unwrap(), 600, &x, &mut y).unwrap();
        for (i, got) in y.iter().enumerate() {
            let want: f64 = (0..600)
                .map(|p| f64::from(w[[i, p]]) * f64::from(x[p]))
                .sum();
            assert!(
                (f64::from(*got) - want).abs() < 1e-3,
                "row {i}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn gemm_shape_mismatch_is_error() {
        let a = Array2::<f64>::zeros((2, 3));
        let mut c = Array2::<f64>::zeros((2, 2));
        let err = gemm(1.0, a.view(), a.view(), 0.0, &mut c.view_mut()).unwrap_err();
        assert!(matches!(err, Error::Shape(_)));
    }
}
