#!/usr/bin/env python3
"""Per-kernel breakdown of one decode step from `ncu --csv` output: time and DRAM GB/s
(GPTQ GEMVs split by their role in the layer)."""
import csv
import sys
from collections import OrderedDict

rows = []
with open(sys.argv[1]) as f:
    lines = [l for l in f if l.startswith('"')]
for r in csv.DictReader(lines):
    rows.append(r)
kern = OrderedDict()
for r in rows:
    key = (r["ID"], r["Kernel Name"])
    d = kern.setdefault(key, {})
    v = float(r["Metric Value"].replace(",", ""))
    unit = r["Metric Unit"]
    scale = {"ns": 1e-9, "us": 1e-6, "usecond": 1e-6, "ms": 1e-3, "msecond": 1e-3, "nsecond": 1e-9,
             "byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9, "KB": 1e3, "MB": 1e6, "GB": 1e9}.get(unit, 1)
    d[r["Metric Name"]] = v * scale
# The decode step launches the GPTQ GEMVs of a layer in this order: name them by role.
ROLES = ["q|k|v (RMSNorm prologue)", "o_proj", "gate|up (RMSNorm prologue)", "down (SwiGLU prologue)"]
agg = OrderedDict()
total_t = 0.0
total_b = 0.0
gemv_seen = 0
for (_, name), d in kern.items():
    clean = name.replace("void ", "").replace("(anonymous namespace)::", "").replace("<unnamed>::", "")
    short = clean.split("(")[0].strip().replace("unnamed>::", "")
    if short.startswith("GptqGemv"):
        short = f"{short} {ROLES[gemv_seen % 4]}"
        gemv_seen += 1
    t = d.get("gpu__time_duration.sum", 0.0)
    b = d.get("dram__bytes_read.sum", 0.0) + d.get("dram__bytes_write.sum", 0.0)
    a = agg.setdefault(short, [0, 0.0, 0.0])
    a[0] += 1
    a[1] += t
    a[2] += b
    total_t += t
    total_b += b
print(f"{'kernel':60s} {'calls':>5s} {'total us':>10s} {'us/call':>9s} {'share':>6s} {'GB/s':>8s}")
for name, (n, t, b) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
    print(f"{name[:60]:60s} {n:5d} {t*1e6:10.1f} {t*1e6/n:9.2f} {100*t/total_t:5.1f}% {b/t/1e9 if t else 0:8.0f}")
print(f"{'sum of kernel times (graphs off, caches flushed per kernel)':60s} {len(kern):5d} "
      f"{total_t*1e6:10.1f} us, {total_b/total_t/1e9 if total_t else 0:.0f} GB/s")
