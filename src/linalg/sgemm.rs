//! The `f32` product on AVX2 and FMA: blocking, packing of `B`, and the split across threads.
//!
//! `C = alpha A B + beta C` with `A` `m x k`, `B` `k x n`, `C` `m x n`, any strides. The loops
//! follow the usual layered scheme. Columns of `C` go in blocks of [`NC`], and the inner
//! dimension in blocks of at most [`KC`]. Rows go in blocks of [`MC`], whose rows of `A` stay
//! in L2, and last come 6 x 16 tiles ([`super::kernel`]) that each stream one panel of `B`.
//!
//! `B` is copied into panels of 16 columns in each thread's own reusable buffer. `A` is read
//! through its strides, or packed into a second buffer when enough column panels reuse each
//! block of its rows ([`PACK_A_FROM`], [`PACK_ROW_MAJOR_A_FROM`]). A product is split across
//! threads by columns of `C`, or by rows when `C` has too few column panels or is tall
//! ([`TALL`]). Every element of `C` is
//! summed over `p` in the same order whatever the split, so results are bit-identical for any
//! number of threads.

use std::cell::RefCell;

use super::kernel::{self, MR, NR, Tile};
use super::pool;

/// Largest block of the inner dimension. Every block adds a pass over `C`. On this project's
/// shapes (inner dimensions of 128 to 1,024), one block was measured 1 to 18% faster than
/// blocks of 256. A panel of `B` (64 KiB at 1,024 steps) then streams from L2 rather than
/// staying in L1. Only `W^T dZ`, whose `A` is packed from a column-major view, lost 2%.
const KC: usize = 1024;
/// Rows of `C` per block.
const MC: usize = 96;
/// Columns of `C` per block, which bounds each thread's packed `B` to [`KC`] x [`NC`] values
/// (2 MiB).
const NC: usize = 512;

/// Chunks per thread when a product is split.
const CHUNKS_PER_THREAD: usize = 4;

/// Elements of `A` from which a split by columns uses at most one chunk per [`WIDE_CHUNK`]
/// columns, but never fewer chunks than threads.
const LARGE_A: usize = 1 << 20;

/// Columns per chunk, at least, for a large `A` when there are enough columns.
const WIDE_CHUNK: usize = 512;

/// Ratio of rows to columns of `C` from which a product is split by rows even when it has
/// enough column panels. Each thread then packs all of `B` (`k x n`) but reads only its share
/// of `A` (`m x k`), and for such a tall `C` that costs less than the reverse.
const TALL: usize = 4;

/// Products with fewer multiply-adds than this run on one thread: below it, handing half to
/// another core costs more than it saves.
const PARALLEL_MIN_MULTIPLY_ADDS: usize = 1 << 17;

thread_local! {
    /// This thread's packed panels of `B`; grown once, then reused by every product.
    static PACKED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// This thread's packed rows of `A`, [`MC`] x [`KC`] at most.
    static PACKED_A: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Column panels a block of rows must span before its rows of `A` are packed. Packing reads and
/// writes each value once, so it pays off only when the kernel then reads the compact copy
/// this many times instead of six strided rows. On this project's shapes packing lost at 8
/// panels and won at 49, measured when blocks spanned up to 128 panels (now [`NC`] / 16 = 32).
const PACK_A_FROM: usize = 16;

/// [`PACK_A_FROM`] for a row-major `A`, whose rows the kernel reads in place as six sequential
/// streams that the hardware prefetcher follows. With 16 panels, reading in place was measured
/// 6 to 7% faster for `W[2] A[1]` of 784-1024-1024-10 at batch 512, and 3 to 6% faster for
/// the first layer of inference at batch 10,000. A column-major `A` of the same shape was 9 to
/// 10% slower unpacked, so it keeps [`PACK_A_FROM`].
const PACK_ROW_MAJOR_A_FROM: usize = 32;

/// A matrix as a pointer and strides (in elements).
#[derive(Clone, Copy)]
pub(crate) struct Strided<P> {
    pub ptr: P,
    pub row: isize,
    pub col: isize,
}

impl<P: Copy> Strided<P> {
    fn offset(&self, i: usize, j: usize) -> isize {
        self.row * i as isize + self.col * j as isize
    }
}

/// The operands of one product, shared by its parts.
#[derive(Clone, Copy)]
struct Product {
    k: usize,
    alpha: f32,
    beta: f32,
    a: Strided<*const f32>,
    b: Strided<*const f32>,
    c: Strided<*mut f32>,
}

// SAFETY: the parts of a product write disjoint blocks of `C` and only read `A` and `B`. The
// caller of `sgemm` keeps all three alive and unaliased for its duration.
unsafe impl Sync for Product {}
unsafe impl Send for Product {}

/// Returns whether [`sgemm`] can run on this CPU.
pub(crate) fn available() -> bool {
    kernel::available()
}

/// Computes `C = alpha A B + beta C` on up to `threads` threads.
///
/// # Safety
///
/// [`available`] must be true. Through their strides, `a` must be valid for `m x k` reads, `b`
/// for `k x n` reads and `c` for `m x n` reads and writes. `c` must not overlap `a` or `b`, and
/// two elements of `c` must not share an address. `m`, `n` and `k` must be positive.
pub(crate) unsafe fn sgemm(
    (m, n, k): (usize, usize, usize),
    alpha: f32,
    a: Strided<*const f32>,
    b: Strided<*const f32>,
    beta: f32,
    c: Strided<*mut f32>,
    threads: usize,
) {
    let product = Product {
        k,
        alpha,
        beta,
        a,
        b,
        c,
    };

    let threads = if m * n * k < PARALLEL_MIN_MULTIPLY_ADDS {
        1
    } else {
        threads
    };

    // Chunks of whole column panels give each thread its own columns of `B` to pack. Chunks of
    // rows make each thread pack all of `B`, so they are the choice only for narrow products.
    // A few chunks per thread let a thread that runs alone, on a busy machine, take them all.
    let column_panels = n.div_ceil(NR);
    let row_panels = m.div_ceil(MR);
    let tall = m >= TALL * n && row_panels >= 2 * threads;
    let (by_columns, panels) = if threads > 1 && column_panels >= 2 * threads && !tall {
        (true, column_panels)
    } else {
        (false, row_panels)
    };
    let mut chunks = if threads > 1 {
        panels
            .min(CHUNKS_PER_THREAD * threads)
            .min(pool::MAX_CHUNKS)
    } else {
        1
    };
    if by_columns && m * k >= LARGE_A {
        // Every chunk of columns reads (and may pack) all of `A`, so a large `A` gets fewer and
        // wider chunks.
        chunks = chunks.min((n / WIDE_CHUNK).max(threads));
    }

    let range = |chunk: usize, width: usize, len: usize| {
        let start = (chunk * panels / chunks * width).min(len);
        let end = ((chunk + 1) * panels / chunks * width).min(len);
        start..end
    };
    pool::run(threads, chunks, &|chunk| {
        let (rows, cols) = if by_columns {
            (0..m, range(chunk, NR, n))
        } else {
            (range(chunk, MR, m), 0..n)
        };
        // SAFETY: forwarded from the caller; the chunks' blocks of `C` are disjoint.
        unsafe { block(&product, rows, cols) };
    });
}

/// Grows this thread's packing buffers to the largest block they can hold. Done at once, and
/// by each pool worker as it starts, so that no later product allocates: a worker may first
/// meet a large shape late in training, when a step must no longer allocate.
pub(crate) fn reserve_buffers() {
    PACKED_A.with(|packed_a| {
        PACKED.with(|packed| reserve(&mut packed.borrow_mut(), &mut packed_a.borrow_mut()))
    });
}

fn reserve(packed: &mut Vec<f32>, packed_a: &mut Vec<f32>) {
    if packed.len() < KC * NC + ALIGN {
        packed.resize(KC * NC + ALIGN, 0.0);
    }
    if packed_a.len() < MC * KC + ALIGN {
        packed_a.resize(MC * KC + ALIGN, 0.0);
    }
}

/// Values of slack in each buffer, so that its used part can start on a cache line.
const ALIGN: usize = 16;

/// Returns the part of `buffer` that starts on a 64-byte boundary, so that a panel's 16 values
/// per step fill exactly one cache line instead of straddling two.
fn aligned(buffer: &mut [f32]) -> &mut [f32] {
    let skip = buffer.as_ptr().align_offset(64).min(ALIGN);
    &mut buffer[skip..]
}

/// Computes the block `rows x cols` of `C` on the calling thread.
unsafe fn block(product: &Product, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>) {
    if rows.is_empty() || cols.is_empty() {
        return;
    }
    let k = product.k;
    // Equal blocks of the inner dimension: 2,500 becomes 3 x 834 rather than 1,024, 1,024, 452.
    let kc_max = k.div_ceil(k.div_ceil(KC));
    PACKED_A.with(|packed_a| {
        let mut packed_a = packed_a.borrow_mut();
        PACKED.with(|packed| {
            let mut packed = packed.borrow_mut();
            reserve(&mut packed, &mut packed_a);
            let (packed, packed_a) = (aligned(&mut packed), aligned(&mut packed_a));
            for jc in cols.clone().step_by(NC) {
                let nc = NC.min(cols.end - jc);
                for pc in (0..k).step_by(kc_max) {
                    let kc = kc_max.min(k - pc);
                    // SAFETY: the block lies inside `B`, and `packed` holds KC x NC values.
                    unsafe { pack_b(product.b, pc, jc, kc, nc, packed) };
                    let beta = if pc == 0 { product.beta } else { 1.0 };
                    let pack_a = nc.div_ceil(NR)
                        >= if product.a.col == 1 {
                            PACK_ROW_MAJOR_A_FROM
                        } else {
                            PACK_A_FROM
                        };
                    for ic in rows.clone().step_by(MC) {
                        let mc = MC.min(rows.end - ic);
                        let a_block = if pack_a {
                            // SAFETY: the block lies inside `A`; `packed_a` holds MC x kc values.
                            unsafe { pack_a_block(product.a, ic, pc, mc, kc, packed_a) };
                            Some(packed_a.as_ptr())
                        } else {
                            None
                        };
                        for jr in (0..nc).step_by(NR) {
                            let panel = packed[jr * kc..].as_ptr();
                            for ir in (0..mc).step_by(MR) {
                                let (i, j) = (ic + ir, jc + jr);
                                let (a, a_row, a_col) = match a_block {
                                    // SAFETY: panel ir / MR of the packed rows.
                                    Some(block) => (unsafe { block.add(ir * kc) }, 1, MR as isize),
                                    // SAFETY: (i, pc) lies inside `A`.
                                    None => (
                                        unsafe { product.a.ptr.offset(product.a.offset(i, pc)) },
                                        product.a.row,
                                        product.a.col,
                                    ),
                                };
                                let tile = Tile {
                                    a,
                                    a_row,
                                    a_col,
                                    b: panel,
                                    c: unsafe { product.c.ptr.offset(product.c.offset(i, j)) },
                                    c_row: product.c.row,
                                    c_col: product.c.col,
                                    rows: MR.min(mc - ir),
                                    cols: NR.min(nc - jr),
                                };
                                // SAFETY: the tile is inside the matrices; `available` was checked
                                // by the caller of `sgemm`.
                                #[cfg(target_arch = "x86_64")]
                                unsafe {
                                    kernel::tile_avx2(kc, tile, product.alpha, beta)
                                };
                                #[cfg(not(target_arch = "x86_64"))]
                                let _ = (tile, beta);
                            }
                        }
                    }
                }
            }
        });
    });
}

/// Copies `A[i0..i0 + mc, p0..p0 + kc]` into panels of [`MR`] rows: panel `r` holds, for each
/// step `p`, the values of rows `i0 + r MR ..` at that step. A last, shorter panel holds only
/// its valid rows; the kernel never reads past them.
///
/// # Safety
///
/// The block must lie inside `A`; `out` must hold `mc x kc` values rounded up to whole panels.
unsafe fn pack_a_block(
    a: Strided<*const f32>,
    i0: usize,
    p0: usize,
    mc: usize,
    kc: usize,
    out: &mut [f32],
) {
    if a.row == 1 {
        // SAFETY: the caller guarantees that the block lies inside `A`, and the row stride is 1.
        unsafe { pack_column_major_a_block(a, i0, p0, mc, kc, out) };
        return;
    }
    for (r, panel) in out.chunks_mut(MR * kc).take(mc.div_ceil(MR)).enumerate() {
        let height = MR.min(mc - r * MR);
        // The step runs in the outer loop: the writes are sequential and the reads are
        // `height` sequential streams for row-major `A`.
        let mut rows = [std::ptr::null::<f32>(); MR];
        for (i, row) in rows.iter_mut().enumerate().take(height) {
            // SAFETY: row i0 + r MR + i, column p0, lies inside the block.
            *row = unsafe { a.ptr.offset(a.offset(i0 + r * MR + i, p0)) };
        }
        for (p, step) in panel.chunks_exact_mut(MR).enumerate().take(kc) {
            let offset = a.col * p as isize;
            for (value, row) in step.iter_mut().zip(&rows[..height]) {
                // SAFETY: column p0 + p of a valid row of the block.
                *value = unsafe { *row.offset(offset) };
            }
        }
    }
}

/// Does what [`pack_a_block`] does for a column-major `A` (unit row stride), such as `W^T` in
/// `W^T dZ`.
///
/// The step `p` runs in the outer loop, so each step reads the block's `mc` values of column
/// `p0 + p` as one contiguous run and deals them out to the panels. Reading panel by panel
/// instead takes 24 bytes from each column, one page apart, and was measured 2 to 3% slower
/// for the whole product `W[2]^T dZ[2]` of 784-1024-1024-10 at batch 512.
///
/// # Safety
///
/// As for [`pack_a_block`], and `a.row == 1`.
unsafe fn pack_column_major_a_block(
    a: Strided<*const f32>,
    i0: usize,
    p0: usize,
    mc: usize,
    kc: usize,
    out: &mut [f32],
) {
    let full = mc / MR;
    for p in 0..kc {
        // SAFETY: column p0 + p of the block, rows i0 .. i0 + mc, is inside `A` and contiguous
        // because the row stride is 1.
        let column = unsafe { std::slice::from_raw_parts(a.ptr.offset(a.offset(i0, p0 + p)), mc) };
        let mut runs = column.chunks_exact(MR);
        for (r, run) in runs.by_ref().enumerate() {
            out[r * MR * kc + p * MR..][..MR].copy_from_slice(run);
        }
        let rest = runs.remainder();
        if !rest.is_empty() {
            out[full * MR * kc + p * MR..][..rest.len()].copy_from_slice(rest);
        }
    }
}

/// Copies `B[p0..p0 + kc, j0..j0 + nc]` into panels of [`NR`] columns: panel `q` holds, for each
/// step `p`, the values of columns `j0 + q NR ..` at that step, zero past column `j0 + nc`.
///
/// # Safety
///
/// The block must lie inside `B`; `out` must hold `kc x nc` rounded up to whole panels.
unsafe fn pack_b(
    b: Strided<*const f32>,
    p0: usize,
    j0: usize,
    kc: usize,
    nc: usize,
    out: &mut [f32],
) {
    for (q, panel) in out
        .chunks_exact_mut(kc * NR)
        .take(nc.div_ceil(NR))
        .enumerate()
    {
        let first = j0 + q * NR;
        let width = NR.min(nc - q * NR);
        for (p, step) in panel.chunks_exact_mut(NR).enumerate() {
            // SAFETY: (p0 + p, first + j) for j < width lies inside the block.
            let start = unsafe { b.ptr.offset(b.offset(p0 + p, first)) };
            if b.col == 1 && width == NR {
                // SAFETY: the row's NR values are contiguous. A copy of a fixed length compiles
                // to two vector moves instead of a call to `memmove` per step.
                let row = unsafe { &*start.cast::<[f32; NR]>() };
                step.copy_from_slice(row);
                continue;
            } else if b.col == 1 {
                // SAFETY: the row's `width` values are contiguous.
                let row = unsafe { std::slice::from_raw_parts(start, width) };
                step[..width].copy_from_slice(row);
            } else {
                for (j, value) in step[..width].iter_mut().enumerate() {
                    // SAFETY: as above, through the column stride.
                    *value = unsafe { *start.offset(b.col * j as isize) };
                }
            }
            step[width..].fill(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, ArrayView2, s};

    use super::{KC, MC, MR, Strided, pack_a_block};
    use crate::linalg::gemm;
    use crate::rng::Rng;

    fn filled(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
        let mut rng = Rng::new(seed);
        Array2::from_shape_simple_fn((rows, cols), || rng.normal() as f32)
    }

    /// `alpha A B + beta C` summed in f64, and a bound on the f32 rounding error of each entry.
    fn reference(
        alpha: f32,
        a: ArrayView2<'_, f32>,
        b: ArrayView2<'_, f32>,
        beta: f32,
        c: &Array2<f32>,
    ) -> (Array2<f64>, Array2<f64>) {
        let (m, k) = a.dim();
        let n = b.ncols();
        let mut value = Array2::zeros((m, n));
        let mut bound = Array2::zeros((m, n));
        for i in 0..m {
            for j in 0..n {
                let (mut sum, mut magnitude) = (0.0f64, 0.0f64);
                for p in 0..k {
                    let term = f64::from(a[[i, p]]) * f64::from(b[[p, j]]);
                    sum += term;
                    magnitude += term.abs();
                }
                let old = if beta == 0.0 {
                    0.0
                } else {
                    f64::from(beta) * f64::from(c[[i, j]])
                };
                value[[i, j]] = f64::from(alpha) * sum + old;
                bound[[i, j]] = (k as f64 + 2.0)
                    * f64::from(f32::EPSILON)
                    * (f64::from(alpha.abs()) * magnitude + old.abs())
                    + 1e-30;
            }
        }
        (value, bound)
    }

    fn check(
        alpha: f32,
        a: ArrayView2<'_, f32>,
        b: ArrayView2<'_, f32>,
        beta: f32,
        c0: Array2<f32>,
    ) {
        let (expected, bound) = reference(alpha, a, b, beta, &c0);
        let mut c = c0;
        gemm(alpha, a, b, beta, &mut c.view_mut()).unwrap();
        for ((got, want), bound) in c.iter().zip(&expected).zip(&bound) {
            assert!(
                (f64::from(*got) - want).abs() <= *bound,
                "{got} vs {want} (bound {bound}) for A {:?} B {:?}",
                a.dim(),
                b.dim()
            );
        }
    }

    #[test]
    fn matches_f64_sums_on_edge_shapes() {
        // Sizes straddle the tile (6 x 16) and block (96 rows, 1,024 steps, 512 columns) edges.
        for &(m, n, k) in &[
            (1, 1, 1),
            (5, 15, 3),
            (6, 16, 7),
            (7, 17, 300),
            (13, 33, 513),
            (97, 40, 262),
            (100, 2050, 9),
            (256, 128, 784),
            (20, 40, 2100),
            (7, 530, 1025),
            // A tall `C`, split by rows, and a row-major `A` read in place across 25 panels.
            (2000, 40, 100),
            (30, 400, 64),
        ] {
            let a = filled(m, k, 1);
            let b = filled(k, n, 2);
            check(
                1.0,
                a.view(),
                b.view(),
                0.0,
                Array2::from_elem((m, n), f32::NAN),
            );
            check(-0.5, a.view(), b.view(), 2.0, filled(m, n, 3));
        }
    }

    #[test]
    fn reads_transposed_strided_and_reversed_views() {
        let a = filled(40, 70, 4);
        let b = filled(33, 70, 5);
        // A^T-style column-major view, a view with a step, and a reversed view.
        check(1.0, a.t(), a.view(), 0.0, Array2::zeros((70, 70)));
        check(1.0, a.view(), b.t(), 1.0, filled(40, 33, 6));
        check(
            1.0,
            a.slice(s![..;3, ..]),
            b.slice(s![..;-1, ..]).t(),
            0.0,
            Array2::zeros((14, 33)),
        );
    }

    #[test]
    fn packs_column_major_a() {
        // `A = W^T` spans 19 column panels, enough to be packed, and its 100 rows leave a
        // second block of 4 rows and a partial panel. The product is small enough to run on
        // one thread, so no split narrows the panels below the packing threshold.
        let w = filled(4, 100, 7);
        let b = filled(4, 300, 8);
        check(
            1.0,
            w.t(),
            b.view(),
            0.0,
            Array2::from_elem((100, 300), f32::NAN),
        );
        check(0.5, w.t(), b.view(), -1.0, filled(100, 300, 9));
    }

    #[test]
    fn packs_column_major_block_of_full_size() {
        // A block of MC x KC fills the buffer exactly, as the largest block does.
        for (mc, kc) in [(MC, KC), (MC - 2, 7)] {
            let w = filled(kc + 3, mc + 5, 10);
            let a = w.t();
            let strided = Strided {
                ptr: a.as_ptr(),
                row: a.strides()[0],
                col: a.strides()[1],
            };
            let mut out = vec![f32::NAN; mc.div_ceil(MR) * MR * kc];
            // SAFETY: the block at (2, 1) of mc x kc lies inside the (mc + 5) x (kc + 3) `A`.
            unsafe { pack_a_block(strided, 2, 1, mc, kc, &mut out) };
            for i in 0..mc {
                for p in 0..kc {
                    let got = out[i / MR * MR * kc + p * MR + i % MR];
                    assert_eq!(got, a[[2 + i, 1 + p]], "row {i}, step {p} of {mc} x {kc}");
                }
            }
        }
    }

    #[test]
    fn writes_column_major_and_strided_outputs() {
        let a = filled(23, 50, 7);
        let b = filled(50, 41, 8);
        let c0 = filled(41, 23, 9);
        let (expected, bound) = reference(1.0, a.view(), b.view(), 0.5, &c0.t().to_owned());
        let mut c = c0;
        gemm(
            1.0,
            a.view(),
            b.view(),
            0.5,
            &mut c.view_mut().reversed_axes(),
        )
        .unwrap();
        for ((got, want), bound) in c.t().iter().zip(&expected).zip(&bound) {
            assert!((f64::from(*got) - want).abs() <= *bound);
        }
    }

    #[test]
    fn thread_count_does_not_change_a_bit() {
        // Split by columns, and (a tall `C`) by rows.
        for (m, n, k) in [(300, 130, 784), (3000, 64, 200)] {
            let a = filled(m, k, 10);
            let b = filled(k, n, 11);
            let run = |threads| {
                let mut c = Array2::zeros((m, n));
                let product = super::Strided {
                    ptr: a.as_ptr(),
                    row: k as isize,
                    col: 1,
                };
                let other = super::Strided {
                    ptr: b.as_ptr(),
                    row: n as isize,
                    col: 1,
                };
                let out = super::Strided {
                    ptr: c.as_mut_ptr(),
                    row: n as isize,
                    col: 1,
                };
                if super::available() {
                    // SAFETY: the three arrays match the shapes and strides given.
                    unsafe { super::sgemm((m, n, k), 1.0, product, other, 0.0, out, threads) };
                }
                c
            };
            let one_thread = run(1);
            for threads in 2..=3 {
                assert_eq!(
                    one_thread,
                    run(threads),
                    "{threads} threads, {m} x {n} x {k}"
                );
            }
        }
    }
}
