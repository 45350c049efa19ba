//! What the benches share: the timing protocol of upstream's reference
//! script (median of at least 5 runs and a minimum time, at most 200 runs),
//! and the peak resident set `benches/peak_memory.sh` reads.

use std::time::Instant;

/// glibc's `mmap` threshold the benches set: blocks below it come from the
/// heap, and freed, stay there for reuse. 32 MiB, the most glibc's own
/// adjustment reaches on 64-bit systems (its default starts at 128 KiB).
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// glibc's trim threshold the benches set: free memory at the top of a
/// heap up to this much stays with the process (the default, 128 KiB, gives
/// back most of what a training step freed, and the next step faults it
/// in again, page by page).
pub const TRIM_THRESHOLD: usize = 256 << 20;

/// Tells glibc's `malloc` to keep freed memory for reuse, as
/// docs/quickstart.md recommends for training on Linux (the same as
/// `MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=268435456` in the
/// environment), unless `NCPS_BENCH_MALLOC=default` is set; returns what
/// the process runs with, for the output. Nothing elsewhere than glibc.
#[allow(dead_code)]
pub fn hold_freed_memory() -> &'static str {
    if std::env::var("NCPS_BENCH_MALLOC").as_deref() == Ok("default") {
        return "malloc defaults";
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let to_int = |bytes: usize| libc::c_int::try_from(bytes).expect("fits a C int");
        // SAFETY: `mallopt` only changes the allocator's parameters; both
        // values are in the ranges glibc accepts (1 on success).
        let set = unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, to_int(MMAP_THRESHOLD)) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, to_int(TRIM_THRESHOLD)) == 1
        };
        assert!(set, "glibc refused the malloc thresholds");
        "glibc malloc holding freed memory"
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    "the system's allocator"
}

/// Times `f` (already warmed up) until it ran at least 5 times and for
/// `min_s` seconds (at most 200 runs); returns the median milliseconds and
/// the number of runs.
pub fn median_ms(mut f: impl FnMut(), min_s: f64) -> (f64, usize) {
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 5 || start.elapsed().as_secs_f64() < min_s {
        let t0 = Instant::now();
        f();
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        if times.len() >= 200 {
            break;
        }
    }
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let median = if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2.0
    };
    (median, n)
}

// The peak is read by the scaling and workloads benches only; every bench
// compiles its own copy of this module.

/// Peak resident set of this process (`VmHWM`), in KiB.
#[allow(dead_code)]
pub fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Prints the line `benches/peak_memory.sh` reads after `steps` runs of
/// `name`.
#[allow(dead_code)]
pub fn print_peak(name: &str, steps: usize) {
    let kib = vm_hwm_kib().unwrap_or(0);
    println!(
        "{name} steps {steps} VmHWM {kib} kB ({:.1} MiB)",
        kib as f64 / 1024.0
    );
}
