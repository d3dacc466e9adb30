"""sentence-transformers' side of embedder/examples/throughput.rs: the same
sentences (short.txt, medium.txt beside this file), the same batches in the
same order, the same table.

    python st_throughput.py MODEL_DIR SECONDS BATCHES THREADS
"""

import itertools
import pathlib
import sys
import time

import torch
from sentence_transformers import SentenceTransformer


def main():
    model_dir, seconds, batches, threads = sys.argv[1:5]
    seconds = float(seconds)
    torch.set_num_threads(int(threads))
    model = SentenceTransformer(model_dir, device="cpu")
    here = pathlib.Path(__file__).parent
    sets = [
        [l for l in (here / name).read_text().splitlines() if l.strip()]
        for name in ("short.txt", "medium.txt")
    ]
    print(f"| batch | short sentences/s | medium sentences/s |  (torch {torch.__version__}, {threads} threads)")
    print("|---|---|---|")
    for batch in (int(b) for b in batches.split(",")):
        row = []
        for sentences in sets:
            cycle = itertools.cycle(sentences)
            take = lambda: list(itertools.islice(cycle, batch))
            with torch.inference_mode():
                model.encode(take(), batch_size=batch)
                done, started = 0, time.perf_counter()
                while time.perf_counter() - started < seconds:
                    model.encode(take(), batch_size=batch)
                    done += batch
            row.append(done / (time.perf_counter() - started))
        print(f"| {batch} | {row[0]:.1f} | {row[1]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
