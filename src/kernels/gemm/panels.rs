//! The products a sequence repeats at every step, with the right-hand side
//! (a layer's weights) packed once: an AVX2/FMA kernel in the layout of
//! BLIS's Haswell `sgemm`, six rows of the left-hand side times a panel of
//! sixteen columns, read straight from the row-major left-hand side.
//!
//! `sgemm` packs both operands again at every call: at the Walker2d sizes
//! a training step spent 16 % of its time there (`perf`), repacking the
//! same weights once per step and thread. Packed once, the products
//! themselves also run faster than `sgemm`'s at these shapes (64 to 128
//! rows, 64 to 1024 columns). Each entry is the sum of its products in
//! order along `k`, one FMA each, as `sgemm`'s AVX2 kernel computes it
//! (equal bits where `k` is within one of its blocks).

use std::arch::x86_64::{
    __m256, _mm256_add_ps, _mm256_broadcast_ss, _mm256_fmadd_ps, _mm256_loadu_ps,
    _mm256_setzero_ps, _mm256_storeu_ps,
};

use super::View;

/// Columns of a panel: two AVX registers.
const PANEL: usize = 16;
/// Rows of the left-hand side one call of the kernel multiplies.
const ROWS: usize = 6;

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
        for (p, panel) in data.chunks_exact_mut(k * PANEL).enumerate() {
            let cols = PANEL.min(n - p * PANEL);
            for (i, row) in panel.chunks_exact_mut(PANEL).enumerate() {
                for (j, v) in row[..cols].iter_mut().enumerate() {
                    *v = b.data[i * b.row_stride + (p * PANEL + j) * b.col_stride];
                }
            }
        }
        Self { k, n, data }
    }

    /// Rows (`k`) and columns (`n`).
    pub(crate) fn shape(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// `c = a · self`, or `c += a · self` when `accumulate`; `a` has unit
    /// column stride and `self.k` columns, and `c` was checked to hold
    /// `a.rows x self.n` with rows `c_row_stride` apart.
    pub(crate) fn multiply(
        &self,
        a: View<'_>,
        c: &mut [f32],
        c_row_stride: usize,
        accumulate: bool,
    ) {
        assert!(
            a.col_stride == 1 && a.cols == self.k,
            "the left-hand side is {}x{} with column stride {}, the panels have {} rows",
            a.rows,
            a.cols,
            a.col_stride,
            self.k
        );
        assert!(
            crate::kernels::has_avx2_fma(),
            "panels are built only where the CPU runs AVX2 and FMA"
        );
        // SAFETY: the CPU runs AVX2 and FMA (asserted); `a` was checked to
        // lie in its slice with unit column stride, and `c` to hold the
        // product (by the caller, `View::strided(..).check()`); each panel
        // holds `k · 16` values.
        unsafe { multiply(self, a, c, c_row_stride, accumulate) }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn multiply(b: &Panels, a: View<'_>, c: &mut [f32], ldc: usize, accumulate: bool) {
    let (m, k) = (a.rows, b.k);
    for (p, panel) in b.data.chunks_exact(k * PANEL).enumerate() {
        let cols = PANEL.min(b.n - p * PANEL);
        let mut i = 0;
        while i < m {
            let rows = ROWS.min(m - i);
            let tile = Tile {
                k,
                // SAFETY (both offsets): row `i` of `a` and entry
                // `(i, p · 16)` of `c` lie in their slices (see `multiply`).
                a: unsafe { a.data.as_ptr().add(i * a.row_stride) },
                lda: a.row_stride,
                b: panel.as_ptr(),
                c: unsafe { c.as_mut_ptr().add(i * ldc + p * PANEL) },
                ldc,
                cols,
            };
            // SAFETY: `rows` rows from `tile.a` and `tile.c`, `cols` columns
            // of `c` and `k · 16` panel values lie in their slices.
            unsafe {
                match rows {
                    6 => tile.run::<6>(accumulate),
                    5 => tile.run::<5>(accumulate),
                    4 => tile.run::<4>(accumulate),
                    3 => tile.run::<3>(accumulate),
                    2 => tile.run::<2>(accumulate),
                    _ => tile.run::<1>(accumulate),
                }
            }
            i += rows;
        }
    }
}

/// One kernel call: `R` rows of `a` (`k` values each, rows `lda` apart)
/// times one panel, into `R x cols` entries of `c` (rows `ldc` apart).
struct Tile {
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    cols: usize,
}

impl Tile {
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run<const R: usize>(&self, accumulate: bool) {
        let mut left = [_mm256_setzero_ps(); R];
        let mut right = [_mm256_setzero_ps(); R];
        // SAFETY (the whole body): the caller guarantees `R` rows of `k`
        // values at `a`, `k · 16` values at `b` and `R x cols` entries at `c`.
        unsafe {
            for p in 0..self.k {
                let b0 = _mm256_loadu_ps(self.b.add(p * PANEL));
                let b1 = _mm256_loadu_ps(self.b.add(p * PANEL + 8));
                for r in 0..R {
                    let x = _mm256_broadcast_ss(&*self.a.add(r * self.lda + p));
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
