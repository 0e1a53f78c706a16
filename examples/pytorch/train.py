#!/usr/bin/env python3
"""Train one sweetspot candidate: a small convolutional net on Fashion-MNIST.

Run by the exec stage once per trial, with PyTorch on the CPU. One knob,
`channels` (C), sizes the whole net:

  conv 3x3, 1 -> C, ReLU, max-pool 2      28x28 -> 14x14
  conv 3x3, C -> 2C, ReLU, max-pool 2     14x14 -> 7x7
  flatten, linear 2C*7*7 -> 10

It trains on a seeded subsample of the training images (TRAIN_ROWS),
reports its accuracy on VAL_ROWS other training images (val_accuracy,
the validation data a pruner and a search judge by) after every epoch (a
pruner may stop the trial there), measures accuracy on the first
EVAL_ROWS test images once trained, and writes the trained model with
torch.onnx.export as the trial's artifact, model.onnx. The protocol is
spoken by the helper in python/ (sweetspot.py).

Data: Debian's dataset-fashion-mnist (IDX files under
/usr/share/datasets/fashion-mnist, or FASHION_MNIST_DIR).
"""

import gzip
import os
import struct
import sys
import time

sys.path.insert(0, os.environ.get("SWEETSPOT_PYTHON", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python")))
import sweetspot  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

DATA = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def read_idx(name):
    """An IDX file as a uint8 tensor of its dimensions."""
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        data = f.read()
    zero, kind, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or kind != 0x08:
        raise SystemExit("%s: not an IDX file of unsigned bytes" % name)
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    body = data[4 + 4 * dims :]
    n = 1
    for d in shape:
        n *= d
    if len(body) != n:
        raise SystemExit("%s: %d bytes of data, want %d" % (name, len(body), n))
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(shape)


def subsample(images, labels, rows, val_rows, gen):
    """A seeded training subsample and, from the other images, a
    validation subsample."""
    perm = torch.randperm(images.shape[0], generator=gen)
    if rows + val_rows > images.shape[0]:
        raise SystemExit("TRAIN_ROWS + VAL_ROWS is %d, above the %d training images" % (rows + val_rows, images.shape[0]))

    def take(idx):
        return images[idx].float().div_(255.0).unsqueeze(1), labels[idx].long()

    return take(perm[:rows]), take(perm[rows : rows + val_rows])


def forward_flops(c):
    """Floating-point operations of one image's forward pass (a
    multiply-add is two): the convolutions and the linear head."""
    conv1 = 28 * 28 * c * 9 * 2
    conv2 = 14 * 14 * 2 * c * c * 9 * 2
    head = 2 * c * 7 * 7 * 10 * 2
    return conv1 + conv2 + head


class Net(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * c * 7 * 7, 10)

    def forward(self, x):
        return self.head(self.features(x))


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def main():
    trial = sweetspot.trial(defaults={"channels": 8})
    if trial.threads:
        torch.set_num_threads(trial.threads)
    seed = trial.seed if trial.seed is not None else 1
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    # The same subsample for every trial: the data seed is fixed, the
    # model's initialisation and batch order follow SWEETSPOT_SEED.
    data_gen = torch.Generator().manual_seed(20261205)
    train_rows = int(os.environ.get("TRAIN_ROWS", "3000"))
    val_rows = int(os.environ.get("VAL_ROWS", "1000"))
    eval_rows = int(os.environ.get("EVAL_ROWS", "1000"))
    (xtr, ytr), (xva, yva) = subsample(read_idx("train-images-idx3-ubyte.gz"), read_idx("train-labels-idx1-ubyte.gz"),
                                       train_rows, val_rows, data_gen)
    # The first EVAL_ROWS test images, a set anyone can load again to check
    # the exported model's accuracy in another runtime.
    xte = read_idx("t10k-images-idx3-ubyte.gz")[:eval_rows].float().div_(255.0).unsqueeze(1)
    yte = read_idx("t10k-labels-idx1-ubyte.gz")[:eval_rows].long()

    c = int(trial.knob("channels"))
    model = Net(c)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=trial.learning_rate or 0.01)
    loss_fn = nn.CrossEntropyLoss()
    batch = trial.batch_size or 64
    epochs = trial.epochs or 4
    start = time.monotonic()
    val_acc = 0.0
    stopped = "epochs"
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(xtr.shape[0], generator=gen)
        total = 0.0
        for i in range(0, xtr.shape[0], batch):
            idx = order[i : i + batch]
            opt.zero_grad()
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            total += loss.item() * idx.shape[0]
        val_acc = accuracy(model, xva, yva)
        sweetspot.report(epoch, val_accuracy=val_acc, loss=total / xtr.shape[0])
        if sweetspot.should_stop():
            stopped = "pruner"
            break
    train_seconds = time.monotonic() - start
    # The test images are measured once, after training: nothing is
    # chosen on them.
    acc = accuracy(model, xte, yte)

    # Latency of one image, the median and p95 of repeated single calls.
    model.eval()
    times = []
    with torch.no_grad():
        one = xte[:1]
        for _ in range(50):
            t0 = time.perf_counter()
            model(one)
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    torch.onnx.export(model, xte[:1], "model.onnx", input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    sweetspot.finish(
        accuracy=acc, val_accuracy=val_acc, params=params, flops=forward_flops(c), model_bytes=os.path.getsize("model.onnx"),
        latency_p50_ms=times[len(times) // 2], latency_p95_ms=times[int(len(times) * 0.95)],
        train_seconds=train_seconds, stopped_by=stopped, artifact="model.onnx",
    )


if __name__ == "__main__":
    main()
