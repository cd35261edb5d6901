#!/usr/bin/env python3
"""Turns bench/scaleout.sh's rows into a table, a sizing and a plot.

    python3 bench/scaleout_report.py bench/results/scaleout.jsonl bench/results/scaleout.svg

The sizing divides by the measured CPU per event: Redis runs commands on one core, so
one shard sustains at most 1 s / (Redis CPU per event); it is planned at 70 % of that.
"""
import json
import math
import sys

TARGET = 100_000
HEADROOM = 0.7


def main(rows_path, svg_path):
    rows = [json.loads(line) for line in open(rows_path) if line.strip()]
    print(f"{'mode':6} {'N':>2} {'accepted/s':>11} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'gateway us/ev':>14} {'redis us/ev':>12}")
    for r in rows:
        redis = f"{r['redis_us_per_event']:12.1f}" if r["redis_us_per_event"] else f"{'-':>12}"
        print(f"{r['mode']:6} {r['processes']:2} {r['accepted_per_s']:11.0f} "
              f"{r['p50_us'] / 1000:7.1f} {r['p99_us'] / 1000:7.1f} "
              f"{r['gateway_us_per_event']:14.1f} {redis}")
    redis_rows = [r for r in rows if r["mode"] == "redis"]
    if redis_rows:
        per_event = sorted(r["redis_us_per_event"] for r in redis_rows)[len(redis_rows) // 2]
        gateway = sorted(r["gateway_us_per_event"] for r in redis_rows)[len(redis_rows) // 2]
        shard = 1e6 / per_event
        shards = math.ceil(TARGET / (shard * HEADROOM))
        cores = math.ceil(TARGET * gateway / 1e6 / HEADROOM)
        print(f"\nRedis CPU per event (median over N): {per_event:.1f} us -> one shard "
              f"saturates at ~{shard:,.0f} events/s")
        print(f"{TARGET:,} events/s at {HEADROOM:.0%} load: {shards} Redis shard(s), "
              f"{cores} gateway cores ({gateway:.1f} us of gateway CPU per event)")
    with open(svg_path, "w") as f:
        f.write(chart(rows))


def chart(rows):
    """Accepted events/s against the number of processes, with sync and disk as lines."""
    width, height, left, bottom, top = 520, 280, 70, 40, 30
    redis = [r for r in rows if r["mode"] == "redis"]
    others = [r for r in rows if r["mode"] != "redis"]
    peak = max(r["accepted_per_s"] for r in rows) * 1.15
    counts = [r["processes"] for r in redis] or [1]
    plot_w, plot_h = width - left - 20, height - top - bottom

    def x(i):
        return left + plot_w * (i + 0.5) / len(counts)

    def y(v):
        return top + plot_h * (1 - v / peak)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           'font-family="sans-serif" font-size="12">',
           f'<text x="{left}" y="18" font-weight="bold">Accepted events/s, 1 KiB, '
           'closed loop (32 connections)</text>',
           f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
           'stroke="#333"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>']
    for k in range(5):
        v = peak * k / 4
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.0f}" text-anchor="end">'
                   f'{v / 1000:.0f}k</text>')
    for i, r in enumerate(redis):
        bar_w = plot_w / len(counts) * 0.5
        out.append(f'<rect x="{x(i) - bar_w / 2:.0f}" y="{y(r["accepted_per_s"]):.0f}" '
                   f'width="{bar_w:.0f}" height="{top + plot_h - y(r["accepted_per_s"]):.0f}" '
                   'fill="#c0392b"/>')
        out.append(f'<text x="{x(i):.0f}" y="{top + plot_h + 16}" text-anchor="middle">'
                   f'{r["processes"]} on Redis</text>')
        out.append(f'<text x="{x(i):.0f}" y="{y(r["accepted_per_s"]) - 4:.0f}" '
                   f'text-anchor="middle">{r["accepted_per_s"]:,.0f}</text>')
    colours = {"sync": "#2471a3", "disk": "#7d8c2f"}
    for r in others:
        colour = colours.get(r["mode"], "#555")
        out.append(f'<line x1="{left}" y1="{y(r["accepted_per_s"]):.0f}" x2="{left + plot_w}" '
                   f'y2="{y(r["accepted_per_s"]):.0f}" stroke="{colour}" stroke-dasharray="5,4"/>')
        out.append(f'<text x="{left + plot_w - 4}" y="{y(r["accepted_per_s"]) - 4:.0f}" '
                   f'text-anchor="end" fill="{colour}">{r["mode"]}, 1 process: '
                   f'{r["accepted_per_s"]:,.0f}</text>')
    out.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 6}" text-anchor="middle">'
               'gateway processes (all on one core; Redis, app and load on the other)</text>')
    out.append("</svg>\n")
    return "\n".join(out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
