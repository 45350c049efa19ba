//! The crate's own product kernel for AVX2 with FMA, in the layout of
//! BLIS's Haswell `sgemm`: six rows of the left-hand side times a panel
//! of sixteen columns of the right-hand side per call, twelve
//! accumulators, `k` in blocks of 256.
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
    _mm256_maskload_ps, _mm256_set_epi32, _mm256_setzero_ps, _mm256_storeu_ps,
};

use super::View;

/// Columns of a panel: two AVX registers.
const PANEL: usize = 16;
/// Rows of the left-hand side one call of the kernel multiplies.
const ROWS: usize = 6;
/// Length of a block of `k`: a block of a panel (16 KB) stays in L1.
const DEPTH: usize = 256;

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
    // SAFETY: the CPU runs AVX2 and FMA (asserted); `a` and a `Rows`
    // right-hand side were checked to lie in their slices when their views
    // were made, `c` just above, and panels hold `k · 16` values each.
    unsafe { multiply_avx2(a, b, k, n, c, c_row_stride, accumulate) }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn multiply_avx2(
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
        for p in 0..n.div_ceil(PANEL) {
            let cols = PANEL.min(n - p * PANEL);
            // SAFETY (the offsets below): row `k0` and column `p · 16` lie
            // in the right-hand side, row `i` and column `k0` in `a`, entry
            // `(i, p · 16)` in `c`.
            let (panel, ldb, masked) = match b {
                Right::Packed(panels) => (
                    unsafe { panels.data.as_ptr().add((p * k + k0) * PANEL) },
                    PANEL,
                    false,
                ),
                Right::Rows(v) => (
                    unsafe { v.data.as_ptr().add(k0 * v.row_stride + p * PANEL) },
                    v.row_stride,
                    cols < PANEL,
                ),
            };
            let mut i = 0;
            while i < a.rows {
                let rows = ROWS.min(a.rows - i);
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
                // `masked`, else 16) and `rows x cols` entries of `c`.
                unsafe {
                    match (rows, masked) {
                        (6, false) => tile.run::<6, false>(accumulate),
                        (5, false) => tile.run::<5, false>(accumulate),
                        (4, false) => tile.run::<4, false>(accumulate),
                        (3, false) => tile.run::<3, false>(accumulate),
                        (2, false) => tile.run::<2, false>(accumulate),
                        (_, false) => tile.run::<1, false>(accumulate),
                        (6, true) => tile.run::<6, true>(accumulate),
                        (5, true) => tile.run::<5, true>(accumulate),
                        (4, true) => tile.run::<4, true>(accumulate),
                        (3, true) => tile.run::<3, true>(accumulate),
                        (2, true) => tile.run::<2, true>(accumulate),
                        (_, true) => tile.run::<1, true>(accumulate),
                    }
                }
                i += rows;
            }
        }
    }
}

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
