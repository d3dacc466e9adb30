"""Chroma (PyPI chromadb) as a server peer on the load tool's data: the
real `chroma run` server on 127.0.0.1, its own HTTP client, one tenant and
one collection with the same M, ef_construction and ef sweep, one query per
call, on 1 thread and on 2 threads.

    python chroma_peer.py DIR [M] [EF_CONSTRUCTION] [EFS] [QUERIES]

DIR holds base.fvecs, queries.fvecs and groundtruth.ivecs (written by
`cargo bench --bench load`). Writes DIR/chroma.json and prints a table.
"""

import json
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import chromadb
import numpy as np
from chromadb.config import DEFAULT_DATABASE, Settings

from hnswlib_peer import measure, print_table, read_vecs


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(path, port):
    chroma = shutil.which("chroma") or str(pathlib.Path(sys.executable).parent / "chroma")
    server = subprocess.Popen(
        [chroma, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            chromadb.HttpClient(host="127.0.0.1", port=port).heartbeat()
            return server
        except Exception:
            if server.poll() is not None:
                raise RuntimeError("chroma run exited")
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("chroma run did not answer within 60 s")


def main():
    out = pathlib.Path(sys.argv[1])
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    ef_construction = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    efs = [int(e) for e in (sys.argv[4] if len(sys.argv) > 4 else "16,32,64,128,256").split(",")]
    base = read_vecs(out / "base.fvecs", np.float32)
    queries = read_vecs(out / "queries.fvecs", np.float32)
    truth = read_vecs(out / "groundtruth.ivecs", np.int32)[:, :10]
    if len(sys.argv) > 5:
        queries, truth = queries[: int(sys.argv[5])], truth[: int(sys.argv[5])]
    port = free_port()
    data = tempfile.mkdtemp(prefix="chroma-peer-")
    server = start_server(data, port)
    try:
        admin = chromadb.AdminClient(Settings(chroma_api_impl="chromadb.api.fastapi.FastAPI",
                                              chroma_server_host="127.0.0.1",
                                              chroma_server_http_port=port))
        admin.create_tenant("bench")
        admin.create_database(DEFAULT_DATABASE, tenant="bench")

        def client():
            return chromadb.HttpClient(host="127.0.0.1", port=port, tenant="bench")

        main_client = client()
        collection = main_client.create_collection(
            "bench",
            configuration={"hnsw": {"space": "cosine", "max_neighbors": m,
                                    "ef_construction": ef_construction, "ef_search": efs[0]}},
        )
        batch = min(main_client.get_max_batch_size(), 1000)
        started = time.perf_counter()
        for at in range(0, len(base), batch):
            rows = base[at:at + batch]
            collection.add(ids=[str(i) for i in range(at, at + len(rows))], embeddings=rows)
        build = time.perf_counter() - started
        runs = []
        for ef in efs:
            collection.modify(configuration={"hnsw": {"ef_search": ef}})
            for threads in (1, 2):

                def searcher():
                    own = client().get_collection("bench")
                    return lambda q: own.query(query_embeddings=[q], n_results=10,
                                               include=[])["ids"][0]

                runs.append(measure(ef, threads, queries, truth, searcher))
                print(f"chroma ef {ef} threads {threads}: {runs[-1]['qps']:.0f} QPS", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)
    report = {"peer": f"chroma {chromadb.__version__} (chroma run, HTTP client)", "m": m,
              "ef_construction": ef_construction, "build_seconds": build,
              "queries": len(queries), "runs": runs}
    (out / "chroma.json").write_text(json.dumps(report, indent=2))
    print_table(f"Chroma {chromadb.__version__}, server on 127.0.0.1 (insert {build:.1f} s)", runs)


if __name__ == "__main__":
    main()
