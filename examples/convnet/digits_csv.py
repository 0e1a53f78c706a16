#!/usr/bin/env python3
"""Write scikit-learn's digits as the exec stage's CSV split files, to try
train.py without sweetspot:

    /usr/bin/python3 examples/convnet/digits_csv.py /tmp/digits
    echo '{"candidate_id": "convnet-s2", "channels": 8, "layers": 1,
           "learning_rate": 0.01, "batch_size": 32, "epochs": 8}' |
      SWEETSPOT_TRAIN=/tmp/digits/train.csv \\
      SWEETSPOT_VALIDATION=/tmp/digits/validation.csv \\
      SWEETSPOT_TEST=/tmp/digits/test.csv \\
      SWEETSPOT_TARGET=target SWEETSPOT_TASK=classification \\
      SWEETSPOT_CLASSES=10 SWEETSPOT_DATASET_FORMAT=csv SWEETSPOT_SEED=1 \\
      /usr/bin/python3 examples/convnet/train.py

The files are laid out as the exec stage writes them: a header line, one
column per feature (x0..x63, the names the dataset stage gives a file
without a header), then the target column (class indices). The rows are
shuffled with a fixed seed and split 70/15/15 (1257/270/270 rows).
Standard library only.
"""

import csv
import gzip
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DIGITS = os.path.join(HERE, "..", "..", "testdata", "datasets", "sklearn", "digits.csv.gz")


def load(path=DIGITS):
    """The 1797 rows of digits.csv.gz (no header; 64 pixels then the label)."""
    with gzip.open(path, "rt", newline="") as f:
        return [[int(v) for v in row] for row in csv.reader(f) if row]


def write(outdir, rows=None, validation=0.15, test=0.15, seed=11, limit=0):
    """Writes train.csv, validation.csv and test.csv into outdir and
    returns their paths. limit > 0 keeps only the first limit shuffled rows."""
    rows = list(rows if rows is not None else load())
    random.Random(seed).shuffle(rows)
    if limit:
        rows = rows[:limit]
    n_test = round(len(rows) * test)
    n_val = round(len(rows) * validation)
    splits = {
        "test": rows[:n_test],
        "validation": rows[n_test:n_test + n_val],
        "train": rows[n_test + n_val:],
    }
    os.makedirs(outdir, exist_ok=True)
    header = ["x%d" % i for i in range(len(rows[0]) - 1)] + ["target"]
    paths = {}
    for name, part in splits.items():
        paths[name] = os.path.join(outdir, name + ".csv")
        with open(paths[name], "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(part)
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: digits_csv.py OUTDIR")
    for name, path in sorted(write(sys.argv[1]).items()):
        print(name, path)
