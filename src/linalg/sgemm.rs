//! The `f32` product on AVX2 and FMA: blocking, packing of `B`, and the split across threads.
//!
//! `C = alpha A B + beta C` with `A` `m x k`, `B` `k x n`, `C` `m x n`, any strides. The loops
//! follow the usual layered scheme. Columns of `C` go in blocks of [`NC`], and the inner
//! dimension in blocks of at most [`KC`]. Rows go in blocks of [`MC`], whose rows of `A` stay
//! in L2, and last come 6 x 16 tiles ([`super::kernel`]) that each stream one panel of `B`.
//! On a CPU with AVX-512F, tiles of 12 x 32 and 6 x 32 ([`super::kernel512`]) take two panels
//! at once. The 6 x 16 tiles then remain for the edges: a last panel on its own, or fewer than
//! six rows. Both kernels sum each element over the same steps in the same order, so they give the
//! same bits.
//!
//! `B` is copied into panels of 16 columns in each thread's own reusable buffer, unless the
//! caller packed it once for many products ([`PackedB`]). `A` is read
//! through its strides, or packed into a second buffer when enough column panels reuse each
//! block of its rows ([`PACK_A_FROM`], [`PACK_ROW_MAJOR_A_FROM`]). A product is split across
//! threads by columns of `C`, or by rows when `C` has too few column panels or is tall
//! ([`TALL`]). Every element of `C` is
//! summed over `p` in the same order whatever the split, so results are bit-identical for any
//! number of threads.
//!
//! # Zero steps of `B`
//!
//! A step `p` at which a panel's 16 values of `B` are all zero adds nothing to its tiles. Such
//! steps are common: a ReLU layer's output is zero for an example wherever a unit is inactive,
//! and an image's background pixels are zero. While packing `B`, [`pack_b`] lists
//! each panel's nonzero steps. A panel with at least one step in [`SKIP_FROM`] zero is then
//! summed over its list alone ([`kernel::Steps::Listed`]), in the same order. The AVX-512
//! kernel's two panels share the union of their lists when that union leaves out at least one
//! step in [`SKIP_FROM`]. A step of the union at which one panel is zero adds zeros to that
//! panel's sums, which keeps their bits for the reason that follows. The result keeps every
//! bit, because `A[i, p] * 0` is a zero, and adding a zero to a nonzero sum or to `+0`
//! changes nothing. A tile whose sum ends at `-0`, where the skipped zeros could have made it
//! `+0`, is summed again over every step. An infinite or NaN `A[i, p]` would make the term
//! NaN, so a block of `A` with any such value is summed over every step. In a split by
//! columns, the chunks share each block's check (for the first [`VERDICTS`] blocks), and on
//! one thread the single chunk checks the blocks it reads. The check costs a pass over `A`,
//! so products with fewer than [`SKIP_MIN_COLUMNS`] columns sum every step. A caller that has
//! found `A` finite skips the checks. A layer does so for weights that `Dense::new` or an Adam
//! step found all finite (`Dense`), which took 4 to 6% off `W[1] X` in training
//! 784-1024-1024-10 (BENCHMARKS.md). Products split by
//! rows list no steps of `B` either, because each of their chunks would list all of `B`. Tall
//! ones list the steps of `A` instead on the AVX2 kernel (below).
//!
//! On shuffled batches of 512 Fashion-MNIST images, about 8% of the panel steps of `W[1] X`
//! are zero, and 16% of those of `dW[1] = dZ[1] X^T`. In the first three epochs of training
//! 784-1024-1024-10 at batch 512, 11% of all the steps of the products were skipped. Training
//! orders each batch so that similar images are neighbours (`TrainConfig::order_by_zeros`), and
//! with that order 28% of the steps of `W[1] X` were skipped in a count over the second epoch.
//!
//! # Zero steps of `A`
//!
//! A tall product ([`TALL`], with at least two panels of rows per thread), split by rows or on
//! one thread, is in this project batch inference: `A^T W^T` with the examples as rows of `A`
//! and the weights as `B`. There the zeros are in `A`: a step at which the six rows of a
//! tile's panel of `A` are all zero adds nothing either. When `A` is row-major, such a product
//! ([`Product::list_a`]) lists, for each panel of six rows, the steps at which a row is
//! nonzero, and a panel with at least one step in [`SKIP_FROM`] zero sums over its list. The
//! argument is the one above with the roles swapped: the skipped terms are `0 * B[p, j]`, so
//! a packed block of `B` with an infinity or NaN lists nothing, and a `-0` sum is summed
//! again. Listing reads each row of `A` once more. After [`A_MISSES`] panels of a block that do
//! not qualify, the block's other panels are not read, so a dense `A` loses little. On the
//! Fashion-MNIST test images, 16% of the steps of six-image panels are zero, against 8% of
//! those of 16-image panels. Only products on the AVX2 kernel list them, because the AVX-512
//! kernel sums every step of tiles of 12 rows in less time than it sums panels of six rows
//! over their lists.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU8, Ordering};

use super::kernel::{self, MR, NR, Steps, Tile};
use super::kernel512::{self, Wide};
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
    /// This thread's lists of nonzero steps: [`KC`] places for each panel of `B` (or of `A`),
    /// then [`KC`] for each pair of panels of `B` that the AVX-512 kernel reads side by side.
    static STEPS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
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

/// A block of `A`: rows `i0 .. i0 + mc` at steps `p0 .. p0 + kc`, the unit that is packed,
/// checked for finiteness and listed.
#[derive(Clone, Copy, Debug)]
struct BlockA {
    i0: usize,
    p0: usize,
    mc: usize,
    kc: usize,
}

/// The operands of one product, shared by its parts.
struct Product<'b> {
    k: usize,
    alpha: f32,
    beta: f32,
    a: Strided<*const f32>,
    b: Strided<*const f32>,
    /// `B` packed by the caller, read in place of packing `b` when given.
    packed_b: Option<&'b PackedB>,
    c: Strided<*mut f32>,
    /// Whether a block of `A` is all finite, for the first [`VERDICTS`] blocks of a product
    /// split by columns, so that its chunks share the check. Two chunks that reach a block at
    /// the same moment may both check it, which only repeats work.
    verdicts: [AtomicU8; VERDICTS],
    /// Blocks of [`MC`] rows of `A`, when `verdicts` applies (a split by columns), else 0.
    row_blocks: usize,
    /// Whether the caller guarantees that `A` is all finite, so that no block is checked.
    a_finite: bool,
    /// Whether tiles may sum only over the nonzero steps of their panel of `B`: the product
    /// has at least [`SKIP_MIN_COLUMNS`] columns, is not split by rows, does not list the
    /// steps of `A` (`list_a`), and packs `B` itself (no `packed_b`).
    skip_zeros: bool,
    /// Whether tiles may sum only over the nonzero steps of their panel of `A` instead: the
    /// product is tall ([`TALL`]), `A` is row-major, and the AVX-512 kernel is not available.
    /// `skip_zeros` is off for every tall product with a row-major `A`.
    list_a: bool,
}

/// Blocks of `A` whose finiteness a product records. 64 cover 6,144 rows at one block of the
/// inner dimension.
const VERDICTS: usize = 64;
/// States of a verdict.
const UNKNOWN: u8 = 0;
const FINITE: u8 = 1;
const NOT_FINITE: u8 = 2;

impl Product<'_> {
    /// Returns whether the block `A[ic..ic + mc, pc..pc + kc]` is all finite. Returns `true`
    /// at once when the caller promised that all of `A` is finite. Otherwise reads the packed
    /// copy when there is one, and records the result when the block is on the product's grid.
    ///
    /// # Safety
    ///
    /// The block must lie inside `A`, and `packed`, when given, must hold it as
    /// [`pack_a_block`] wrote it.
    #[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
    unsafe fn a_is_finite(
        &self,
        block: BlockA,
        kc_max: usize,
        packed: Option<(&[f32], usize)>,
    ) -> bool {
        let BlockA {
            i0: ic,
            p0: pc,
            mc,
            kc,
        } = block;
        if self.a_finite {
            return true;
        }
        let slot = (ic % MC == 0 && self.row_blocks > 0)
            .then(|| pc / kc_max * self.row_blocks + ic / MC)
            .and_then(|slot| self.verdicts.get(slot));
        if let Some(verdict) = slot {
            match verdict.load(Ordering::Relaxed) {
                FINITE => return true,
                NOT_FINITE => return false,
                _ => {}
            }
        }
        let finite = match packed {
            Some((packed, stride)) => packed_is_finite(packed, mc, kc, stride),
            // SAFETY: forwarded from the caller.
            None => unsafe { block_is_finite(self.a, block) },
        };
        if let Some(verdict) = slot {
            verdict.store(if finite { FINITE } else { NOT_FINITE }, Ordering::Relaxed);
        }
        finite
    }
}

// SAFETY: the parts of a product write disjoint blocks of `C` and only read `A` and `B`. The
// caller of `sgemm` keeps all three alive and unaliased for its duration.
unsafe impl Sync for Product<'_> {}
unsafe impl Send for Product<'_> {}

/// Returns whether [`sgemm`] can run on this CPU.
pub(crate) fn available() -> bool {
    kernel::available()
}

/// `B` (`k x n`) packed once into the panels that [`sgemm`] reads, for a caller that
/// multiplies by the same `B` many times, such as the weights in batch inference.
///
/// A product otherwise packs each block of `B` ([`KC`] x [`NC`] values at most) in every chunk
/// that reads it. A product split by rows, such as batch inference with the examples as rows,
/// therefore packs all of `B` once per chunk: eight times on two threads. A profile of
/// `A^T W^T` for `W` 1,024 x 1,024 at batch 10,000 on two threads put 2.9% of the samples in
/// `block_with`, which holds the inlined packing and the rest of the blocking: an upper
/// bound on what packing cost.
///
/// The layout is that of the blocks: for each block of steps (of [`kc_max`] steps), the
/// panels of all `n` columns in turn, each `kc x NR` values, the last padded with zeros. Block
/// `(pc, jc)` then starts at `pc * panels * NR + jc * kc`, and its panels are those that
/// [`pack_b`] would write for it. The values start on a 64-byte line, as a thread's own
/// buffer does.
pub(crate) struct PackedB {
    /// The panels from `values[start]` on, with up to [`ALIGN`] values of padding before them.
    values: Vec<f32>,
    /// Index of the first packed value in `values`.
    start: usize,
    k: usize,
    n: usize,
}

impl PackedB {
    /// Packs `B` (`k x n`, through its strides).
    ///
    /// # Safety
    ///
    /// [`available`] must be true, and `b` valid for `k x n` reads through its strides. `k` and
    /// `n` must be positive.
    pub(crate) unsafe fn new(b: Strided<*const f32>, k: usize, n: usize) -> Self {
        let panels = n.div_ceil(NR);
        let len = k * panels * NR;
        let mut packed = PackedB::zeros(len, k, n);
        let kc_max = kc_max(k);
        let start = packed.start;
        for pc in (0..k).step_by(kc_max) {
            let kc = kc_max.min(k - pc);
            for jc in (0..n).step_by(NC) {
                let nc = NC.min(n - jc);
                let out = &mut packed.values[start + pc * panels * NR + jc * kc..];
                // SAFETY: the block lies inside `B`, and `out` holds the panels of the block's
                // columns: the layout above puts them before the next block's.
                unsafe { pack_b(b, pc, jc, kc, nc, out, None) };
            }
        }
        packed
    }

    /// Allocates `len` zeros that begin on a line boundary, for a `B` of `k x n`.
    fn zeros(len: usize, k: usize, n: usize) -> Self {
        let values = vec![0.0; len + ALIGN];
        let start = values.as_ptr().align_offset(64).min(ALIGN);
        PackedB {
            values,
            start,
            k,
            n,
        }
    }

    /// Returns `(k, n)`, the shape of `B`.
    pub(crate) fn dim(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// Returns the packed panels of the block at steps `pc .. pc + kc` and columns from `jc`
    /// to the end of `B`.
    fn block(&self, pc: usize, jc: usize, kc: usize) -> &[f32] {
        let panels = self.n.div_ceil(NR);
        let first = pc * panels * NR + jc * kc;
        &self.values[self.start..self.start + self.k * panels * NR][first..]
    }
}

/// A clone stores its panels on a line boundary of its own allocation, which a copy of the
/// whole `Vec` (and of `start`) would not.
impl Clone for PackedB {
    fn clone(&self) -> Self {
        let len = self.k * self.n.div_ceil(NR) * NR;
        let mut packed = PackedB::zeros(len, self.k, self.n);
        let start = packed.start;
        packed.values[start..start + len].copy_from_slice(&self.values[self.start..][..len]);
        packed
    }
}

/// Shows the shape only: the values are a copy of `B`.
impl std::fmt::Debug for PackedB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedB({} x {})", self.k, self.n)
    }
}

/// A callback that [`sgemm`] makes once for each range of rows of `C` when those rows
/// are final, so that the caller can go on with them (add a bias, apply an activation) while
/// they are still in cache. The ranges cover every row once and may run on any product thread.
pub(crate) type RowsDone<'a> = &'a (dyn Fn(std::ops::Range<usize>) + Sync);

/// Computes `C = alpha A B + beta C` on up to `threads` threads. With `a_finite`, the caller
/// promises that every value of `A` is finite, which spares the check before zero steps of `B`
/// are left out. A broken promise does not cause undefined behaviour, but a skipped step then
/// drops the NaN that an infinite or NaN value of `A` times zero makes.
///
/// With `packed_b`, a copy of `b` packed by [`PackedB::new`], the product reads its panels
/// instead of packing `B`, and leaves out no zero steps of `B`. A copy whose shape is not
/// `k x n` is ignored: the kernels read whole panels through raw pointers, so that check is
/// what keeps them inside the copy.
///
/// With `rows_done`, it also calls that on ranges that cover the rows of `C`. A product split
/// by rows, such as batch inference with the examples as rows, calls it on blocks of at most
/// [`MC`] rows from the start of each chunk. The thread that computed a block makes the call as
/// soon as the block's last block of columns and of steps is summed. A product split by
/// columns calls it after all chunks, split across the threads.
///
/// # Safety
///
/// [`available`] must be true. Through their strides, `a` must be valid for `m x k` reads, `b`
/// for `k x n` reads and `c` for `m x n` reads and writes. `c` must not overlap `a` or `b`, and
/// two elements of `c` must not share an address. `m`, `n` and `k` must be positive.
/// `rows_done` may read and write the rows it gets, and no other part of `C`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm(
    (m, n, k): (usize, usize, usize),
    alpha: f32,
    a: Strided<*const f32>,
    b: Strided<*const f32>,
    packed_b: Option<&PackedB>,
    beta: f32,
    c: Strided<*mut f32>,
    threads: usize,
    a_finite: bool,
    rows_done: Option<RowsDone<'_>>,
) {
    // Reads stay inside the copy only when its shape is that of this `B`.
    let packed_b = packed_b.filter(|packed| packed.dim() == (k, n));
    let mut product = Product {
        k,
        alpha,
        beta,
        a,
        b,
        packed_b,
        c,
        verdicts: [const { AtomicU8::new(UNKNOWN) }; VERDICTS],
        row_blocks: 0,
        a_finite,
        skip_zeros: n >= SKIP_MIN_COLUMNS && packed_b.is_none(),
        list_a: false,
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
    if by_columns && kernel512::available() {
        // The AVX-512 kernel spans two panels, so a chunk of one panel would leave it idle.
        chunks = chunks.min((column_panels / 2).max(threads));
    }

    if by_columns {
        product.row_blocks = m.div_ceil(MC);
    } else if tall && a.col == 1 {
        // Each chunk of rows reads its panels of `A` against all of `B`, whose columns (the
        // outputs of a layer, in inference) have no zero steps, while its rows (examples) do.
        // The AVX-512 kernel sums every step in tiles of 12 rows faster than it sums panels of
        // six rows over their lists. Without the lists, the products of batch inference of
        // 784-256-128-10 took 16 to 17% less time, and those of 784-1024-1024-10 11% less
        // (BENCHMARKS.md).
        product.skip_zeros = false;
        product.list_a = !kernel512::available();
    } else if chunks > 1 {
        // In a split by rows every chunk packs all of `B`, so listing its steps would be
        // repeated once per chunk. Before tall products listed the steps of `A`, listing the
        // steps of `B` in batch inference, whose `B` (the weights) has none, made it 0.6 to
        // 2.6% slower.
        product.skip_zeros = false;
    }
    let product = product;
    let range = |chunk: usize, width: usize, len: usize| {
        let start = (chunk * panels / chunks * width).min(len);
        let end = ((chunk + 1) * panels / chunks * width).min(len);
        start..end
    };
    pool::run(threads, chunks, &|chunk| {
        let (rows, cols, done) = if by_columns {
            (0..m, range(chunk, NR, n), None)
        } else {
            (range(chunk, MR, m), 0..n, rows_done)
        };
        // SAFETY: forwarded from the caller; the chunks' blocks of `C` are disjoint.
        unsafe { block(&product, rows, cols, done) };
    });
    if by_columns {
        // No row is final before every chunk of columns is.
        super::call_rows_done(rows_done, m, n);
    }
}

/// Grows this thread's packing buffers to the largest block they can hold. Done at once, and
/// by each pool worker as it starts, so that no later product allocates: a worker may first
/// meet a large shape late in training, when a step must no longer allocate.
pub(crate) fn reserve_buffers() {
    STEPS.with(|steps| {
        PACKED_A.with(|packed_a| {
            PACKED.with(|packed| {
                reserve(
                    &mut packed.borrow_mut(),
                    &mut packed_a.borrow_mut(),
                    &mut steps.borrow_mut(),
                )
            })
        })
    });
}

fn reserve(packed: &mut Vec<f32>, packed_a: &mut Vec<f32>, steps: &mut Vec<u32>) {
    if steps.len() < STEP_LISTS + KC * PAIRS {
        steps.resize(STEP_LISTS + KC * PAIRS, 0);
    }
    if packed.len() < KC * NC + ALIGN {
        packed.resize(KC * NC + ALIGN, 0.0);
    }
    if packed_a.len() < MC / MR * panel_stride(KC) + ALIGN {
        packed_a.resize(MC / MR * panel_stride(KC) + ALIGN, 0.0);
    }
}

/// Places in a thread's step lists for the panels of one block of `B`.
const STEP_LISTS: usize = KC * NC / NR;
/// Pairs of panels in one block of `B`.
const PAIRS: usize = NC / kernel512::WIDTH;

/// Values of slack in each buffer, so that its used part can start on a cache line.
const ALIGN: usize = 16;

/// Values between the panels of a packed block of `A`: one cache line. Without it, the panels of
/// a block of [`KC`] steps start 24 KiB apart, a multiple of 4 KiB, so they all fall in the same
/// set of the 32 KiB, 8-way L1 cache. Packing a column-major `A` writes to all 16 panels of a
/// block at each step, and the 16 lines it fills then evict one another. With the gap,
/// `W[2]^T dZ[2]` of 784-1024-1024-10 at batch 512 took 1 to 5% less.
const PANEL_GAP: usize = 16;

/// Returns the distance, in values, between the panels of a packed block of `A` with `kc` steps.
fn panel_stride(kc: usize) -> usize {
    MR * kc + PANEL_GAP
}

/// Returns the part of `buffer` that starts on a 64-byte boundary, so that a panel's 16 values
/// per step fill exactly one cache line instead of straddling two.
fn aligned(buffer: &mut [f32]) -> &mut [f32] {
    let skip = buffer.as_ptr().align_offset(64).min(ALIGN);
    &mut buffer[skip..]
}

/// Computes the block `rows x cols` of `C` on the calling thread, then calls `done` (when given)
/// on ranges that cover `rows`.
///
/// # Safety
///
/// As for [`sgemm`], with `rows x cols` inside `C`. With `done`, `cols` must span every
/// column of `C`, so that the rows are final when the block is.
unsafe fn block(
    product: &Product,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    done: Option<RowsDone<'_>>,
) {
    if rows.is_empty() || cols.is_empty() {
        return;
    }
    let kc_max = kc_max(product.k);
    STEPS.with(|steps| {
        let mut steps = steps.borrow_mut();
        PACKED_A.with(|packed_a| {
            let mut packed_a = packed_a.borrow_mut();
            PACKED.with(|packed| {
                let mut packed = packed.borrow_mut();
                reserve(&mut packed, &mut packed_a, &mut steps);
                let (packed, packed_a) = (aligned(&mut packed), aligned(&mut packed_a));
                let buffers = Buffers {
                    packed,
                    packed_a,
                    steps: &mut steps,
                };
                // SAFETY: forwarded from the caller.
                unsafe { block_with(product, rows, cols, kc_max, buffers, done) };
            });
        });
    });
}

/// Returns the steps of each block of the inner dimension `k` but the last: equal blocks of at
/// most [`KC`], so that 2,500 becomes 3 x 834 rather than 1,024, 1,024, 452.
fn kc_max(k: usize) -> usize {
    k.div_ceil(k.div_ceil(KC))
}

/// A thread's packing buffers, borrowed for one block.
struct Buffers<'a> {
    packed: &'a mut [f32],
    packed_a: &'a mut [f32],
    steps: &'a mut [u32],
}

/// A panel whose zero steps are at least `1 / SKIP_FROM` of its steps sums only over the nonzero
/// ones ([`kernel::Steps::Listed`]). A listed step costs about 2.5% more than a step of the
/// plain loop (measured with every step listed), so skipping 1 in 16 should still gain. The
/// value is an estimate from that cost, not tuned by measurement.
const SKIP_FROM: usize = 16;

#[cfg(test)]
thread_local! {
    /// Blocks that this thread read from a [`PackedB`], counted for the tests. The thread that
    /// calls a product runs one of its chunks, so this count includes the calling test's own.
    pub(crate) static PACKED_B_BLOCKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Tiles that summed over a list of steps, counted for the tests.
#[cfg(test)]
static SKIPPED_TILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Columns of `C` a product needs before its tiles skip the zero steps of `B`. Skipping needs
/// every block of `A` checked for infinities and NaNs, a pass over `A` that `n` columns of
/// multiply-adds must repay: for 784-256-128-10 at batch 128, `W[1] X` (`n` = 128) was 11%
/// slower with skipping and `dW[1] = dZ[1] X^T` (`n` = 784) 11% faster. The value lies between
/// those two cases; no product width in between was measured.
pub(super) const SKIP_MIN_COLUMNS: usize = 256;

/// Computes the block `rows x cols` of `C` with the thread's buffers borrowed: the body of
/// [`block`].
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
unsafe fn block_with(
    product: &Product,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    kc_max: usize,
    buffers: Buffers<'_>,
    done: Option<RowsDone<'_>>,
) {
    let Buffers {
        packed,
        packed_a,
        steps,
    } = buffers;
    let k = product.k;
    let wide = kernel512::available();
    let mut counts = [0usize; NC / NR];
    let (steps, unions) = steps.split_at_mut(STEP_LISTS);
    for jc in cols.clone().step_by(NC) {
        let nc = NC.min(cols.end - jc);
        // The AVX-512 kernel reads a row-major `A` in place: packing it was slower for batch
        // inference and for training 784-1024-1024-10 (BENCHMARKS.md).
        let pack_a = if product.a.col == 1 {
            !wide && nc.div_ceil(NR) >= PACK_ROW_MAJOR_A_FROM
        } else {
            nc.div_ceil(NR) >= PACK_A_FROM
        };
        for pc in (0..k).step_by(kc_max) {
            let kc = kc_max.min(k - pc);
            let a_stride = panel_stride(kc);
            let packed: &[f32] = match product.packed_b {
                Some(packed_b) => {
                    #[cfg(test)]
                    PACKED_B_BLOCKS.with(|blocks| blocks.set(blocks.get() + 1));
                    packed_b.block(pc, jc, kc)
                }
                None => {
                    let lists = product.skip_zeros.then_some((&mut *steps, &mut counts));
                    // SAFETY: the block lies inside `B`, and `packed` holds KC x NC values.
                    unsafe { pack_b(product.b, pc, jc, kc, nc, packed, lists) };
                    packed
                }
            };
            let skip = |q: usize| product.skip_zeros && (kc - counts[q]) * SKIP_FROM >= kc;
            let any_skip = (0..nc.div_ceil(NR)).any(skip);
            // Two panels side by side for the AVX-512 kernel share the steps at which either is
            // nonzero, when those leave out enough steps. Merging each union once per block of
            // `B` instead of once per block of rows took 1 to 4% off the products of
            // 784-1024-1024-10 (BENCHMARKS.md).
            let mut union_counts = [None; PAIRS];
            if wide && any_skip {
                for (pair, count) in union_counts.iter_mut().enumerate() {
                    let q = 2 * pair;
                    if q + 1 < nc.div_ceil(NR) && skip(q) && skip(q + 1) {
                        let len = merge_steps(
                            &steps[q * KC..][..counts[q]],
                            &steps[(q + 1) * KC..][..counts[q + 1]],
                            &mut unions[pair * KC..][..KC],
                        );
                        *count = ((kc - len) * SKIP_FROM >= kc).then_some(len);
                    }
                }
            }
            // A skipped step of `A` multiplies a zero by `B[p, j]`, which must be finite.
            let list_a = product.list_a && all_finite(&packed[..nc.div_ceil(NR) * NR * kc]);
            let beta = if pc == 0 { product.beta } else { 1.0 };
            for ic in rows.clone().step_by(MC) {
                let mc = MC.min(rows.end - ic);
                let block = BlockA {
                    i0: ic,
                    p0: pc,
                    mc,
                    kc,
                };
                let (a_block, finite) = if pack_a {
                    // SAFETY: the block lies inside `A`, and `packed_a` has room for MC / MR panels
                    // of `panel_stride(kc)` values.
                    unsafe { pack_a_block(product.a, block, a_stride, packed_a) };
                    // SAFETY: the block was just packed.
                    let finite = any_skip
                        && unsafe {
                            product.a_is_finite(block, kc_max, Some((packed_a, a_stride)))
                        };
                    (Some(packed_a.as_ptr()), finite)
                } else {
                    // SAFETY: the block lies inside `A`.
                    let finite = any_skip && unsafe { product.a_is_finite(block, kc_max, None) };
                    (None, finite)
                };
                let mut a_counts = [0usize; MC / MR];
                if list_a {
                    // SAFETY: the block lies inside `A`, which is row-major.
                    unsafe { list_a_steps(product.a, block, steps, &mut a_counts) };
                }
                let listed_a = |r: usize| (kc - a_counts[r]) * SKIP_FROM >= kc;
                let tile_a = |ir: usize| match a_block {
                    // SAFETY: panel ir / MR of the packed rows.
                    Some(block) => (unsafe { block.add(ir / MR * a_stride) }, 1, MR as isize),
                    // SAFETY: (ic + ir, pc) lies inside `A`.
                    None => (
                        unsafe { product.a.ptr.offset(product.a.offset(ic + ir, pc)) },
                        product.a.row,
                        product.a.col,
                    ),
                };
                // SAFETY: (i, j) lies inside `C`.
                let c_at =
                    |i: usize, j: usize| unsafe { product.c.ptr.offset(product.c.offset(i, j)) };
                let listed_b =
                    |q: usize| (finite && skip(q)).then(|| &steps[q * KC..][..counts[q]]);
                // The steps of one tile of six rows against panel `q`: those the panel of `B`
                // lists, else those the rows of `A` list, else all.
                let tile_steps = |q: Option<usize>, r: usize| {
                    let listed = q.and_then(listed_b).or_else(|| {
                        (list_a && listed_a(r)).then(|| &steps[r * KC..][..a_counts[r]])
                    });
                    #[cfg(test)]
                    if listed.is_some() {
                        SKIPPED_TILES.fetch_add(1, Ordering::Relaxed);
                    }
                    match listed {
                        Some(list) => Steps::Listed { steps: list, kc },
                        None => Steps::All(kc),
                    }
                };
                // One AVX2 tile: rows `ir..` against panel `q`.
                let narrow = |ir: usize, q: usize| {
                    let (a, a_row, a_col) = tile_a(ir);
                    let tile = Tile {
                        a,
                        a_row,
                        a_col,
                        b: packed[q * NR * kc..].as_ptr(),
                        c: c_at(ic + ir, jc + q * NR),
                        c_row: product.c.row,
                        c_col: product.c.col,
                        rows: MR.min(mc - ir),
                        cols: NR.min(nc - q * NR),
                    };
                    // SAFETY: the tile is inside the matrices and every listed step is
                    // below `kc`. The caller of `sgemm` checked `available`.
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        kernel::tile_avx2(tile_steps(Some(q), ir / MR), tile, product.alpha, beta)
                    };
                    #[cfg(not(target_arch = "x86_64"))]
                    let _ = (tile, beta);
                };
                let panels = nc.div_ceil(NR);
                let mut q = 0;
                while q < panels {
                    if !wide || q + 1 == panels {
                        for ir in (0..mc).step_by(MR) {
                            narrow(ir, q);
                        }
                        q += 1;
                        continue;
                    }
                    // Two panels side by side for the AVX-512 kernel, with their shared list.
                    let shared = union_counts[q / 2]
                        .filter(|_| finite)
                        .map(|len| &unions[q / 2 * KC..][..len]);
                    #[cfg(test)]
                    if shared.is_some() {
                        SKIPPED_TILES.fetch_add(1, Ordering::Relaxed);
                    }
                    let mut ir = 0;
                    while ir < mc {
                        let r = ir / MR;
                        let rows_listed = |r: usize| shared.is_none() && list_a && listed_a(r);
                        let groups = if ir + 2 * MR <= mc && !rows_listed(r) && !rows_listed(r + 1)
                        {
                            2
                        } else if ir + MR <= mc {
                            1
                        } else {
                            narrow(ir, q);
                            narrow(ir, q + 1);
                            break;
                        };
                        let steps = match shared {
                            Some(list) => Steps::Listed { steps: list, kc },
                            None => tile_steps(None, r),
                        };
                        let (a, a_row, a_col) = tile_a(ir);
                        let second = if groups == 2 { tile_a(ir + MR).0 } else { a };
                        let tile = Wide {
                            a: [a, second],
                            a_row,
                            a_col,
                            b: [
                                packed[q * NR * kc..].as_ptr(),
                                packed[(q + 1) * NR * kc..].as_ptr(),
                            ],
                            c: c_at(ic + ir, jc + q * NR),
                            c_row: product.c.row,
                            c_col: product.c.col,
                            cols: kernel512::WIDTH.min(nc - q * NR),
                        };
                        // SAFETY: the tile is inside the matrices, every listed step is below
                        // `kc`, and `wide` is set only when the CPU has AVX-512F.
                        #[cfg(target_arch = "x86_64")]
                        unsafe {
                            if groups == 2 {
                                kernel512::wide_avx512::<2>(steps, tile, product.alpha, beta)
                            } else {
                                kernel512::wide_avx512::<1>(steps, tile, product.alpha, beta)
                            }
                        };
                        #[cfg(not(target_arch = "x86_64"))]
                        let _ = (tile, steps);
                        ir += groups * MR;
                    }
                    q += 2;
                }
                // The last block of columns and of steps completes these rows: the earlier
                // blocks of columns ran in earlier passes of the outer loop.
                if let Some(done) = done.filter(|_| jc + nc == cols.end && pc + kc == k) {
                    done(ic..ic + mc);
                }
            }
        }
    }
}

/// Writes the sorted union of two sorted lists of steps into `out` and returns its length.
fn merge_steps(first: &[u32], second: &[u32], out: &mut [u32]) -> usize {
    let (mut i, mut j, mut len) = (0, 0, 0);
    while i < first.len() || j < second.len() {
        let next = match (first.get(i), second.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        if first.get(i) == Some(&next) {
            i += 1;
        }
        if second.get(j) == Some(&next) {
            j += 1;
        }
        out[len] = next;
        len += 1;
    }
    len
}

/// Panels of a block of `A` that may fail to qualify for a list before [`list_a_steps`] stops
/// reading the block's other panels. Two rather than one, so that a single panel of six
/// images with few zero pixels in common does not end the listing. The value is an estimate,
/// not tuned by measurement.
const A_MISSES: usize = 2;

/// Writes, for each panel `r` of [`MR`] rows of the block `A[i0..i0 + mc, p0..p0 + kc]`, the steps
/// at which one of its rows is nonzero (`-0.0` counts as zero) to `lists[r KC..]` and their
/// number to `counts[r]`. A panel whose zero steps are fewer than `1 / SKIP_FROM` of the block
/// gets its count but no list. After [`A_MISSES`] such panels, the others are not read and get
/// the count `kc`, which lists nothing.
///
/// # Safety
///
/// The block must lie inside `A`, and `A` must be row-major (unit column stride).
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
unsafe fn list_a_steps(
    a: Strided<*const f32>,
    block: BlockA,
    lists: &mut [u32],
    counts: &mut [usize; MC / MR],
) {
    let BlockA { i0, p0, mc, kc } = block;
    let mut misses = 0;
    for (r, count) in counts.iter_mut().enumerate().take(mc.div_ceil(MR)) {
        if misses == A_MISSES {
            *count = kc;
            continue;
        }
        let mut nonzero = [0u64; KC / 64];
        for i in r * MR..mc.min((r + 1) * MR) {
            // SAFETY: row i0 + i, columns p0 .. p0 + kc, lies inside `A` and is contiguous.
            let row = unsafe { std::slice::from_raw_parts(a.ptr.offset(a.offset(i0 + i, p0)), kc) };
            mark_nonzero(row, &mut nonzero);
        }
        *count = nonzero.iter().map(|word| word.count_ones() as usize).sum();
        if (kc - *count) * SKIP_FROM < kc {
            misses += 1;
            continue;
        }
        let list = &mut lists[r * KC..][..*count];
        let mut next = list.iter_mut();
        for (w, &word) in nonzero.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                if let Some(step) = next.next() {
                    *step = (w * 64) as u32 + word.trailing_zeros();
                }
                word &= word - 1;
            }
        }
    }
}

/// Sets bit `p` of `nonzero` (bit `p % 64` of word `p / 64`) for each nonzero `row[p]`, `-0.0`
/// counting as zero. `row` has at most [`KC`] values.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
fn mark_nonzero(row: &[f32], nonzero: &mut [u64; KC / 64]) {
    let mut eights = row.chunks_exact(8);
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let magnitude = _mm256_set1_epi32(0x7fff_ffff);
        for (e, eight) in eights.by_ref().enumerate() {
            // SAFETY: `eight` has 8 values, read unaligned.
            let values = unsafe { _mm256_loadu_si256(eight.as_ptr().cast()) };
            let zeros =
                _mm256_cmpeq_epi32(_mm256_and_si256(values, magnitude), _mm256_setzero_si256());
            let bits = !(_mm256_movemask_ps(_mm256_castsi256_ps(zeros)) as u32) & 0xff;
            nonzero[e / 8] |= u64::from(bits) << (e % 8 * 8);
        }
    }
    let done = row.len() - eights.remainder().len();
    for (p, value) in row.iter().enumerate().skip(done) {
        if value.to_bits() & 0x7fff_ffff != 0 {
            nonzero[p / 64] |= 1 << (p % 64);
        }
    }
}

/// Returns whether `A[i0..i0 + mc, p0..p0 + kc]` is all finite, reading each row (or, for a
/// column-major `A`, each column) as one contiguous run where the strides allow.
///
/// # Safety
///
/// The block must lie inside `A`.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
unsafe fn block_is_finite(a: Strided<*const f32>, block: BlockA) -> bool {
    let BlockA { i0, p0, mc, kc } = block;
    let mut worst = 0;
    let (runs, length, run_stride, step) = if a.col == 1 {
        (mc, kc, a.row, 1)
    } else if a.row == 1 {
        (kc, mc, a.col, 1)
    } else {
        (mc, kc, a.row, a.col)
    };
    let start = a.offset(i0, p0);
    for r in 0..runs {
        // SAFETY: run `r` starts inside the block.
        let first = unsafe { a.ptr.offset(start + run_stride * r as isize) };
        if step == 1 {
            // SAFETY: the run's `length` values are contiguous and inside the block.
            let run = unsafe { std::slice::from_raw_parts(first, length) };
            worst = run.iter().fold(worst, largest_magnitude);
        } else {
            for p in 0..length {
                // SAFETY: inside the block, through the column stride.
                worst = largest_magnitude(worst, unsafe { &*first.offset(step * p as isize) });
            }
        }
    }
    worst < f32::INFINITY.to_bits()
}

/// Returns whether the `mc x kc` values that [`pack_a_block`] wrote to `out` are all finite.
/// The unused rows of a last, shorter panel are not read.
#[inline]
fn packed_is_finite(out: &[f32], mc: usize, kc: usize, stride: usize) -> bool {
    let full = mc / MR;
    let mut worst = (0..full).fold(0, |worst, r| {
        out[r * stride..][..MR * kc]
            .iter()
            .fold(worst, largest_magnitude)
    });
    let height = mc - full * MR;
    if height > 0 {
        for step in out[full * stride..][..MR * kc].chunks_exact(MR) {
            worst = step[..height].iter().fold(worst, largest_magnitude);
        }
    }
    worst < f32::INFINITY.to_bits()
}

/// Returns whether every value is finite.
#[inline]
fn all_finite(values: &[f32]) -> bool {
    values.iter().fold(0, largest_magnitude) < f32::INFINITY.to_bits()
}

/// Returns the larger of `worst` and the bits of `|value|`. For non-negative floats the bits
/// order like the values, and every infinity or NaN is at least `f32::INFINITY.to_bits()`, so
/// a fold of this over a block is below that exactly when the block is finite.
#[inline]
fn largest_magnitude(worst: u32, value: &f32) -> u32 {
    worst.max(value.to_bits() & 0x7fff_ffff)
}

/// Copies the block `A[i0..i0 + mc, p0..p0 + kc]` into panels of [`MR`] rows: panel `r`, from
/// `out[r stride..]`, contains for each step `p` the values of rows `i0 + r MR ..` at that step.
/// A last, shorter panel contains only its valid rows, and the kernel never reads past them.
///
/// # Safety
///
/// The block must lie inside `A`. `out` must have room for `mc.div_ceil(MR)` panels `stride`
/// apart, and `stride` must be at least `MR * kc`.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
unsafe fn pack_a_block(a: Strided<*const f32>, block: BlockA, stride: usize, out: &mut [f32]) {
    let BlockA { i0, p0, mc, kc } = block;
    if a.row == 1 {
        // SAFETY: the caller guarantees that the block lies inside `A`, and the row stride is 1.
        unsafe { pack_column_major_a_block(a, block, stride, out) };
        return;
    }
    for (r, panel) in out.chunks_mut(stride).take(mc.div_ceil(MR)).enumerate() {
        let height = MR.min(mc - r * MR);
        // The step runs in the outer loop: the writes are sequential and the reads are
        // `height` sequential streams for row-major `A`.
        let mut rows = [std::ptr::null::<f32>(); MR];
        for (i, row) in rows.iter_mut().enumerate().take(height) {
            // SAFETY: row i0 + r MR + i, column p0, lies inside the block.
            *row = unsafe { a.ptr.offset(a.offset(i0 + r * MR + i, p0)) };
        }
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if a.col == 1 && height == MR {
            // SAFETY: the six rows are valid for `kc` contiguous values, and the panel has
            // room for `MR * kc` values and the gap after them.
            done = unsafe { pack_row_major_panel(&rows, kc, panel) };
        }
        for (p, step) in panel.chunks_exact_mut(MR).enumerate().take(kc).skip(done) {
            let offset = a.col * p as isize;
            for (value, row) in step.iter_mut().zip(&rows[..height]) {
                // SAFETY: column p0 + p of a valid row of the block.
                *value = unsafe { *row.offset(offset) };
            }
        }
    }
}

/// Packs the first `kc / 8 * 8` steps of a full panel of six rows of a row-major `A`, as
/// [`pack_a_block`] would, and returns that number of steps. Each group of 8 steps loads 8
/// values from each row, transposes them in registers with two copies of the last row as
/// padding, and stores each step's 8 values, whose last two the next step's store overwrites.
/// The last step's two extra values land in the gap after the panel ([`PANEL_GAP`]).
///
/// # Safety
///
/// The CPU must have AVX2. Each of `rows` must be valid for `kc` contiguous values, and `panel`
/// must have room for `MR * kc + 2` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_row_major_panel(rows: &[*const f32; MR], kc: usize, panel: &mut [f32]) -> usize {
    use std::arch::x86_64::*;
    let eights = kc / 8;
    assert!(
        panel.len() >= MR * eights * 8 + 2,
        "room for the last step's padding"
    );
    for e in 0..eights {
        // SAFETY: steps `8 e .. 8 e + 8` of each row lie inside its `kc` values.
        let row = |i: usize| unsafe { _mm256_loadu_ps(rows[i].add(e * 8)) };
        // Rows 6 and 7 repeat rows 4 and 5, so each step's last two values are padding.
        let steps = transpose_8x8([
            row(0),
            row(1),
            row(2),
            row(3),
            row(4),
            row(5),
            row(4),
            row(5),
        ]);
        for (t, step) in steps.into_iter().enumerate() {
            // SAFETY: the store writes values `(8 e + t) MR ..` plus 8, inside `panel` by the
            // assertion above.
            unsafe { _mm256_storeu_ps(panel.as_mut_ptr().add((e * 8 + t) * MR), step) };
        }
    }
    eights * 8
}

/// Columns ahead that [`pack_column_major_a_block`] prefetches.
const PREFETCH_COLUMNS: usize = 8;

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
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
unsafe fn pack_column_major_a_block(
    a: Strided<*const f32>,
    block: BlockA,
    stride: usize,
    out: &mut [f32],
) {
    let BlockA { i0, p0, mc, kc } = block;
    let full = mc / MR;
    for p in 0..kc {
        // With 1,024 or more rows, each column starts in a new 4 KiB page, which the hardware
        // prefetcher does not cross.
        #[cfg(target_arch = "x86_64")]
        if p + PREFETCH_COLUMNS < kc {
            // SAFETY: column p0 + p + PREFETCH_COLUMNS, rows i0 .. i0 + mc, is inside the block.
            let ahead = unsafe { a.ptr.offset(a.offset(i0, p0 + p + PREFETCH_COLUMNS)) };
            for line in (0..mc).step_by(16).chain(std::iter::once(mc - 1)) {
                use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
                // SAFETY: a prefetch does not fault, and the address is inside the block.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(ahead.add(line).cast()) };
            }
        }
        // SAFETY: column p0 + p of the block, rows i0 .. i0 + mc, is inside `A` and contiguous
        // because the row stride is 1.
        let column = unsafe { std::slice::from_raw_parts(a.ptr.offset(a.offset(i0, p0 + p)), mc) };
        let mut runs = column.chunks_exact(MR);
        for (r, run) in runs.by_ref().enumerate() {
            out[r * stride + p * MR..][..MR].copy_from_slice(run);
        }
        let rest = runs.remainder();
        if !rest.is_empty() {
            out[full * stride + p * MR..][..rest.len()].copy_from_slice(rest);
        }
    }
}

/// Copies `B[p0..p0 + kc, j0..j0 + nc]` into panels of [`NR`] columns: panel `q` holds, for each
/// step `p`, the values of columns `j0 + q NR ..` at that step, zero past column `j0 + nc`.
///
/// With `lists`, also writes for each panel `q` the steps at which it has a nonzero value
/// (`-0.0` counts as zero) to `lists.0[q KC..]`, and their number to `lists.1[q]`.
///
/// # Safety
///
/// The block must lie inside `B`; `out` must hold `kc x nc` rounded up to whole panels, and
/// `lists.0` [`KC`] values for each panel.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx2,fma"))]
unsafe fn pack_b(
    b: Strided<*const f32>,
    p0: usize,
    j0: usize,
    kc: usize,
    nc: usize,
    out: &mut [f32],
    mut lists: Option<(&mut [u32], &mut [usize; NC / NR])>,
) {
    for (q, panel) in out
        .chunks_exact_mut(kc * NR)
        .take(nc.div_ceil(NR))
        .enumerate()
    {
        let first = j0 + q * NR;
        let width = NR.min(nc - q * NR);
        let mut transposed = 0;
        #[cfg(target_arch = "x86_64")]
        if b.row == 1 && width == NR {
            // SAFETY: the panel's 16 columns and `kc` steps lie inside the block.
            transposed = unsafe { pack_transposed_panel(b, p0, first, kc, panel) };
        }
        for (p, step) in panel.chunks_exact_mut(NR).enumerate().skip(transposed) {
            // SAFETY: (p0 + p, first + j) for j < width lies inside the block.
            let start = unsafe { b.ptr.offset(b.offset(p0 + p, first)) };
            // SAFETY: as above.
            unsafe { copy_step(b, start, width, step) };
        }
        if let Some((steps, counts)) = lists.as_mut() {
            let list = &mut steps[q * KC..][..kc];
            let mut count = 0;
            for (p, step) in panel.chunks_exact(NR).enumerate() {
                list[count] = p as u32;
                let bits = step.iter().fold(0, |any, value| any | value.to_bits());
                count += usize::from(bits & 0x7fff_ffff != 0);
            }
            counts[q] = count;
        }
    }
}

/// Returns the transpose of the 8 x 8 block whose rows are `rows`: value `j` of row `i` comes
/// out as value `i` of row `j`. Pairs, then quadruples, are interleaved within each 128-bit
/// half, and the halves are then exchanged.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn transpose_8x8(rows: [std::arch::x86_64::__m256; 8]) -> [std::arch::x86_64::__m256; 8] {
    use std::arch::x86_64::*;
    let [r0, r1, r2, r3, r4, r5, r6, r7] = rows;
    let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
    let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
    let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
    let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
    let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    // Columns 0 to 3 sit in the low halves, columns 4 to 7 in the high ones.
    [
        _mm256_permute2f128_ps::<0x20>(s0, s4),
        _mm256_permute2f128_ps::<0x20>(s1, s5),
        _mm256_permute2f128_ps::<0x20>(s2, s6),
        _mm256_permute2f128_ps::<0x20>(s3, s7),
        _mm256_permute2f128_ps::<0x31>(s0, s4),
        _mm256_permute2f128_ps::<0x31>(s1, s5),
        _mm256_permute2f128_ps::<0x31>(s2, s6),
        _mm256_permute2f128_ps::<0x31>(s3, s7),
    ]
}

/// Packs the first `kc / 8 * 8` steps of one full panel of a `B` whose columns are contiguous
/// (unit row stride), such as `X^T` in `dW[1] = dZ[1] X^T`, as [`pack_b`] would, and returns
/// that number of steps. Each group of 8 steps loads 8 values from each of the 16 columns and transposes
/// them in registers, instead of gathering one value per step and column (16 scattered reads
/// per step).
///
/// # Safety
///
/// The CPU must have AVX2. Columns `first .. first + NR` and steps `p0 .. p0 + kc` must lie
/// inside `B`, and `panel` must hold `kc * NR` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_transposed_panel(
    b: Strided<*const f32>,
    p0: usize,
    first: usize,
    kc: usize,
    panel: &mut [f32],
) -> usize {
    use std::arch::x86_64::*;
    let eights = kc / 8;
    for e in 0..eights {
        for half in 0..2 {
            // SAFETY: column `first + half 8 + c`, steps `p0 + 8 e ..` (8 contiguous values).
            let column = |c: usize| unsafe {
                _mm256_loadu_ps(b.ptr.offset(b.offset(p0 + e * 8, first + half * 8 + c)))
            };
            let steps = transpose_8x8(std::array::from_fn(column));
            for (t, step) in steps.into_iter().enumerate() {
                let out = &mut panel[(e * 8 + t) * NR + half * 8..][..8];
                // SAFETY: `out` has 8 values.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), step) };
            }
        }
    }
    eights * 8
}

/// Copies one step of a panel: `width` values from `start` through `B`'s column stride, then
/// zeros up to [`NR`].
///
/// # Safety
///
/// `start` must be valid for `width` reads through the column stride.
#[inline(always)]
unsafe fn copy_step(b: Strided<*const f32>, start: *const f32, width: usize, step: &mut [f32]) {
    if b.col == 1 && width == NR {
        // SAFETY: the row's NR values are contiguous. A copy of a fixed length compiles to two
        // vector moves instead of a call to `memmove` per step.
        let row = unsafe { &*start.cast::<[f32; NR]>() };
        step.copy_from_slice(row);
        return;
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

#[cfg(test)]
mod tests {
    use ndarray::{Array2, ArrayView2, s};

    use super::{
        KC, MC, MR, PackedB, SKIP_MIN_COLUMNS, SKIPPED_TILES, Strided, pack_a_block, panel_stride,
    };
    use crate::linalg::gemm;
    use crate::linalg::kernel512::with_kernel;
    use crate::rng::Rng;
    use std::sync::atomic::Ordering;

    fn block(i0: usize, p0: usize, mc: usize, kc: usize) -> super::BlockA {
        super::BlockA { i0, p0, mc, kc }
    }

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

    /// Packs the `mc x kc` block at (2, 1) of `a`, which must have at least `mc + 2` rows and
    /// `kc + 1` columns, and compares every packed value with its source.
    fn assert_packs_block(a: ArrayView2<'_, f32>, mc: usize, kc: usize) {
        let strided = Strided {
            ptr: a.as_ptr(),
            row: a.strides()[0],
            col: a.strides()[1],
        };
        let stride = panel_stride(kc);
        let mut out = vec![f32::NAN; mc.div_ceil(MR) * stride];
        // SAFETY: the block at (2, 1) of mc x kc lies inside `a`, as the caller guarantees.
        unsafe { pack_a_block(strided, block(2, 1, mc, kc), stride, &mut out) };
        for i in 0..mc {
            for p in 0..kc {
                let got = out[i / MR * stride + p * MR + i % MR];
                assert_eq!(got, a[[2 + i, 1 + p]], "row {i}, step {p} of {mc} x {kc}");
            }
        }
    }

    #[test]
    fn packs_column_major_block_of_full_size() {
        if !super::available() {
            // The packing and checking functions are compiled for AVX2 and FMA.
            return;
        }
        // A block of MC x KC fills the buffer's panels, as the largest block does.
        for (mc, kc) in [(MC, KC), (MC - 2, 7)] {
            let w = filled(kc + 3, mc + 5, 10);
            assert_packs_block(w.t(), mc, kc);
        }
    }

    #[test]
    fn packs_row_major_block() {
        if !super::available() {
            // The packing functions are compiled for AVX2 and FMA.
            return;
        }
        // Full blocks, steps left over after groups of eight, and a last panel of 1 row.
        for (mc, kc) in [(MC, KC), (MC - 2, 7), (13, 21)] {
            let a = filled(mc + 5, kc + 3, 11);
            assert_packs_block(a.view(), mc, kc);
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
        // Split by columns, by rows (a tall `C`), and by columns with zero steps skipped.
        for (m, n, k, zero_steps) in [
            (300, 130, 784, false),
            (3000, 64, 200, false),
            (300, 600, 784, true),
        ] {
            let a = filled(m, k, 10);
            let b = if zero_steps {
                with_zero_steps(k, n, 11)
            } else {
                filled(k, n, 11)
            };
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
                    unsafe {
                        super::sgemm(
                            (m, n, k),
                            1.0,
                            product,
                            other,
                            None,
                            0.0,
                            out,
                            threads,
                            false,
                            None,
                        )
                    };
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

    /// Returns a `k x n` matrix whose rows are zero on the first half of the columns every third
    /// step and on all columns every fifth step. A ReLU layer's output or an image's background
    /// leaves such whole steps of a panel at zero. One of the zeros is `-0.0`.
    fn with_zero_steps(k: usize, n: usize, seed: u64) -> Array2<f32> {
        let mut b = filled(k, n, seed);
        for ((p, j), value) in b.indexed_iter_mut() {
            if (p % 3 == 0 && j < n / 2) || p % 5 == 1 {
                *value = 0.0;
            }
        }
        b[[1, 0]] = -0.0;
        b
    }

    /// Computes `alpha A B + beta C0` one column of `B` at a time. A product of one column lists
    /// no steps of `B`, and it lists no steps of `A` where `A` has none zero, as in these tests.
    fn column_by_column(
        alpha: f32,
        a: ArrayView2<'_, f32>,
        b: ArrayView2<'_, f32>,
        beta: f32,
        c0: &Array2<f32>,
    ) -> Array2<f32> {
        let mut c = c0.clone();
        for j in 0..b.ncols() {
            gemm(
                alpha,
                a,
                b.slice(s![.., j..j + 1]),
                beta,
                &mut c.slice_mut(s![.., j..j + 1]),
            )
            .unwrap();
        }
        c
    }

    #[test]
    fn skipping_zero_steps_changes_no_bit() {
        // `A` read in place (split across threads) and packed (products below the threshold
        // for a split), row-major and column-major, and two blocks of the inner dimension.
        let a = filled(100, 1100, 12);
        let w = filled(40, 70, 13);
        for (a, n) in [
            (a.view(), SKIP_MIN_COLUMNS + 4),
            (w.t(), 300),
            (a.slice(s![..13, ..37]), 530),
            (a.slice(s![..8, ..30]), 520),
            (w.slice(s![..30, ..12]).t(), 260),
        ] {
            let b = with_zero_steps(a.ncols(), n, 14);
            let c0 = filled(a.nrows(), n, 15);
            let before = SKIPPED_TILES.load(Ordering::Relaxed);
            for (alpha, beta) in [(1.0, 0.0), (-0.5, 2.0)] {
                let mut c = c0.clone();
                gemm(alpha, a, b.view(), beta, &mut c.view_mut()).unwrap();
                let expected = column_by_column(alpha, a, b.view(), beta, &c0);
                for (got, want) in c.iter().zip(&expected) {
                    assert_eq!(got.to_bits(), want.to_bits(), "A {:?}, n {n}", a.dim());
                }
                check(alpha, a, b.view(), beta, c0.clone());
            }
            assert!(
                SKIPPED_TILES.load(Ordering::Relaxed) > before,
                "A {:?}, n {n}: no tile skipped a step",
                a.dim()
            );
        }
    }

    #[test]
    fn negative_zero_sum_matches_full_sum() {
        // `-1e-30 * 1e-30` underflows to `-0`. Over every step, the zero step then adds
        // `1 * 0 = +0` and the sum is `+0`. A sum over the listed steps alone stays at `-0`.
        let mut a = Array2::zeros((1, 2));
        a[[0, 0]] = -1e-30;
        a[[0, 1]] = 1.0;
        let mut b = Array2::zeros((2, SKIP_MIN_COLUMNS));
        b.row_mut(0).fill(1e-30);
        let mut c = Array2::from_elem((1, SKIP_MIN_COLUMNS), f32::NAN);
        gemm(1.0, a.view(), b.view(), 0.0, &mut c.view_mut()).unwrap();
        for value in &c {
            assert_eq!(value.to_bits(), 0.0f32.to_bits());
        }

        // Row 100 (a sum at `-0` over its listed steps) shares a block of `A` with row 150 (an
        // infinity), so the block sums every step, on one thread and split by columns. Row 100
        // must be `+0` either way.
        let n = SKIP_MIN_COLUMNS + 44;
        let mut a = Array2::zeros((1024, 32));
        a[[100, 0]] = -1e-30;
        a[[100, 30]] = 1.0;
        a[[150, 31]] = f32::INFINITY;
        let mut b = filled(32, n, 20);
        b.row_mut(0).fill(1e-30);
        b.row_mut(30).fill(0.0);
        b.row_mut(31).fill(0.0);
        let mut c = Array2::zeros((1024, n));
        gemm(1.0, a.view(), b.view(), 0.0, &mut c.view_mut()).unwrap();
        for value in c.row(100) {
            assert_eq!(value.to_bits(), 0.0f32.to_bits());
        }
    }

    #[test]
    fn infinite_a_at_zero_step_gives_nan() {
        // `inf * 0` is NaN, so a row of `A` with an infinity or a NaN at a step where `B` is
        // zero must come out NaN, as the full sum gives, in place and packed.
        let mut a = filled(100, 50, 16);
        let mut w = filled(50, 40, 17);
        let mut small = filled(40, 12, 18);
        a[[7, 1]] = f32::INFINITY;
        w[[1, 33]] = f32::NAN;
        small[[1, 5]] = f32::NEG_INFINITY;
        for (a, row) in [(a.view(), 7), (w.t(), 33), (small.t(), 5)] {
            let n = 260;
            let b = with_zero_steps(a.ncols(), n, 18);
            assert!(b.row(1).iter().all(|&value| value == 0.0));
            let mut c = Array2::zeros((a.nrows(), n));
            gemm(1.0, a, b.view(), 0.0, &mut c.view_mut()).unwrap();
            assert!(
                c.row(row).iter().all(|value| value.is_nan()),
                "A {:?}",
                a.dim()
            );
            let others = c.iter().filter(|value| value.is_finite()).count();
            assert_eq!(others, (a.nrows() - 1) * n, "A {:?}", a.dim());
        }
    }

    #[test]
    fn trusted_finite_a_is_not_checked() {
        // With `a_finite`, the infinity at a zero step of `B` is left out unseen, so its row
        // comes out finite. That shows the check is skipped, which is what the flag is for,
        // and why the caller must guarantee it.
        if !super::available() {
            return;
        }
        let mut a = filled(100, 50, 16);
        a[[7, 1]] = f32::INFINITY;
        let w = a.t().to_owned();
        for a in [a.view(), w.t()] {
            let b = with_zero_steps(a.ncols(), 260, 18);
            assert!(b.row(1).iter().all(|&value| value == 0.0));
            let c = product(a, b.view(), 2, true);
            assert!(
                c.iter().all(|value| value.is_finite()),
                "A {:?}",
                a.strides()
            );
        }
    }

    #[test]
    fn finiteness_checks_read_only_the_block() {
        if !super::available() {
            // The packing and checking functions are compiled for AVX2 and FMA.
            return;
        }
        let mut a = filled(20, 30, 19);
        a[[0, 0]] = f32::INFINITY;
        a[[19, 29]] = f32::NAN;
        let strided = |view: ArrayView2<'_, f32>| Strided {
            ptr: view.as_ptr(),
            row: view.strides()[0],
            col: view.strides()[1],
        };
        let at = a.t().to_owned();
        let every_other = a.slice(s![.., ..;2]);
        for (view, i0, p0) in [(a.view(), 0, 0), (at.t(), 0, 0), (every_other, 0, 0)] {
            // SAFETY: every block below lies inside the view.
            unsafe {
                assert!(!super::block_is_finite(strided(view), block(i0, p0, 3, 3)));
                assert!(super::block_is_finite(strided(view), block(1, 0, 18, 3)));
                assert!(super::block_is_finite(strided(view), block(0, 1, 3, 10)));
            }
        }
        // SAFETY: as above.
        unsafe {
            assert!(!super::block_is_finite(
                strided(a.view()),
                block(19, 29, 1, 1)
            ));
            assert!(!super::block_is_finite(
                strided(at.t()),
                block(15, 20, 5, 10)
            ));
        }

        // A packed block of 8 rows: one full panel and 2 rows of a second one, whose 4 unused
        // rows contain NaN left from an earlier block, as do the 4 values between the panels.
        let kc = 5;
        let stride = MR * kc + 4;
        let mut packed = vec![1.0f32; 2 * stride];
        packed[MR * kc..stride].fill(f32::NAN);
        for step in packed[stride..].chunks_exact_mut(MR) {
            step[2..].fill(f32::NAN);
        }
        assert!(super::packed_is_finite(&packed, 8, kc, stride));
        packed[stride + 3 * MR + 1] = f32::NEG_INFINITY;
        assert!(!super::packed_is_finite(&packed, 8, kc, stride));
        packed[stride + 3 * MR + 1] = 1.0;
        packed[2 * MR + 5] = f32::NAN;
        assert!(!super::packed_is_finite(&packed, 8, kc, stride));
    }

    /// Computes `A B` (`m x n`, row-major) on `threads` threads, or returns NaN everywhere
    /// when the CPU cannot run [`super::sgemm`].
    fn on_threads(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>, threads: usize) -> Array2<f32> {
        product(a, b, threads, false)
    }

    /// Computes what [`on_threads`] does, passing `a_finite` to [`super::sgemm`].
    fn product(
        a: ArrayView2<'_, f32>,
        b: ArrayView2<'_, f32>,
        threads: usize,
        a_finite: bool,
    ) -> Array2<f32> {
        product_packed(a, b, None, threads, a_finite)
    }

    /// Returns the pointer and strides of `view`.
    fn strided(view: ArrayView2<'_, f32>) -> Strided<*const f32> {
        Strided {
            ptr: view.as_ptr(),
            row: view.strides()[0],
            col: view.strides()[1],
        }
    }

    /// Packs `b` with [`PackedB::new`]. The caller checks that the CPU runs [`super::sgemm`].
    fn pack(b: ArrayView2<'_, f32>) -> PackedB {
        assert!(super::available(), "packing needs a CPU that runs sgemm");
        let (k, n) = b.dim();
        // SAFETY: the CPU runs sgemm, and `strided(b)` matches the view, whose shape is k x n.
        unsafe { PackedB::new(strided(b), k, n) }
    }

    /// Computes what [`product`] does, passing `packed_b` to [`super::sgemm`].
    fn product_packed(
        a: ArrayView2<'_, f32>,
        b: ArrayView2<'_, f32>,
        packed_b: Option<&PackedB>,
        threads: usize,
        a_finite: bool,
    ) -> Array2<f32> {
        let (m, k) = a.dim();
        let n = b.ncols();
        let mut c = Array2::from_elem((m, n), f32::NAN);
        let out = Strided {
            ptr: c.as_mut_ptr(),
            row: n as isize,
            col: 1,
        };
        if super::available() {
            // SAFETY: the views and `c` match the shapes and strides given.
            unsafe {
                super::sgemm(
                    (m, n, k),
                    1.0,
                    strided(a),
                    strided(b),
                    packed_b,
                    0.0,
                    out,
                    threads,
                    a_finite,
                    None,
                )
            };
        }
        c
    }

    #[test]
    fn packed_b_gives_the_same_bits() {
        if !super::available() {
            eprintln!("skipped: this CPU cannot run sgemm");
            return;
        }
        // Tall (split by rows), wide (split by columns), two blocks of steps and of columns
        // with a partial last panel, a transposed `B` as in inference, and a tiny product.
        for (m, k, n, transposed) in [
            (3000, 200, 64, false),
            (64, 300, 600, false),
            (400, 1500, 530, false),
            (2000, 784, 100, true),
            (5, 3, 7, false),
        ] {
            let a = filled(m, k, 20);
            let stored = if transposed {
                filled(n, k, 21)
            } else {
                filled(k, n, 21)
            };
            let b = if transposed {
                stored.t()
            } else {
                stored.view()
            };
            let packed = pack(b);
            for packed in [packed.clone(), packed] {
                let first = packed.values.as_ptr().wrapping_add(packed.start);
                assert_eq!(first as usize % 64, 0, "{m} x {k} x {n}: panels off a line");
                for threads in [1, 2] {
                    let want = product(a.view(), b, threads, false);
                    let got = product_packed(a.view(), b, Some(&packed), threads, false);
                    assert_eq!(got, want, "{m} x {k} x {n}, {threads} threads");
                }
            }
        }
        // A packed `B` of another shape is ignored: one more column (the same number of
        // panels), and half the steps.
        let (a, b) = (filled(50, 40, 22), filled(40, 30, 23));
        for (k, n) in [(40, 31), (20, 30)] {
            let packed = pack(filled(k, n, 24).view());
            let got = product_packed(a.view(), b.view(), Some(&packed), 2, false);
            assert_eq!(got, product(a.view(), b.view(), 2, false), "{k} x {n}");
        }
    }

    #[test]
    fn rows_done_gets_final_rows_on_two_threads() {
        // Split by columns (wide), by rows (tall), and by rows over two blocks of steps, with
        // two threads given whatever the machine has.
        for (m, k, n) in [(64, 70, 512), (301, 19, 5), (400, 1100, 24)] {
            if !super::available() {
                eprintln!("skipped: this CPU cannot run sgemm");
                return;
            }
            let a = filled(m, k, 40);
            let b = filled(k, n, 41);
            let want = product(a.view(), b.view(), 2, false);
            let mut c = Array2::from_elem((m, n), f32::NAN);
            let ptr = c.as_mut_ptr() as usize;
            let ranges = std::sync::Mutex::new(Vec::new());
            let done = |range: std::ops::Range<usize>| {
                // SAFETY: the product is in place and `range` is final, so its rows are only
                // read here, inside `c`.
                let rows = unsafe {
                    std::slice::from_raw_parts(
                        (ptr as *const f32).add(range.start * n),
                        range.len() * n,
                    )
                };
                let final_rows = want.slice(ndarray::s![range.clone(), ..]);
                assert_eq!(
                    rows,
                    final_rows.as_slice().unwrap(),
                    "{m} x {k} x {n}: {range:?}"
                );
                ranges.lock().unwrap().push(range);
            };
            let out = Strided {
                ptr: c.as_mut_ptr(),
                row: n as isize,
                col: 1,
            };
            let strided = |view: ArrayView2<'_, f32>| Strided {
                ptr: view.as_ptr(),
                row: view.strides()[0],
                col: view.strides()[1],
            };
            // SAFETY: the views and `c` match the shapes and strides given.
            unsafe {
                super::sgemm(
                    (m, n, k),
                    1.0,
                    strided(a.view()),
                    strided(b.view()),
                    None,
                    0.0,
                    out,
                    2,
                    false,
                    Some(&done),
                )
            };
            let mut ranges = ranges.into_inner().unwrap();
            ranges.sort_by_key(|range| range.start);
            let covered = ranges.iter().fold(0, |next, range| {
                assert_eq!(range.start, next, "{m} x {k} x {n}: {range:?} out of turn");
                range.end
            });
            assert_eq!(covered, m, "{m} x {k} x {n}");
        }
    }

    #[test]
    fn avx512_kernel_matches_avx2_bits() {
        // Read while no other test forces the AVX2 kernel.
        if !with_kernel(false, super::kernel512::available) {
            eprintln!("skipped: this CPU has no AVX-512F, so every product runs the AVX2 kernel");
            return;
        }
        let big = filled(300, 1100, 30);
        let tall = with_zero_steps(300, 1000, 31)
            .t()
            .as_standard_layout()
            .into_owned();
        // `-1e-30 * 1e-30` underflows to `-0`, and step 1 of `B` is zero: the listed sum is
        // `-0`, the full one `+0` (as in `negative_zero_sum_matches_full_sum`).
        let mut underflow = Array2::zeros((12, 2));
        underflow.column_mut(0).fill(-1e-30);
        underflow.column_mut(1).fill(1.0);

        let mut products: Vec<(ArrayView2<'_, f32>, Array2<f32>)> = Vec::new();
        // Edge shapes around the tiles (6 and 12 rows, 16 and 32 columns), with `A` row-major
        // (read in place) and transposed (packed when it spans enough panels).
        for (m, n, k) in [
            (5, 15, 3),
            (12, 32, 7),
            (13, 33, 40),
            (25, 100, 300),
            (97, 520, 64),
        ] {
            products.push((big.slice(s![..m, ..k]), filled(k, n, 33)));
            products.push((big.slice(s![..k, ..m]).reversed_axes(), filled(k, n, 34)));
        }
        // Zero steps of `B` shared by two panels.
        products.push((big.slice(s![..97, ..300]), with_zero_steps(300, 530, 35)));
        // Panels whose zero steps differ, so that two panels side by side share the union of
        // their lists.
        let mut staggered = filled(300, 530, 38);
        for ((p, j), value) in staggered.indexed_iter_mut() {
            if (p + j / 16) % 4 == 0 || p % 5 == 1 {
                *value = 0.0;
            }
        }
        products.push((big.slice(s![..97, ..300]), staggered));
        let mut tiny = Array2::zeros((2, SKIP_MIN_COLUMNS + 20));
        tiny.row_mut(0).fill(1e-30);
        products.push((underflow.view(), tiny));
        // A tall product, whose zero steps of `A` are listed when it runs on the AVX2 kernel.
        products.push((tall.view(), filled(300, 40, 37)));

        for (a, b) in &products {
            for threads in [1, 2] {
                let wide = with_kernel(false, || on_threads(*a, b.view(), threads));
                let narrow = with_kernel(true, || on_threads(*a, b.view(), threads));
                for (got, want) in wide.iter().zip(&narrow) {
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "A {:?}, B {:?}",
                        a.dim(),
                        b.dim()
                    );
                }
            }
        }
    }

    /// Returns a column-major copy of `a`. A tall product with a column-major `A` sums every
    /// step, so it is the reference for one that lists the zero steps of `A`.
    fn column_major(a: ArrayView2<'_, f32>) -> Array2<f32> {
        a.t().as_standard_layout().into_owned().reversed_axes()
    }

    #[test]
    fn listing_zero_steps_of_a_changes_no_bit() {
        // Tall products (at least TALL times more rows than columns) with a row-major `A` whose
        // panels of six rows share zero steps, as the examples of a batch share background
        // pixels. One block of the inner dimension and two, and a last panel of 4 rows.
        for (m, n, k) in [(600, 40, 300), (1000, 130, 1100), (100, 20, 50)] {
            let a = with_zero_steps(k, m, 21)
                .t()
                .as_standard_layout()
                .into_owned();
            let b = filled(k, n, 22);
            let expected = on_threads(column_major(a.view()).view(), b.view(), 1);
            for threads in 1..=3 {
                // Only products on the AVX2 kernel list the steps of `A`.
                let (before, c, after) = with_kernel(true, || {
                    let before = SKIPPED_TILES.load(Ordering::Relaxed);
                    let c = on_threads(a.view(), b.view(), threads);
                    (before, c, SKIPPED_TILES.load(Ordering::Relaxed))
                });
                for (got, want) in c.iter().zip(&expected) {
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "{m} x {n} x {k}, {threads} threads"
                    );
                }
                if super::available() {
                    assert!(
                        after > before,
                        "{m} x {n} x {k}, {threads} threads: no tile listed steps of A"
                    );
                }
            }
            check(1.0, a.view(), b.view(), 0.0, Array2::zeros((m, n)));
        }
    }

    /// Returns `A` (96 x 2) and `B` (2 x 16) whose column 1 and row 1 meet at a zero step of
    /// every panel of `A`: column 1 of `A` is zero, and row 1 of `B` is all ones.
    fn zero_step_of_a(first_column: f32) -> (Array2<f32>, Array2<f32>) {
        let mut a = Array2::zeros((96, 2));
        a.column_mut(0).fill(first_column);
        let mut b = Array2::zeros((2, 16));
        b.row_mut(0).fill(1e-30);
        b.row_mut(1).fill(1.0);
        (a, b)
    }

    #[test]
    fn listed_steps_of_a_negative_zero() {
        // -1e-30 * 1e-30 underflows to `-0`, and the zero step adds `0 * 1 = +0`, so the full
        // sum is `+0`. The listed sum alone would stay at `-0`.
        let (a, b) = zero_step_of_a(-1e-30);
        if !super::available() {
            return;
        }
        for (threads, avx2) in [(1, false), (2, false), (1, true), (2, true), (3, true)] {
            let c = with_kernel(avx2, || on_threads(a.view(), b.view(), threads));
            for value in &c {
                assert_eq!(value.to_bits(), 0.0f32.to_bits(), "{threads} threads");
            }
        }
    }

    #[test]
    fn listed_steps_of_a_infinite_b() {
        // Where `B[1, j]` is infinite, the zero step adds `0 * inf = NaN` to column j.
        let (a, mut b) = zero_step_of_a(1.0);
        b[[1, 5]] = f32::INFINITY;
        if !super::available() {
            return;
        }
        for (threads, avx2) in [(1, false), (2, false), (1, true), (2, true), (3, true)] {
            let c = with_kernel(avx2, || on_threads(a.view(), b.view(), threads));
            assert!(
                c.column(5).iter().all(|value| value.is_nan()),
                "{threads} threads"
            );
            assert_eq!(
                c.iter().filter(|value| value.is_nan()).count(),
                96,
                "{threads} threads"
            );
        }
    }

    #[test]
    fn lists_steps_of_a_until_two_panels_miss() {
        if !super::available() {
            // `list_a_steps` is compiled for AVX2 and FMA.
            return;
        }
        // Five panels over 70 steps. Rows 0 to 5 are zero at steps 0 and 69: 2 of 70, below 1
        // in 16, and one of them is `-0.0`. Rows 6 to 11 are zero at steps 3 to 9 (7 of 70).
        // Rows 12 to 23 are zero nowhere, and rows 24 to 29 at every even step.
        let (mc, kc) = (30, 70);
        let mut a = filled(mc, kc, 23);
        for i in 0..6 {
            a[[i, 0]] = 0.0;
            a[[i, 69]] = -0.0;
        }
        for i in 6..12 {
            a.slice_mut(s![i, 3..10]).fill(0.0);
        }
        for i in 24..30 {
            a.slice_mut(s![i, ..;2]).fill(0.0);
        }

        let strided = Strided {
            ptr: a.as_ptr(),
            row: kc as isize,
            col: 1,
        };
        let mut lists = vec![u32::MAX; KC * (MC / MR)];
        let mut counts = [usize::MAX; MC / MR];
        // SAFETY: the block is all of `a`, which is row-major.
        unsafe { super::list_a_steps(strided, block(0, 0, mc, kc), &mut lists, &mut counts) };

        assert_eq!(counts[..5], [68, 63, 70, 70, 70]);
        let expected: Vec<u32> = (0..70).filter(|p| !(3..10).contains(p)).collect();
        assert_eq!(lists[KC..][..63], expected[..]);
        // Panels 0 and 2 missed, so panel 4 was not read although half its steps are zero.
        assert!(lists[4 * KC..][..35].iter().all(|&step| step == u32::MAX));
    }
}
