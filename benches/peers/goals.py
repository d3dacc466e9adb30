"""The benchmark issue's goals as ratios, from one run's reports in DIR:
report.json (the load tool), hnswlib.json and chroma.json (the peers).

    python goals.py DIR

Equal recall: for each system, the best QPS among its ef settings whose
recall@10 reaches the level; a ratio is shown only where both reach it.
Where DIR/round-*/ hold back-to-back in-process rounds (report.json and
hnswlib.json each), the in-process goal is the median of their ratios.
Writes DIR/goals.json and DIR/goals.md and prints the markdown. These are
goals for the benchmark, never assertions in tests.
"""

import json
import pathlib
import sys

LEVELS = (0.95, 0.99)


def best(runs, threads, level):
    qps = [r["qps"] for r in runs if r["threads"] == threads and r["recall_at_10"] >= level]
    return max(qps) if qps else None


def ratio(a, b):
    return a / b if a and b else None


def fmt(x, suffix="x"):
    return "n/a" if x is None else f"{x:.2f}{suffix}"


def main():
    out = pathlib.Path(sys.argv[1])
    report = json.loads((out / "report.json").read_text())
    peers = {}
    for name in ("hnswlib", "chroma"):
        path = out / f"{name}.json"
        if path.exists():
            peers[name] = json.loads(path.read_text())
    engine = report["single_tenant"]["engine"]
    grpc = report["single_tenant"]["grpc"]
    rows = []

    def goal(name, target, value, meets):
        rows.append({"goal": name, "target": target, "measured": value, "met": meets})

    rounds = sorted(p for p in out.glob("round-*") if (p / "report.json").exists()
                    and (p / "hnswlib.json").exists())
    if rounds:
        for level in LEVELS:
            for threads in (1, 2):
                ratios = []
                for r in rounds:
                    ours = json.loads((r / "report.json").read_text())["single_tenant"]["engine"]
                    theirs = json.loads((r / "hnswlib.json").read_text())["runs"]
                    x = ratio(best(ours, threads, level), best(theirs, threads, level))
                    if x is not None:
                        ratios.append(x)
                ratios.sort()
                median = ratios[len(ratios) // 2] if ratios else None
                spread = f" ({ratios[0]:.2f}-{ratios[-1]:.2f}x over {len(ratios)} rounds)" if ratios else ""
                goal(f"engine / hnswlib QPS at recall@10 >= {level}, {threads} thread(s), in-process, median of rounds",
                     ">= 1.2x", fmt(median) + spread, median is not None and median >= 1.2)
    elif "hnswlib" in peers:
        for level in LEVELS:
            for threads in (1, 2):
                r = ratio(best(engine, threads, level), best(peers["hnswlib"]["runs"], threads, level))
                goal(f"engine / hnswlib QPS at recall@10 >= {level}, {threads} thread(s), in-process",
                     ">= 1.2x", fmt(r), r is not None and r >= 1.2)
    if "chroma" in peers:
        for level in LEVELS:
            for threads in (1, 2):
                r = ratio(best(grpc, threads, level), best(peers["chroma"]["runs"], threads, level))
                goal(f"gRPC / Chroma QPS at recall@10 >= {level}, {threads} thread(s), over the network stack",
                     ">= 5x", fmt(r), r is not None and r >= 5)
    isolation = report.get("isolation") or {}
    if isolation.get("runs"):
        worst = min(r["per_tenant_over_shared_qps"] for r in isolation["runs"])
        goal("isolation tax: per-tenant graphs / shared filtered index QPS (worst ef)",
             ">= 1.0x (tax <= 0)", fmt(worst), worst >= 1.0)
    for many in report.get("many_tenants") or []:
        if many.get("tenants", 0) >= 10_000:
            reopen = many.get("reopen_seconds")
            kib = many.get("rss_per_tenant_kib")
            goal(f"{many['tenants']} tenants reopen", "<= 5 s", fmt(reopen, " s"),
                 reopen is not None and reopen <= 5)
            goal(f"{many['tenants']} tenants resident memory per tenant", "<= 50 KiB", fmt(kib, " KiB"),
                 kib is not None and kib <= 50)
    lines = ["### Goals (same run, same machine)", "", "| goal | target | measured | met |",
             "|---|---|---|---|"]
    lines += [f"| {r['goal']} | {r['target']} | {r['measured']} | "
              f"{'n/a (a side never reaches that recall)' if r['measured'] == 'n/a' else 'yes' if r['met'] else 'no'} |"
              for r in rows]
    markdown = "\n".join(lines) + "\n"
    (out / "goals.json").write_text(json.dumps(rows, indent=2))
    (out / "goals.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
