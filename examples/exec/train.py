#!/usr/bin/env python3
"""Train and measure one sweetspot candidate: a small MLP in pure Python.

The exec stage runs this once per trial, in a fresh working directory. It
reads the candidate (a row of the candidates table) as JSON on stdin and the
dataset as CSV files named by environment variables, trains a multilayer
perceptron of the candidate's depth and width with mini-batch Adam, and
writes JSON lines on stdout: one {"epoch": n, "loss": ...} line per epoch
(an event on the trial's span), then one object with the final metrics.

Only the standard library: it runs on any python3 >= 3.8.

Candidate keys it reads, by name, at the top level of the JSON object:
  depth, width     hidden layers and their width: the mlp kind's columns, or
                   the knobs of those names of an axis family (whose knobs
                   the exec stage puts at the top level too)
  learning_rate, batch_size, epochs, preprocess, quantize, prune_fraction

Environment it reads (set by the exec stage):
  SWEETSPOT_TRAIN, SWEETSPOT_VALIDATION, SWEETSPOT_TEST   CSV paths (header line)
  SWEETSPOT_TARGET, SWEETSPOT_TASK, SWEETSPOT_CLASSES     the target column, task, classes
  SWEETSPOT_DATASET_FORMAT                                must be csv here
  SWEETSPOT_SEED                                          seed of this candidate's training
  TRAIN_FAIL_WIDTH   (optional, for the crash demo) crash on purpose at this width
"""

import csv
import json
import math
import operator
import os
import random
import sys
import time

mul = operator.mul


def fail(msg, code=2):
    print("train.py: " + msg, file=sys.stderr)
    sys.exit(code)


def read_split(path, target, task):
    with open(path, newline="") as f:
        rows = csv.reader(f)
        header = next(rows)
        if target not in header:
            fail("%s has no column %r (columns: %s)" % (path, target, ", ".join(header)))
        t = header.index(target)
        xs, ys = [], []
        for row in rows:
            xs.append([float(v) for i, v in enumerate(row) if i != t])
            ys.append(int(row[t]) if task == "classification" else float(row[t]))
    return xs, ys


def fit_scaler(xs, kind):
    """Per-feature shift and scale, fitted on the training rows only."""
    d = len(xs[0])
    if kind in ("", "none"):
        return [0.0] * d, [1.0] * d
    cols = list(zip(*xs))
    if kind == "standardize":
        mean = [sum(c) / len(c) for c in cols]
        std = [math.sqrt(sum((v - m) ** 2 for v in c) / len(c)) for c, m in zip(cols, mean)]
        return mean, [s if s > 0 else 1.0 for s in std]
    if kind == "minmax":
        lo = [min(c) for c in cols]
        return lo, [(max(c) - l) or 1.0 for c, l in zip(cols, lo)]
    fail("preprocess %r is not supported by this trainer (none, standardize, minmax)" % kind)


def scale(xs, shift, div):
    return [[(v - s) / q for v, s, q in zip(x, shift, div)] for x in xs]


class MLP:
    """tanh hidden layers, a linear output layer; weights as lists of rows."""

    def __init__(self, sizes, rng):
        self.W, self.b = [], []
        for fan_in, fan_out in zip(sizes, sizes[1:]):
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            self.W.append([[rng.uniform(-bound, bound) for _ in range(fan_in)] for _ in range(fan_out)])
            self.b.append([0.0] * fan_out)

    def params(self):
        return sum(len(W) * len(W[0]) + len(b) for W, b in zip(self.W, self.b))

    def forward(self, x):
        """The activations of every layer for one row, the input first."""
        acts = [x]
        last = len(self.W) - 1
        for l, (W, b) in enumerate(zip(self.W, self.b)):
            z = [bj + sum(map(mul, row, x)) for row, bj in zip(W, b)]
            x = z if l == last else [math.tanh(v) for v in z]
            acts.append(x)
        return acts

    def predict(self, x):
        return self.forward(x)[-1]


def softmax(z):
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    return [v / s for v in e]


def loss_and_delta(out, y, task):
    """The loss of one row and its gradient with respect to the outputs."""
    if task == "classification":
        p = softmax(out)
        d = p[:]
        d[y] -= 1.0
        return -math.log(max(p[y], 1e-300)), d
    r = out[0] - y
    return 0.5 * r * r, [r]


class Adam:
    def __init__(self, model, lr):
        self.lr, self.t = lr, 0
        self.m = [[[0.0] * len(r) for r in W] + [[0.0] * len(b)] for W, b in zip(model.W, model.b)]
        self.v = [[[0.0] * len(r) for r in W] + [[0.0] * len(b)] for W, b in zip(model.W, model.b)]

    def step(self, model, grads, b1=0.9, b2=0.999, eps=1e-8):
        self.t += 1
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        lr = self.lr
        for l, (W, b) in enumerate(zip(model.W, model.b)):
            rows = W + [b]
            for r, (row, g, m, v) in enumerate(zip(rows, grads[l], self.m[l], self.v[l])):
                for k, gk in enumerate(g):
                    mk = m[k] = b1 * m[k] + (1 - b1) * gk
                    vk = v[k] = b2 * v[k] + (1 - b2) * gk * gk
                    row[k] -= lr * (mk / c1) / (math.sqrt(vk / c2) + eps)


def train_batch(model, opt, xs, ys, task):
    """One Adam step on a mini-batch; returns the batch's summed loss."""
    n = len(xs)
    L = len(model.W)
    acts, deltas = [], [[] for _ in range(L)]
    total = 0.0
    # The transposed weights give each input's column for backpropagation.
    WT = [list(zip(*W)) for W in model.W]
    for x, y in zip(xs, ys):
        a = model.forward(x)
        loss, d = loss_and_delta(a[-1], y, task)
        total += loss
        acts.append(a)
        for l in range(L - 1, -1, -1):
            deltas[l].append(d)
            if l == 0:
                break
            # Back through W[l] and the tanh of its input.
            d = [sum(map(mul, col, d)) * (1.0 - hk * hk) for col, hk in zip(WT[l], a[l])]
    grads = []
    for l in range(L):
        # dL/dW[j][k] = sum over rows of delta[j] * input[k]: dot products
        # over the batch, one per weight, each in C.
        D = list(zip(*deltas[l]))
        A = list(zip(*[a[l] for a in acts]))
        g = [[sum(map(mul, dj, ak)) / n for ak in A] for dj in D]
        g.append([sum(dj) / n for dj in D])
        grads.append(g)
    opt.step(model, grads)
    return total


def evaluate(model, xs, ys, task, y_mean=0.0, y_std=1.0):
    loss, correct, sse, sst = 0.0, 0, 0.0, 0.0
    mean_y = sum(ys) / len(ys) if task != "classification" else 0.0
    for x, y in zip(xs, ys):
        out = model.predict(x)
        if task == "classification":
            p = softmax(out)
            loss -= math.log(max(p[y], 1e-300))
            correct += max(range(len(out)), key=out.__getitem__) == y
        else:
            pred = out[0] * y_std + y_mean
            sse += (pred - y) ** 2
            sst += (y - mean_y) ** 2
    n = len(xs)
    if task == "classification":
        return {"accuracy": correct / n, "loss": loss / n}
    return {"loss": sse / n, "rmse": math.sqrt(sse / n), "r2": 1 - sse / sst if sst > 0 else 0.0}


def nearest_rank(sorted_values, q):
    k = max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[k]


def whole(cand, name):
    """The candidate's whole-number setting `name` (a column or a knob)."""
    v = cand.get(name)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v) or v < 0:
        fail("candidate %s: %s is %r, want a whole number (keys: %s)" % (
            cand.get("name", cand.get("candidate_id")), name, v, ", ".join(sorted(cand))))
    return int(v)


def main():
    cand = json.load(sys.stdin)
    env = os.environ
    if env.get("SWEETSPOT_DATASET_FORMAT") != "csv":
        fail('this trainer reads CSV: set dataset_format = "csv" on the exec stage')
    if cand.get("quantize", "none") not in ("", "none") or cand.get("prune_fraction", 0) > 0:
        fail("this trainer neither quantizes nor prunes (candidate %s)" % cand["candidate_id"])
    depth, width = whole(cand, "depth"), whole(cand, "width")
    if str(width) == env.get("TRAIN_FAIL_WIDTH"):
        raise RuntimeError("simulated crash: TRAIN_FAIL_WIDTH=%d" % width)
    task, target = env["SWEETSPOT_TASK"], env["SWEETSPOT_TARGET"]
    classes = int(env["SWEETSPOT_CLASSES"])
    lr, epochs = float(cand["learning_rate"]), int(cand["epochs"])
    batch = max(1, int(cand["batch_size"]))
    rng = random.Random(int(env["SWEETSPOT_SEED"]))

    train_x, train_y = read_split(env["SWEETSPOT_TRAIN"], target, task)
    val_x, val_y = read_split(env["SWEETSPOT_VALIDATION"], target, task)
    test_x, test_y = read_split(env["SWEETSPOT_TEST"], target, task)
    if not train_x or not test_x:
        fail("need training and test rows")
    shift, div = fit_scaler(train_x, cand.get("preprocess", ""))
    train_x, val_x, test_x = (scale(xs, shift, div) for xs in (train_x, val_x, test_x))
    y_mean, y_std = 0.0, 1.0
    fit_y = train_y
    if task != "classification":
        y_mean = sum(train_y) / len(train_y)
        y_std = math.sqrt(sum((y - y_mean) ** 2 for y in train_y) / len(train_y)) or 1.0
        fit_y = [(y - y_mean) / y_std for y in train_y]

    outputs = classes if task == "classification" else 1
    model = MLP([len(train_x[0])] + [width] * depth + [outputs], rng)
    opt = Adam(model, lr)
    order = list(range(len(train_x)))
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        rng.shuffle(order)
        total = 0.0
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            total += train_batch(model, opt, [train_x[j] for j in idx], [fit_y[j] for j in idx], task)
        line = {"epoch": epoch, "loss": total / len(order)}
        if val_x:
            line["val_loss"] = evaluate(model, val_x, val_y, task, y_mean, y_std)["loss"]
        print(json.dumps(line), flush=True)
    train_seconds = time.perf_counter() - start

    metrics = evaluate(model, test_x, test_y, task, y_mean, y_std)
    # Latency: batch-1 predictions over the test rows, one by one.
    times = []
    for i in range(min(200, 10 * len(test_x))):
        x = test_x[i % len(test_x)]
        t0 = time.perf_counter_ns()
        model.predict(x)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    times.sort()
    rows, t0 = 0, time.perf_counter()
    while rows < 2 * len(test_x) or time.perf_counter() - t0 < 0.05:
        for x in test_x:
            model.predict(x)
        rows += len(test_x)
    throughput = rows / (time.perf_counter() - t0)

    params = model.params()
    metrics.update({
        "latency_p50_ms": nearest_rank(times, 0.5),
        "latency_p95_ms": nearest_rank(times, 0.95),
        "throughput_per_s": throughput,
        "params": params,
        "model_bytes": 8 * params,  # float64 weights and biases
        "train_seconds": train_seconds,
        "epochs_run": epochs,
        "stopped_by": "epochs",
    })
    print(json.dumps(metrics), flush=True)


if __name__ == "__main__":
    main()
