#!/usr/bin/env python3
"""Train and measure one sweetspot candidate: a small convolutional network.

The exec stage runs this once per trial, in a fresh working directory. It
reads the candidate (a row of the candidates table) as JSON on stdin, the
dataset as CSV files named by environment variables (square images, one
feature per pixel, row-major, such as scikit-learn's 8x8 digits), trains a
convolutional network of the candidate's size with mini-batch Adam, and
writes JSON lines on stdout: one {"epoch": n, "loss": ...} line per epoch (an
event on the trial's span), then one object with the final metrics.

Needs numpy (Debian: python3-numpy, for /usr/bin/python3). Training is in
float32; every convolution is matrix products (im2col for the first block,
the same product tap by tap for the others: see conv_forward), so the time
goes into BLAS's sgemm.

The model, for a candidate with `channels` C and `layers` L:

  input  side x side x 1, pixels divided by pixel_max (16 for the digits)
  block 1       3x3 conv, 'same' padding, 1 -> C channels, ReLU, 2x2 max-pool
  blocks 2..L   3x3 conv, 'same' padding, C -> C channels, ReLU
  head          global average pooling (default) or flatten, then dense -> classes
  loss          softmax cross-entropy

Candidate keys (top-level keys of the JSON object; a key missing there is
also looked up in a nested "knobs" object, or JSON text of one, should the
candidates table carry an axis family's knobs in that column):
  channels       filters of every conv block (else width; required)
  layers         number of conv blocks (else depth; required)
  learning_rate  Adam's step size (required)
  batch_size     rows per mini-batch (required)
  epochs         most epochs to train (required)
  head           "gap" (global average pooling, the default) or "flatten"
                 (optional)
  patience       epochs without a new lowest validation loss before stopping
                 early (optional, default 3; 0 turns early stopping off)
  pixel_max      the value inputs are divided by (optional, default 16)
  preprocess     must be none or empty: the pixel scaling above is the
                 trainer's own; quantize must be none and prune_fraction 0
Other keys (candidate_id, family, params, flops, ...) are ignored.

Environment it reads (set by the exec stage):
  SWEETSPOT_TRAIN, SWEETSPOT_VALIDATION, SWEETSPOT_TEST   CSV paths (header line)
  SWEETSPOT_TARGET, SWEETSPOT_TASK, SWEETSPOT_CLASSES     target column, task, classes
  SWEETSPOT_DATASET_FORMAT    csv (arrow needs pyarrow)
  SWEETSPOT_OUTPUT            jsonl (arrow needs pyarrow)
  SWEETSPOT_METRICS_FILE      where arrow output goes
  SWEETSPOT_SEED              seed of initialisation and shuffling
  SWEETSPOT_TIMEOUT_SECONDS   training stops (keeping its best weights, with
                              stopped_by max_train_time) after 80% of it
"""

import os

# One BLAS thread unless told otherwise: the exec stage runs trials side by
# side, and these matrices are too small to gain from threads.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import csv  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

try:
    import numpy as np  # noqa: E402
except ImportError:  # pragma: no cover
    print("train.py: numpy is not importable by %s: install it (Debian: apt-get install python3-numpy) "
          "or run the trainer with a python3 that has it" % sys.executable, file=sys.stderr)
    sys.exit(2)

HEADS = ("gap", "flatten")
EVAL_CHUNK = 256


class TrainError(Exception):
    """A problem with the candidate, the data or the training: exit 2."""


def fail(msg, code=2):
    print("train.py: " + msg, file=sys.stderr)
    sys.exit(code)


# ---------------------------------------------------------------------------
# The model.

def im2col(h):
    """(N, H, W, C) -> (N*H*W, 9*C): the 3x3 'same' neighbourhood of every
    position, ordered (dy, dx, channel) to match a weight of shape (3, 3, C, out)."""
    n, hh, ww, c = h.shape
    xp = np.zeros((n, hh + 2, ww + 2, c), dtype=h.dtype)
    xp[:, 1:-1, 1:-1, :] = h
    cols = np.empty((n, hh, ww, 3, 3, c), dtype=h.dtype)
    for i in range(3):
        for j in range(3):
            cols[:, :, :, i, j, :] = xp[:, i:i + hh, j:j + ww, :]
    return cols.reshape(n * hh * ww, 9 * c)


def col2im(dcols, shape):
    """The adjoint of im2col: sums each position's share back onto the input."""
    n, hh, ww, c = shape
    dcols = dcols.reshape(n, hh, ww, 3, 3, c)
    dxp = np.zeros((n, hh + 2, ww + 2, c), dtype=dcols.dtype)
    for i in range(3):
        for j in range(3):
            dxp[:, i:i + hh, j:j + ww, :] += dcols[:, :, :, i, j, :]
    return dxp[:, 1:-1, 1:-1, :]


def _span(d, n):
    """For tap offset d in {-1, 0, 1} on an axis of n: the output range
    whose inputs (shifted by d) are inside the map, and those inputs."""
    return slice(max(0, -d), n - max(0, d)), slice(max(0, d), n - max(0, -d))


def conv_forward(h, W):
    """3x3 'same' convolution of h (N, H, W, cin) by W (9*cin, cout), no
    bias: the pre-activation (N*H*W, cout) and what conv_backward needs.

    A single-channel input (the first block) goes through im2col and one
    matrix product. A multi-channel input is multiplied tap by tap: the
    same product as im2col's, split into its nine (cin, cout) row blocks,
    each applied to the window of positions whose shifted input is inside
    the map. On the 4x4 maps after the pool this skips the 30% of im2col's
    columns that are zero padding and keeps each product in cache: about
    twice as fast per convolution with a reference BLAS, and the same sums."""
    n, hh, ww, cin = h.shape
    if cin == 1:
        cols = im2col(h)
        return cols @ W, ("cols", cols, h.shape)
    Wt = W.reshape(3, 3, cin, -1)
    z = (h.reshape(-1, cin) @ Wt[1, 1]).reshape(n, hh, ww, -1)  # the centre tap covers every position
    for i in range(3):
        ys, ysrc = _span(i - 1, hh)
        for j in range(3):
            if i == 1 and j == 1:
                continue
            xs, xsrc = _span(j - 1, ww)
            src = h[:, ysrc, xsrc, :]
            z[:, ys, xs, :] += (src.reshape(-1, cin) @ Wt[i, j]).reshape(src.shape[:3] + (-1,))
    return z.reshape(n * hh * ww, -1), ("taps", h, h.shape)


def conv_backward(saved, dz, W, need_input=True):
    """Gradients of a conv_forward: dW (9*cin, cout) and, when asked, the
    input's (N, H, W, cin), given dz (N*H*W, cout)."""
    kind, data, shape = saved
    if kind == "cols":
        dW = data.T @ dz
        return dW, (col2im(dz @ W.T, shape) if need_input else None)
    h = data
    n, hh, ww, cin = shape
    Wt = W.reshape(3, 3, cin, -1)
    dz4 = dz.reshape(n, hh, ww, -1)
    dWt = np.empty_like(Wt)
    dh = (dz @ Wt[1, 1].T).reshape(shape) if need_input else None
    for i in range(3):
        ys, ysrc = _span(i - 1, hh)
        for j in range(3):
            xs, xsrc = _span(j - 1, ww)
            src = h[:, ysrc, xsrc, :].reshape(-1, cin)
            d = dz4[:, ys, xs, :].reshape(-1, dz.shape[1])
            dWt[i, j] = src.T @ d
            if need_input and not (i == 1 and j == 1):
                dh[:, ysrc, xsrc, :] += (d @ Wt[i, j].T).reshape(n, ysrc.stop - ysrc.start, xsrc.stop - xsrc.start, cin)
    return dWt.reshape(W.shape), dh


def maxpool2(a):
    """2x2 max-pool of (N, H, W, C), H and W even; returns the pooled map and
    the index (0..3) of each window's winner, for the backward pass."""
    n, hh, ww, c = a.shape
    win = a.reshape(n, hh // 2, 2, ww // 2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(n, hh // 2, ww // 2, c, 4)
    idx = win.argmax(axis=-1)
    return np.take_along_axis(win, idx[..., None], axis=-1)[..., 0], idx


def maxpool2_backward(d, idx):
    n, ph, pw, c = d.shape
    win = np.zeros((n, ph, pw, c, 4), dtype=d.dtype)
    np.put_along_axis(win, idx[..., None], d[..., None], axis=-1)
    return win.reshape(n, ph, pw, c, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(n, 2 * ph, 2 * pw, c)


class ConvNet:
    """`layers` 3x3 conv blocks of `channels` filters (ReLU, a 2x2 max-pool
    after the first), a global-average-pool or flatten head and a dense
    output layer. Activations are NHWC; theta is the list
    [W1, b1, ..., WL, bL, Wd, bd], each conv weight of shape (9*cin, channels)."""

    def __init__(self, side, channels, layers, classes, head="gap", rng=None, dtype=np.float32):
        if side < 2 or side % 2:
            raise TrainError("images must have an even side of at least 2 for the 2x2 pool; found %d" % side)
        if channels < 1 or layers < 1:
            raise TrainError("channels and layers must be at least 1; found channels=%d, layers=%d" % (channels, layers))
        if head not in HEADS:
            raise TrainError("head must be one of %s; found %r" % (", ".join(HEADS), head))
        rng = rng if rng is not None else np.random.default_rng(0)
        self.side, self.channels, self.layers, self.classes, self.head = side, channels, layers, classes, head
        self.dtype = dtype
        self.theta = []
        cin = 1
        for _ in range(layers):
            fan_in = 9 * cin
            self.theta.append((rng.standard_normal((fan_in, channels)) * math.sqrt(2.0 / fan_in)).astype(dtype))
            self.theta.append(np.zeros(channels, dtype=dtype))
            cin = channels
        feat = self.features()
        bound = math.sqrt(6.0 / (feat + classes))
        self.theta.append(rng.uniform(-bound, bound, (feat, classes)).astype(dtype))
        self.theta.append(np.zeros(classes, dtype=dtype))

    def features(self):
        """Inputs of the dense layer."""
        p = self.side // 2
        return self.channels * p * p if self.head == "flatten" else self.channels

    def params(self):
        return int(sum(t.size for t in self.theta))

    def flops(self):
        """Forward FLOPs of one sample, counted as model_choice counts a dense
        layer (2*in*out + out): two per multiply-add, one per bias add.
        ReLU, max-pool and average-pool are not counted."""
        s, p, c = self.side, self.side // 2, self.channels
        total = s * s * (2 * 9 * 1 * c + c)                       # block 1 at full resolution
        total += (self.layers - 1) * p * p * (2 * 9 * c * c + c)  # blocks 2..L after the pool
        total += 2 * self.features() * self.classes + self.classes
        return int(total)

    def forward(self, x, cache=None):
        """Logits of x (N, side*side). With a cache list, keeps what backward needs."""
        n, s = x.shape[0], self.side
        h = x.reshape(n, s, s, 1).astype(self.dtype, copy=False)
        for k in range(self.layers):
            W, b = self.theta[2 * k], self.theta[2 * k + 1]
            z, saved = conv_forward(h, W)
            z += b
            a = np.maximum(z, 0)
            entry = {"conv": saved, "active": z > 0}
            h = a.reshape(n, h.shape[1], h.shape[2], self.channels)
            if k == 0:
                h, entry["pool"] = maxpool2(h)
            if cache is not None:
                cache.append(entry)
        feat = h.reshape(n, -1) if self.head == "flatten" else h.mean(axis=(1, 2))
        if cache is not None:
            cache.append({"feat": feat, "shape": h.shape})
        return feat @ self.theta[-2] + self.theta[-1]

    def backward(self, cache, dlogits):
        """Gradients of theta, in theta's order, given dLoss/dlogits."""
        grads = [None] * len(self.theta)
        top = cache[-1]
        grads[-2] = top["feat"].T @ dlogits
        grads[-1] = dlogits.sum(axis=0)
        dfeat = dlogits @ self.theta[-2].T
        n, ph, pw, c = top["shape"]
        if self.head == "flatten":
            dh = dfeat.reshape(n, ph, pw, c)
        else:
            dh = np.broadcast_to((dfeat / (ph * pw))[:, None, None, :], (n, ph, pw, c))
        for k in range(self.layers - 1, -1, -1):
            e = cache[k]
            if k == 0:
                dh = maxpool2_backward(dh, e["pool"])
            dz = dh.reshape(-1, self.channels) * e["active"]
            grads[2 * k], dh = conv_backward(e["conv"], dz, self.theta[2 * k], need_input=k > 0)
            grads[2 * k + 1] = dz.sum(axis=0)
        return grads

    def predict(self, x):
        if len(x) <= EVAL_CHUNK:
            return self.forward(x)
        return np.concatenate([self.forward(x[i:i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)])


def softmax_xent(logits, y):
    """Mean cross-entropy of the rows and its gradient with respect to the logits."""
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = len(y)
    loss = -logp[np.arange(n), y].mean()
    d = np.exp(logp)
    d[np.arange(n), y] -= 1.0
    return float(loss), d / n


def evaluate(model, x, y):
    logits = model.predict(x)
    loss, _ = softmax_xent(logits, y)
    return {"accuracy": float((logits.argmax(axis=1) == y).mean()), "loss": loss}


class Adam:
    def __init__(self, theta, lr, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0
        self.m = [np.zeros_like(p) for p in theta]
        self.v = [np.zeros_like(p) for p in theta]

    def step(self, theta, grads):
        self.t += 1
        b1, b2 = self.b1, self.b2
        step = self.lr * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        for p, g, m, v in zip(theta, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            p -= step * m / (np.sqrt(v) + self.eps)


# ---------------------------------------------------------------------------
# The trial.

def knob_view(cand):
    """The candidate's keys, with those of a nested "knobs" object (or JSON
    text of one) beneath them: a top-level key wins."""
    nested = cand.get("knobs")
    if isinstance(nested, str) and nested.strip():
        try:
            nested = json.loads(nested)
        except ValueError:
            raise TrainError("candidate %s: knobs is not a JSON object: %r" % (cand.get("candidate_id", "?"), nested))
    view = dict(nested) if isinstance(nested, dict) else {}
    view.update((k, v) for k, v in cand.items() if v is not None and k != "knobs")
    return view


def knob(cand, name, fallback=None, kind=int, default=None):
    """The candidate's value of knob `name` (or of `fallback` when name is
    absent); without either, default, or a failure naming the knob."""
    v = cand.get(name)
    used = name
    if v is None and fallback is not None:
        v, used = cand.get(fallback), fallback
    if v is None:
        if default is not None:
            return default
        also = " (nor %r, its fallback)" % fallback if fallback else ""
        raise TrainError("candidate %s has no %r knob%s; keys: %s" % (
            cand.get("candidate_id", "?"), name, also, ", ".join(sorted(cand))))
    try:
        if isinstance(v, bool) or (kind is not str and isinstance(v, str) and not v.strip()):
            raise ValueError
        if kind is int:
            f = float(v)
            if f != int(f):
                raise ValueError
            return int(f)
        return kind(v)
    except (TypeError, ValueError):
        raise TrainError("candidate %s: knob %r is %r, want %s" % (
            cand.get("candidate_id", "?"), used, v, "a whole number" if kind is int else kind.__name__))


def read_split(path, target, classes, fmt="csv"):
    """Features (float32, rows x features), labels (int64) and the feature
    names of a split: CSV with a header line, or Arrow IPC (with pyarrow)."""
    if fmt == "arrow":
        return read_arrow(path, target, classes)
    if fmt != "csv":
        raise TrainError("SWEETSPOT_DATASET_FORMAT is %r: this trainer reads csv (or arrow with pyarrow)" % fmt)
    with open(path, newline="") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header is None:
            raise TrainError("%s is empty (not even a header line)" % path)
        if target not in header:
            raise TrainError("%s has no column %r (columns: %s)" % (path, target, ", ".join(header)))
        t = header.index(target)
        data = [row for row in rows if row]
    names = [h for i, h in enumerate(header) if i != t]
    if not data:
        return np.zeros((0, len(names)), dtype=np.float32), np.zeros(0, dtype=np.int64), names
    arr = np.array(data, dtype=np.float64)
    y = arr[:, t]
    if np.any(y != np.round(y)) or np.any(y < 0) or np.any(y >= classes):
        raise TrainError("%s: target %r must be class indices 0..%d" % (path, target, classes - 1))
    return np.delete(arr, t, axis=1).astype(np.float32), y.astype(np.int64), names


def read_arrow(path, target, classes):
    try:
        import pyarrow.ipc as ipc
    except ImportError:
        raise TrainError('pyarrow is not installed: set dataset_format = "csv" on the exec stage')
    with open(path, "rb") as f:
        try:
            table = ipc.open_file(f).read_all()
        except Exception:
            f.seek(0)
            table = ipc.open_stream(f).read_all()
    if target not in table.column_names:
        raise TrainError("%s has no column %r" % (path, target))
    names = [c for c in table.column_names if c != target]
    x = np.column_stack([table.column(c).to_numpy() for c in names]).astype(np.float32) if table.num_rows else \
        np.zeros((0, len(names)), dtype=np.float32)
    y = table.column(target).to_numpy().astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() >= classes):
        raise TrainError("%s: target %r must be class indices 0..%d" % (path, target, classes - 1))
    return x, y, names


def write_metrics(metrics):
    out = os.environ.get("SWEETSPOT_OUTPUT", "jsonl")
    if out == "jsonl":
        print(json.dumps(metrics), flush=True)
        return
    if out != "arrow":
        raise TrainError("SWEETSPOT_OUTPUT is %r: want jsonl or arrow" % out)
    try:
        import pyarrow as pa
        import pyarrow.ipc as ipc
    except ImportError:
        raise TrainError('pyarrow is not installed: set output = "jsonl" on the exec stage')
    table = pa.table({k: [v] for k, v in metrics.items()})
    with open(os.environ["SWEETSPOT_METRICS_FILE"], "wb") as f:
        with ipc.new_file(f, table.schema) as w:
            w.write_table(table)


def nearest_rank(sorted_values, q):
    k = max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[k]


def run(cand, env):
    cand = knob_view(cand)
    if env.get("SWEETSPOT_TASK", "classification") != "classification":
        raise TrainError("this trainer classifies images; SWEETSPOT_TASK is %r" % env.get("SWEETSPOT_TASK"))
    if str(cand.get("quantize") or "none") != "none" or knob(cand, "prune_fraction", kind=float, default=0.0) > 0:
        raise TrainError("this trainer neither quantizes nor prunes (candidate %s)" % cand.get("candidate_id", "?"))
    if str(cand.get("preprocess") or "none") != "none":
        raise TrainError("preprocess %r: this trainer scales pixels by 1/pixel_max itself; "
                         "leave preprocess at none" % cand["preprocess"])
    channels = knob(cand, "channels", "width")
    layers = knob(cand, "layers", "depth")
    lr = knob(cand, "learning_rate", kind=float)
    batch = knob(cand, "batch_size")
    epochs = knob(cand, "epochs")
    head = knob(cand, "head", kind=str, default="gap")
    patience = knob(cand, "patience", default=3)
    pixel_max = knob(cand, "pixel_max", kind=float, default=16.0)
    if channels < 1 or layers < 1:
        raise TrainError("candidate %s: channels and layers must be at least 1; found channels=%d, layers=%d"
                         % (cand.get("candidate_id", "?"), channels, layers))
    if not lr > 0 or batch < 1 or epochs < 1 or patience < 0 or not pixel_max > 0:
        raise TrainError("candidate %s: want learning_rate > 0, batch_size >= 1, epochs >= 1, patience >= 0 "
                         "and pixel_max > 0" % cand.get("candidate_id", "?"))

    target = env["SWEETSPOT_TARGET"]
    classes = int(env["SWEETSPOT_CLASSES"])
    seed = int(env.get("SWEETSPOT_SEED", "1"))
    fmt = env.get("SWEETSPOT_DATASET_FORMAT", "csv")
    train_x, train_y, names = read_split(env["SWEETSPOT_TRAIN"], target, classes, fmt)
    val_x, val_y, _ = read_split(env["SWEETSPOT_VALIDATION"], target, classes, fmt) if env.get("SWEETSPOT_VALIDATION") \
        else (train_x[:0], train_y[:0], names)
    test_x, test_y, _ = read_split(env["SWEETSPOT_TEST"], target, classes, fmt)
    if not len(train_x) or not len(test_x):
        raise TrainError("need training and test rows (found %d and %d)" % (len(train_x), len(test_x)))
    side = math.isqrt(len(names))
    if side * side != len(names):
        raise TrainError("%d features are not a square image" % len(names))
    train_x, val_x, test_x = (x / np.float32(pixel_max) for x in (train_x, val_x, test_x))

    rng = np.random.default_rng(seed)
    model = ConvNet(side, channels, layers, classes, head, rng)
    opt = Adam(model.theta, lr)
    budget = float(env.get("SWEETSPOT_TIMEOUT_SECONDS") or 0) * 0.8
    best, best_loss, best_epoch, since_best = None, math.inf, 0, 0
    stopped_by, epochs_run = "epochs", 0
    n = len(train_x)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        total, seen = 0.0, 0
        out_of_time = False
        for i in range(0, n, batch):
            idx = order[i:i + batch]
            cache = []
            loss, d = softmax_xent(model.forward(train_x[idx], cache), train_y[idx])
            if not math.isfinite(loss):
                raise TrainError("training diverged: the loss is %r at epoch %d" % (loss, epoch))
            total += loss * len(idx)
            seen += len(idx)
            opt.step(model.theta, [g.astype(model.dtype, copy=False) for g in model.backward(cache, d.astype(model.dtype))])
            if budget > 0 and time.perf_counter() - start > budget:
                out_of_time = True
                break
        epochs_run = epoch
        line = {"epoch": epoch, "loss": total / seen}
        if len(val_x):
            v = evaluate(model, val_x, val_y)
            if not math.isfinite(v["loss"]):
                raise TrainError("training diverged: the validation loss is %r at epoch %d" % (v["loss"], epoch))
            line["val_loss"], line["val_accuracy"] = v["loss"], v["accuracy"]
            if v["loss"] < best_loss:
                best_loss, best_epoch, since_best = v["loss"], epoch, 0
                best = [p.copy() for p in model.theta]
            else:
                since_best += 1
        else:
            best_epoch = epoch
        print(json.dumps(line), flush=True)
        if out_of_time:
            stopped_by = "max_train_time"
            break
        if patience > 0 and len(val_x) and since_best >= patience and epoch < epochs:
            stopped_by = "early_stopping"
            break
    train_seconds = time.perf_counter() - start
    if best is not None:
        model.theta[:] = best

    metrics = evaluate(model, test_x, test_y)
    if not math.isfinite(metrics["loss"]):
        raise TrainError("the test loss is %r: the trained weights are not finite" % metrics["loss"])
    # Latency: batch-1 predictions of up to 100 test rows, one by one, after
    # a few unmeasured ones.
    for x in test_x[:5]:
        model.forward(x[None])
    times = []
    for x in test_x[:100]:
        t0 = time.perf_counter_ns()
        model.forward(x[None])
        times.append((time.perf_counter_ns() - t0) / 1e6)
    times.sort()
    rows, t0 = 0, time.perf_counter()
    while rows < len(test_x) or time.perf_counter() - t0 < 0.05:
        model.predict(test_x)
        rows += len(test_x)
    throughput = rows / (time.perf_counter() - t0)

    params = model.params()
    metrics.update({
        "latency_p50_ms": nearest_rank(times, 0.5),
        "latency_p95_ms": nearest_rank(times, 0.95),
        "throughput_per_s": throughput,
        "params": params,
        "flops": model.flops(),
        "model_bytes": 4 * params,  # float32 weights and biases
        "train_seconds": train_seconds,
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "stopped_by": stopped_by,
    })
    if best is not None:
        metrics["val_loss"] = best_loss
    return metrics


def main():
    text = sys.stdin.read()
    if not text.strip() and os.path.exists("candidate.json"):
        with open("candidate.json") as f:
            text = f.read()
    try:
        cand = json.loads(text)
    except ValueError as e:
        fail("the candidate on stdin is not JSON: %s" % e)
    if not isinstance(cand, dict):
        fail("the candidate on stdin is not a JSON object")
    try:
        write_metrics(run(cand, os.environ))
    except TrainError as e:
        fail(str(e))
    except KeyError as e:
        fail("environment variable %s is not set (run by sweetspot's exec stage, or set it by hand)" % e)


if __name__ == "__main__":
    main()
