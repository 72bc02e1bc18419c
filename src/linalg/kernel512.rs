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
//!
//! Tiles of 12 rows that read a row-major `A` in place run their loop over the steps in
//! assembly ([`sum_quads`], [`sum_listed_rows12`]). Every address is then a base register plus
//! a constant or plus the row distance. A step costs few instructions besides its 14 loads and
//! 24 fused multiply-adds, while the loop compiled from intrinsics recomputes the rows'
//! addresses at each step. In one process alternating with the compiled loop, the products of
//! a training step of 784-1024-1024-10 took 3 to 4% less time, and `dW[2] = dZ[2] A[1]^T` 9 to
//! 11% less (BENCHMARKS.md). Each lane sums the same steps in the same order with the same
//! instruction, so the bits are those of the compiled loop.
//!
//! A tile over listed steps computes its addresses from step numbers that it loads from the
//! list. The loops over lists ([`sum_listed_rows12`], and [`sum_listed_packed12`] for two
//! packed panels of `A`) load the step numbers of the next four steps while they sum the
//! current four, so that no address waits for a load from the list. With a list of every step,
//! which reads the same memory as the loop over all steps, loading each number just before its
//! step took 9 to 13% longer than that loop on one thread. Loading ahead took 3 to 5% longer at a
//! calm moment and 5 to 11% at a slower one. In one process alternating the two, the products
//! of a training step of 784-1024-1024-10 took 2 to 4% less time with loading ahead
//! (BENCHMARKS.md).

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
/// Tests set it through [`with_kernel`].
#[cfg(test)]
static FORCE_AVX2: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(test)]
thread_local! {
    /// Tiles that this thread summed in assembly, counted for the tests.
    static ASSEMBLY_TILES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs `f` while no other test runs `with_kernel`, with [`available`] forced to false when
/// `avx2` is true and following the CPU otherwise. A test that needs one kernel for its whole
/// length, such as one that counts tiles over listed steps of `A`, then gets it.
#[cfg(test)]
pub(crate) fn with_kernel<R>(avx2: bool, f: impl FnOnce() -> R) -> R {
    use std::sync::atomic::Ordering;
    /// Guard that puts the setting back even when `f` panics.
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            FORCE_AVX2.store(false, Ordering::Relaxed);
        }
    }
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _lock = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let _reset = Reset;
    FORCE_AVX2.store(avx2, Ordering::Relaxed);
    f()
}

/// Prefetches the lines of a full row-major tile of `C` into L1, before the sums.
///
/// The write-back stores up to 36 lines of `C` that a product with `beta = 0` has not read,
/// so each store first waits for its line from L3 or memory. A profile of training put about
/// 2% of all samples at the first store after a tile, where the store buffer was full. With
/// the lines requested at the start, the reads overlap the tile's sums: the products of a
/// step of 784-1024-1024-10 took 4% less time, and `W[3]^T dZ[3]`, with 10 steps per tile,
/// about half (BENCHMARKS.md). These are read prefetches (`PREFETCHT0`). A prefetch with
/// intent to write (`PREFETCHW`, through `asm!`) was 0.3 to 0.7% slower.
///
/// # Safety
///
/// `tile.c` must point at `MR * GROUPS` rows of [`WIDTH`] contiguous values, `tile.c_row`
/// apart.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn prefetch_rows_of_c<const GROUPS: usize>(tile: &Wide) {
    for i in 0..MR * GROUPS {
        // SAFETY: row i of the tile, inside `C`.
        let row = unsafe { tile.c.offset(tile.c_row * i as isize) };
        // The row's 32 values span two or three lines, so these three cover them all.
        for column in [0, NR, WIDTH - 1] {
            // SAFETY: inside the row, and a prefetch does not fault.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(row.add(column).cast()) };
        }
    }
}

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
    // Assembly sums 12 rows of a row-major `A` with enough steps, or of two packed panels over a
    // long list. The compiled loops stay separate because, behind one shared closure, they
    // spilled their sums to the stack.
    let assembly = GROUPS == 2 && tile.a_col == 1 && steps.count() >= ASSEMBLY_FROM;
    // A list over two packed panels of `A`, where `A[i, p]` is `6 p + i` values from its
    // group's base, also runs in assembly.
    let packed_assembly = GROUPS == 2
        && tile.a_row == 1
        && tile.a_col == MR as isize
        && matches!(steps, Steps::Listed { .. })
        && steps.count() >= ASSEMBLY_FROM;
    #[cfg(test)]
    if assembly || packed_assembly {
        ASSEMBLY_TILES.with(|tiles| tiles.set(tiles.get() + 1));
    }
    if tile.cols == WIDTH && tile.c_col == 1 {
        // SAFETY: the caller guarantees that `C` is valid for the tile's rows and columns, and
        // this tile is full with unit column stride.
        unsafe { prefetch_rows_of_c::<GROUPS>(&tile) };
    }
    let sums = match steps {
        // SAFETY: forwarded from the caller, and `A` is row-major.
        Steps::All(kc) if assembly => unsafe { sum_rows12(kc, &tile) },
        // SAFETY: forwarded from the caller.
        Steps::All(kc) => unsafe { sum_all::<GROUPS>(kc, &tile) },
        Steps::Listed { steps: list, kc } => {
            let sums = if assembly {
                // SAFETY: forwarded from the caller, `A` is row-major, and the list has at least
                // `ASSEMBLY_FROM` steps.
                unsafe { sum_listed_rows12(list, &tile) }
            } else if packed_assembly {
                // SAFETY: forwarded from the caller, `A` has the strides of two packed panels,
                // and the list has at least `ASSEMBLY_FROM` steps.
                unsafe { sum_listed_packed12(list, &tile) }
            } else {
                // SAFETY: forwarded from the caller.
                unsafe { sum_listed::<GROUPS>(list, &tile) }
            };
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

/// Steps a tile needs before it runs a loop in assembly, which moves the 24 sums into their
/// registers and back. The value is an estimate, not tuned by measurement. In 784-1024-1024-10
/// only short lists of steps fall below it. The loops over lists need at least
/// [`LOOKAHEAD`] steps.
#[cfg(target_arch = "x86_64")]
const ASSEMBLY_FROM: usize = 16;

/// Steps per pass of the loops over lists (`listed_loop!`), each of which loads the step
/// numbers of the next pass. The assembly is written for four.
#[cfg(target_arch = "x86_64")]
const LOOKAHEAD: usize = 4;

#[cfg(target_arch = "x86_64")]
const _: () = assert!(ASSEMBLY_FROM >= LOOKAHEAD);

/// Returns the sums of a tile of 12 rows over every step: [`sum_quads`] for the steps in
/// groups of four, then [`step`] for the last `kc % 4`.
///
/// # Safety
///
/// As for [`wide_avx512`] with `GROUPS` = 2, and `tile.a_col == 1`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sum_rows12(kc: usize, tile: &Wide) -> Sums {
    let mut sums = [[_mm512_setzero_ps(); 2]; 2 * MR];
    // SAFETY: forwarded from the caller.
    let done = unsafe { sum_quads(kc, tile, &mut sums) };
    for p in done..kc {
        // SAFETY: step `p` lies inside the rows of `A` and both panels.
        unsafe {
            step::<2>(
                &mut sums,
                tile,
                tile.b[0].add(p * NR),
                tile.b[1].add(p * NR),
                p as isize,
            );
        }
    }
    sums
}

/// Expands to step `$j` of a pass of [`sum_quads`]: the two vectors of `B` at `64 $j` bytes from
/// `{b}`, then for each of the 12 rows a broadcast of its value `4 $j` bytes on and two fused
/// multiply-adds.
#[cfg(target_arch = "x86_64")]
macro_rules! quad_step {
    ($j:literal) => {
        concat!(
            "vmovups zmm24, zmmword ptr [{b} + 64*",
            $j,
            "]\n",
            "vmovups zmm25, zmmword ptr [{b} + {d} + 64*",
            $j,
            "]\n",
            row_step!(26, 0, 1, "{a0} + 4*", $j),
            row_step!(27, 2, 3, "{a0} + {ar} + 4*", $j),
            row_step!(28, 4, 5, "{a0} + {ar}*2 + 4*", $j),
            row_step!(29, 6, 7, "{a3} + 4*", $j),
            row_step!(30, 8, 9, "{a3} + {ar} + 4*", $j),
            row_step!(31, 10, 11, "{a3} + {ar}*2 + 4*", $j),
            row_step!(26, 12, 13, "{g0} + 4*", $j),
            row_step!(27, 14, 15, "{g0} + {ar} + 4*", $j),
            row_step!(28, 16, 17, "{g0} + {ar}*2 + 4*", $j),
            row_step!(29, 18, 19, "{g3} + 4*", $j),
            row_step!(30, 20, 21, "{g3} + {ar} + 4*", $j),
            row_step!(31, 22, 23, "{g3} + {ar}*2 + 4*", $j),
        )
    };
}

/// Expands to one row of a step in assembly: a broadcast into `zmm$t` from the address
/// `$address$j`, then its products with both vectors of `B` (`zmm24`, `zmm25`) added into
/// `zmm$first` and `zmm$second`.
#[cfg(target_arch = "x86_64")]
macro_rules! row_step {
    ($t:literal, $first:literal, $second:literal, $address:literal, $j:literal) => {
        concat!(
            "vbroadcastss zmm",
            $t,
            ", dword ptr [",
            $address,
            $j,
            "]\n",
            "vfmadd231ps zmm",
            $first,
            ", zmm",
            $t,
            ", zmm24\n",
            "vfmadd231ps zmm",
            $second,
            ", zmm",
            $t,
            ", zmm25\n",
        )
    };
}

/// Expands to `asm!` with the given template and operands, plus the 24 sums of a tile of 12 rows
/// bound to `zmm0` to `zmm23` (row `i` in `zmm(2 i)` and `zmm(2 i + 1)`) and `zmm24` to `zmm31`
/// free for the loop.
#[cfg(target_arch = "x86_64")]
macro_rules! sums_in_registers {
    ($s:ident, $($rest:tt)*) => {
        std::arch::asm!(
            $($rest)*
            inout("zmm0") $s[0][0], inout("zmm1") $s[0][1],
            inout("zmm2") $s[1][0], inout("zmm3") $s[1][1],
            inout("zmm4") $s[2][0], inout("zmm5") $s[2][1],
            inout("zmm6") $s[3][0], inout("zmm7") $s[3][1],
            inout("zmm8") $s[4][0], inout("zmm9") $s[4][1],
            inout("zmm10") $s[5][0], inout("zmm11") $s[5][1],
            inout("zmm12") $s[6][0], inout("zmm13") $s[6][1],
            inout("zmm14") $s[7][0], inout("zmm15") $s[7][1],
            inout("zmm16") $s[8][0], inout("zmm17") $s[8][1],
            inout("zmm18") $s[9][0], inout("zmm19") $s[9][1],
            inout("zmm20") $s[10][0], inout("zmm21") $s[10][1],
            inout("zmm22") $s[11][0], inout("zmm23") $s[11][1],
            out("zmm24") _, out("zmm25") _, out("zmm26") _, out("zmm27") _,
            out("zmm28") _, out("zmm29") _, out("zmm30") _, out("zmm31") _,
            options(nostack, readonly),
        )
    };
}

/// Adds the first `kc / 4 * 4` steps of a tile of 12 rows of a row-major `A` into `sums`, four
/// steps per pass of a loop in assembly, and returns that number of steps. Rows 0 to 2 of each
/// group of six are at a base register plus the row distance times 0, 1 or 2. Rows 3 to 5 are
/// at a second base in the same way, and the four steps of a pass at constant offsets. A pass
/// costs 56 loads, 96 fused multiply-adds and 7 other instructions.
///
/// # Safety
///
/// As for [`wide_avx512`] with `GROUPS` = 2, and `tile.a_col == 1`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sum_quads(kc: usize, tile: &Wide, sums: &mut Sums) -> usize {
    let quads = kc / 4;
    if quads == 0 {
        return 0;
    }
    // `a0` and `a3` are rows 0 and 3 of the first group of six, `g0` and `g3` of the second.
    let s = sums;
    // SAFETY: the caller guarantees 12 rows of `kc` steps from `tile.a` and `kc` steps of both
    // panels. The loop reads steps `0 .. 4 quads` of each, the second panel at its distance in
    // bytes from the first, and writes no memory.
    unsafe {
        sums_in_registers!(
            s,
            "2:",
            quad_step!(0),
            quad_step!(1),
            quad_step!(2),
            quad_step!(3),
            "add {a0}, 16",
            "add {a3}, 16",
            "add {g0}, 16",
            "add {g3}, 16",
            "add {b}, 256",
            "dec {n}",
            "jnz 2b",
            a0 = inout(reg) tile.a[0] => _,
            a3 = inout(reg) tile.a[0].offset(3 * tile.a_row) => _,
            g0 = inout(reg) tile.a[1] => _,
            g3 = inout(reg) tile.a[1].offset(3 * tile.a_row) => _,
            ar = in(reg) tile.a_row * 4,
            b = inout(reg) tile.b[0] => _,
            d = in(reg) (tile.b[1] as isize).wrapping_sub(tile.b[0] as isize),
            n = inout(reg) quads => _,
        );
    }
    quads * 4
}

/// Expands to one listed step of [`sum_listed_rows12`], whose number is in register `{$p}`:
/// the two vectors of `B` at `64 p` bytes from `{b}` and `{b1}`, then each group of six rows
/// from two addresses. Rows 0 to 2 of a group are at `t` (its base plus `4 p` bytes) plus the
/// row distance times 0, 1 or 2, and rows 3 to 5 likewise from `q`, three row distances on.
#[cfg(target_arch = "x86_64")]
macro_rules! listed_row_major_step {
    ($p:literal) => {
        concat!(
            "lea {q}, [{",
            $p,
            "}*8]\n",
            "vmovups zmm24, zmmword ptr [{b} + {q}*8]\n",
            "vmovups zmm25, zmmword ptr [{b1} + {q}*8]\n",
            "lea {t}, [{a0} + {",
            $p,
            "}*4]\n",
            "lea {q}, [{t} + {ar}*2]\n",
            "add {q}, {ar}\n",
            row_step!(26, 0, 1, "{t}", ""),
            row_step!(27, 2, 3, "{t} + {ar}", ""),
            row_step!(28, 4, 5, "{t} + {ar}*2", ""),
            row_step!(29, 6, 7, "{q}", ""),
            row_step!(30, 8, 9, "{q} + {ar}", ""),
            row_step!(31, 10, 11, "{q} + {ar}*2", ""),
            "lea {t}, [{g0} + {",
            $p,
            "}*4]\n",
            "lea {q}, [{t} + {ar}*2]\n",
            "add {q}, {ar}\n",
            row_step!(26, 12, 13, "{t}", ""),
            row_step!(27, 14, 15, "{t} + {ar}", ""),
            row_step!(28, 16, 17, "{t} + {ar}*2", ""),
            row_step!(29, 18, 19, "{q}", ""),
            row_step!(30, 20, 21, "{q} + {ar}", ""),
            row_step!(31, 22, 23, "{q} + {ar}*2", ""),
        )
    };
}

/// Expands to one listed step of [`sum_listed_packed12`], whose number is in register `{$p}`:
/// the two vectors of `B` as in [`listed_row_major_step`], then row `r` of each group at its
/// base plus `24 p + 4 r` bytes. Register `t` contains `3 p`, which each address scales by 8.
#[cfg(target_arch = "x86_64")]
macro_rules! listed_packed_step {
    ($p:literal) => {
        concat!(
            "lea {q}, [{",
            $p,
            "}*8]\n",
            "lea {t}, [{",
            $p,
            "} + {",
            $p,
            "}*2]\n",
            "vmovups zmm24, zmmword ptr [{b} + {q}*8]\n",
            "vmovups zmm25, zmmword ptr [{b1} + {q}*8]\n",
            row_step!(26, 0, 1, "{a0} + {t}*8", ""),
            row_step!(27, 2, 3, "{a0} + {t}*8 + 4", ""),
            row_step!(28, 4, 5, "{a0} + {t}*8 + 8", ""),
            row_step!(29, 6, 7, "{a0} + {t}*8 + 12", ""),
            row_step!(30, 8, 9, "{a0} + {t}*8 + 16", ""),
            row_step!(31, 10, 11, "{a0} + {t}*8 + 20", ""),
            row_step!(26, 12, 13, "{g0} + {t}*8", ""),
            row_step!(27, 14, 15, "{g0} + {t}*8 + 4", ""),
            row_step!(28, 16, 17, "{g0} + {t}*8 + 8", ""),
            row_step!(29, 18, 19, "{g0} + {t}*8 + 12", ""),
            row_step!(30, 20, 21, "{g0} + {t}*8 + 16", ""),
            row_step!(31, 22, 23, "{g0} + {t}*8 + 20", ""),
        )
    };
}

/// Expands to `asm!` over the first `4 n` listed steps, where `n >= 1`, with `$step` as the
/// macro for one step. The step numbers of a pass are in `{p0}` to `{p3}`, loaded during the
/// pass before. Each pass but the last loads the next pass's numbers after its steps use
/// the current ones, and the last pass loads nothing, so that the loop reads no number past
/// the first `4 n`.
#[cfg(target_arch = "x86_64")]
macro_rules! listed_loop {
    ($s:ident, $step:ident, $list:expr, $($operands:tt)*) => {
        sums_in_registers!(
            $s,
            "mov {p0:e}, dword ptr [{list}]",
            "mov {p1:e}, dword ptr [{list} + 4]",
            "mov {p2:e}, dword ptr [{list} + 8]",
            "mov {p3:e}, dword ptr [{list} + 12]",
            "cmp {list}, {last}",
            "je 3f",
            "2:",
            $step!("p0"),
            "mov {p0:e}, dword ptr [{list} + 16]",
            $step!("p1"),
            "mov {p1:e}, dword ptr [{list} + 20]",
            $step!("p2"),
            "mov {p2:e}, dword ptr [{list} + 24]",
            $step!("p3"),
            "mov {p3:e}, dword ptr [{list} + 28]",
            "add {list}, 16",
            "cmp {list}, {last}",
            "jne 2b",
            "3:",
            $step!("p0"),
            $step!("p1"),
            $step!("p2"),
            $step!("p3"),
            list = inout(reg) $list.as_ptr() => _,
            last = in(reg) $list.as_ptr().add($list.len() / LOOKAHEAD * LOOKAHEAD - LOOKAHEAD),
            p0 = out(reg) _,
            p1 = out(reg) _,
            p2 = out(reg) _,
            p3 = out(reg) _,
            q = out(reg) _,
            t = out(reg) _,
            $($operands)*
        )
    };
}

/// Returns the sums of a tile of 12 rows of a row-major `A` over the listed steps. A loop in
/// assembly sums the steps in groups of four and loads each group's step numbers while it sums
/// the group before ([`LOOKAHEAD`]). [`step`] then adds the last `len % 4`. Each step forms one
/// address for `B` and two for each group of six rows of `A`, from which the other rows are
/// the row distance times 1 or 2 away.
///
/// # Safety
///
/// As for [`wide_avx512`] with `GROUPS` = 2, every listed step below the block's `kc`, at
/// least [`LOOKAHEAD`] steps listed, and `tile.a_col == 1`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sum_listed_rows12(list: &[u32], tile: &Wide) -> Sums {
    debug_assert!(list.len() >= LOOKAHEAD);
    let mut s = [[_mm512_setzero_ps(); 2]; 2 * MR];
    // SAFETY: the caller guarantees 12 rows from `tile.a` and both panels for every listed
    // step, and at least four steps. The loop reads the list's first `len / 4 * 4` numbers and
    // writes no memory.
    unsafe {
        listed_loop!(
            s,
            listed_row_major_step,
            list,
            a0 = in(reg) tile.a[0],
            g0 = in(reg) tile.a[1],
            ar = in(reg) tile.a_row * 4,
            b = in(reg) tile.b[0],
            b1 = in(reg) tile.b[1],
        );
    }
    for &p in &list[list.len() / LOOKAHEAD * LOOKAHEAD..] {
        let p = p as usize;
        // SAFETY: step `p` lies inside the rows of `A` and both panels.
        unsafe {
            step::<2>(
                &mut s,
                tile,
                tile.b[0].add(p * NR),
                tile.b[1].add(p * NR),
                p as isize,
            )
        };
    }
    s
}

/// Returns the sums of a tile of 12 rows read from two packed panels of `A` (`a_row` 1,
/// `a_col` 6) over the listed steps, as [`sum_listed_rows12`] does for a row-major `A`. Row `r`
/// of a group at step `p` is at its base plus `24 p + 4 r` bytes, so each step forms one
/// index for `B` and one for `A`, and every row is that index plus a constant.
///
/// # Safety
///
/// As for [`wide_avx512`] with `GROUPS` = 2, every listed step below the block's `kc`, at
/// least [`LOOKAHEAD`] steps listed, `tile.a_row == 1` and `tile.a_col == 6`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sum_listed_packed12(list: &[u32], tile: &Wide) -> Sums {
    debug_assert!(list.len() >= LOOKAHEAD);
    let mut s = [[_mm512_setzero_ps(); 2]; 2 * MR];
    // SAFETY: as in `sum_listed_rows12`, with the rows of `A` at the packed offsets.
    unsafe {
        listed_loop!(
            s,
            listed_packed_step,
            list,
            a0 = in(reg) tile.a[0],
            g0 = in(reg) tile.a[1],
            b = in(reg) tile.b[0],
            b1 = in(reg) tile.b[1],
        );
    }
    for &p in &list[list.len() / LOOKAHEAD * LOOKAHEAD..] {
        let p = p as usize;
        // SAFETY: step `p` lies inside both packed panels of `A` and both panels of `B`.
        unsafe {
            step::<2>(
                &mut s,
                tile,
                tile.b[0].add(p * NR),
                tile.b[1].add(p * NR),
                p as isize * tile.a_col,
            );
        }
    }
    s
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
    #[cfg(target_arch = "x86_64")]
    use super::{Steps, WIDTH, Wide, wide_avx512};
    #[cfg(target_arch = "x86_64")]
    use crate::linalg::kernel::{MR, NR};

    /// Returns a value for row or step `i` and column or step `j`, varied enough that sums in
    /// another order round differently.
    #[cfg(target_arch = "x86_64")]
    fn value(i: usize, j: usize, seed: usize) -> f32 {
        let x = (i * 7919 + j * 104_729 + seed * 1_299_709) % 2003;
        (x as f32 - 1001.0) / 997.0
    }

    /// The ways a tile of 12 rows can read `A`: in place from a row-major matrix (in assembly
    /// from `ASSEMBLY_FROM` steps on), from two packed panels (in assembly over a list of as
    /// many steps), and through a column stride of 2.
    #[cfg(target_arch = "x86_64")]
    #[derive(Clone, Copy, Debug)]
    enum Layout {
        InPlace,
        Packed,
        EveryOther,
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn twelve_rows_match_fused_sums() {
        if !is_x86_feature_detected!("avx512f") {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        }
        let rows = 2 * MR;
        // Step counts below and above `ASSEMBLY_FROM`, and steps left after groups of four.
        for kc in [3, 13, 16, 17, 19, 38] {
            let a = |i: usize, p: usize| value(i, p, kc);
            let b = |p: usize, j: usize| value(p, j, kc + 1);
            // Two panels of `B`, one after the other as packing leaves them.
            let mut panels = vec![0.0f32; 2 * kc * NR];
            for p in 0..kc {
                for j in 0..WIDTH {
                    panels[j / NR * kc * NR + p * NR + j % NR] = b(p, j);
                }
            }
            for layout in [Layout::InPlace, Layout::Packed, Layout::EveryOther] {
                // The second group of six rows starts one row (or, packed, 7 values) after the
                // first group's end, so that a loop that reached it from the first group's
                // address would read NaN.
                let row = |stored_row: usize| match stored_row {
                    r if r < MR => Some(r),
                    r if r == MR => None,
                    r => Some(r - 1),
                };
                let (stored, a_row, a_col, second) = match layout {
                    Layout::InPlace => {
                        let lda = kc + 5;
                        let stored: Vec<f32> = (0..(rows + 1) * lda)
                            .map(|x| match row(x / lda) {
                                Some(i) if x % lda < kc => a(i, x % lda),
                                _ => f32::NAN,
                            })
                            .collect();
                        (stored, lda as isize, 1, (MR + 1) * lda)
                    }
                    Layout::Packed => {
                        let stored: Vec<f32> = (0..rows * kc + 7)
                            .map(|x| match x.checked_sub(MR * kc + 7) {
                                None if x >= MR * kc => f32::NAN,
                                None => a(x % MR, x / MR),
                                Some(y) => a(MR + y % MR, y / MR),
                            })
                            .collect();
                        (stored, 1, MR as isize, MR * kc + 7)
                    }
                    Layout::EveryOther => {
                        let lda = 2 * kc;
                        let stored: Vec<f32> = (0..(rows + 1) * lda)
                            .map(|x| match row(x / lda) {
                                Some(i) if x % 2 == 0 => a(i, x % lda / 2),
                                _ => f32::NAN,
                            })
                            .collect();
                        (stored, lda as isize, 2, (MR + 1) * lda)
                    }
                };
                let every: Vec<u32> = (0..kc as u32).collect();
                let some: Vec<u32> = (0..kc as u32).filter(|p| p % 3 != 1).collect();
                for list in [None, Some(&every), Some(&some)] {
                    let mut c = vec![f32::NAN; rows * WIDTH];
                    let tile = Wide {
                        a: [stored.as_ptr(), stored[second..].as_ptr()],
                        a_row,
                        a_col,
                        b: [panels.as_ptr(), panels[kc * NR..].as_ptr()],
                        c: c.as_mut_ptr(),
                        c_row: WIDTH as isize,
                        c_col: 1,
                        cols: WIDTH,
                    };
                    let steps = match list {
                        None => Steps::All(kc),
                        Some(list) => Steps::Listed { steps: list, kc },
                    };
                    let before = super::ASSEMBLY_TILES.with(|tiles| tiles.get());
                    // SAFETY: the CPU has AVX-512F, the rows, panels and tile are inside their
                    // buffers for `kc` steps, and every listed step is below `kc`.
                    unsafe { wide_avx512::<2>(steps, tile, 1.0, 0.0) };
                    let in_assembly = super::ASSEMBLY_TILES.with(|tiles| tiles.get()) > before;
                    let expected = steps.count() >= super::ASSEMBLY_FROM
                        && match layout {
                            Layout::InPlace => true,
                            Layout::Packed => list.is_some(),
                            Layout::EveryOther => false,
                        };
                    assert_eq!(in_assembly, expected, "{layout:?}, kc {kc}");
                    let summed: Vec<usize> = match list {
                        None => (0..kc).collect(),
                        Some(list) => list.iter().map(|&p| p as usize).collect(),
                    };
                    for i in 0..rows {
                        for j in 0..WIDTH {
                            let want = summed
                                .iter()
                                .fold(0.0f32, |sum, &p| a(i, p).mul_add(b(p, j), sum));
                            assert_eq!(
                                c[i * WIDTH + j].to_bits(),
                                want.to_bits(),
                                "{layout:?}, kc {kc}, listed {}, row {i}, column {j}",
                                list.is_some()
                            );
                        }
                    }
                }
            }
        }
    }

    /// Compares the loops over lists in assembly with the compiled loop, bit for bit, on lists
    /// of 4 to 20 steps out of order. These cover one pass only (4 to 7 steps), one loop pass
    /// and the last (8 to 11), and more, each with every remainder. Tiles reach these loops
    /// only from `ASSEMBLY_FROM` steps, so `twelve_rows_match_fused_sums` misses the short ones.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn list_loops_match_compiled_loop() {
        if !is_x86_feature_detected!("avx512f") {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        }
        use std::arch::x86_64::_mm512_storeu_ps;
        let kc = 23;
        let panels: Vec<f32> = (0..2 * kc * NR).map(|x| value(x / NR, x % NR, 1)).collect();
        // Row-major rows with 3 values of padding, the second group one row further on.
        let lda = kc + 3;
        let row_major: Vec<f32> = (0..(2 * MR + 1) * lda).map(|x| value(x, 0, 2)).collect();
        // Two packed panels with 5 values between them.
        let packed: Vec<f32> = (0..2 * MR * kc + 5).map(|x| value(x, 1, 3)).collect();
        let tiles = [
            (
                "row-major",
                row_major.as_ptr(),
                row_major[(MR + 1) * lda..].as_ptr(),
                lda as isize,
                1,
            ),
            (
                "packed",
                packed.as_ptr(),
                packed[MR * kc + 5..].as_ptr(),
                1,
                MR as isize,
            ),
        ];
        for (name, first, second, a_row, a_col) in tiles {
            let mut c = [0.0f32; 1];
            let tile = Wide {
                a: [first, second],
                a_row,
                a_col,
                b: [panels.as_ptr(), panels[kc * NR..].as_ptr()],
                c: c.as_mut_ptr(),
                c_row: 1,
                c_col: 1,
                cols: 1,
            };
            for len in 4..=20 {
                // Distinct steps out of order, since 7 and 23 are coprime.
                let list: Vec<u32> = (0..len).map(|i| ((7 * i + 3) % kc) as u32).collect();
                // SAFETY: the CPU has AVX-512F, every listed step is below `kc`, both groups of
                // `A` and both panels of `B` have `kc` steps, and the lists have 4 steps or more.
                let (got, want) = unsafe {
                    let got = if a_col == 1 {
                        super::sum_listed_rows12(&list, &tile)
                    } else {
                        super::sum_listed_packed12(&list, &tile)
                    };
                    (got, super::sum_listed::<2>(&list, &tile))
                };
                for (row, (got, want)) in got.iter().zip(&want).enumerate() {
                    for half in 0..2 {
                        let (mut g, mut w) = ([0.0f32; NR], [0.0f32; NR]);
                        // SAFETY: each array has room for one vector.
                        unsafe {
                            _mm512_storeu_ps(g.as_mut_ptr(), got[half]);
                            _mm512_storeu_ps(w.as_mut_ptr(), want[half]);
                        }
                        let (g, w) = (g.map(f32::to_bits), w.map(f32::to_bits));
                        assert_eq!(g, w, "{name}, {len} steps, row {row}, half {half}");
                    }
                }
            }
        }
    }

    #[test]
    fn kernel_setting_parses() {
        assert_eq!(forces_avx2(None), Ok(false));
        assert_eq!(forces_avx2(Some("auto")), Ok(false));
        assert_eq!(forces_avx2(Some("avx2")), Ok(true));
        assert_eq!(forces_avx2(Some("AVX2")), Err("AVX2"));
        assert_eq!(forces_avx2(Some("")), Err(""));
    }
}
