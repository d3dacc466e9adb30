"""hnswlib (PyPI) on the load tool's data: the same base, queries, ground
truth, M, ef_construction and ef sweep, in-process, one query per call (as
the engine is measured), on 1 thread and on 2 threads.

    python hnswlib_peer.py DIR [M] [EF_CONSTRUCTION] [EFS] [OUT_JSON]

DIR holds base.fvecs, queries.fvecs and groundtruth.ivecs (written by
`cargo bench --bench load`). Writes OUT_JSON (default DIR/hnswlib.json)
and prints a table.
"""

import json
import pathlib
import sys
import threading
import time

import hnswlib
import numpy as np


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    dim = raw[0]
    rows = raw.reshape(-1, dim + 1)[:, 1:]
    return rows.view(dtype) if dtype == np.float32 else rows


def measure(ef, threads, queries, truth, searcher):
    """One run of the sweep: each of `threads` threads calls `searcher()`
    for its own search function, then asks its share of the queries one per
    call. Returns QPS and recall@10 against `truth`."""
    labels = [None] * len(queries)

    def work(t):
        search = searcher()
        for i in range(t, len(queries), threads):
            labels[i] = [int(x) for x in search(queries[i])]

    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - started
    found = sum(len(set(l) & set(t.tolist())) for l, t in zip(labels, truth))
    return {"ef": ef, "threads": threads, "qps": len(queries) / wall,
            "recall_at_10": found / (10 * len(queries))}


def print_table(title, runs):
    print(f"### {title}\n")
    print("| ef | threads | recall@10 | QPS |\n|---|---|---|---|")
    for r in runs:
        print(f"| {r['ef']} | {r['threads']} | {r['recall_at_10']:.3f} | {r['qps']:.0f} |")


def main():
    out = pathlib.Path(sys.argv[1])
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    ef_construction = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    efs = [int(e) for e in (sys.argv[4] if len(sys.argv) > 4 else "16,32,64,128,256").split(",")]
    base = np.ascontiguousarray(read_vecs(out / "base.fvecs", np.float32))
    queries = np.ascontiguousarray(read_vecs(out / "queries.fvecs", np.float32))
    truth = read_vecs(out / "groundtruth.ivecs", np.int32)[:, :10]
    index = hnswlib.Index(space="cosine", dim=base.shape[1])
    index.init_index(max_elements=len(base), M=m, ef_construction=ef_construction)
    started = time.perf_counter()
    index.add_items(base, np.arange(len(base)), num_threads=1)
    build = time.perf_counter() - started
    runs = []
    for ef in efs:
        index.set_ef(ef)
        for threads in (1, 2):
            runs.append(measure(ef, threads, queries, truth, lambda: lambda q: index.knn_query(
                q, k=10, num_threads=1)[0][0]))
    report = {"peer": f"hnswlib {getattr(hnswlib, '__version__', '0.8')}", "m": m,
              "ef_construction": ef_construction, "build_seconds_1_thread": build, "runs": runs}
    target = pathlib.Path(sys.argv[5]) if len(sys.argv) > 5 else out / "hnswlib.json"
    target.write_text(json.dumps(report, indent=2))
    print_table(f"hnswlib, in-process (build {build:.1f} s on 1 thread)", runs)


if __name__ == "__main__":
    main()
