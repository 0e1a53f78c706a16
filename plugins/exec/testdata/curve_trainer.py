"""A trainer for the exec stage's pruning tests, speaking the protocol
through the Python helper (python/sweetspot.py): it reports the accuracy
curve CURVES names for its candidate, one step at a time, and stops when
the stage says so, writing its final metrics first."""

import json
import os
import sys

sys.path.insert(0, os.environ["HELPER_DIR"])
import sweetspot  # noqa: E402

trial = sweetspot.trial()
curve = json.loads(os.environ["CURVES"])[trial.candidate["candidate_id"]]
for step, accuracy in enumerate(curve, 1):
    sweetspot.report(step, accuracy=accuracy)
    if sweetspot.should_stop():
        break
sweetspot.finish(accuracy=accuracy, loss=1 - accuracy, params=7)
