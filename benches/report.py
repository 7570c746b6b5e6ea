#!/usr/bin/env python3
"""Turns `cargo bench -p usbpm --bench dispatch` runs into the ratio tables of
docs/PERFORMANCE.md.

Reads criterion's `new/estimates.json` files under each directory given (default:
`$CARGO_TARGET_DIR/criterion`, i.e. the last run) and prints Markdown. Every time is
criterion's median time per iteration. Every ratio is computed within one run (usbpm and
the baseline measured by the same process, minutes apart at most); with several runs, a
cell shows the median of the per-run values and, in brackets, their range.

    python3 benches/report.py [CRITERION_DIR ...]
"""

import json
import os
import statistics
import sys

BASELINES = ["a_bare_call", "b_atomic_pair", "c_mutex", "d_rwlock", "e_snapshot_unsafe"]
SHORT = {
    "usbpm": "usbpm",
    "a_bare_call": "(a) bare",
    "b_atomic_pair": "(b) atomic pair",
    "c_mutex": "(c) Mutex",
    "d_rwlock": "(d) RwLock",
    "e_snapshot_unsafe": "(e) snapshot",
}


def load(root):
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) != "new" or "estimates.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            meta = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            est = json.load(f)
        key = (meta["group_id"], meta["function_id"], meta.get("value_str"))
        out[key] = est["median"]["point_estimate"]  # ns per iteration
    return out


def fmt_ns(x):
    if x >= 1000:
        return f"{x / 1000:.2f} µs"
    if x >= 10:
        return f"{x:.0f} ns"
    return f"{x:.1f} ns"


def fmt_ratio(x):
    return f"{x:.2f}×"


def cell(values, fmt):
    """Median of the per-run values."""
    values = [v for v in values if v is not None]
    return fmt(statistics.median(values)) if values else "—"


def rcell(values):
    """Median of the per-run ratios, with their range when there are several runs."""
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    m = fmt_ratio(statistics.median(values))
    if len(values) > 1:
        m += f" ({min(values):.2f}–{max(values):.2f})"
    return m


def table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] * len(header)) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()


def main():
    roots = sys.argv[1:] or [os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")]
    runs = [load(root) for root in roots]
    if not all(runs):
        sys.exit(f"no criterion results under one of {roots}")
    many = len(runs) > 1
    print(f"_{len(runs)} run(s). Times: criterion's median per iteration"
          + (", then the median over runs" if many else "")
          + ". Ratios: usbpm ÷ baseline within each run"
          + ("; median over runs, range in brackets" if many else "") + "._\n")

    def times(key, scale=1.0):
        return [r[key] / scale if key in r else None for r in runs]

    def ratios(num, den, scale_num=1.0, scale_den=1.0):
        out = []
        for r in runs:
            if num in r and den in r:
                out.append((r[num] / scale_num) / (r[den] / scale_den))
        return out

    # --- one thread, 1/8/64 clients -------------------------------------------------
    g = "deliver_1thread"
    print("### One event to N clients, one thread\n")
    print("Time per event; usbpm per callback = time per event ÷ N.\n")
    rows = []
    for n in ["1", "8", "64"]:
        u = (g, "usbpm", n)
        row = [n, cell(times(u), fmt_ns), cell(times(u, int(n)), fmt_ns)]
        row += [cell(times((g, b, n)), fmt_ns) for b in BASELINES]
        row += [rcell(ratios(u, (g, b, n))) for b in BASELINES]
        rows.append(row)

    # Marginal cost of one more client, from the 8- and 64-client runs of each run.
    def marginal(r, d):
        a, b = r.get((g, d, "8")), r.get((g, d, "64"))
        return (b - a) / 56 if a is not None and b is not None else None

    row = ["each extra client (8→64)", cell([marginal(r, "usbpm") for r in runs], fmt_ns), ""]
    row += [cell([marginal(r, b) for r in runs], fmt_ns) for b in BASELINES]
    row += [rcell([marginal(r, "usbpm") / marginal(r, b) for r in runs
                   if marginal(r, "usbpm") is not None and marginal(r, b)])
            for b in BASELINES]
    rows.append(row)
    table(["clients", "usbpm", "usbpm per callback"] + [SHORT[b] for b in BASELINES]
          + ["usbpm ÷ " + SHORT[b] for b in BASELINES], rows)

    # --- 1/2/4 dispatching threads, 8 clients --------------------------------------
    for g, title, threads, designs in [
        ("deliver_parallel_8clients",
         "1, 2 and 4 dispatching threads (one hub each), the same 8 clients, trivial callbacks",
         ["1", "2", "4"], BASELINES),
        ("deliver_parallel_busy_8clients",
         "Same pattern, callbacks doing 1000 rounds of opaque work (not an issue case)",
         ["1", "2"], ["b_atomic_pair", "c_mutex", "d_rwlock"]),
    ]:
        if not any(k[0] == g for r in runs for k in r):
            continue
        print(f"### {title}\n")
        print("Wall time per callback delivered: an iteration is every thread delivering one "
              "event to all 8 clients; its time ÷ (threads × 8).\n")
        rows = []
        for t in threads:
            k = int(t) * 8
            u = (g, "usbpm", t)
            rows.append([t, cell(times(u, k), fmt_ns)]
                        + [cell(times((g, b, t), k), fmt_ns) for b in designs]
                        + [rcell(ratios(u, (g, b, t))) for b in designs])
        table(["threads", "usbpm"] + [SHORT[b] for b in designs]
              + ["usbpm ÷ " + SHORT[b] for b in designs], rows)

    # --- churn ---------------------------------------------------------------------
    designs = ["c_mutex", "d_rwlock", "e_snapshot_unsafe"]
    print("### Churn: one thread registering+deregistering, one delivering, 8 steady clients\n")
    rows = []
    for g, what in [("churn_deliver_8clients", "deliver one event (churn beside it)"),
                    ("churn_register_deregister", "register + deregister (delivery beside it)")]:
        u = (g, "usbpm", None)
        rows.append([what, cell(times(u), fmt_ns)]
                    + [cell(times((g, b, None)), fmt_ns) for b in designs]
                    + [rcell(ratios(u, (g, b, None))) for b in designs])
    table(["measured", "usbpm"] + [SHORT[b] for b in designs]
          + ["usbpm ÷ " + SHORT[b] for b in designs], rows)


if __name__ == "__main__":
    main()
