//! The crate's own product kernel for AVX2 with FMA, in the layout of
//! BLIS's Haswell `sgemm`: six rows of the left-hand side times a panel
//! of sixteen columns of the right-hand side per call, twelve
//! accumulators, `k` in blocks of 256. Where the CPU has AVX-512, twelve
//! rows times two panels per call, one 512-bit accumulator per row and
//! panel (24; a last odd panel alone): each entry the same fused
//! multiply-adds in the same order, so the same bits on both
//! (`both_tiles_give_the_same_bits`).
//!
//! The right-hand side is read either from [`Panels`] (packed once: the
//! weights a sequence multiplies by at every step, which `sgemm` packed
//! again at every call, 16 % of a Walker2d-sized training step under
//! `perf`) or in place when its rows are contiguous (the products over all
//! steps at once); the left-hand side is read in place, any strides
//! (`gemm::matmul` sends transposed ones to `sgemm`). No product here
//! hands work to `matrixmultiply`'s thread pool (which Burn's default
//! features turn on). Each entry is a sum of FMAs in order along
//! `k`, one block of 256 at a time added to `c`, as `sgemm`'s AVX2 kernel
//! computes it.

use std::arch::x86_64::{
    __m256, __m256i, _mm256_add_ps, _mm256_broadcast_ss, _mm256_fmadd_ps, _mm256_loadu_ps,
    _mm256_maskload_ps, _mm256_set_epi32, _mm256_setzero_ps, _mm256_storeu_ps, _mm512_add_ps,
    _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps, _mm512_set1_ps,
    _mm512_setzero_ps,
};

use super::View;

/// Columns of a panel: two AVX registers.
const PANEL: usize = 16;
/// Length of a block of `k`: a block of a panel (16 KB) stays in L1.
const DEPTH: usize = 256;

/// The vector instructions a product runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    /// AVX2 with FMA: six rows per call, two registers a row.
    Avx2,
    /// AVX-512: twelve rows per call, one register a row per panel, two
    /// panels a call where two are left.
    Avx512,
}

impl Isa {
    /// The widest the CPU runs (AVX2 and FMA asserted by the caller).
    fn detect() -> Self {
        if crate::kernels::has_avx512() {
            Isa::Avx512
        } else {
            Isa::Avx2
        }
    }

    /// Rows of the left-hand side one call of the kernel multiplies.
    fn rows(self) -> usize {
        match self {
            Isa::Avx2 => 6,
            Isa::Avx512 => 12,
        }
    }
}

/// A `k x n` matrix as `ceil(n / 16)` panels of 16 columns, each `k` rows
/// of 16 contiguous values (the last panel's missing columns are zeros).
#[derive(Clone, Debug)]
pub(crate) struct Panels {
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl Panels {
    /// Packs `b` (any strides).
    pub(crate) fn new(b: View<'_>) -> Self {
        let (k, n) = (b.rows, b.cols);
        let mut data = vec![0.0f32; n.div_ceil(PANEL) * k * PANEL];
        if k > 0 {
            for (p, panel) in data.chunks_exact_mut(k * PANEL).enumerate() {
                let cols = PANEL.min(n - p * PANEL);
                for (i, row) in panel.chunks_exact_mut(PANEL).enumerate() {
                    for (j, v) in row[..cols].iter_mut().enumerate() {
                        *v = b.data[i * b.row_stride + (p * PANEL + j) * b.col_stride];
                    }
                }
            }
        }
        Self { k, n, data }
    }

    /// Rows (`k`) and columns (`n`).
    pub(crate) fn shape(&self) -> (usize, usize) {
        (self.k, self.n)
    }
}

/// The right-hand side as the kernel reads it.
#[derive(Clone, Copy)]
pub(crate) enum Right<'a> {
    Packed(&'a Panels),
    /// Read in place: its column stride is 1.
    Rows(View<'a>),
}

/// `c = a · b`, or `c += a · b` when `accumulate`, with `c` row-major
/// `[a.rows, b's columns]` whose rows are `c_row_stride` apart (nothing
/// when `a` has no rows). Panics unless the CPU runs AVX2 and FMA,
/// `a.cols` equals `b`'s rows, `b` has at least one row and one column,
/// and `c` holds the product.
pub(crate) fn multiply(
    a: View<'_>,
    b: Right<'_>,
    c: &mut [f32],
    c_row_stride: usize,
    accumulate: bool,
) {
    assert!(
        crate::kernels::has_avx2_fma(),
        "the product kernel runs only where the CPU runs AVX2 and FMA"
    );
    let (k, n) = match b {
        Right::Packed(p) => p.shape(),
        Right::Rows(v) => {
            assert_eq!(
                v.col_stride, 1,
                "a right-hand side read in place has unit column stride"
            );
            (v.rows, v.cols)
        }
    };
    assert_eq!(
        a.cols, k,
        "inner dimensions: {}x{} times {k}x{n}",
        a.rows, a.cols
    );
    assert!(k > 0 && n > 0, "a {k}x{n} right-hand side is empty");
    if a.rows == 0 {
        return;
    }
    View::strided(c, a.rows, n, c_row_stride);
    // SAFETY: the CPU runs AVX2 and FMA (asserted), and AVX-512 where
    // `detect` says so; `a` and a `Rows` right-hand side were checked to
    // lie in their slices when their views were made, `c` just above, and
    // panels hold `k · 16` values each.
    unsafe { multiply_on(Isa::detect(), a, b, k, n, c, c_row_stride, accumulate) }
}

/// [`multiply`] on `isa`, once checked.
///
/// # Safety
/// The CPU runs `isa`; `a`, `b` and `c` (rows `ldc` apart) hold the
/// `a.rows x k`, `k x n` and `a.rows x n` matrices.
#[allow(clippy::too_many_arguments)]
unsafe fn multiply_on(
    isa: Isa,
    a: View<'_>,
    b: Right<'_>,
    k: usize,
    n: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    for k0 in (0..k).step_by(DEPTH) {
        let depth = DEPTH.min(k - k0);
        let panels = n.div_ceil(PANEL);
        let mut p = 0;
        while p < panels {
            // AVX-512 takes two panels a call where two are left.
            let pair = isa == Isa::Avx512 && p + 1 < panels;
            let cols = (if pair { 2 * PANEL } else { PANEL }).min(n - p * PANEL);
            // SAFETY (the offsets below): row `k0` and column `p · 16` lie
            // in the right-hand side, row `i` and column `k0` in `a`, entry
            // `(i, p · 16)` in `c`.
            let (panel, ldb, next, masked) = match b {
                Right::Packed(panels) => (
                    unsafe { panels.data.as_ptr().add((p * k + k0) * PANEL) },
                    PANEL,
                    k * PANEL,
                    false,
                ),
                Right::Rows(v) => (
                    unsafe { v.data.as_ptr().add(k0 * v.row_stride + p * PANEL) },
                    v.row_stride,
                    PANEL,
                    cols < if pair { 2 * PANEL } else { PANEL },
                ),
            };
            let mut i = 0;
            while i < a.rows {
                let rows = isa.rows().min(a.rows - i);
                let tile = Tile {
                    depth,
                    a: unsafe { a.data.as_ptr().add(i * a.row_stride + k0 * a.col_stride) },
                    a_row_stride: a.row_stride,
                    a_col_stride: a.col_stride,
                    b: panel,
                    ldb,
                    c: unsafe { c.as_mut_ptr().add(i * ldc + p * PANEL) },
                    ldc,
                    cols,
                };
                let accumulate = accumulate || k0 > 0;
                // SAFETY: `rows` rows of `depth` values from `tile.a`,
                // `depth` rows of the panel (`cols` of them read when
                // `masked`, else 16), and of the next one `next` values on
                // when `pair`, and `rows x cols` entries of `c`; the CPU
                // runs `isa`.
                unsafe {
                    match isa {
                        Isa::Avx2 => {
                            by_rows!(tile, run, rows, masked, (accumulate); 1 2 3 4 5 6)
                        }
                        Isa::Avx512 if pair => by_rows!(
                            tile, run_avx512, panels 2, rows, masked, (next, accumulate);
                            1 2 3 4 5 6 7 8 9 10 11 12
                        ),
                        Isa::Avx512 => by_rows!(
                            tile, run_avx512, panels 1, rows, masked, (next, accumulate);
                            1 2 3 4 5 6 7 8 9 10 11 12
                        ),
                    }
                }
                i += rows;
            }
            p += if pair { 2 } else { 1 };
        }
    }
}

/// `tile.method::<R, MASKED>(args)`, or `tile.method::<R, MASKED, P>(args)`
/// after `panels P`, for the `R` and `MASKED` given at run time, `R` one of
/// the listed row counts.
macro_rules! by_rows {
    ($tile:ident, $method:ident, $rows:expr, $masked:expr, $args:tt; $($r:literal)+) => {
        match ($rows, $masked) {
            $(
                ($r, false) => $tile.$method::<$r, false> $args,
                ($r, true) => $tile.$method::<$r, true> $args,
            )+
            (rows, _) => unreachable!("no kernel for {rows} rows"),
        }
    };
    (
        $tile:ident, $method:ident, panels $p:literal, $rows:expr, $masked:expr, $args:tt;
        $($r:literal)+
    ) => {
        match ($rows, $masked) {
            $(
                ($r, false) => $tile.$method::<$r, false, $p> $args,
                ($r, true) => $tile.$method::<$r, true, $p> $args,
            )+
            (rows, _) => unreachable!("no kernel for {rows} rows"),
        }
    };
}
use by_rows;

/// One kernel call: `R` rows of `a` (`depth` values each) times `depth`
/// rows of a panel (`ldb` apart), into `R x cols` entries of `c` (rows
/// `ldc` apart).
struct Tile {
    depth: usize,
    a: *const f32,
    a_row_stride: usize,
    a_col_stride: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    cols: usize,
}

impl Tile {
    /// `MASKED`: read only the panel's first `cols` columns (a matrix read
    /// in place whose last panel is narrower than 16).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run<const R: usize, const MASKED: bool>(&self, accumulate: bool) {
        let mut left = [_mm256_setzero_ps(); R];
        let mut right = [_mm256_setzero_ps(); R];
        let [mask_left, mask_right] = masks(self.cols);
        // SAFETY (the whole body): the caller guarantees `R` rows of
        // `depth` values at `a`, `depth` panel rows at `b` (the first
        // `cols` values of each when `MASKED`, else 16) and `R x cols`
        // entries at `c`.
        unsafe {
            for p in 0..self.depth {
                let row = self.b.add(p * self.ldb);
                let (b0, b1) = if MASKED {
                    (
                        _mm256_maskload_ps(row, mask_left),
                        _mm256_maskload_ps(row.add(8), mask_right),
                    )
                } else {
                    (_mm256_loadu_ps(row), _mm256_loadu_ps(row.add(8)))
                };
                let column = self.a.add(p * self.a_col_stride);
                for r in 0..R {
                    let x = _mm256_broadcast_ss(&*column.add(r * self.a_row_stride));
                    left[r] = _mm256_fmadd_ps(x, b0, left[r]);
                    right[r] = _mm256_fmadd_ps(x, b1, right[r]);
                }
            }
            if self.cols == PANEL {
                for r in 0..R {
                    let c = self.c.add(r * self.ldc);
                    let (mut l, mut h): (__m256, __m256) = (left[r], right[r]);
                    if accumulate {
                        l = _mm256_add_ps(_mm256_loadu_ps(c), l);
                        h = _mm256_add_ps(_mm256_loadu_ps(c.add(8)), h);
                    }
                    _mm256_storeu_ps(c, l);
                    _mm256_storeu_ps(c.add(8), h);
                }
            } else {
                let mut tile = [[0.0f32; PANEL]; R];
                for r in 0..R {
                    _mm256_storeu_ps(tile[r].as_mut_ptr(), left[r]);
                    _mm256_storeu_ps(tile[r].as_mut_ptr().add(8), right[r]);
                    let c = std::slice::from_raw_parts_mut(self.c.add(r * self.ldc), self.cols);
                    if accumulate {
                        c.iter_mut().zip(&tile[r]).for_each(|(c, t)| *c += t);
                    } else {
                        c.copy_from_slice(&tile[r][..self.cols]);
                    }
                }
            }
        }
    }
}

impl Tile {
    /// [`Tile::run`] on AVX-512 over `PANELS` panels (one or two), each
    /// `next` values after the one before: one 16-wide register per row and
    /// panel, so twelve rows of one panel fill as many accumulators as six
    /// do on AVX2, and two panels let each broadcast of `a` feed two of
    /// them (a step of `k` loads 14 registers for 24 multiply-adds rather
    /// than 13 for 12: the load ports, not the FMA units, bounded one
    /// panel). The same fused multiply-adds per entry in the same order.
    /// `MASKED` reads only the first `cols` columns; stores beyond `cols`
    /// are masked off.
    #[target_feature(enable = "avx512f")]
    unsafe fn run_avx512<const R: usize, const MASKED: bool, const PANELS: usize>(
        &self,
        next: usize,
        accumulate: bool,
    ) {
        let mut sums = [[_mm512_setzero_ps(); PANELS]; R];
        let mut masks = [u16::MAX; PANELS];
        for (j, mask) in masks.iter_mut().enumerate() {
            let cols = self.cols.saturating_sub(j * PANEL);
            if cols < PANEL {
                *mask = (1u16 << cols) - 1;
            }
        }
        // SAFETY: as in `run`, panel `j`'s rows `j · next` values after the
        // first's; masked-off lanes are neither read nor written.
        unsafe {
            for p in 0..self.depth {
                let row = self.b.add(p * self.ldb);
                let mut b = [_mm512_setzero_ps(); PANELS];
                for (j, b) in b.iter_mut().enumerate() {
                    *b = if MASKED {
                        _mm512_maskz_loadu_ps(masks[j], row.add(j * next))
                    } else {
                        _mm512_loadu_ps(row.add(j * next))
                    };
                }
                let column = self.a.add(p * self.a_col_stride);
                for (r, row) in sums.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(*column.add(r * self.a_row_stride));
                    for (sum, &b) in row.iter_mut().zip(&b) {
                        *sum = _mm512_fmadd_ps(x, b, *sum);
                    }
                }
            }
            for (r, row) in sums.iter().enumerate() {
                for (j, &sum) in row.iter().enumerate() {
                    let c = self.c.add(r * self.ldc + j * PANEL);
                    let value = if accumulate {
                        _mm512_add_ps(_mm512_maskz_loadu_ps(masks[j], c), sum)
                    } else {
                        sum
                    };
                    _mm512_mask_storeu_ps(c, masks[j], value);
                }
            }
        }
    }
}

/// Load masks for the first `cols` of 16 columns (all set from 16 on).
#[target_feature(enable = "avx2")]
fn masks(cols: usize) -> [__m256i; 2] {
    let lane = |j: usize| if j < cols { -1 } else { 0 };
    [
        _mm256_set_epi32(
            lane(7),
            lane(6),
            lane(5),
            lane(4),
            lane(3),
            lane(2),
            lane(1),
            lane(0),
        ),
        _mm256_set_epi32(
            lane(15),
            lane(14),
            lane(13),
            lane(12),
            lane(11),
            lane(10),
            lane(9),
            lane(8),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the CPU has AVX-512, its tiles and AVX2's give the same bits:
    /// packed and in place, last panel narrower than 16, every row count
    /// up to two twelve-row calls and a tail, `k` over a block of 256,
    /// written and accumulated into a wider `c`. (The products' tests in
    /// `gemm` compare whichever runs with the definition.)
    #[test]
    fn both_tiles_give_the_same_bits() {
        if !crate::kernels::has_avx512() {
            return;
        }
        for (k, n) in [
            (1, 1),
            (7, 16),
            (21, 17),
            (300, 35),
            (513, 5),
            (40, 64),
            (9, 47),
        ] {
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.23).cos()).collect();
            let packed = Panels::new(View::new(&b, k, n));
            for m in 1..=25 {
                let a: Vec<f32> = (1..=m * k).map(|i| (i as f32 * 0.37).sin()).collect();
                let left = View::new(&a, m, k);
                for right in [Right::Packed(&packed), Right::Rows(View::new(&b, k, n))] {
                    for accumulate in [false, true] {
                        let ldc = n + 3;
                        let start: Vec<f32> = (0..m * ldc).map(|i| (i as f32).sqrt()).collect();
                        let [mut avx2, mut avx512] = [start.clone(), start.clone()];
                        // SAFETY: the CPU runs both (checked above); the
                        // matrices are the sizes given.
                        unsafe {
                            multiply_on(Isa::Avx2, left, right, k, n, &mut avx2, ldc, accumulate);
                            multiply_on(
                                Isa::Avx512,
                                left,
                                right,
                                k,
                                n,
                                &mut avx512,
                                ldc,
                                accumulate,
                            );
                        }
                        let bits = |c: &[f32]| c.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&avx2), bits(&avx512), "{m}x{k}x{n} {accumulate}");
                        assert_ne!(avx2, start, "{m}x{k}x{n}: nothing written");
                    }
                }
            }
        }
    }
}
