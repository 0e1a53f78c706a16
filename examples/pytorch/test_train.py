"""Runs train.py as the exec stage would run one trial, with a stop answer
already waiting (as a pruner gives it after step 1): it must report one
epoch of three, stop, and still finish with its metrics and its ONNX
model.

Needs /usr/bin/python3 with python3-torch and dataset-fashion-mnist
(make python-torch); it fails, never skips, without them.
"""

import json
import os
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


class TrainTest(unittest.TestCase):
    def test_trial_pruned_at_step_1(self):
        with tempfile.TemporaryDirectory() as d:
            control = os.path.join(d, "control.json")
            with open(control, "w") as f:
                json.dump({"step": 1, "stop": True, "reason": "test"}, f)
            cand = {"candidate_id": "convnet-c4", "epochs": 3, "batch_size": 64,
                    "learning_rate": 0.005, "knobs": {"channels": 4}}
            env = {"PATH": os.environ.get("PATH", ""), "SWEETSPOT_CANDIDATE_JSON": json.dumps(cand),
                   "SWEETSPOT_SEED": "7", "SWEETSPOT_WORKDIR": d, "SWEETSPOT_THREADS": "1",
                   "SWEETSPOT_CONTROL_FILE": control, "TRAIN_ROWS": "2000", "EVAL_ROWS": "300"}
            out = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "train.py")], cwd=d, env=env,
                                 capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr[-2000:])
            lines = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
            self.assertEqual([l.get("epoch") for l in lines], [1, None])
            final = lines[-1]
            # By hand for 4 channels: conv 1->4 (9*4+4), conv 4->8 (9*4*8+8),
            # linear 8*7*7 -> 10 (392*10+10): 40 + 296 + 3930.
            self.assertEqual(final["params"], 4266)
            self.assertEqual(final["stopped_by"], "pruner")
            self.assertGreater(final["accuracy"], 0.3)  # chance is 0.1 on ten classes
            self.assertEqual(final["artifact"], "model.onnx")
            with open(os.path.join(d, "model.onnx"), "rb") as f:
                model = f.read()
            self.assertEqual(final["model_bytes"], len(model))
            for name in (b"image", b"logits", b"pytorch"):
                self.assertIn(name, model)  # the graph's input, output and producer


if __name__ == "__main__":
    unittest.main()
