"""Latency and load of the studio server (issue 16): `motionlcm studio` in a subprocess, clients on loopback.

    python bench/bench_studio.py [--model DIR] [--backend torch|onnxruntime] [--requests 100] [--load-seconds 60]
        [--json bench/results/studio_cpu2.json]

Rows: sequential requests; 4 concurrent clients; 20 concurrent clients for --load-seconds (the server's queue
answers 503 beyond its limit: counted, not failed; a client then waits 50 ms); each a 4 s motion (80 frames) from a new prompt and seed.
Latency is request to full response on the client. The server's resident memory (VmRSS) is sampled through
the load run: "flat" means its last quarter stays within 5 % of the first quarter's median.
"""

from __future__ import annotations

import argparse
import http.client
import json
import platform
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

BACKOFF_S = 0.05  # a client waits this long after a 503 before its next request (a page's debounce would)
PROMPTS = ("a person walks forward", "someone waves with the right hand", "a man runs in a circle",
           "a person bows", "a woman jogs then stops", "a person turns left while walking")  # fmt: skip


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, int]:
    cmd = [sys.executable, "-m", "motionlcm.cli", "studio", "--port", "0", "--queue", str(args.queue)]
    cmd += ["--backend", args.backend] + (["--model", args.model] if args.model else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r":(\d+)/", line)
    if not match:
        proc.kill()
        raise SystemExit(f"the studio did not start: {line}{proc.stderr.read()}")
    return proc, int(match.group(1))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one(port: int, k: int) -> tuple[int, float]:
    body = json.dumps({"prompt": f"{PROMPTS[k % len(PROMPTS)]} #{k}", "seconds": 4, "seed": k})
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/api/generate", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status, (time.perf_counter() - start) * 1000


def run_clients(port: int, clients: int, count: int | None, seconds: float | None, pid: int) -> dict:
    results: list[tuple[int, float]] = []
    memory: list[float] = []
    lock, counter, stop = threading.Lock(), [0], time.perf_counter() + (seconds or 1e9)

    def client() -> None:
        while True:
            with lock:
                k = counter[0]
                counter[0] += 1
            if (count is not None and k >= count) or time.perf_counter() > stop:
                return
            try:
                outcome = one(port, k)
            except OSError:
                outcome = (0, float("nan"))
            with lock:
                results.append(outcome)
            if outcome[0] == 503:
                time.sleep(BACKOFF_S)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        memory.append(rss_mib(pid))
        time.sleep(0.5)
    ok = np.array([ms for status, ms in results if status == 200])
    busy = np.array([ms for status, ms in results if status == 503])
    statuses = [status for status, _ in results]
    quarter = max(1, len(memory) // 4)
    return {
        "clients": clients,
        "requests": len(results),
        "ok": int(len(ok)),
        "busy_503": statuses.count(503),
        "failed": len(results) - len(ok) - statuses.count(503),
        "p50_ms": float(np.percentile(ok, 50)) if len(ok) else None,
        "p95_ms": float(np.percentile(ok, 95)) if len(ok) else None,
        "max_ms": float(ok.max()) if len(ok) else None,
        "busy_p95_ms": float(np.percentile(busy, 95)) if len(busy) else None,
        "rss_mib_first_quarter": float(np.median(memory[:quarter])) if memory else None,
        "rss_mib_last_quarter": float(np.median(memory[-quarter:])) if memory else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="student model folder (default: the shipped model)")
    parser.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch", help="the server's backend")
    parser.add_argument("--requests", type=int, default=100, help="requests of the sequential and 4-client rows")
    parser.add_argument("--load-seconds", type=float, default=60.0, help="length of the 20-client load run")
    parser.add_argument("--queue", type=int, default=4, help="the server's --queue")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    proc, port = start_server(args)
    try:
        for k in range(5):  # warm-up
            one(port, 10_000 + k)
        rows = {
            "sequential": run_clients(port, 1, args.requests, None, proc.pid),
            "4 clients": run_clients(port, 4, args.requests, None, proc.pid),
            "20 clients, load": run_clients(port, 20, None, args.load_seconds, proc.pid),
        }
    finally:
        proc.terminate()
        proc.wait(30)
    print(f"studio on 127.0.0.1, backend {args.backend}, {platform.processor() or platform.machine()}")
    print(f"{'row':18s} {'requests':>8s} {'ok':>6s} {'503':>5s} {'failed':>6s} {'p50 ms':>8s} {'p95 ms':>8s} "
          f"{'max ms':>8s} {'503 p95 ms':>10s} {'RSS MiB first/last quarter':>28s}")  # fmt: skip
    for name, r in rows.items():
        p50, p95, top = (f"{r[k]:8.1f}" if r[k] is not None else "     n/a" for k in ("p50_ms", "p95_ms", "max_ms"))
        rss = f"{r['rss_mib_first_quarter']:.0f} / {r['rss_mib_last_quarter']:.0f}"
        busy = f"{r['busy_p95_ms']:10.1f}" if r["busy_p95_ms"] is not None else "       n/a"
        counts = f"{r['requests']:8d} {r['ok']:6d} {r['busy_503']:5d} {r['failed']:6d}"
        print(f"{name:18s} {counts} {p50} {p95} {top} {busy} {rss:>28s}")
    if args.json:
        out = {"backend": args.backend, "queue": args.queue, "rows": rows, "python": platform.python_version()}
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
        print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
