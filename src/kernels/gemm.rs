//! Matrix products on `f32` slices: the one GEMM the fused kernels call.
//!
//! Where the CPU runs AVX2 and FMA, a product whose left-hand side has
//! contiguous rows runs the crate's own kernel ([`panels`]; a right-hand
//! side whose rows are not contiguous is packed for it first), and so do
//! the weights' gradients ([`add_transposed_product`], both sides read in
//! place, 256 rows at a time); the others (a transposed left-hand side
//! through [`matmul`]) and every product on other CPUs run
//! `matrixmultiply`'s `sgemm` (the crate Burn's ndarray backend uses for
//! its own matmul, whose threads Burn's default features turn on), and
//! products of at most four rows plain loops. All take any strides, so
//! transposed views need no copy by the caller. A product runs on the
//! calling thread: the fused kernels split a batch over threads themselves
//! ([`super::parallel`]), each thread running whole sequences, which beats
//! splitting every small product.
//!
//! The products a sequence repeats at every step with the same weights
//! go through [`Weights`]: packed once per sequence.

#[cfg(target_arch = "x86_64")]
mod panels;

/// A matrix of `rows x cols` over a slice: element `(i, j)` is
/// `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> View<'a> {
    /// A row-major `rows x cols` matrix.
    pub(crate) fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols)
    }

    /// A row-major matrix whose rows are `row_stride` apart (a column block
    /// of a wider matrix).
    pub(crate) fn strided(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        let view = Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride: 1,
        };
        view.check();
        view
    }

    /// Rows and columns.
    pub(crate) fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Adds the column sums to `out` (a bias's gradient).
    pub(crate) fn add_column_sums(&self, out: &mut [f32]) {
        assert_eq!(out.len(), self.cols, "one sum per column");
        for i in 0..self.rows {
            let row = &self.data[i * self.row_stride..];
            if self.col_stride == 1 {
                out.iter_mut()
                    .zip(&row[..self.cols])
                    .for_each(|(o, v)| *o += v);
            } else {
                for (j, o) in out.iter_mut().enumerate() {
                    *o += row[j * self.col_stride];
                }
            }
        }
    }

    /// The transpose (no copy).
    pub(crate) fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Panics unless every element is inside the slice.
    fn check(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride;
            assert!(
                last < self.data.len(),
                "a {}x{} matrix with strides ({}, {}) needs {} values, the slice has {}",
                self.rows,
                self.cols,
                self.row_stride,
                self.col_stride,
                last + 1,
                self.data.len()
            );
        }
    }
}

/// `c = a · b`, or `c += a · b` when `accumulate`, with `c` row-major
/// `[a.rows, b.cols]` whose rows are `c_row_stride` apart.
pub(crate) fn matmul(
    a: View<'_>,
    b: View<'_>,
    c: &mut [f32],
    c_row_stride: usize,
    accumulate: bool,
) {
    assert_eq!(
        a.cols, b.rows,
        "inner dimensions: {}x{} times {}x{}",
        a.rows, a.cols, b.rows, b.cols
    );
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    View::strided(c, m, n, c_row_stride).check();
    if k == 0 {
        if !accumulate {
            for row in c.chunks_mut(c_row_stride).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    if m <= SMALL_ROWS {
        small_rows(a, b, c, c_row_stride, accumulate);
        return;
    }
    // The kernel reads `a` in place. A transposed `a` goes to `sgemm`
    // here: the kernels' transposed products, the weights' gradients, take
    // `add_transposed_product`, 256 rows of `k` a call (measured there).
    // On 2026-12-04 the kernel with such an `a` read in place over all `k`
    // at once, or copied block by block, ran `cfc_train_b32_l64` at 7.8 ms
    // against `sgemm`'s 5.5.
    #[cfg(target_arch = "x86_64")]
    if super::has_avx2_fma() && a.col_stride == 1 {
        if b.col_stride == 1 {
            panels::multiply(a, panels::Right::Rows(b), c, c_row_stride, accumulate);
        } else {
            let packed = panels::Panels::new(b);
            panels::multiply(
                a,
                panels::Right::Packed(&packed),
                c,
                c_row_stride,
                accumulate,
            );
        }
        return;
    }
    let beta = if accumulate { 1.0 } else { 0.0 };
    let stride = |s: usize| isize::try_from(s).expect("stride fits isize");
    // SAFETY: the three views were checked to lie inside their slices, `c`
    // is borrowed mutably (no aliasing with `a` or `b`), and with beta = 0
    // sgemm only writes `c`.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            stride(a.row_stride),
            stride(a.col_stride),
            b.data.as_ptr(),
            stride(b.row_stride),
            stride(b.col_stride),
            beta,
            c.as_mut_ptr(),
            stride(c_row_stride),
            1,
        );
    }
}

/// Rows of [`add_transposed_product`]'s operands the kernel reads in place
/// per call: one block of its `k`.
const IN_CACHE_ROWS: usize = 256;

/// `c += aᵀ · b`: a share of a layer's weights' gradient, with `a` the
/// layer's inputs `[k, m]` and `b` the gradients of its pre-activations
/// `[k, n]` over `k` rows, `c` row-major `[m, n]`.
///
/// Where the CPU runs AVX2 and FMA (and both have contiguous rows), the
/// kernel reads both in place ([`panels`]), [`IN_CACHE_ROWS`] rows of `k`
/// a call: a time step's samples, in cache from the step that wrote them,
/// or a sequence's steps block by block (rows of `b` a power of two
/// floats apart fall into the same few sets of the L1 cache, so callers
/// pad them where they can). Else [`matmul`]: `sgemm`. One-off timings
/// of a step's shapes (one core, `k` = 128, `m` = `n` = 256): `sgemm`
/// 121-131 µs (128-139 GFLOP/s), in place 111-119 µs, in place with `b`'s
/// rows 64 bytes apart from a power of two 108 µs (155 GFLOP/s); `k` = 64,
/// `m` = 128, `n` = 1024: `sgemm` 134-175 µs, in place with padded rows
/// 103-111 µs. Over all steps of `cfc_train_b32_l64` (1,024 rows a
/// thread), five alternated rounds, medians: 3.65 ms a step with `sgemm`,
/// 3.58 in blocks; under Burn's default features (`sgemm` then hands work
/// to `matrixmultiply`'s threads inside the kernel's own) 4.24 and 3.52.
pub(crate) fn add_transposed_product(a: View<'_>, b: View<'_>, c: &mut [f32]) {
    assert_eq!(
        a.rows, b.rows,
        "one row of the inputs per row of the gradients"
    );
    let n = b.cols;
    if a.rows == 0 || a.cols == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if super::has_avx2_fma() && a.col_stride == 1 && b.col_stride == 1 {
        let m = a.cols;
        // The kernel spends a panel's 16 lanes on every column of `c`, used
        // or not: with few columns (a projection's 17 outputs: 32 lanes,
        // 17 used) the same sums run as `cᵀ += bᵀ · a` on a transposed copy,
        // each entry the same multiply-adds in the same order (an FMA's
        // product does not depend on its operands' order), so the same bits.
        if m.next_multiple_of(16) * n < m * n.next_multiple_of(16) {
            let mut c_t = vec![0.0f32; n * m];
            for (i, row) in c.chunks_exact(n).take(m).enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    c_t[j * m + i] = v;
                }
            }
            add_in_blocks(b, a, &mut c_t);
            for (i, row) in c.chunks_exact_mut(n).take(m).enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = c_t[j * m + i];
                }
            }
        } else {
            add_in_blocks(a, b, c);
        }
        return;
    }
    matmul(a.t(), b, c, n, true);
}

/// [`add_transposed_product`] on the kernel, [`IN_CACHE_ROWS`] rows of
/// `k` a call (`a` and `b` with contiguous rows).
#[cfg(target_arch = "x86_64")]
fn add_in_blocks(a: View<'_>, b: View<'_>, c: &mut [f32]) {
    let n = b.cols;
    for first in (0..a.rows).step_by(IN_CACHE_ROWS) {
        let rows = IN_CACHE_ROWS.min(a.rows - first);
        fn block(v: View<'_>, first: usize, rows: usize) -> View<'_> {
            View::strided(&v.data[first * v.row_stride..], rows, v.cols, v.row_stride)
        }
        let (a, b) = (block(a, first, rows), block(b, first, rows));
        panels::multiply(a.t(), panels::Right::Rows(b), c, n, true);
    }
}

/// The right-hand side of a product repeated at every time step (a
/// layer's weights, or their transpose): packed once into [`panels`]
/// where the CPU runs AVX2 and FMA and the products have more than
/// [`SMALL_ROWS`] rows, else the view itself ([`matmul`] at each step).
#[derive(Clone, Debug)]
pub(crate) enum Weights<'a> {
    View(View<'a>),
    #[cfg(target_arch = "x86_64")]
    Packed(panels::Panels),
}

impl<'a> Weights<'a> {
    /// `b`, to be multiplied from the left by products of `rows` rows.
    pub(crate) fn new(b: View<'a>, rows: usize) -> Self {
        #[cfg(target_arch = "x86_64")]
        if rows > SMALL_ROWS && b.rows > 0 && b.cols > 0 && super::has_avx2_fma() {
            return Self::Packed(panels::Panels::new(b));
        }
        let _ = rows;
        Self::View(b)
    }

    /// `c = a · self`, or `c += a · self` when `accumulate`, as [`matmul`]
    /// (`a` row-major when the weights are packed).
    pub(crate) fn multiply(
        &self,
        a: View<'_>,
        c: &mut [f32],
        c_row_stride: usize,
        accumulate: bool,
    ) {
        match self {
            Self::View(b) => matmul(a, *b, c, c_row_stride, accumulate),
            #[cfg(target_arch = "x86_64")]
            Self::Packed(b) => {
                panels::multiply(a, panels::Right::Packed(b), c, c_row_stride, accumulate)
            }
        }
    }
}

/// Products of at most this many rows skip sgemm's packing: a control
/// loop's single sample is a vector-matrix product, which sgemm runs at a
/// few percent of its speed (6 us for 1x96 times 96x128, against 1 us as
/// plain loops).
const SMALL_ROWS: usize = 4;

/// Columns of `c` [`small_rows`] keeps in registers at once: eight AVX2
/// registers.
const BLOCK: usize = 64;

vectorized_fn! {
    /// `c (+)= a · b` for a few rows of `a`, as loops over contiguous rows:
    /// `axpy` over the rows of `b` when they are contiguous, dot products with
    /// its columns when those are. Eight lanes where the CPU has AVX2 (the
    /// same operations in the same order, so the same bits): a control
    /// loop's step is mostly these products (docs/performance.md, "A
    /// control loop's step").
    fn small_rows(
        a: View<'_>,
        b: View<'_>,
        c: &mut [f32],
        c_row_stride: usize,
        accumulate: bool,
    ) -> () {
        let (k, n) = (a.cols, b.cols);
        for i in 0..a.rows {
            let out = &mut c[i * c_row_stride..i * c_row_stride + n];
            if !accumulate {
                out.fill(0.0);
            }
            let a_row = |p: usize| a.data[i * a.row_stride + p * a.col_stride];
            if b.col_stride == 1 {
                // Blocks of columns summed in registers over all of `k`,
                // each entry still in the order of `p`: through memory,
                // every `p` reloaded and stored the whole row of `c`.
                let blocks = n / BLOCK * BLOCK;
                for start in (0..blocks).step_by(BLOCK) {
                    let sums: &mut [f32; BLOCK] =
                        (&mut out[start..start + BLOCK]).try_into().expect("one block");
                    let mut block = *sums;
                    for p in 0..k {
                        let scale = a_row(p);
                        let at = p * b.row_stride + start;
                        let row: &[f32; BLOCK] =
                            b.data[at..at + BLOCK].try_into().expect("one block");
                        for l in 0..BLOCK {
                            block[l] += scale * row[l];
                        }
                    }
                    *sums = block;
                }
                let out = &mut out[blocks..];
                for p in 0..k {
                    let scale = a_row(p);
                    let row = &b.data[p * b.row_stride + blocks..p * b.row_stride + n];
                    out.iter_mut().zip(row).for_each(|(o, &v)| *o += scale * v);
                }
            } else if a.col_stride == 1 && b.row_stride == 1 {
                // Both contiguous along `k` (`b` a transposed weight matrix):
                // dot products in eight partial sums, which vectorize.
                let a_row = &a.data[i * a.row_stride..i * a.row_stride + k];
                for (j, o) in out.iter_mut().enumerate() {
                    *o += dot(a_row, &b.data[j * b.col_stride..j * b.col_stride + k]);
                }
            } else {
                for (j, o) in out.iter_mut().enumerate() {
                    let mut sum = 0.0f32;
                    for p in 0..k {
                        sum += a_row(p) * b.data[p * b.row_stride + j * b.col_stride];
                    }
                    *o += sum;
                }
            }
        }
    }
}

/// `Σ x·y` in eight partial sums (lane `l` takes every eighth product),
/// added at the end: a plain running sum is one chain of dependent
/// additions the compiler may not reorder, so it runs scalar.
#[inline(always)]
fn dot(x: &[f32], y: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut partial = [0.0f32; LANES];
    let (xs, ys) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let tail: f32 = xs
        .remainder()
        .iter()
        .zip(ys.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (xc, yc) in xs.zip(ys) {
        partial = std::array::from_fn(|l| partial[l] + xc[l] * yc[l]);
    }
    partial.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn products_of_views_match_the_definition() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let truth = naive(&a, &b, m, k, n);
        let mut c = vec![0.0f32; m * n];
        matmul(View::new(&a, m, k), View::new(&b, k, n), &mut c, n, false);
        for (x, y) in c.iter().zip(&truth) {
            assert!((x - y).abs() < 1e-5);
        }
        // Transposed views: (a^T)^T · b, and accumulation into a wider c.
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let mut wide = vec![1.0f32; m * (n + 2)];
        matmul(
            View::new(&at, k, m).t(),
            View::new(&b, k, n),
            &mut wide,
            n + 2,
            true,
        );
        for i in 0..m {
            for j in 0..n {
                assert!((wide[i * (n + 2) + j] - 1.0 - truth[i * n + j]).abs() < 1e-5);
            }
            assert_eq!(wide[i * (n + 2) + n..(i + 1) * (n + 2)], [1.0, 1.0]);
        }
        let mut sums = vec![0.0f32; k];
        View::new(&a, m, k).add_column_sums(&mut sums);
        assert!((sums[2] - (0..m).map(|i| a[i * k + 2]).sum::<f32>()).abs() < 1e-6);
    }

    /// A few rows times a transposed matrix (the dot-product branch of
    /// `small_rows`), long enough for the partial sums and a tail.
    #[test]
    fn few_rows_times_a_transpose_match_the_definition() {
        let (m, k, n) = (3, 21, 5);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.23).cos()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| bt[(i % n) * k + i / n]).collect();
        let truth = naive(&a, &b, m, k, n);
        let mut c = vec![0.5f32; m * n];
        matmul(
            View::new(&a, m, k),
            View::new(&bt, n, k).t(),
            &mut c,
            n,
            true,
        );
        for (x, y) in c.iter().zip(&truth) {
            assert!((x - 0.5 - y).abs() < 1e-5, "{x} against {}", y + 0.5);
        }
    }

    /// A product into `c` with rows `stride` apart, accumulating or not.
    type Product<'a> = dyn Fn(&mut [f32], usize, bool) + 'a;

    /// Every way a product runs, against the definition: `matmul` and
    /// [`Weights`] (packed or not), right-hand sides with contiguous rows
    /// (read in place, last panel masked) and transposed (packed), left-hand
    /// sides row-major and transposed, every row count up to two kernel
    /// calls and a tail (twelve rows a call on AVX-512, six on AVX2), `k`
    /// over one block of 256, `n` over one and two of [`BLOCK`] columns
    /// and a tail, and accumulation into a wider `c`.
    #[test]
    fn every_product_path_matches_the_definition() {
        let shapes = [
            (1, 1),
            (7, 16),
            (21, 17),
            (40, 35),
            (300, 48),
            (513, 5),
            (33, 64),
            (9, 150),
        ];
        for (k, n) in shapes {
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.23).cos()).collect();
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            for m in 1..=25 {
                let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
                let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
                let truth = naive(&a, &b, m, k, n);
                let rights = [View::new(&b, k, n), View::new(&bt, n, k).t()];
                let lefts = [View::new(&a, m, k), View::new(&at, k, m).t()];
                for (right, left) in rights.into_iter().flat_map(|r| lefts.map(|l| (r, l))) {
                    let weights = Weights::new(right, m);
                    let products: [&Product; 2] = [
                        &|c, stride, acc| matmul(left, right, c, stride, acc),
                        &|c, stride, acc| weights.multiply(left, c, stride, acc),
                    ];
                    for product in products {
                        let mut c = vec![0.0f32; m * n];
                        product(&mut c, n, false);
                        let mut wide = vec![1.0f32; m * (n + 3)];
                        product(&mut wide, n + 3, true);
                        for i in 0..m {
                            for j in 0..n {
                                let want = truth[i * n + j];
                                let tol = 1e-5 * (1.0 + want.abs());
                                assert!((c[i * n + j] - want).abs() < tol, "{m}x{k}x{n}");
                                assert!((wide[i * (n + 3) + j] - 1.0 - want).abs() < tol);
                            }
                            assert_eq!(wide[i * (n + 3) + n..(i + 1) * (n + 3)], [1.0; 3]);
                        }
                    }
                }
            }
        }
    }

    /// Where the CPU runs AVX2 and FMA, weights for more than a few rows
    /// are packed (so the test above covers the kernel there).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn weights_for_many_rows_are_packed_where_the_cpu_allows() {
        let b = [0.5f32; 12];
        let packed = matches!(Weights::new(View::new(&b, 3, 4), 5), Weights::Packed(_));
        assert_eq!(packed, crate::kernels::has_avx2_fma());
        assert!(matches!(
            Weights::new(View::new(&b, 3, 4), 4),
            Weights::View(_)
        ));
    }

    /// `c += aᵀ · b` in place (a step's rows, `b`'s rows padded or not,
    /// and more rows than one block: two calls), against the definition;
    /// column sums of a strided view.
    #[test]
    fn transposed_products_add_to_the_definition() {
        for (k, m, n, pad) in [
            (1, 3, 5, 0),
            (64, 17, 40, 16),
            (128, 30, 64, 0),
            (300, 13, 33, 16),
        ] {
            let a: Vec<f32> = (0..k * m).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * (n + pad))
                .map(|i| (i as f32 * 0.23).cos())
                .collect();
            let mut c = vec![0.5f32; m * n];
            add_transposed_product(
                View::new(&a, k, m),
                View::strided(&b, k, n, n + pad),
                &mut c,
            );
            for i in 0..m {
                for j in 0..n {
                    let want: f32 = 0.5
                        + (0..k)
                            .map(|p| a[p * m + i] * b[p * (n + pad) + j])
                            .sum::<f32>();
                    let got = c[i * n + j];
                    assert!(
                        (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "{k}x{m}x{n}: {got} against {want}"
                    );
                }
            }
            let mut sums = vec![1.0f32; n];
            View::strided(&b, k, n, n + pad).add_column_sums(&mut sums);
            let want: f32 = 1.0 + (0..k).map(|p| b[p * (n + pad) + 2]).sum::<f32>();
            assert!((sums[2] - want).abs() < 1e-4 * (1.0 + want.abs()));
        }
    }

    /// With few columns (a projection's gradient, 256 inputs by 17
    /// outputs; a width under a panel; `k` over a block) the product runs
    /// transposed and gives the bits of the direct one.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn narrow_transposed_products_give_the_direct_bits() {
        if !crate::kernels::has_avx2_fma() {
            return;
        }
        for (k, m, n) in [(300usize, 256usize, 17usize), (70, 40, 5), (513, 60, 20)] {
            assert!(m.next_multiple_of(16) * n < m * n.next_multiple_of(16));
            let a: Vec<f32> = (0..k * m).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.23).cos()).collect();
            let start: Vec<f32> = (0..m * n).map(|i| (i as f32 * 0.11).sin()).collect();
            let (mut direct, mut swapped) = (start.clone(), start.clone());
            add_in_blocks(View::new(&a, k, m), View::new(&b, k, n), &mut direct);
            add_transposed_product(View::new(&a, k, m), View::new(&b, k, n), &mut swapped);
            let bits = |c: &[f32]| c.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&direct), bits(&swapped), "{k}x{m}x{n}");
            assert_ne!(direct, start);
        }
    }

    #[test]
    #[should_panic(expected = "needs")]
    fn a_product_into_too_small_a_slice_is_refused() {
        let (a, b) = ([1.0f32; 6 * 3], [1.0f32; 3 * 17]);
        let weights = Weights::new(View::new(&b, 3, 17), 6);
        weights.multiply(View::new(&a, 6, 3), &mut [0.0; 6 * 17 - 1], 17, false);
    }

    #[test]
    #[should_panic(expected = "needs")]
    fn a_view_past_its_slice_is_refused() {
        View::new(&[0.0; 5], 2, 3);
    }
}
