#!/usr/bin/env python3
"""The scaling sweeps of benches/scaling.rs, timed on upstream Python ncps
(torch, CPU): how inference and a training step of LTC and CfC grow with
batch size, sequence length and units.

    /tmp/ncps-ref/bin/python benches/scaling.py [--quick] [--sweep batch,length,units]
        [--threads 2] [--out target/ncps/scaling] [--min-s 1.0] [--max-train-s 5]
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
the CSV).

Writes `<out>/torch-<sweep>.csv` (columns
sweep,model,mode,batch,length,units,median_ms,runs: the format scaling.rs
writes and reads with `--torch`) and prints a markdown table per sweep.
`--peak NAME` builds one workload ({ltc,cfc}_{infer,train}_b<B>_l<L>[_u<U>]),
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
    """Median ms, runs; (None, 0) when the first warm-up run took longer than
    skip_above seconds."""
    for i in range(warmup):
        t0 = time.perf_counter()
        fn()
        if i == 0 and time.perf_counter() - t0 > skip_above:
            return None, 0
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
        if len(times) >= 200:
            break
    return statistics.median(times), len(times)


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


def peak(workload, steps):
    m = re.fullmatch(r"(ltc|cfc)_(infer|train)_b(\d+)_l(\d+)(?:_u(\d+))?", workload)
    if not m:
        sys.exit(f"--peak {workload}: expected {{ltc,cfc}}_{{infer,train}}_b<B>_l<L>[_u<U>]")
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
        rows = []
        for w in workloads(sweep, a.quick):
            skip = a.max_train_s if w[1] == "train" else float("inf")
            ms, runs = timeit(build(*w), min_seconds=a.min_s, skip_above=skip)
            print(f"{name(*w):<24} {fmt_ms(ms):>12} ms ({runs} runs)", file=sys.stderr, flush=True)
            if ms is None:
                print(f"  skipped: the warm-up run took longer than {a.max_train_s} s", file=sys.stderr)
            rows.append((*w, ms, runs))
        path = os.path.join(a.out, f"torch-{sweep}.csv")
        with open(path, "w") as f:
            f.write("sweep,model,mode,batch,length,units,median_ms,runs\n")
            for model, mode, b, l, u, ms, runs in rows:
                f.write(f"{sweep},{model},{mode},{b},{l},{u},{fmt_ms(ms)},{runs}\n")
        print_table(sweep, rows)
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
