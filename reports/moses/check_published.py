"""Check sympe.datasets.metrics.moses_metrics against MOSES itself (CPU-sized; one run, results in check_published.json).

1. Reference statistics against the ones MOSES ships precomputed in molsets (moses/dataset/data/test_stats.npz):
   the Morgan fingerprints of all 176,074 test molecules bit for bit; the BRICS fragments and scaffolds of the
   first P test molecules must all be keys of MOSES's counters (a full Frag/Scaf pass, ~2 ms per molecule,
   does not fit this shared machine).
2. The "Train" row of MOSES's README table (train set scored against test / test_scaffolds) on a random
   subsample of N train molecules, against MOSES's shipped reference statistics (so that this part tests the
   generated-side code); N test molecules are scored too, to show the finite-sample floor of FCD, Frag and
   Scaf. (A ChemNet pass over the 352k reference molecules does not fit this machine: ~170 molecules/s/core.)

    python reports/moses/check_published.py [N]
"""
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from sympe.datasets.metrics import moses_metrics as mm
from sympe.datasets.sources.moses import molsets_paths

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
P = 10000
OUT = Path(__file__).with_name("check_published.json")
paths = molsets_paths()
report = {"N": N}


def shipped(name):
    with np.load(mm._molsets_file(f"moses/dataset/data/{name}_stats.npz"), allow_pickle=True) as z:
        s = z["stats"].item()
    return mm.MosesReference(n=len(s["SNN"]["fps"]), fps=np.packbits(s["SNN"]["fps"].astype(np.uint8), axis=1),
                             frag=Counter(s["Frag"]["frag"]), scaf=Counter(s["Scaf"]["scaf"]),
                             fcd_mu=np.asarray(s["FCD"]["mu"], np.float64), fcd_sigma=np.asarray(s["FCD"]["sigma"], np.float64))


t0 = time.time()
ship_test, ship_sf = shipped("test"), shipped("test_scaffolds")
test = list(mm.read_csv_smiles(paths["test"]))
fps = np.concatenate([mm.morgan_fingerprints([mm.moses_mol(x) for x in test[i:i + 8192]]) for i in range(0, len(test), 8192)])
head = [mm.moses_mol(x) for x in test[:P]]
frag, scaf = mm.fragment_counts(head), mm.scaffold_counts(head)
report["reference_test"] = {
    "n": [len(fps), ship_test.n],
    "fingerprint_rows_equal": float((fps == ship_test.fps).all(1).mean()),
    f"frag_keys_of_first_{P}_in_moses": [sum(k in ship_test.frag for k in frag), len(frag)],
    f"frag_counts_of_first_{P}_at_most_moses": all(v <= ship_test.frag[k] for k, v in frag.items()),
    f"scaf_keys_of_first_{P}_in_moses": [sum(k in ship_test.scaf for k in scaf), len(scaf)],
    f"scaf_counts_of_first_{P}_at_most_moses": all(v <= ship_test.scaf[k] for k, v in scaf.items()),
    "seconds": round(time.time() - t0, 1),
}
print(json.dumps(report["reference_test"]), flush=True)
refs = {"Test": ship_test, "TestSF": ship_sf}

rng = random.Random(0)
train = list(mm.read_csv_smiles(paths["train"]))
for label, pool in (("train_subsample", train), ("test_subsample", test)):
    t0 = time.time()
    sample = rng.sample(pool, N)
    out = mm.moses_metrics(sample, refs, train=set(train), unique_at=(1000,))
    out["seconds"] = round(time.time() - t0, 1)
    report[label] = out
    print(label, json.dumps(out), flush=True)
OUT.write_text(json.dumps(report, indent=1, default=str))
