//! The fused kernels' large working buffers: their traces for the backward
//! pass, tens to thousands of megabytes a training step at Walker2d sizes.
//!
//! Such a buffer is fresh memory from the system at every step (glibc maps
//! allocations above 32 MiB anew each time and returns the top of a
//! thread's heap after a step), and every 4 KiB page of it faults on its
//! first write: the faults, not the kernels, set a Walker2d CfC step's time
//! when other work ran in the process before (docs/performance.md). On
//! Linux, [`huge_pages`] asks the kernel to back such a buffer with 2 MiB
//! pages, one fault for 512 small ones, where transparent huge pages are
//! allowed on request (`/sys/kernel/mm/transparent_hugepage/enabled` at
//! `madvise`, the common default, or `always`); elsewhere it changes
//! nothing.

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
