"""Turns the raw JSON lines of bench/compare.sh into the markdown report (stdout).

    python3 bench/report.py RAW.json --command ... --machine ... --versions ... --pinning ...
"""

import argparse
import json
import statistics
from collections import defaultdict

ORDER = [
    "daemon-memory",
    "daemon-memory-jwt",
    "daemon-redis-1",
    "daemon-redis-1-jwt",
    "daemon-redis-3",
    "daemon-python",
    "rmcp",
    "ts-sdk",
    "fastmcp",
    "python-sdk",
]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=0):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def ratio(value, base):
    if value is None or not base:
        return "–"
    return f"{value / base:.2f}x"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("raw")
    parser.add_argument("--command", default="")
    parser.add_argument("--machine", default="")
    parser.add_argument("--versions", default="")
    parser.add_argument("--pinning", default="")
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--client-cpu", type=int, default=0)
    args = parser.parse_args()

    runs = defaultdict(list)
    c1 = defaultdict(list)
    extras = []
    with open(args.raw) as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            if row["kind"] == "calls":
                runs[row["server"]].append(row)
            elif row["kind"] == "calls-c1":
                c1[row["server"]].append(row)
            else:
                extras.append(row)

    out = []
    out.append(f"Command: `{args.command}`  ")
    out.append(f"Machine: {args.machine}  ")
    out.append(f"Pinning: {args.pinning}  ")
    out.append(f"Versions: {args.versions}")
    out.append("")
    if runs:
        first = next(iter(runs.values()))[0]
        rounds = max(len(r) for r in runs.values())
        out.append(
            f"`tools/call` of `{first['tool']}`, {first['concurrency']} clients, "
            f"{first['duration_s']:.0f} s per run after {first['warmup_s']:.0f} s warm-up, "
            f"median of {rounds} interleaved rounds (every result checked):"
        )
        out.append("")
        summary = {}
        for server, rows in runs.items():
            summary[server] = {
                "calls_per_s": median([r["calls_per_s"] for r in rows]),
                "p50_us": median([r["p50_us"] for r in rows]),
                "p99_us": median([r["p99_us"] for r in rows]),
                # Redis shares the server core: its CPU is part of what a call costs.
                "cpu": median(
                    [
                        (r["server_cpu_us_per_call"] or 0)
                        + (r.get("aux_cpu_us_per_call") or 0)
                        + (r.get("worker_cpu_us_per_call") or 0)
                        for r in rows
                    ]
                ),
                "aux_cpu": median([r.get("aux_cpu_us_per_call") for r in rows]),
                "worker_cpu": median([r.get("worker_cpu_us_per_call") for r in rows]),
                "worker_rss": median([r.get("worker_rss_kib") for r in rows]),
                "workers": median([len(r.get("worker_pids") or []) or None for r in rows]),
                "errors": sum(r["errors"] for r in rows),
                "calls": sum(r["calls"] for r in rows),
                "all": ", ".join(fmt(r["calls_per_s"]) for r in rows),
            }
        base = summary.get("rmcp", {})
        out.append(
            "| server | calls/s | vs rmcp | p50 us | p99 us | server core CPU us/call | vs rmcp "
            "| errors / calls | calls/s of each round |"
        )
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        servers = [s for s in ORDER if s in summary] + [s for s in summary if s not in ORDER]
        for server in servers:
            s = summary[server]
            cpu = fmt(s["cpu"], 1)
            if s["aux_cpu"] is not None:
                cpu += f" (redis {fmt(s['aux_cpu'], 1)})"
            if s["worker_cpu"] is not None:
                cpu += f" (workers {fmt(s['worker_cpu'], 1)})"
            out.append(
                f"| {server} | {fmt(s['calls_per_s'])} | {ratio(s['calls_per_s'], base.get('calls_per_s'))} "
                f"| {fmt(s['p50_us'])} | {fmt(s['p99_us'])} | {cpu} | {ratio(s['cpu'], base.get('cpu'))} "
                f"| {s['errors']} / {s['calls']:,} | {s['all']} |"
            )
        out.append("")
        disturbed = []
        for server, rows in runs.items():
            for r in rows:
                busy = r.get("cpu_busy") or []
                if args.server_cpu >= len(busy):
                    continue
                aux = (r.get("aux_cpu_us_per_call") or 0) * r["calls"] / 1e6 / r["duration_s"]
                workers = (r.get("worker_cpu_us_per_call") or 0) * r["calls"] / 1e6 / r["duration_s"]
                other = busy[args.server_cpu] - r["server_cores_used"] - aux - workers
                if other > 0.1:
                    disturbed.append(f"{server} round {r['round']} (server CPU, {other:.0%})")
                if args.client_cpu < len(busy) and "loadgen_cores_used" in r:
                    other = busy[args.client_cpu] - r["loadgen_cores_used"]
                    if other > 0.1:
                        disturbed.append(f"{server} round {r['round']} (loadgen CPU, {other:.0%})")
        if disturbed:
            out.append(
                "Other processes used the measured CPUs during: " + ", ".join(disturbed) + "."
            )
            out.append("")

    if runs and any(s.get("worker_rss") for s in summary.values()):
        for server, s in summary.items():
            if s.get("worker_rss"):
                out.append(
                    f"- {server}: {fmt(s['workers'])} worker processes, "
                    f"{fmt(s['worker_rss'] / (s['workers'] or 1) / 1024, 1)} MiB RSS each after the run"
                )
        out.append("")

    if c1:
        out.append(
            f"One client at a time (`--concurrency 1`), median of {max(len(r) for r in c1.values())} "
            "interleaved rounds:"
        )
        out.append("")
        out.append("| server | calls/s | p50 us | p90 us | p99 us | p50 over daemon-memory |")
        out.append("|---|---:|---:|---:|---:|---:|")
        base_p50 = median([r["p50_us"] for r in c1.get("daemon-memory", [])])
        for server in [s for s in ORDER if s in c1] + [s for s in c1 if s not in ORDER]:
            rows = c1[server]
            p50 = median([r["p50_us"] for r in rows])
            added = "–" if base_p50 is None or p50 is None else f"{p50 - base_p50:+,.0f} us"
            out.append(
                f"| {server} | {fmt(median([r['calls_per_s'] for r in rows]))} | {fmt(p50)} "
                f"| {fmt(median([r.get('p90_us') for r in rows]))} | {fmt(median([r['p99_us'] for r in rows]))} "
                f"| {added} |"
            )
        out.append("")

    for row in extras:
        kind, server = row["kind"], row["server"]
        if kind == "sessions":
            line = (
                f"- sessions, {server}: {row['sessions']:,} idle sessions, node RSS "
                f"{fmt(row['rss_bytes_per_session'])} B/session"
            )
            if row.get("redis_bytes_per_session") is not None:
                line += f", Redis used_memory {fmt(row['redis_bytes_per_session'])} B/session"
            line += (
                f" (RSS {fmt(row['rss_before_kib'])} -> {fmt(row['rss_idle_kib'])} KiB; "
                f"{row['open_errors']} open errors, {row['delete_errors']} delete errors; "
                f"{fmt(row['sessions_per_s'])} sessions/s opened)"
            )
        elif kind == "streams":
            line = (
                f"- streams, {server}: {row['ok']:,} of {row['streams']:,} GET streams open for "
                f"{row['hold_s']:.0f} s, {row['errors']} errors, node RSS "
                f"{fmt(row['rss_before_kib'])} -> {fmt(row['rss_with_streams_kib'])} KiB "
                f"({fmt(row['rss_bytes_per_stream'])} B/stream), opened in {row['open_s']:.1f} s"
            )
            if row["error_samples"]:
                line += f"; first error: {row['error_samples'][0]}"
        elif kind == "notify-latency":
            where = (
                "same node"
                if row["listen_url"] == row["trigger_url"]
                else "listener on node 1, trigger on node 2"
            )
            line = (
                f"- notification latency, {server} ({where}): {row['notifications']:,} "
                f"notifications, p50 {fmt(row['p50_us'])} us, p90 {fmt(row['p90_us'])} us, "
                f"p99 {fmt(row['p99_us'])} us, max {fmt(row['max_us'])} us, {row['errors']} lost "
                f"(trigger call alone: p50 {fmt(row['trigger_call']['p50_us'])} us)"
            )
        else:
            continue
        out.append(line)
    print("\n".join(out))


if __name__ == "__main__":
    main()
