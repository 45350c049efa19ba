//! The leading columns of a row-major matrix as a buffer of their own, and
//! the gradient back: the mixed-memory CfC's outputs, the `h` half of each
//! step's state `[h | c]`, which Burn's slice copied value by value on the
//! calling thread, its backward building a zero gradient of the whole
//! states there too (docs/performance.md, "The outputs' half on both
//! cores"). Rows are split over the threads.

use super::parallel::new_rows;

/// Rows per thread below which the copy runs on the calling thread.
const ROWS_PER_THREAD: usize = 1024;

/// Panics unless `len` values are rows of `width` and `keep <= width`.
fn check(len: usize, width: usize, keep: usize) {
    assert!(keep <= width, "columns: keeping {keep} of {width} columns");
    assert!(
        width > 0 && len.is_multiple_of(width),
        "columns: {len} values are not rows of {width}"
    );
}

/// The first `keep` values of each `width`-long row of `x`, `[rows, keep]`.
pub fn leading(x: &[f32], width: usize, keep: usize) -> Vec<f32> {
    check(x.len(), width, keep);
    let rows = x.len() / width;
    if keep == 0 {
        return Vec::new();
    }
    new_rows(rows * keep, keep, ROWS_PER_THREAD, |first, part| {
        for (r, row) in part.chunks_exact_mut(keep).enumerate() {
            let at = (first + r) * width;
            row.copy_from_slice(&x[at..at + keep]);
        }
    })
}

/// The gradient of [`leading`] from that of its output (`[rows, keep]`):
/// each row of `grad` followed by `width - keep` zeros, `[rows, width]`.
pub fn leading_backward(grad: &[f32], rows: usize, width: usize, keep: usize) -> Vec<f32> {
    check(rows * width, width, keep);
    assert_eq!(
        grad.len(),
        rows * keep,
        "columns: the gradient is not [rows, keep]"
    );
    if keep == 0 {
        return vec![0.0; rows * width];
    }
    // The zeros after each row's `keep` values come from `new_rows`.
    new_rows(rows * width, width, ROWS_PER_THREAD, |first, part| {
        for (r, row) in part.chunks_exact_mut(width).enumerate() {
            let at = (first + r) * keep;
            row[..keep].copy_from_slice(&grad[at..at + keep]);
        }
    })
}
