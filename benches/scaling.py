#!/usr/bin/env python3
"""The scaling sweeps of benches/scaling.rs, timed on upstream Python ncps
(torch, CPU): how inference and a training step of LTC and CfC grow with
batch size, sequence length and units.

    /tmp/ncps-ref/bin/python benches/scaling.py [--quick] [--sweep batch,length,units]
        [--threads 2] [--out target/ncps/scaling] [--min-s 1.0] [--max-train-s 5]
        [--idle 0.1] [--only NAME[,NAME]]
    /tmp/ncps-ref/bin/python benches/scaling.py --peak ltc_train_b32_l64 [--steps 5]

Models: LTC(32, AutoNCP(u, 8)) and CfC(32, u), u = 64 unless swept; input
(batch, length, 32). Sweeps: batch 1, 4, 16, 64, 256 at length 64; length 8,
32, 128, 512 at batch 32; u 16, 32, 64, 128, 256 at batch 32, length 64.
Inference: forward under no_grad. Training step: zero_grad, forward,
mean(y^2), backward, Adam (lr 1e-3).

Timing: the protocol of upstream's reference script (shared/bench/reference.py):
median over at least 5 runs and `--min-s` seconds (at most 200 runs) after
warm-up, here 1 warm-up run and 1 s, as the Rust bench does. A training point
whose warm-up run takes longer than `--max-train-s` is skipped (`skipped` in
the CSV). The CPU time other processes took meanwhile is recorded (column
`others`, in cores); `--idle CORES` waits before each point until other
processes use less than that and times a point again (3 tries at most) when
they used more meanwhile, as scaling.rs does. `--only NAME[,NAME]` times just
those points and updates their rows in the CSV already there.

Writes `<out>/torch-<sweep>.csv` (columns
sweep,model,mode,batch,length,units,median_ms,runs,others: the format scaling.rs
writes and reads with `--torch`) and prints a markdown table per sweep.
`--peak NAME` builds one workload ({ltc,cfc}_{infer,train}_b<B>_l<L>[_u<U>], or
walker_* from upstream's timing script, NCPS_REF_SCRIPT),
runs it `--steps` times, prints the process's VmHWM and exits.
"""
import argparse
import os
import re
import statistics
import sys
import time

import torch
from ncps.torch import CfC, LTC
from ncps.wirings import AutoNCP

FEATURES = 32

SWEEPS = {
    # name: (full grid, quick grid, fixed)
    "batch": ([1, 4, 16, 64, 256], [1, 16, 64], "sequence length 64"),
    "length": ([8, 32, 128, 512], [8, 32, 128], "batch 32"),
    "units": ([16, 32, 64, 128, 256], [16, 64, 128], "batch 32, length 64"),
}


def timeit(fn, warmup=1, min_runs=5, min_seconds=1.0, skip_above=float("inf")):
    """Median ms, runs, seconds of the first warm-up run; (None, 0, seconds)
    when that run took longer than skip_above seconds."""
    warm_up = 0.0
    for i in range(warmup):
        t0 = time.perf_counter()
        fn()
        if i == 0:
            warm_up = time.perf_counter() - t0
            if warm_up > skip_above:
                return None, 0, warm_up
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
        if len(times) >= 200:
            break
    return statistics.median(times), len(times), warm_up


class CpuClock:
    """Busy CPU time of the whole machine and of this process (all threads),
    from /proc: how much of the machine other processes used meanwhile."""

    TICK = 0.01  # USER_HZ

    def __init__(self):
        with open("/proc/stat") as f:
            cpu = [int(x) for x in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal: all but idle and iowait.
        self.busy = sum(cpu[i] for i in (0, 1, 2, 5, 6, 7) if i < len(cpu)) * self.TICK
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # After "(command) ": state is field 3, utime 14, stime 15.
        self.mine = (int(fields[11]) + int(fields[12])) * self.TICK
        self.at = time.perf_counter()

    def others(self):
        """Cores other processes kept busy, on average, since self."""
        now = CpuClock()
        wall = max(now.at - self.at, 1e-3)
        return max(((now.busy - self.busy) - (now.mine - self.mine)) / wall, 0.0)


def wait_idle(limit):
    """Waits until other processes use less than limit cores over a second
    (20 minutes at most)."""
    start = time.perf_counter()
    told = False
    while True:
        clock = CpuClock()
        time.sleep(1.0)
        others = clock.others()
        if others < limit:
            return
        if time.perf_counter() - start > 20 * 60:
            print(f"  still busy after 20 minutes ({others:.2f} cores): timing anyway", file=sys.stderr)
            return
        if not told:
            print(f"  waiting for the machine: other processes use {others:.2f} cores", file=sys.stderr, flush=True)
            told = True


def measure(w, min_s, skip_above, idle):
    """(median ms, runs, others, warm-up s): with idle, waits for the machine first and
    times the point again (3 tries at most, the least perturbed kept) when
    other processes used idle cores or more meanwhile."""
    best = None
    for attempt in range(3):
        if idle is not None:
            wait_idle(idle)
        clock = CpuClock()
        ms, runs, warm_up = timeit(build(*w), min_seconds=min_s, skip_above=skip_above)
        others = clock.others()
        if best is None or others < best[2]:
            best = (ms, runs, others, warm_up)
        if idle is None or others < idle:
            break
        then = "again" if attempt < 2 else "keeping the least perturbed try"
        print(f"  {name(*w)}: other processes used {others:.2f} cores; {then}", file=sys.stderr, flush=True)
    return best


def build(model, mode, batch, length, units):
    """The function one run calls (model and input seeded here)."""
    torch.manual_seed(0)
    if model == "ltc":
        net = LTC(FEATURES, AutoNCP(units, 8))
    elif model == "cfc":
        net = CfC(FEATURES, units)
    else:
        raise ValueError(model)
    x = torch.randn(batch, length, FEATURES)
    if mode == "infer":
        def infer():
            with torch.no_grad():
                net(x)
        return infer
    if mode != "train":
        raise ValueError(mode)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        y, _ = net(x)
        loss = (y ** 2).mean()
        loss.backward()
        opt.step()
    return step


def workloads(sweep, quick):
    full, small, _ = SWEEPS[sweep]
    for model in ("ltc", "cfc"):
        for mode in ("infer", "train"):
            for v in (small if quick else full):
                batch, length, units = {
                    "batch": (v, 64, 64),
                    "length": (32, v, 64),
                    "units": (32, 64, v),
                }[sweep]
                yield model, mode, batch, length, units


def name(model, mode, batch, length, units):
    s = f"{model}_{mode}_b{batch}_l{length}"
    return s if units == 64 else f"{s}_u{units}"


def fmt_ms(ms):
    return "skipped" if ms is None else f"{ms:.3f}"


def print_table(sweep, rows):
    idx = {"batch": 2, "length": 3, "units": 4}[sweep]
    xs = sorted({r[idx] for r in rows})
    cols = [("ltc", "infer"), ("ltc", "train"), ("cfc", "infer"), ("cfc", "train")]
    print(f"\n### torch (upstream ncps 1.0.1): time vs {sweep} ({SWEEPS[sweep][2]}), median ms\n")
    print(f"| {sweep} | " + " | ".join(f"{m} {d}" for m, d in cols) + " |")
    print("|---:|" + "---:|" * len(cols))
    for x in xs:
        cells = []
        for m, d in cols:
            hit = [r for r in rows if r[0] == m and r[1] == d and r[idx] == x]
            cells.append(fmt_ms(hit[0][5]) if hit else "-")
        print(f"| {x} | " + " | ".join(cells) + " |")
    sys.stdout.flush()


def vm_hwm_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def reference_workload(name):
    """A workload of upstream's timing script (NCPS_REF_SCRIPT, default
    ../shared/bench/reference.py), e.g. walker_cfc_train_b256: its step
    function, the model and inputs built as that script builds them."""
    import importlib.util

    path = os.environ.get("NCPS_REF_SCRIPT", "../shared/bench/reference.py")
    if not os.path.exists(path):
        sys.exit(f"--peak {name}: no reference script at {path}; set NCPS_REF_SCRIPT")
    spec = importlib.util.spec_from_file_location("reference", path)
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    # The script's generator builds each workload as it yields it; the ones
    # before `name` are the small b32 models (a few MiB at most).
    for workload, fn in reference.workloads():
        if workload == name:
            return fn
    sys.exit(f"--peak {name}: not a workload of {path}")


def peak(workload, steps):
    m = re.fullmatch(r"(ltc|cfc)_(infer|train)_b(\d+)_l(\d+)(?:_u(\d+))?", workload)
    if workload.startswith("walker_"):
        fn = reference_workload(workload)
    elif not m:
        sys.exit(f"--peak {workload}: expected {{ltc,cfc}}_{{infer,train}}_b<B>_l<L>[_u<U>] or walker_*")
    else:
        model, mode, b, l, u = m.groups()
        fn = build(model, mode, int(b), int(l), int(u or 64))
    for _ in range(steps):
        fn()
    kib = vm_hwm_kib()
    print(f"{workload} steps {steps} VmHWM {kib} kB ({kib / 1024:.1f} MiB)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sweep", default="batch,length,units")
    ap.add_argument("--out", default="target/ncps/scaling")
    ap.add_argument("--min-s", type=float, default=1.0)
    ap.add_argument("--max-train-s", type=float, default=5.0)
    ap.add_argument("--idle", type=float, default=None)
    ap.add_argument("--only", default=None)
    ap.add_argument("--peak", default=None)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.peak:
        peak(a.peak, a.steps)
        return
    os.makedirs(a.out, exist_ok=True)
    for sweep in a.sweep.split(","):
        if sweep not in SWEEPS:
            sys.exit(f"--sweep {sweep}: expected batch, length or units")
        path = os.path.join(a.out, f"torch-{sweep}.csv")
        grid = list(workloads(sweep, a.quick))
        only = set(a.only.split(",")) if a.only else set()
        if only and not any(name(*w) in only for w in grid):
            continue
        before = {}  # with --only, the other points come from the CSV already there
        if only and os.path.exists(path):
            with open(path) as f:
                for line in f.read().splitlines()[1:]:
                    _, model, mode, b, l, u, ms, runs, others = line.split(",")
                    w = (model, mode, int(b), int(l), int(u))
                    ms = None if ms == "skipped" else float(ms)
                    before[w] = (*w, ms, int(runs), float(others))
        rows = []
        for w in grid:
            if only and name(*w) not in only:
                if w in before:
                    rows.append(before[w])
                continue
            skip = a.max_train_s if w[1] == "train" else float("inf")
            ms, runs, others, warm_up = measure(w, a.min_s, skip, a.idle)
            print(f"{name(*w):<24} {fmt_ms(ms):>12} ms ({runs} runs; others {others:.2f} cores)",
                  file=sys.stderr, flush=True)
            if ms is None:
                print(f"  skipped: the warm-up run took {warm_up:.1f} s (> {a.max_train_s} s)", file=sys.stderr)
            rows.append((*w, ms, runs, others))
        with open(path, "w") as f:
            f.write("sweep,model,mode,batch,length,units,median_ms,runs,others\n")
            for model, mode, b, l, u, ms, runs, others in rows:
                f.write(f"{sweep},{model},{mode},{b},{l},{u},{fmt_ms(ms)},{runs},{others:.2f}\n")
        print_table(sweep, rows)
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
