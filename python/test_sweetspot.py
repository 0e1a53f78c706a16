"""Tests of sweetspot.py against the protocol as docs/exec.md states it.

Run with: python3 -m unittest discover -s python -t python
"""

import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import sweetspot

HERE = os.path.dirname(os.path.abspath(__file__))

CANDIDATE = {
    "candidate_id": "convnet-s4",
    "name": "convnet-s4",
    "family": "convnet",
    "family_kind": "axis",
    "size": 4,
    "params": 0,
    "learning_rate": 0.01,
    "batch_size": 32,
    "epochs": 8,
    "round": 1,
    "repeat": 0,
    "channels": 32,
    "knobs": {"channels": 32, "layers": 3},
}


def lines(buf):
    return [json.loads(line) for line in buf.getvalue().splitlines()]


class TrialTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.env = {
            "SWEETSPOT_CANDIDATE_JSON": json.dumps(CANDIDATE),
            "SWEETSPOT_SEED": "1234",
            "SWEETSPOT_REPEAT": "2",
            "SWEETSPOT_WORKDIR": self.dir,
            "SWEETSPOT_TRAIN": "/data/train.csv",
            "SWEETSPOT_VALIDATION": "/data/validation.csv",
            "SWEETSPOT_TEST": "/data/test.csv",
            "SWEETSPOT_DATASET_FORMAT": "csv",
            "SWEETSPOT_TARGET": "label",
            "SWEETSPOT_TASK": "classification",
            "SWEETSPOT_CLASSES": "10",
            "SWEETSPOT_THREADS": "2",
            "SWEETSPOT_SLOT": "1",
            "SWEETSPOT_TIMEOUT_SECONDS": "120",
        }
        self.out = io.StringIO()

    def trial(self, **extra):
        env = dict(self.env)
        env.update(extra)
        return sweetspot.Trial(environ=env, out=self.out)

    def test_reads_what_the_stage_gives(self):
        t = self.trial()
        self.assertEqual(t.knob("channels"), 32)
        self.assertEqual(t.knob("layers"), 3)
        self.assertEqual(t.knobs, {"channels": 32, "layers": 3})
        self.assertEqual((t.seed, t.repeat), (1234, 2))
        self.assertEqual((t.epochs, t.batch_size, t.learning_rate), (8, 32, 0.01))
        self.assertEqual((t.train, t.validation, t.test), ("/data/train.csv", "/data/validation.csv", "/data/test.csv"))
        self.assertEqual((t.target, t.task, t.classes, t.dataset_format), ("label", "classification", 10, "csv"))
        self.assertEqual((t.threads, t.slot, t.timeout_seconds, t.workdir), (2, "1", 120.0, self.dir))
        self.assertEqual(t.candidate["candidate_id"], "convnet-s4")

    def test_candidate_file_when_no_variable(self):
        with open(os.path.join(self.dir, "candidate.json"), "w") as f:
            json.dump(dict(CANDIDATE, knobs={"channels": 5}), f)
        t = self.trial(SWEETSPOT_CANDIDATE_JSON="")
        self.assertEqual(t.knob("channels"), 5)

    def test_missing_knob_names_the_knobs(self):
        t = self.trial()
        with self.assertRaisesRegex(sweetspot.TrialError, "no knob 'width': the candidate has channels, layers"):
            t.knob("width")
        self.assertEqual(t.knob("width", 7), 7)

    def test_by_hand_defaults(self):
        t = sweetspot.Trial(defaults={"channels": 4}, environ={}, out=self.out)
        self.assertEqual(t.knob("channels"), 4)
        self.assertEqual(t.repeat, 0)
        self.assertIsNone(t.seed)
        self.assertFalse(t.should_stop())

    def test_samples_draws_nested_rows_of_the_training_split(self):
        # Without samples: every row, and samples is None.
        t = self.trial()
        self.assertIsNone(t.samples)
        self.assertEqual(t.sample_rows(5), [0, 1, 2, 3, 4])
        # From the variable (or the candidate's samples member): the rows
        # are distinct, in range, the same in every trial at one count
        # (whatever the trial's own seed), and a smaller count's rows are
        # among a larger one's.
        drawn = {}
        for samples in (10, 100, 400):
            rows = self.trial(SWEETSPOT_SAMPLES=str(samples)).sample_rows(1000)
            other = self.trial(SWEETSPOT_SAMPLES=str(samples), SWEETSPOT_SEED="99").sample_rows(1000)
            self.assertEqual(rows, other)
            self.assertEqual(len(set(rows)), samples)
            self.assertEqual(rows, sorted(rows))
            self.assertTrue(all(0 <= r < 1000 for r in rows))
            drawn[samples] = set(rows)
        self.assertLess(drawn[10], drawn[100])
        self.assertLess(drawn[100], drawn[400])
        # Not the first rows of the file: a shuffle. The chance that 100
        # rows drawn uniformly from 1000 all fall in the first half is
        # below 1e-30.
        self.assertTrue(any(r >= 500 for r in drawn[100]))
        t = self.trial(SWEETSPOT_CANDIDATE_JSON=json.dumps(dict(CANDIDATE, samples=7)))
        self.assertEqual(t.samples, 7)
        with self.assertRaisesRegex(sweetspot.TrialError, "samples is 7, but the training split has 5 rows"):
            t.sample_rows(5)
        with self.assertRaisesRegex(sweetspot.TrialError, "samples is 0"):
            self.trial(SWEETSPOT_SAMPLES="0")

    def test_report_and_finish_lines(self):
        t = self.trial()
        t.report(1, accuracy=0.5, loss=1.25)
        t.report(2, accuracy=0.75, note="warm")
        with open(os.path.join(self.dir, "model.onnx"), "wb") as f:
            f.write(b"x")
        t.finish(accuracy=0.75, params=1234, artifact="model.onnx")
        self.assertEqual(
            lines(self.out),
            [
                {"epoch": 1, "accuracy": 0.5, "loss": 1.25},
                {"epoch": 2, "accuracy": 0.75, "note": "warm"},
                {"accuracy": 0.75, "params": 1234, "artifact": "model.onnx"},
            ],
        )

    def test_rejects_what_json_cannot_carry(self):
        t = self.trial()
        for bad in (float("nan"), float("inf")):
            with self.assertRaisesRegex(sweetspot.TrialError, "JSON cannot carry"):
                t.report(1, accuracy=bad)
        with self.assertRaisesRegex(sweetspot.TrialError, "want a whole number"):
            t.report(-1, accuracy=0.5)
        with self.assertRaisesRegex(sweetspot.TrialError, "want a whole number"):
            t.report(1.5, accuracy=0.5)
        with self.assertRaisesRegex(sweetspot.TrialError, "want a number or a string"):
            t.report(1, accuracy=[1])
        with self.assertRaisesRegex(sweetspot.TrialError, "epoch is the step"):
            t.report(1, epoch=3)
        self.assertEqual(self.out.getvalue(), "")

    def test_finish_rules(self):
        t = self.trial()
        with self.assertRaisesRegex(sweetspot.TrialError, "accuracy, loss or rmse"):
            t.finish(params=3)
        with self.assertRaisesRegex(sweetspot.TrialError, "does not exist"):
            t.finish(accuracy=0.5, artifact="model.onnx")
        t.finish(loss=0.5)
        with self.assertRaisesRegex(sweetspot.TrialError, "finish called twice"):
            t.finish(loss=0.5)
        with self.assertRaisesRegex(sweetspot.TrialError, "report after finish"):
            t.report(3, loss=0.5)

    def test_should_stop_without_a_pruner(self):
        t = self.trial()
        t.report(1, accuracy=0.5)
        self.assertFalse(t.should_stop())

    def answer(self, path, step, stop):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"step": step, "stop": stop, "reason": "test"}, f)
        os.replace(tmp, path)

    def test_should_stop_waits_for_the_answer_to_its_step(self):
        control = os.path.join(self.dir, "control.json")
        t = self.trial(SWEETSPOT_CONTROL_FILE=control)
        self.answer(control, 1, False)
        t.report(2, accuracy=0.5)
        # The stage answers step 2 later; an answer to step 1 is not one.
        timer = threading.Timer(0.2, self.answer, (control, 2, True))
        timer.start()
        start = time.monotonic()
        self.assertTrue(t.should_stop())
        self.assertGreaterEqual(time.monotonic() - start, 0.15)
        timer.join()
        self.assertTrue(t.should_stop())  # stays stopped

    def test_should_stop_continue(self):
        control = os.path.join(self.dir, "control.json")
        t = self.trial(SWEETSPOT_CONTROL_FILE=control)
        t.report(3, accuracy=0.5)
        self.answer(control, 3, False)
        self.assertFalse(t.should_stop())

    def test_should_stop_gives_up_on_a_silent_stage(self):
        control = os.path.join(self.dir, "control.json")
        t = self.trial(SWEETSPOT_CONTROL_FILE=control)
        t.report(1, accuracy=0.5)
        saved = sweetspot.ANSWER_WAIT_SECONDS
        sweetspot.ANSWER_WAIT_SECONDS = 0.05
        try:
            self.assertFalse(t.should_stop())
        finally:
            sweetspot.ANSWER_WAIT_SECONDS = saved


class ModuleTest(unittest.TestCase):
    def test_as_one_file_on_pythonpath(self):
        """The module-level functions, from a script in another process that
        finds the module on PYTHONPATH only."""
        script = (
            "import sweetspot\n"
            "t = sweetspot.trial()\n"
            "sweetspot.report(1, accuracy=0.25)\n"
            "assert not sweetspot.should_stop()\n"
            "sweetspot.finish(accuracy=0.5, params=t.knob('channels'))\n"
        )
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": HERE,
               "SWEETSPOT_CANDIDATE_JSON": json.dumps(CANDIDATE)}
        with tempfile.TemporaryDirectory() as d:
            out = subprocess.run([sys.executable, "-c", script], cwd=d, env=env,
                                 capture_output=True, text=True, check=True).stdout
        self.assertEqual([json.loads(l) for l in out.splitlines()],
                         [{"epoch": 1, "accuracy": 0.25}, {"accuracy": 0.5, "params": 32}])


if __name__ == "__main__":
    unittest.main()
