"""Check sympe.datasets.moses_metrics against MOSES itself (CPU-sized; one run, results in check_published.json).

1. Reference statistics: the Test reference built here from test.csv.gz (fingerprints, BRICS fragment counts,
   scaffold counts) against the ones MOSES ships precomputed in molsets (moses/dataset/data/test_stats.npz).
2. The "Train" row of MOSES's README table (train set scored against test / test_scaffolds) on a random
   subsample of N train molecules; N test molecules are scored too, to show the finite-sample floor of FCD,
   Frag and Scaf. FCD uses the ChemNet statistics shipped in molsets (a ChemNet pass over 352k reference
   molecules does not fit this machine: ~170 molecules/s per core).

    python reports/moses/check_published.py [N]
"""
import itertools
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from sympe.datasets import moses_metrics as mm
from sympe.datasets.moses import molsets_paths

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
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
ours = mm.MosesReference.from_smiles(mm.read_csv_smiles(paths["test"]), fcd=False, name="test", progress=True)
report["reference_test"] = {
    "n": [ours.n, ship_test.n],
    "fingerprint_rows_equal": float((ours.fps == ship_test.fps).all(1).mean()),
    "frag_counters_equal": ours.frag == ship_test.frag,
    "frag_cosine": mm.cosine_similarity(ours.frag, ship_test.frag),
    "frag_keys": [len(ours.frag), len(ship_test.frag)],
    "scaf_counters_equal": ours.scaf == ship_test.scaf,
    "scaf_cosine": mm.cosine_similarity(ours.scaf, ship_test.scaf),
    "scaf_keys": [len(ours.scaf), len(ship_test.scaf)],
    "seconds": round(time.time() - t0, 1),
}
print(json.dumps(report["reference_test"]), flush=True)
refs = {"Test": ours.with_molsets_fcd("test"), "TestSF": ship_sf}

rng = random.Random(0)
train = list(mm.read_csv_smiles(paths["train"]))
test = list(mm.read_csv_smiles(paths["test"]))
for label, pool in (("train_subsample", train), ("test_subsample", test)):
    t0 = time.time()
    sample = rng.sample(pool, N)
    out = mm.moses_metrics(sample, refs, train=set(train), unique_at=(1000,))
    out["seconds"] = round(time.time() - t0, 1)
    report[label] = out
    print(label, json.dumps(out), flush=True)
OUT.write_text(json.dumps(report, indent=1, default=str))
