//! The fused kernels' large working buffers: their traces for the backward
//! pass, tens to thousands of megabytes a training step at Walker2d sizes.
//!
//! Freed, such a buffer is fresh memory from the system at the next step
//! (glibc maps allocations above 32 MiB anew each time and returns the top
//! of a thread's heap after a step), and every 4 KiB page of it faults on
//! its first write: the faults, not the kernels, set a Walker2d CfC step's
//! time when other work ran in the process before (docs/performance.md).
//! So the buffers a training step is done with wait in the model for the
//! next step ([`Recycled`]), and a new one is advised as huge pages: on
//! Linux, [`huge_pages`] asks the kernel to back it with 2 MiB pages, one
//! fault for 512 small ones, where transparent huge pages are allowed on
//! request (`/sys/kernel/mm/transparent_hugepage/enabled` at `madvise`,
//! the common default, or `always`); elsewhere it changes nothing.

/// Bytes from which a buffer is worth the advice: two huge pages, so that
/// at least one lies wholly inside it.
const FROM_BYTES: usize = 4 << 20;

/// `buffer`, with its memory advised as huge pages when it is large (see
/// the module's documentation). The contents are untouched.
pub(crate) fn huge_pages<T>(buffer: Vec<T>) -> Vec<T> {
    #[cfg(target_os = "linux")]
    if std::mem::size_of_val(buffer.as_slice()) >= FROM_BYTES {
        advise(buffer.as_slice());
    }
    buffer
}

/// Large buffers a training step is done with, kept for the next step of
/// the same model to fill again rather than freed and faulted in anew.
///
/// Freed after each backward pass, much of a step's trace went back to
/// the system (glibc trims a thread's heap and maps large blocks anew),
/// and the next step faulted it in again, the kernel clearing every page
/// (docs/performance.md, "Trace buffers kept between steps"). A pool holds
/// at most one step's buffers (memory the step needs anyway) from its
/// backward pass to the next forward pass, which takes what it reuses and
/// frees the rest.
///
/// A cache, not part of what holds it: a clone starts empty and equality
/// ignores it.
pub struct Recycled<T>(std::sync::Mutex<Vec<T>>);

impl<T> Default for Recycled<T> {
    fn default() -> Self {
        Self(std::sync::Mutex::new(Vec::new()))
    }
}

impl<T> Recycled<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<T>> {
        // A panic elsewhere cannot leave a list of buffers inconsistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kept item with the lowest `cost`, among those it gives one
    /// (`None`: the item does not fit), the last kept of equals (the most
    /// recently used memory), if any.
    pub(crate) fn take_best(&self, cost: impl Fn(&T) -> Option<usize>) -> Option<T> {
        let mut kept = self.lock();
        let (i, _) = kept
            .iter()
            .enumerate()
            .rev()
            .filter_map(|(i, item)| Some((i, cost(item)?)))
            .min_by_key(|&(_, c)| c)?;
        Some(kept.remove(i))
    }

    /// Keeps `items` for a later [`Recycled::take_best`].
    pub(crate) fn keep(&self, items: impl IntoIterator<Item = T>) {
        self.lock().extend(items);
    }

    /// Frees every kept item.
    pub(crate) fn clear(&self) {
        *self.lock() = Vec::new();
    }

    /// Items kept.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

impl Recycled<Vec<f32>> {
    /// A buffer of `len` values whose every value the caller writes before
    /// reading it. From [`FROM_BYTES`] on, the kept buffer with the least
    /// room that holds `len` values, else a new one (advised as
    /// [`huge_pages`]); a kept buffer holds a past step's values, which in
    /// builds with debug assertions are NaN, so that a value read before it
    /// is written shows in the tests. Smaller buffers are always new (see
    /// [`Recycled::keep_large`]).
    pub(crate) fn buffer(&self, len: usize) -> Vec<f32> {
        if !is_large(len) {
            return vec![0.0; len];
        }
        match self.take_best(|b| (b.capacity() >= len).then_some(b.capacity())) {
            Some(mut kept) => {
                kept.resize(len, 0.0);
                if cfg!(debug_assertions) {
                    kept.fill(f32::NAN);
                }
                kept
            }
            None => huge_pages(vec![0.0; len]),
        }
    }

    /// Keeps the buffers of `buffers` from [`FROM_BYTES`] on and frees the
    /// others: kept, the small ones left glibc without the freed blocks it
    /// reuses for Burn's own tensors, which then faulted in fresh pages at
    /// every step (`cfc_train_b32_l64`: 6,000 page faults in a bench run
    /// became 130,000, 4.0 ms a step became 6.7).
    pub(crate) fn keep_large(&self, buffers: impl IntoIterator<Item = Vec<f32>>) {
        self.keep(buffers.into_iter().filter(|b| is_large(b.len())));
    }
}

/// Whether `len` values of `f32` reach [`FROM_BYTES`].
fn is_large(len: usize) -> bool {
    std::mem::size_of::<f32>() * len >= FROM_BYTES
}

impl<T> Clone for Recycled<T> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<T> PartialEq for Recycled<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> Eq for Recycled<T> {}

impl<T> std::fmt::Debug for Recycled<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recycled({} kept)", self.len())
    }
}

#[cfg(target_os = "linux")]
fn advise<T>(buffer: &[T]) {
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        size if size > 0 => size as usize,
        _ => return,
    };
    let start = buffer.as_ptr().addr();
    let end = start + std::mem::size_of_val(buffer);
    let (from, to) = (start.next_multiple_of(page), end / page * page);
    if from < to {
        // SAFETY: [from, to) lies inside `buffer`'s allocation, whole
        // pages of it; MADV_HUGEPAGE changes how later faults are served,
        // never the contents. The result is advice: an error (huge pages
        // not compiled into the kernel) leaves the memory as it was.
        unsafe {
            libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advised_buffers_keep_their_contents() {
        for len in [
            0,
            1,
            1000,
            FROM_BYTES / 4 - 1,
            FROM_BYTES / 4,
            3 * FROM_BYTES / 4 + 5,
        ] {
            let buffer: Vec<f32> = (0..len).map(|i| i as f32).collect();
            let advised = huge_pages(buffer.clone());
            assert_eq!(advised, buffer, "len {len}");
            let mut zeros = huge_pages(vec![0.0f32; len]);
            assert!(zeros.iter().all(|&x| x == 0.0), "len {len}");
            zeros
                .iter_mut()
                .enumerate()
                .for_each(|(i, x)| *x = i as f32);
            assert_eq!(zeros, buffer, "len {len}");
        }
    }

    /// Large buffers come back, the one with the least room that holds
    /// the length asked for, at that length; small ones are never kept;
    /// a clone starts empty.
    #[test]
    fn large_buffers_are_recycled_by_best_fit() {
        let large = FROM_BYTES / 4;
        let pool = Recycled::<Vec<f32>>::default();
        let [a, b] = [large + 10, large + 20].map(|len| pool.buffer(len));
        assert!(
            a.iter().chain(&b).all(|&x| x == 0.0),
            "new buffers are zeros"
        );
        let (at_a, at_b) = (a.as_ptr(), b.as_ptr());
        pool.keep_large([b, a, vec![1.0; large - 1]]);
        assert_eq!(pool.len(), 2, "the small buffer is freed");
        assert_eq!(pool.clone().len(), 0, "a clone starts empty");
        let c = pool.buffer(large + 5);
        assert_eq!((c.as_ptr(), c.len()), (at_a, large + 5), "the best fit");
        let d = pool.buffer(large + 15);
        assert_eq!((d.as_ptr(), d.len()), (at_b, large + 15));
        if cfg!(debug_assertions) {
            assert!(
                c.iter().chain(&d).all(|x| x.is_nan()),
                "stale values poisoned"
            );
        }
        assert_eq!(pool.len(), 0);
        let e = pool.buffer(large + 30);
        assert!(e.iter().all(|&x| x == 0.0), "none fits: a new one");
        pool.keep([e]);
        pool.clear();
        assert_eq!(pool.len(), 0);
    }

    /// The `VmFlags` of the mapping that holds `address`.
    #[cfg(target_os = "linux")]
    fn flags_at(address: usize) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("/proc/self/smaps");
        let mut inside = false;
        for line in smaps.lines() {
            // A mapping's first line starts with its range, `start-end` in hex.
            let first = line.split_whitespace().next().unwrap_or("");
            let range = first.split_once('-').and_then(|(a, b)| {
                let parse = |x| usize::from_str_radix(x, 16).ok();
                Some(parse(a)?..parse(b)?)
            });
            if let Some(range) = range {
                inside = range.contains(&address);
            } else if inside && let Some(flags) = line.strip_prefix("VmFlags:") {
                return flags.trim().to_string();
            }
        }
        panic!("no mapping holds {address:#x}");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn large_buffers_are_advised_as_huge_pages() {
        if !std::path::Path::new("/sys/kernel/mm/transparent_hugepage").exists() {
            return; // a kernel without huge pages refuses the advice
        }
        let large = huge_pages(vec![0.0f32; FROM_BYTES]);
        let middle = large.as_ptr().addr() + std::mem::size_of_val(large.as_slice()) / 2;
        let flags = flags_at(middle);
        assert!(flags.split(' ').any(|f| f == "hg"), "VmFlags {flags}");
    }
}
