//! The one way the kernels split work over threads.

/// How many threads a batch of `batch` samples is split over, at least
/// `per_thread` samples each.
fn threads_for(batch: usize, per_thread: usize) -> usize {
    // Asked once: the answer may read cgroup files, a few system calls.
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(rayon::current_num_threads);
    (batch / per_thread.max(1)).clamp(1, cores)
}

/// Runs `work(first_sample, samples)` over contiguous chunks of the batch,
/// in batch order, on rayon's pool when every thread gets at least
/// `per_thread` samples (never for batch 1): kernels are short, so threads
/// are reused rather than spawned per call. Samples are independent, so
/// the results do not depend on the split.
pub(crate) fn for_chunks<R: Send>(
    batch: usize,
    per_thread: usize,
    work: impl Fn(usize, usize) -> R + Sync,
) -> Vec<R> {
    use rayon::prelude::*;
    let threads = threads_for(batch, per_thread);
    if threads == 1 {
        return vec![work(0, batch)];
    }
    let chunk = batch.div_ceil(threads);
    (0..batch)
        .step_by(chunk)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|first| work(first, chunk.min(batch - first)))
        .collect()
}

/// Runs `work` on each of `items` (the chunks a batch was split into by
/// [`for_chunks`], taken by value), in order, one thread each when there
/// are several.
pub(crate) fn for_each<T: Send, R: Send>(items: Vec<T>, work: impl Fn(T) -> R + Sync) -> Vec<R> {
    use rayon::prelude::*;
    if items.len() == 1 {
        return items.into_iter().map(work).collect();
    }
    items.into_par_iter().map(&work).collect()
}

/// Runs `work(first_index, chunk)` over contiguous chunks of `out`, in
/// parallel when every thread gets at least `per_thread` elements: for
/// elementwise fills whose values depend on the index only, so the
/// result does not depend on the split.
pub(crate) fn fill<T: Send>(
    out: &mut [T],
    per_thread: usize,
    work: impl Fn(usize, &mut [T]) + Sync,
) {
    fill_rows(out, 1, per_thread, work);
}

/// [`fill`] over whole rows of `row_len` elements: `work(first_row,
/// rows)`, at least `per_thread` rows a thread.
pub(crate) fn fill_rows<T: Send>(
    out: &mut [T],
    row_len: usize,
    per_thread: usize,
    work: impl Fn(usize, &mut [T]) + Sync,
) {
    use rayon::prelude::*;
    let rows = out.len() / row_len.max(1);
    let threads = threads_for(rows, per_thread);
    if threads == 1 {
        return work(0, out);
    }
    let chunk = rows.div_ceil(threads);
    out.par_chunks_mut(chunk * row_len)
        .enumerate()
        .for_each(|(i, part)| work(i * chunk, part));
}

/// A new vector of `len` values, filled by `work(first_row, rows)` as
/// [`fill_rows`] fills a slice: each thread zeroes its own rows just
/// before `work` writes them, rather than the calling thread zeroing the
/// whole vector first while the others wait (8 MB of a Walker2d-sized
/// step's states and of its projection's gradient, a memset on one core
/// each).
pub(crate) fn new_rows(
    len: usize,
    row_len: usize,
    per_thread: usize,
    work: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    use std::mem::MaybeUninit;
    let mut out = Vec::<f32>::with_capacity(len);
    fill_rows(
        &mut out.spare_capacity_mut()[..len],
        row_len,
        per_thread,
        |first, part: &mut [MaybeUninit<f32>]| {
            for v in part.iter_mut() {
                v.write(0.0);
            }
            // SAFETY: every value of `part` was initialized just above, and
            // `MaybeUninit<f32>` has the layout of `f32`.
            let part = unsafe { &mut *(part as *mut [MaybeUninit<f32>] as *mut [f32]) };
            work(first, part)
        },
    );
    // SAFETY: `fill_rows` hands every value of the first `len` to one call
    // (rows cover the slice, a last partial row included), each of which
    // initialized its part.
    unsafe { out.set_len(len) };
    out
}
