"""Tests of train.py: the conv layers against a direct convolution, the
backward pass against finite differences, the parameter and FLOP counts
against hand computations, the knobs, and one short trial end to end.

    /usr/bin/python3 -m unittest discover examples/convnet

Standard library and numpy only.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import digits_csv  # noqa: E402
import train  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def direct_conv(h, W, b):
    """A 3x3 'same' convolution by loops: h (N, H, W, cin), W (9*cin, cout)."""
    n, hh, ww, cin = h.shape
    K = W.reshape(3, 3, cin, -1)
    out = np.zeros((n, hh, ww, K.shape[-1]))
    for y in range(hh):
        for x in range(ww):
            for dy in range(3):
                for dx in range(3):
                    sy, sx = y + dy - 1, x + dx - 1
                    if 0 <= sy < hh and 0 <= sx < ww:
                        out[:, y, x, :] += h[:, sy, sx, :] @ K[dy, dx]
    return out + b


def random_model(side, channels, layers, head, seed=0):
    """A float64 model with non-zero biases, so that gradients reach every weight."""
    rng = np.random.default_rng(seed)
    m = train.ConvNet(side, channels, layers, 10, head, rng, dtype=np.float64)
    for k in range(1, len(m.theta), 2):
        m.theta[k] = rng.normal(0, 0.1, m.theta[k].shape)
    return m


class ConvLayers(unittest.TestCase):
    def test_im2col_matches_direct_convolution(self):
        rng = np.random.default_rng(1)
        h = rng.normal(size=(2, 6, 4, 3))
        W = rng.normal(size=(27, 5))
        b = rng.normal(size=5)
        got = (train.im2col(h) @ W + b).reshape(2, 6, 4, 5)
        np.testing.assert_allclose(got, direct_conv(h, W, b), rtol=1e-12, atol=1e-12)

    def test_conv_paths_match_direct_convolution(self):
        # Both paths of conv_forward (im2col for one input channel, tap by
        # tap for more) and their backward passes against im2col's products.
        rng = np.random.default_rng(7)
        for shape, cout in [((2, 8, 8, 1), 5), ((3, 4, 4, 6), 4), ((2, 6, 4, 3), 2), ((2, 2, 2, 3), 3)]:
            h = rng.normal(size=shape)
            W = rng.normal(size=(9 * shape[3], cout))
            z, saved = train.conv_forward(h, W)
            np.testing.assert_allclose(z.reshape(shape[:3] + (cout,)), direct_conv(h, W, 0), rtol=1e-10, atol=1e-12)
            dz = rng.normal(size=z.shape)
            dW, dh = train.conv_backward(saved, dz, W)
            cols = train.im2col(h)
            np.testing.assert_allclose(dW, cols.T @ dz, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(dh, train.col2im(dz @ W.T, shape), rtol=1e-10, atol=1e-12)
            self.assertIsNone(train.conv_backward(saved, dz, W, need_input=False)[1])

    def test_col2im_is_the_adjoint_of_im2col(self):
        rng = np.random.default_rng(2)
        x = rng.normal(size=(3, 4, 4, 2))
        y = rng.normal(size=(3 * 16, 18))
        self.assertAlmostEqual(float((train.im2col(x) * y).sum()), float((x * train.col2im(y, x.shape)).sum()), places=10)

    def test_maxpool(self):
        a = np.arange(2 * 4 * 4 * 3, dtype=np.float64)
        np.random.default_rng(3).shuffle(a)
        a = a.reshape(2, 4, 4, 3)
        pooled, idx = train.maxpool2(a)
        want = a.reshape(2, 2, 2, 2, 2, 3).max(axis=(2, 4))
        np.testing.assert_array_equal(pooled, want)
        # The gradient goes to each window's maximum, nowhere else.
        d = np.random.default_rng(4).normal(size=pooled.shape)
        back = train.maxpool2_backward(d, idx)
        mask = a == np.repeat(np.repeat(want, 2, axis=1), 2, axis=2)
        np.testing.assert_array_equal(back[~mask], 0)
        np.testing.assert_array_equal(np.repeat(np.repeat(d, 2, axis=1), 2, axis=2)[mask], back[mask])

    def test_forward_matches_direct_computation(self):
        m = random_model(8, 4, 2, "flatten")
        x = np.random.default_rng(5).uniform(0, 1, (3, 64))
        h = np.maximum(direct_conv(x.reshape(3, 8, 8, 1), m.theta[0], m.theta[1]), 0)
        h = h.reshape(3, 4, 2, 4, 2, 4).max(axis=(2, 4))
        h = np.maximum(direct_conv(h, m.theta[2], m.theta[3]), 0)
        want = h.reshape(3, -1) @ m.theta[4] + m.theta[5]
        np.testing.assert_allclose(m.forward(x), want, rtol=1e-10, atol=1e-12)


class Gradients(unittest.TestCase):
    """Central differences of the mean cross-entropy against backward."""

    def check(self, side, channels, layers, head, probes=40):
        m = random_model(side, channels, layers, head)
        rng = np.random.default_rng(6)
        x = rng.uniform(0, 1, (5, side * side))
        y = rng.integers(0, 10, 5)

        def loss():
            return train.softmax_xent(m.forward(x), y)[0]

        cache = []
        _, d = train.softmax_xent(m.forward(x, cache), y)
        grads = m.backward(cache, d)
        self.assertEqual([g.shape for g in grads], [t.shape for t in m.theta])
        eps = 1e-6
        for k, (t, g) in enumerate(zip(m.theta, grads)):
            flat, gflat = t.reshape(-1), np.asarray(g).reshape(-1)
            picks = range(flat.size) if flat.size <= probes else rng.choice(flat.size, probes, replace=False)
            num, ana = [], []
            for i in picks:
                old = flat[i]
                flat[i] = old + eps
                up = loss()
                flat[i] = old - eps
                down = loss()
                flat[i] = old
                num.append((up - down) / (2 * eps))
                ana.append(gflat[i])
            num, ana = np.array(num), np.array(ana)
            err = np.abs(num - ana).max() / max(1e-8, np.abs(num).max() + np.abs(ana).max())
            self.assertLess(err, 1e-5, "theta[%d] %s: numeric %s, analytic %s" % (k, t.shape, num[:5], ana[:5]))
            self.assertGreater(np.abs(ana).max(), 0, "theta[%d] got no gradient" % k)

    def test_one_block_gap(self):
        self.check(8, 3, 1, "gap")

    def test_three_blocks_gap(self):
        self.check(8, 3, 3, "gap")

    def test_three_blocks_flatten(self):
        self.check(8, 3, 3, "flatten")

    def test_two_blocks_small_image(self):
        self.check(4, 5, 2, "gap")


class Counts(unittest.TestCase):
    def test_params_by_hand(self):
        # channels 16, layers 2, global average pooling:
        #   block 1: 3*3*1*16 weights + 16 biases  =  160
        #   block 2: 3*3*16*16 weights + 16 biases = 2320
        #   dense:   16*10 weights + 10 biases     =  170
        self.assertEqual(train.ConvNet(8, 16, 2, 10, "gap").params(), 160 + 2320 + 170)
        # channels 8, layers 1, flatten (8 channels of 4x4 into the dense layer):
        #   block 1: 3*3*1*8 + 8 = 80;  dense: 8*4*4*10 + 10 = 1290
        self.assertEqual(train.ConvNet(8, 8, 1, 10, "flatten").params(), 80 + 1290)
        # channels 64, layers 4, gap: 640 + 3 * (9*64*64 + 64) + 650
        self.assertEqual(train.ConvNet(8, 64, 4, 10, "gap").params(), 640 + 3 * 36928 + 650)
        self.assertEqual(train.ConvNet(8, 4, 1, 10).params(), 40 + 50)

    def test_params_are_the_weights(self):
        for c, l, head in [(4, 1, "gap"), (32, 2, "flatten"), (64, 3, "gap")]:
            m = train.ConvNet(8, c, l, 10, head)
            self.assertEqual(m.params(), sum(t.size for t in m.theta))

    def test_flops_by_hand(self):
        # channels 16, layers 2, gap: two FLOPs per multiply-add, one per bias add.
        #   block 1 at 8x8: 64 * (2*9*1*16 + 16)  =  19456
        #   block 2 at 4x4: 16 * (2*9*16*16 + 16) =  73984
        #   dense:          2*16*10 + 10          =    330
        self.assertEqual(train.ConvNet(8, 16, 2, 10, "gap").flops(), 19456 + 73984 + 330)
        # channels 8, layers 1, flatten: 64 * (2*9*8 + 8) + 2*128*10 + 10
        self.assertEqual(train.ConvNet(8, 8, 1, 10, "flatten").flops(), 9728 + 2570)

    def test_bad_sizes(self):
        for args in [(8, 0, 1), (8, 4, 0), (7, 4, 1)]:
            with self.assertRaises(train.TrainError):
                train.ConvNet(*args, 10)
        with self.assertRaises(train.TrainError):
            train.ConvNet(8, 4, 1, 10, "max")


class Knobs(unittest.TestCase):
    def test_channels_and_layers_win_over_width_and_depth(self):
        cand = {"channels": 16, "layers": 2, "width": 3, "depth": 7}
        self.assertEqual(train.knob(cand, "channels", "width"), 16)
        self.assertEqual(train.knob(cand, "layers", "depth"), 2)

    def test_width_and_depth_are_the_fallback(self):
        cand = {"width": 8, "depth": 3.0}
        self.assertEqual(train.knob(cand, "channels", "width"), 8)
        self.assertEqual(train.knob(cand, "layers", "depth"), 3)

    def test_missing_knob_is_named(self):
        with self.assertRaisesRegex(train.TrainError, "'channels'.*'width'"):
            train.knob({"candidate_id": "c", "layers": 1}, "channels", "width")
        with self.assertRaisesRegex(train.TrainError, "'learning_rate'"):
            train.knob({"candidate_id": "c"}, "learning_rate", kind=float)

    def test_nested_knobs(self):
        # Knobs in a "knobs" object or its JSON text, beneath the top level.
        for nested in ({"channels": 16, "layers": 3}, '{"channels": 16, "layers": 3}'):
            view = train.knob_view({"candidate_id": "c", "knobs": nested, "layers": 2, "width": None})
            self.assertEqual(train.knob(view, "channels", "width"), 16)
            self.assertEqual(train.knob(view, "layers", "depth"), 2)
        with self.assertRaisesRegex(train.TrainError, "knobs is not a JSON object"):
            train.knob_view({"candidate_id": "c", "knobs": "{oops"})

    def test_fractional_size_is_refused(self):
        with self.assertRaisesRegex(train.TrainError, "whole number"):
            train.knob({"channels": 2.5}, "channels", "width")
        with self.assertRaisesRegex(train.TrainError, "whole number"):
            train.knob({"channels": True}, "channels", "width")


class Trial(unittest.TestCase):
    """train.py run as the exec stage runs it, on 400 rows of the digits."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.paths = digits_csv.write(cls.tmp.name, limit=400)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_trial(self, cand):
        env = dict(os.environ,
                   SWEETSPOT_TRAIN=self.paths["train"], SWEETSPOT_VALIDATION=self.paths["validation"],
                   SWEETSPOT_TEST=self.paths["test"], SWEETSPOT_TARGET="target",
                   SWEETSPOT_TASK="classification", SWEETSPOT_CLASSES="10",
                   SWEETSPOT_DATASET_FORMAT="csv", SWEETSPOT_SEED="1", SWEETSPOT_OUTPUT="jsonl")
        return subprocess.run([sys.executable, os.path.join(HERE, "train.py")], input=json.dumps(cand),
                              env=env, cwd=self.tmp.name, capture_output=True, text=True, timeout=120)

    def test_trial_reports_metrics(self):
        cand = {"candidate_id": "convnet-s2", "family": "convnet", "channels": 8, "layers": 2,
                "learning_rate": 0.01, "batch_size": 32, "epochs": 3, "preprocess": "none",
                "quantize": "none", "prune_fraction": 0}
        p = self.run_trial(cand)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = [json.loads(s) for s in p.stdout.splitlines() if s.startswith("{")]
        epochs, final = lines[:-1], lines[-1]
        self.assertEqual([e["epoch"] for e in epochs], list(range(1, len(epochs) + 1)))
        for e in epochs:
            self.assertEqual(set(e), {"epoch", "loss", "val_loss", "val_accuracy"})
        self.assertEqual(set(final), {
            "accuracy", "loss", "latency_p50_ms", "latency_p95_ms", "throughput_per_s", "params", "flops",
            "model_bytes", "train_seconds", "epochs_run", "best_epoch", "stopped_by", "val_loss"})
        want = train.ConvNet(8, 8, 2, 10, "gap")
        self.assertEqual(final["params"], want.params())
        self.assertEqual(final["flops"], want.flops())
        self.assertEqual(final["model_bytes"], 4 * want.params())
        self.assertEqual(final["epochs_run"], len(epochs))
        self.assertGreater(final["accuracy"], 0.2)
        self.assertIn(final["stopped_by"], ("epochs", "early_stopping"))
        # Same seed, same result.
        again = [json.loads(s) for s in self.run_trial(cand).stdout.splitlines() if s.startswith("{")][-1]
        self.assertEqual((again["accuracy"], again["loss"]), (final["accuracy"], final["loss"]))

    def test_missing_knob_fails_naming_it(self):
        p = self.run_trial({"candidate_id": "x", "channels": 8, "layers": 1, "batch_size": 32, "epochs": 1})
        self.assertEqual(p.returncode, 2)
        self.assertIn("'learning_rate'", p.stderr)
        self.assertEqual(p.stdout, "")

    def test_width_depth_fallback(self):
        p = self.run_trial({"candidate_id": "mlp-d1-w4", "width": 4, "depth": 1, "learning_rate": 0.01,
                            "batch_size": 64, "epochs": 1})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout.splitlines()[-1])["params"], 90)


if __name__ == "__main__":
    unittest.main()
