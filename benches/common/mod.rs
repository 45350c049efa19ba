//! What the benches share: the timing protocol of upstream's reference
//! script (median of at least 5 runs and a minimum time, at most 200 runs),
//! and the peak resident set `benches/peak_memory.sh` reads.

use std::time::Instant;

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
