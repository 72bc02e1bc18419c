//! The `f32` micro-kernel for CPUs with AVX-512: tiles of 6 or 12 rows by 32 columns of `C`,
//! updated with 512-bit fused multiply-adds.
//!
//! For one tile, `C[0..R, 0..32] = alpha sum_p A[i, p] B[p, j] + beta C` with `R` = 6 or 12,
//! `p` running over one block of the inner dimension. One step of a packed panel of `B` (16
//! values) fills a 512-bit register, and the tile spans two neighbouring panels. Each row then
//! has two accumulators: 24 for 12 rows, which with the two steps of `B` take 26 of the 32
//! registers. Each step does two fused multiply-adds per broadcast of `A`. With one per
//! broadcast, as in a tile of 12 x 16, the broadcasts saturate the load ports. In a scratch C
//! loop with its operands in L1, on one core of the Xeon of BENCHMARKS.md, 12 x 16 ran at
//! 88 GFLOP/s, 12 x 32 at 155 and the AVX2 kernel's 6 x 16 at 105.
//!
//! The operands are those of [`super::kernel`]: `A` through its strides, with the second six
//! rows at their own address (the next panel of a packed block), and `B` packed, 16 values per
//! step in each panel. Each lane of an accumulator sums its element of `C` over the same steps
//! in the same order, with one fused multiply-add per step, as the AVX2 kernel does. The two
//! kernels therefore give bit-identical results for the same steps, and a product can mix them.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::kernel::{MR, NR, Steps};

/// Columns of a tile: two panels of `B`.
pub(crate) const WIDTH: usize = 2 * NR;

/// The operands of one tile: where it reads `A` and `B` and writes `C`.
#[derive(Clone, Copy)]
pub(crate) struct Wide {
    /// `A[i0, p0]` and `A[i0 + 6, p0]`: the first row of each six at the block's first step.
    /// The second is unused in a tile of 6 rows.
    pub a: [*const f32; 2],
    /// Distance between rows of `A` within a group of six.
    pub a_row: isize,
    /// Distance between columns of `A` (one step of `p`).
    pub a_col: isize,
    /// The two packed panels, each `kc` groups of [`NR`] values.
    pub b: [*const f32; 2],
    /// `C[i0, j0]`.
    pub c: *mut f32,
    /// Distance between rows of `C`.
    pub c_row: isize,
    /// Distance between columns of `C`.
    pub c_col: isize,
    /// Valid columns (at most [`WIDTH`]). Every row of the tile is valid.
    pub cols: usize,
}

/// Returns whether this CPU runs [`wide_avx512`]: AVX-512 Foundation, unless the environment
/// variable `FEEDFORWARD_KERNEL` is `avx2`, which keeps every product on the AVX2 kernel (for
/// comparing the two). Any value other than `avx2` and `auto` is logged as a warning and
/// ignored. The CPU and the variable are read once.
pub(crate) fn available() -> bool {
    #[cfg(test)]
    if FORCE_AVX2.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let setting = std::env::var("FEEDFORWARD_KERNEL").ok();
        let forced_avx2 = forces_avx2(setting.as_deref()).unwrap_or_else(|value| {
            log::warn!(
                "invalid FEEDFORWARD_KERNEL={value:?}: expected avx2 or auto; using the \
                 fastest kernel this CPU runs"
            );
            false
        });
        #[cfg(target_arch = "x86_64")]
        {
            !forced_avx2 && is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = forced_avx2;
            false
        }
    })
}

/// Returns whether the value of `FEEDFORWARD_KERNEL` keeps products on the AVX2 kernel: true
/// for `avx2`, false when unset or `auto`, and the value itself as the error otherwise.
fn forces_avx2(setting: Option<&str>) -> Result<bool, &str> {
    match setting {
        None | Some("auto") => Ok(false),
        Some("avx2") => Ok(true),
        Some(other) => Err(other),
    }
}

/// Makes [`available`] return false while set, so that a test can compare the two kernels in
/// one process. Products running meanwhile on other threads give the same bits either way.
#[cfg(test)]
pub(crate) static FORCE_AVX2: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Updates one tile of `6 * GROUPS` rows: `C = alpha A B + beta C` on its valid columns, summed
/// over `steps`, which the tile's rows and both panels share (every step, or the steps at
/// which either panel of `B` is nonzero).
///
/// With `beta = 0`, `C` is written without being read. A listed sum that ends at `-0` in any
/// lane is summed again over every step, as in [`super::kernel::tile_avx2`], whose argument
/// for leaving out zero steps applies lane by lane.
///
/// # Safety
///
/// The CPU must have AVX-512F ([`available`]), and `GROUPS` is 1 or 2. Let `kc` be the block's
/// steps, with every listed step below it. Each of the first `GROUPS` bases of `tile.a` must be
/// valid for 6 rows of `kc` columns with the tile's strides, and each of `tile.b` for
/// `kc * NR` values. `tile.c` must be valid for `6 * GROUPS x tile.cols` writes with its
/// strides, and `1 <= cols <= WIDTH`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn wide_avx512<const GROUPS: usize>(
    steps: Steps<'_>,
    tile: Wide,
    alpha: f32,
    beta: f32,
) {
    let sums = match steps {
        // SAFETY: forwarded from the caller.
        Steps::All(kc) => unsafe { sum_all::<GROUPS>(kc, &tile) },
        Steps::Listed { steps: list, kc } => {
            // SAFETY: forwarded from the caller.
            let sums = unsafe { sum_listed::<GROUPS>(list, &tile) };
            if has_negative_zero(&sums) {
                // SAFETY: forwarded from the caller.
                unsafe { sum_all::<GROUPS>(kc, &tile) }
            } else {
                sums
            }
        }
    };
    let rows = MR * GROUPS;
    let alpha_v = _mm512_set1_ps(alpha);
    if tile.cols == WIDTH && tile.c_col == 1 {
        for (i, sum) in sums.iter().take(rows).enumerate() {
            for (half, &value) in sum.iter().enumerate() {
                // SAFETY: a full tile with unit column stride: 32 contiguous values per row.
                unsafe {
                    let c = tile.c.offset(tile.c_row * i as isize).add(half * NR);
                    let mut value = _mm512_mul_ps(alpha_v, value);
                    if beta != 0.0 {
                        value = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_loadu_ps(c), value);
                    }
                    _mm512_storeu_ps(c, value);
                }
            }
        }
        return;
    }
    // NOTE: this write-back repeats the AVX2 kernel's on purpose. Moved into a shared helper,
    // it made the compiler stop inlining `step`, which put the accumulators in memory, and an
    // epoch of 784-1024-1024-10 took 8.8 to 9.7 s instead of 3.3 to 3.8 s.
    let mut values = [0.0f32; 2 * MR * WIDTH];
    for (i, sum) in sums.iter().take(rows).enumerate() {
        for (half, &value) in sum.iter().enumerate() {
            // SAFETY: `values` has room for 12 rows of WIDTH.
            unsafe { _mm512_storeu_ps(values.as_mut_ptr().add(i * WIDTH + half * NR), value) };
        }
    }
    for i in 0..rows {
        for j in 0..tile.cols {
            // SAFETY: inside the rows and valid columns of the tile.
            unsafe {
                let c = tile
                    .c
                    .offset(tile.c_row * i as isize + tile.c_col * j as isize);
                let product = alpha * values[i * WIDTH + j];
                *c = if beta == 0.0 {
                    product
                } else {
                    beta.mul_add(*c, product)
                };
            }
        }
    }
}

/// The accumulators of a tile: two vectors per row, for up to 12 rows.
type Sums = [[__m512; 2]; 2 * MR];

/// Adds one step into the accumulators of the first `GROUPS` groups of six rows: the two
/// vectors of `B` at `b0` and `b1`, and the rows of `A` at `offset` from the tile's bases.
///
/// # Safety
///
/// As for [`wide_avx512`], for one step inside the block.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn step<const GROUPS: usize>(
    sums: &mut Sums,
    tile: &Wide,
    b0: *const f32,
    b1: *const f32,
    offset: isize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        let (b0, b1) = (_mm512_loadu_ps(b0), _mm512_loadu_ps(b1));
        for group in 0..GROUPS {
            let x = tile.a[group].offset(offset);
            for r in 0..MR {
                let a = _mm512_set1_ps(*x.offset(r as isize * tile.a_row));
                let sum = &mut sums[group * MR + r];
                sum[0] = _mm512_fmadd_ps(a, b0, sum[0]);
                sum[1] = _mm512_fmadd_ps(a, b1, sum[1]);
            }
        }
    }
}

/// Returns the tile's sums over every step of the block.
///
/// # Safety
///
/// As for [`wide_avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn sum_all<const GROUPS: usize>(kc: usize, tile: &Wide) -> Sums {
    let mut sums = [[_mm512_setzero_ps(); 2]; 2 * MR];
    let (mut b0, mut b1) = (tile.b[0], tile.b[1]);
    let mut offset = 0isize;
    for _ in 0..kc {
        // SAFETY: the caller guarantees `kc` steps of `A` through its strides and `kc * NR`
        // packed values in each panel of `B`.
        unsafe {
            step::<GROUPS>(&mut sums, tile, b0, b1, offset);
            b0 = b0.add(NR);
            b1 = b1.add(NR);
        }
        offset += tile.a_col;
    }
    sums
}

/// Returns the tile's sums over the listed steps.
///
/// # Safety
///
/// As for [`wide_avx512`], with every listed step below the block's `kc`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn sum_listed<const GROUPS: usize>(list: &[u32], tile: &Wide) -> Sums {
    let mut sums = [[_mm512_setzero_ps(); 2]; 2 * MR];
    for &p in list {
        let p = p as usize;
        // SAFETY: the caller guarantees that step `p` lies inside the block of `A` and both
        // packed panels of `B`.
        unsafe {
            step::<GROUPS>(
                &mut sums,
                tile,
                tile.b[0].add(p * NR),
                tile.b[1].add(p * NR),
                p as isize * tile.a_col,
            );
        }
    }
    sums
}

/// Returns whether any lane of `sums` is `-0`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn has_negative_zero(sums: &Sums) -> bool {
    let zero = _mm512_setzero_ps();
    sums.iter().flatten().any(|&sum| {
        // Lanes equal to zero whose sign bit is set. The integer comparison reads the sign bit
        // with AVX-512F alone.
        let zeros = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(sum, zero);
        let negative = _mm512_cmplt_epi32_mask(_mm512_castps_si512(sum), _mm512_setzero_si512());
        zeros & negative != 0
    })
}

#[cfg(test)]
mod tests {
    use super::forces_avx2;

    #[test]
    fn kernel_setting_parses() {
        assert_eq!(forces_avx2(None), Ok(false));
        assert_eq!(forces_avx2(Some("auto")), Ok(false));
        assert_eq!(forces_avx2(Some("avx2")), Ok(true));
        assert_eq!(forces_avx2(Some("AVX2")), Err("AVX2"));
        assert_eq!(forces_avx2(Some("")), Err(""));
    }
}
