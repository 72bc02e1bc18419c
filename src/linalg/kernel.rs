//! The `f32` micro-kernel: a 6 x 16 tile of `C` updated with AVX2 and FMA.
//!
//! For one tile, `C[0..6, 0..16] = alpha sum_p A[i, p] B[p, j] + beta C`, with `p` running over
//! one block of the inner dimension. The 12 accumulators (6 rows, 2 vectors of 8), the two
//! vectors of `B` and one broadcast of `A` fill 15 of the 16 AVX registers. Each step over `p`
//! does 12 fused multiply-adds against 2 loads and 6 broadcasts, so the two FMA units set the
//! pace rather than memory.
//!
//! `A` is read in place through its strides (one broadcast per row and step), so row-major
//! weights, their transposes and packed panels all work without copying. `B` must be packed:
//! 16 consecutive values per step, zero beyond the matrix's last column.
//!
//! [`tile_avx2`] runs over every step of the block, or over a list of steps, so that the
//! caller can leave out the steps at which the panel of `B`, or the tile's rows of `A`, are
//! zero ([`Steps`]).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Rows of the tile.
pub(crate) const MR: usize = 6;
/// Columns of the tile, the width of a packed panel of `B`.
pub(crate) const NR: usize = 16;

/// The operands of one tile: where it reads `A` and `B` and writes `C`.
#[derive(Clone, Copy)]
pub(crate) struct Tile {
    /// `A[i0, p0]`, the tile's first row at the block's first step.
    pub a: *const f32,
    /// Distance between rows of `A`.
    pub a_row: isize,
    /// Distance between columns of `A` (one step of `p`).
    pub a_col: isize,
    /// The packed panel: `kc` groups of [`NR`] values.
    pub b: *const f32,
    /// `C[i0, j0]`.
    pub c: *mut f32,
    /// Distance between rows of `C`.
    pub c_row: isize,
    /// Distance between columns of `C`.
    pub c_col: isize,
    /// Valid rows (at most [`MR`]) and columns (at most [`NR`]) of the tile.
    pub rows: usize,
    pub cols: usize,
}

/// Returns whether this CPU runs [`tile_avx2`].
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// One step of the tile: both vectors of `B` at `$b`, and the six rows of `A` at `$offset`
/// from their row pointers, added into the twelve accumulators.
macro_rules! step {
    ($b:expr, $offset:expr, $rows:expr, $acc:expr) => {{
        let (a0, a1, a2, a3, a4, a5) = $rows;
        let (c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51) = $acc;
        let b0 = _mm256_loadu_ps($b);
        let b1 = _mm256_loadu_ps($b.add(8));
        let x = _mm256_broadcast_ss(&*a0.offset($offset));
        *c00 = _mm256_fmadd_ps(x, b0, *c00);
        *c01 = _mm256_fmadd_ps(x, b1, *c01);
        let x = _mm256_broadcast_ss(&*a1.offset($offset));
        *c10 = _mm256_fmadd_ps(x, b0, *c10);
        *c11 = _mm256_fmadd_ps(x, b1, *c11);
        let x = _mm256_broadcast_ss(&*a2.offset($offset));
        *c20 = _mm256_fmadd_ps(x, b0, *c20);
        *c21 = _mm256_fmadd_ps(x, b1, *c21);
        let x = _mm256_broadcast_ss(&*a3.offset($offset));
        *c30 = _mm256_fmadd_ps(x, b0, *c30);
        *c31 = _mm256_fmadd_ps(x, b1, *c31);
        let x = _mm256_broadcast_ss(&*a4.offset($offset));
        *c40 = _mm256_fmadd_ps(x, b0, *c40);
        *c41 = _mm256_fmadd_ps(x, b1, *c41);
        let x = _mm256_broadcast_ss(&*a5.offset($offset));
        *c50 = _mm256_fmadd_ps(x, b0, *c50);
        *c51 = _mm256_fmadd_ps(x, b1, *c51);
    }};
}

/// The steps of the block that a tile sums over.
#[derive(Clone, Copy)]
pub(crate) enum Steps<'a> {
    /// Every step from 0 to `kc - 1`.
    All(usize),
    /// The listed steps, in increasing order, out of the block's `kc`: those at which the panel
    /// of `B`, or the tile's rows of `A`, have a nonzero value.
    Listed { steps: &'a [u32], kc: usize },
}

impl Steps<'_> {
    /// Returns how many steps a tile sums over.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn count(&self) -> usize {
        match self {
            Steps::All(kc) => *kc,
            Steps::Listed { steps, .. } => steps.len(),
        }
    }
}

/// Updates one tile: `C = alpha A B + beta C` on its valid rows and columns, summed over
/// `steps`.
///
/// With `beta = 0`, `C` is written without being read. Rows past `tile.rows` recompute the last
/// valid row of `A` and are discarded, so `A` is never read out of bounds.
///
/// A step left out of [`Steps::Listed`] would add `A[i, p] * 0` to each sum (or `0 * B[p, j]`
/// when the list comes from `A`). When the other factor is finite, that term is a zero, and
/// adding a zero to a nonzero sum or to `+0` leaves its bits unchanged. Only a sum at `-0` (a
/// product that underflowed, for instance) can differ: `-0 + +0` is `+0`. So the listed sum
/// equals the full one except where it ends at `-0`. A tile with a `-0` sum is therefore summed
/// again over every step, and the tile comes out bit-identical to one over all steps. When the
/// other factor is infinite or NaN, the term is NaN, so the caller lists steps of `B` only
/// against a finite block of `A`, and steps of `A` only against a finite block of `B`.
///
/// # Safety
///
/// The CPU must have AVX2 and FMA ([`available`]). With `kc` steps in the block (every listed
/// step below `kc`), `tile.a` must be valid for `tile.rows` rows and `kc` columns with its
/// strides, `tile.b` for `kc * NR` values, and `tile.c` for `tile.rows x tile.cols` writes with
/// its strides. Also `1 <= rows <= MR` and `1 <= cols <= NR`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn tile_avx2(steps: Steps<'_>, tile: Tile, alpha: f32, beta: f32) {
    let rows = row_pointers(&tile);
    if tile.rows == MR && tile.cols == NR && tile.c_col == 1 {
        // Prefetch the write-back's lines of `C` now, so that their reads overlap the sums (see
        // `prefetch_rows_of_c` in [`super::kernel512`]). That took 2.6 and 2.9% off the products
        // of a step of 784-1024-1024-10 on this kernel in two runs (BENCHMARKS.md).
        for i in 0..MR {
            // SAFETY: row i of a full tile, inside `C`.
            let row = unsafe { tile.c.offset(tile.c_row * i as isize) };
            // The row's 16 values span one or two lines.
            for column in [0, NR - 1] {
                // SAFETY: inside the row, and a prefetch does not fault.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(row.add(column).cast()) };
            }
        }
    }
    let sums = match steps {
        // SAFETY: forwarded from the caller.
        Steps::All(kc) => unsafe { sum_all(kc, &tile, rows) },
        Steps::Listed { steps: list, kc } => {
            // SAFETY: forwarded from the caller.
            let sums = unsafe { sum_listed(list, &tile, rows) };
            if has_negative_zero(&sums) {
                // A `-0` sum may be `+0` over every step (see above), so sum again over all.
                // SAFETY: forwarded from the caller.
                unsafe { sum_all(kc, &tile, rows) }
            } else {
                sums
            }
        }
    };
    let acc = [
        [sums[0], sums[1]],
        [sums[2], sums[3]],
        [sums[4], sums[5]],
        [sums[6], sums[7]],
        [sums[8], sums[9]],
        [sums[10], sums[11]],
    ];
    let alpha_v = _mm256_set1_ps(alpha);
    if tile.rows == MR && tile.cols == NR && tile.c_col == 1 {
        for (i, acc) in acc.iter().enumerate() {
            // SAFETY: a full tile with unit column stride: 16 contiguous values per row.
            unsafe {
                let c = tile.c.offset(tile.c_row * i as isize);
                let (mut lo, mut hi) = (
                    _mm256_mul_ps(alpha_v, acc[0]),
                    _mm256_mul_ps(alpha_v, acc[1]),
                );
                if beta != 0.0 {
                    let beta_v = _mm256_set1_ps(beta);
                    lo = _mm256_fmadd_ps(beta_v, _mm256_loadu_ps(c), lo);
                    hi = _mm256_fmadd_ps(beta_v, _mm256_loadu_ps(c.add(8)), hi);
                }
                _mm256_storeu_ps(c, lo);
                _mm256_storeu_ps(c.add(8), hi);
            }
        }
        return;
    }
    let mut values = [0.0f32; MR * NR];
    for (i, acc) in acc.iter().enumerate() {
        // SAFETY: `values` has room for MR rows of NR.
        unsafe {
            _mm256_storeu_ps(values.as_mut_ptr().add(i * NR), acc[0]);
            _mm256_storeu_ps(values.as_mut_ptr().add(i * NR + 8), acc[1]);
        }
    }
    for i in 0..tile.rows {
        for j in 0..tile.cols {
            // SAFETY: inside the valid rows and columns of the tile.
            unsafe {
                let c = tile
                    .c
                    .offset(tile.c_row * i as isize + tile.c_col * j as isize);
                let product = alpha * values[i * NR + j];
                *c = if beta == 0.0 {
                    product
                } else {
                    beta.mul_add(*c, product)
                };
            }
        }
    }
}

/// The tile's six row pointers into `A`, from [`row_pointers`].
type Rows = (
    *const f32,
    *const f32,
    *const f32,
    *const f32,
    *const f32,
    *const f32,
);

/// Returns the tile's twelve sums (row by row, two vectors a row) over every step of the
/// block.
///
/// # Safety
///
/// As for [`tile_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn sum_all(kc: usize, tile: &Tile, rows: Rows) -> [__m256; 2 * MR] {
    // Twelve named accumulators rather than an array, because with the array the compiler kept
    // one accumulator in the register it also used for the broadcast, and copied it out and
    // back in every step.
    let zero = _mm256_setzero_ps();
    let (mut c00, mut c01, mut c10, mut c11, mut c20, mut c21) =
        (zero, zero, zero, zero, zero, zero);
    let (mut c30, mut c31, mut c40, mut c41, mut c50, mut c51) =
        (zero, zero, zero, zero, zero, zero);
    let mut b = tile.b;
    let mut offset = 0isize;
    for _ in 0..kc {
        // SAFETY: the caller guarantees `kc` steps of `A` through its strides and `kc * NR`
        // packed values of `B`.
        unsafe {
            step!(
                b,
                offset,
                rows,
                (
                    &mut c00, &mut c01, &mut c10, &mut c11, &mut c20, &mut c21, &mut c30, &mut c31,
                    &mut c40, &mut c41, &mut c50, &mut c51
                )
            );
            b = b.add(NR);
        }
        offset += tile.a_col;
    }
    [c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51]
}

/// Returns the tile's twelve sums over the listed steps.
///
/// # Safety
///
/// As for [`tile_avx2`], with every listed step below the block's `kc`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn sum_listed(list: &[u32], tile: &Tile, rows: Rows) -> [__m256; 2 * MR] {
    let zero = _mm256_setzero_ps();
    let (mut c00, mut c01, mut c10, mut c11, mut c20, mut c21) =
        (zero, zero, zero, zero, zero, zero);
    let (mut c30, mut c31, mut c40, mut c41, mut c50, mut c51) =
        (zero, zero, zero, zero, zero, zero);
    for &p in list {
        // SAFETY: the caller guarantees that step `p` lies inside the block of `A` and the
        // packed panel of `B`.
        unsafe {
            let b = tile.b.add(p as usize * NR);
            step!(
                b,
                p as isize * tile.a_col,
                rows,
                (
                    &mut c00, &mut c01, &mut c10, &mut c11, &mut c20, &mut c21, &mut c30, &mut c31,
                    &mut c40, &mut c41, &mut c50, &mut c51
                )
            );
        }
    }
    [c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51]
}

/// Returns whether any lane of `sums` is `-0`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn has_negative_zero(sums: &[__m256; 2 * MR]) -> bool {
    let zero = _mm256_setzero_ps();
    let mut signs = zero;
    for &sum in sums {
        // The mask keeps the lanes equal to zero, and their sign bit separates `-0` from `+0`.
        let zeros = _mm256_and_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(sum, zero), sum);
        signs = _mm256_or_ps(signs, zeros);
    }
    _mm256_movemask_ps(signs) != 0
}

/// Returns the tile's six row pointers into `A`. Rows past `tile.rows` repeat the last valid row.
fn row_pointers(tile: &Tile) -> Rows {
    let last = tile.rows as isize - 1;
    let row = |i: isize| tile.a.wrapping_offset(tile.a_row * i.min(last));
    (row(0), row(1), row(2), row(3), row(4), row(5))
}
