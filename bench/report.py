#!/usr/bin/env python3
"""Summarises bench/run.sh's raw results: medians over rounds, the table, the ratios,
and an SVG chart of latency percentiles. No dependencies beyond Python itself.

  report.py --line < ONE_RESULT           print one round's result as a progress line
  report.py RAW --half-rate SCHEME SIZE   print half the slowest proxy's max rate
  report.py RAW --out DIR                 print the report; write DIR/latest.md,
                                          DIR/latest.json and DIR/latency.svg
"""
import json
import platform
import statistics
import subprocess
import sys

CONFIGS = ["direct", "hyper-pass", "nginx", "hookwarden"]


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def pick(rows, config, mode, scheme="smartcv", size=1024):
    return [r for r in rows if r.get("config") == config and r.get("mode") == mode
            and r.get("scheme") == scheme and r.get("body_size") == size and not r.get("void")]


def half_rate(rows, scheme, size):
    best = [median([r["rps"] for r in pick(rows, c, "closed", scheme, size)]) for c in CONFIGS if c != "direct"]
    return int(0.5 * min(b for b in best if b))


def fmt(v, digits=0):
    return "n/a" if v is None else f"{v:,.{digits}f}"


def split(v):
    """User + system µs per request, e.g. "20.1 + 27.0"."""
    return f"{fmt(v.get('user_us_per_request'), 1)} + {fmt(v.get('sys_us_per_request'), 1)}"


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return f"{cpu}, {cores} cores, {platform.system()} {platform.release()}"


def report(rows, out):
    summary = {"machine": machine(), "configs": {}, "matrix": [], "void_rounds": sum(1 for r in rows if r.get("void"))}
    for c in CONFIGS:
        closed, opened = pick(rows, c, "closed"), pick(rows, c, "open")
        summary["configs"][c] = {
            "rps": median([r["rps"] for r in closed]),
            "cpu_us_per_request": median([r["cpu_us_per_request"] for r in closed]),
            "user_us_per_request": median([r.get("user_us_per_request") for r in closed]),
            "sys_us_per_request": median([r.get("sys_us_per_request") for r in closed]),
            "peak_rss_mb": max([r["peak_rss_kb"] / 1024 for r in closed + opened if r.get("peak_rss_kb")] or [0]) or None,
            "p50_us": median([r["p50_us"] for r in opened]),
            "p99_us": median([r["p99_us"] for r in opened]),
            "p999_us": median([r["p999_us"] for r in opened]),
            "rate": median([r["rate"] for r in opened]),
            "rounds": len(closed),
        }
    combos = sorted({(r["scheme"], r["body_size"]) for r in rows if r.get("mode") == "closed"})
    for scheme, size in combos:
        row = {"scheme": scheme, "body_size": size}
        for c in CONFIGS:
            sel = pick(rows, c, "closed", scheme, size)
            row[c] = {"rps": median([r["rps"] for r in sel]), "cpu": median([r["cpu_us_per_request"] for r in sel])}
        summary["matrix"].append(row)
    k = {c: summary["configs"].get(c) or {} for c in ["direct", "hyper-pass", "nginx", "hookwarden"] + CONFIGS}
    def ratio(a, b):
        return a / b if a and b else None
    summary["ratios"] = {
        "cpu_hookwarden_over_nginx": ratio(k["hookwarden"].get("cpu_us_per_request"), k["nginx"].get("cpu_us_per_request")),
        "cpu_hookwarden_over_hyper_pass": ratio(k["hookwarden"].get("cpu_us_per_request"), k["hyper-pass"].get("cpu_us_per_request")),
        "user_hookwarden_over_hyper_pass": ratio(k["hookwarden"].get("user_us_per_request"), k["hyper-pass"].get("user_us_per_request")),
        "user_hookwarden_over_nginx": ratio(k["hookwarden"].get("user_us_per_request"), k["nginx"].get("user_us_per_request")),
        "p99_added_us": (k["hookwarden"]["p99_us"] - k["direct"]["p99_us"]) if k["hookwarden"].get("p99_us") and k["direct"].get("p99_us") else None,
    }
    dedup = [r for r in rows if r.get("config") == "dedup"]
    summary["dedup"] = dedup[-1] if dedup else None

    lines = [f"Machine: {summary['machine']}. Proxy pinned to core 0; load generator and app on core 1.", ""]
    rate = next((k[c]["rate"] for c in CONFIGS if k[c].get("rate")), None)
    lines += [
        f"SmartCV events of 1 KiB, 10% duplicates. Throughput: closed loop. Latency: open loop at {fmt(rate)} req/s"
        " (half the slowest proxy's max), from the scheduled send time. Medians over rounds.", "",
        "| configuration | req/s (max) | p50 µs | p99 µs | p99.9 µs | CPU µs/req | of which user + system | peak RSS MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in CONFIGS:
        v = k[c]
        lines.append(f"| {c} | {fmt(v['rps'])} | {fmt(v['p50_us'])} | {fmt(v['p99_us'])} | {fmt(v['p999_us'])} | "
                     f"{fmt(v['cpu_us_per_request'], 1) if c != 'direct' else '—'} | {split(v) if c != 'direct' else '—'} | "
                     f"{fmt(v['peak_rss_mb'], 1) if c != 'direct' else '—'} |")
    r = summary["ratios"]
    lines += ["",
              f"- CPU per request, hookwarden / nginx: **{fmt(r['cpu_hookwarden_over_nginx'], 2)}** (target ≤ 1.0)",
              f"- CPU per request, hookwarden / hyper-pass: **{fmt(r['cpu_hookwarden_over_hyper_pass'], 2)}** (target ≤ 0.8)",
              f"- user CPU alone (the kernel's share is the loopback TCP every proxy pays): hookwarden / nginx "
              f"{fmt(r['user_hookwarden_over_nginx'], 2)}, hookwarden / hyper-pass {fmt(r['user_hookwarden_over_hyper_pass'], 2)}",
              f"- p99 added by hookwarden at half load: **{fmt(r['p99_added_us'])} µs** (target < 1000 µs)"]
    if summary["dedup"]:
        d = summary["dedup"]
        lines.append(f"- RSS holding {d['ids']:,} dedup ids: **{d['rss_kb'] / 1024:,.0f} MB** (target < 256 MB)")
    if summary["void_rounds"]:
        lines.append(f"- void rounds (the app did not receive what was answered 2xx): {summary['void_rounds']}")
    lines += ["", "Throughput by scheme and body size (req/s, CPU µs/req of the proxy):", "",
              "| scheme | body | " + " | ".join(CONFIGS) + " |", "| --- | ---: |" + " ---: |" * len(CONFIGS)]
    for m in summary["matrix"]:
        cells = [fmt(m[c]["rps"]) if c == "direct" else f"{fmt(m[c]['rps'])} ({fmt(m[c]['cpu'], 1)})" for c in CONFIGS]
        lines.append(f"| {m['scheme']} | {m['body_size'] // 1024} KiB | " + " | ".join(cells) + " |")
    lines += queue_section(rows, summary)
    text = "\n".join(lines) + "\n"
    print(text)
    with open(f"{out}/latest.md", "w") as f:
        f.write(text)
    with open(f"{out}/latest.json", "w") as f:
        json.dump(summary, f, indent=1)
    with open(f"{out}/latency.svg", "w") as f:
        f.write(chart(k, rate))


def queue_section(rows, summary):
    """Queue delivery beside sync in the same run, and the pending backlog."""
    if not pick(rows, "hookwarden-queue", "closed"):
        return []
    modes = {}
    for mode, config in [("sync", "hookwarden-sync"), ("queue", "hookwarden-queue")]:
        closed, opened = pick(rows, config, "closed"), pick(rows, config, "open")
        modes[mode] = {
            "rps": median([r["rps"] for r in closed]),
            "cpu_us_per_request": median([r["cpu_us_per_request"] for r in closed]),
            "p50_us": median([r["p50_us"] for r in opened]),
            "p99_us": median([r["p99_us"] for r in opened]),
            "rate": median([r["rate"] for r in opened]),
            "bytes_per_event": median([r["spool_bytes"] / r["stored"] for r in closed if r.get("stored")]),
        }
    backlog = [r for r in rows if r.get("config") == "queue-backlog"]
    summary["queue"] = {"modes": modes, "backlog": backlog[-1] if backlog else None}
    q, s = modes["queue"], modes["sync"]
    ratio = q["rps"] / s["rps"] if q["rps"] and s["rps"] else None
    lines = ["", "Queue delivery, beside sync in the same run: SmartCV 1 KiB, 10% duplicates, every"
             " accepted event fsynced before its answer and delivered by the gateway to the same app."
             f" Latency: open loop at {fmt(q['rate'])} req/s (half the queue's max).", "",
             "| mode | accepted/s (max) | p50 µs | p99 µs | CPU µs/req | store bytes/event |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for mode in ["sync", "queue"]:
        m = modes[mode]
        lines.append(f"| {mode} | {fmt(m['rps'])} | {fmt(m['p50_us'])} | {fmt(m['p99_us'])} | "
                     f"{fmt(m['cpu_us_per_request'], 1)} | {fmt(m['bytes_per_event']) if mode == 'queue' else '—'} |")
    lines += ["", f"- accepted events/s, queue / sync: **{fmt(ratio, 2)}** (target ≥ 0.50)",
              f"- p99 of the `queued` answer at half load: **{fmt(q['p99_us'])} µs** (target < 5,000 µs)"]
    if backlog:
        b = backlog[-1]
        lines.append(f"- a backlog of {b['pending']:,} pending 1 KiB events: **{b['disk_bytes'] / 2**20:,.0f} MiB** on disk"
                     f" (target < 2 GiB), **{b['rss_kb'] / 1024:,.0f} MB** RSS (target < 128 MB)")
    return lines


def chart(k, rate):
    """Grouped bars: p50, p99, p99.9 per configuration."""
    quantiles = [("p50_us", "p50", "#8ab6d6"), ("p99_us", "p99", "#2978b5"), ("p999_us", "p99.9", "#0c4a7a")]
    top = max([k[c][q] or 0 for c in CONFIGS for q, _, _ in quantiles] + [1])
    width, height, left, bottom, group = 640, 320, 60, 40, 140
    scale = (height - bottom - 60) / top
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="18" font-size="14">Latency at {fmt(rate)} req/s (µs, lower is better)</text>']
    for i in range(5):
        v = top * i / 4
        y = height - bottom - v * scale
        out.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:,.0f}</text>')
    group = (width - left - 20) // len(CONFIGS)
    for gi, c in enumerate(CONFIGS):
        x0 = left + 20 + gi * group
        for qi, (q, _, color) in enumerate(quantiles):
            v = k[c][q] or 0
            h = v * scale
            x = x0 + qi * 34
            out.append(f'<rect x="{x}" y="{height - bottom - h:.1f}" width="30" height="{h:.1f}" fill="{color}"/>')
            out.append(f'<text x="{x + 15}" y="{height - bottom - h - 3:.1f}" text-anchor="middle" font-size="10">{v:,.0f}</text>')
        out.append(f'<text x="{x0 + 51}" y="{height - bottom + 16}" text-anchor="middle">{c}</text>')
    for qi, (_, label, color) in enumerate(quantiles):
        out.append(f'<rect x="{width - 200 + qi * 64}" y="28" width="12" height="12" fill="{color}"/>')
        out.append(f'<text x="{width - 184 + qi * 64}" y="38">{label}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def line(r):
    cpu = r["cpu_us_per_request"] or 0
    user = r.get("user_us_per_request") or 0
    void = "  VOID" if r["void"] else ""
    return (f"  {r['config']:<11} {r['scheme']:<17} {r['body_size']:>6}B {r['mode']:<6} {r['rps']:>9.0f} req/s"
            f"  p99 {r['p99_us']:>6} us  cpu {cpu:>6.1f} us/req (user {user:.1f}){void}")


if __name__ == "__main__":
    if sys.argv[1] == "--line":
        print(line(json.loads(sys.stdin.read())))
        sys.exit(0)
    rows = load(sys.argv[1])
    if sys.argv[2] == "--half-rate":
        CONFIGS = sys.argv[5:] or CONFIGS
        print(half_rate(rows, sys.argv[3], int(sys.argv[4])))
    else:
        CONFIGS = sys.argv[4:] or CONFIGS
        report(rows, sys.argv[3])
