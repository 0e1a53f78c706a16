"""Speak the sweetspot exec stage's trial protocol from a Python trainer.

The exec stage runs a trainer once per trial. This module reads what the
trial is given (the candidate's knobs, the dataset's paths, the seed) and
writes what the stage reads back (JSON lines on stdout), so a trainer needs
no knowledge of the protocol:

    import sweetspot

    trial = sweetspot.trial()
    channels = trial.knob("channels")
    for epoch in range(1, trial.epochs + 1):
        accuracy = train_one_epoch(...)
        sweetspot.report(epoch, accuracy=accuracy)
        if sweetspot.should_stop():
            break
    sweetspot.finish(accuracy=accuracy, params=count, artifact="model.onnx")

The protocol itself is plain JSON lines and files, documented in the
repository's docs/exec.md, so a trainer in any language can speak it. This
module uses the standard library only: copy this one file next to a
trainer, put it on PYTHONPATH, or `pip install ./python`.

Outside a sweetspot trial (no SWEETSPOT_CANDIDATE_JSON, no candidate.json),
trial() takes the knobs from its defaults argument and the lines still go
to stdout, so a trainer runs by hand as it runs in a trial.
"""

import json
import math
import os
import random
import sys
import time

__all__ = [
    "Trial",
    "TrialError",
    "trial",
    "report",
    "should_stop",
    "finish",
]

__version__ = "0.1.0"

# How long should_stop waits for the stage's answer to the step just
# reported. The stage answers at once (its pruner is a few comparisons), so
# this bounds only a stage that has stopped reading, such as one whose run
# is being canceled.
ANSWER_WAIT_SECONDS = 10.0
_POLL_SECONDS = 0.005


class TrialError(Exception):
    """A misuse of the protocol: bad metrics, finish twice, a missing knob."""


def _env_int(env, name, default=None):
    text = env.get(name, "")
    if text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise TrialError("%s is %r, not a whole number" % (name, text)) from None


class Trial:
    """One trial: what the exec stage handed the trainer, and its reports.

    Attributes (None when the stage did not give them):
      candidate      the candidate as a dict (every member of the JSON object)
      knobs          the candidate's knobs by name (a dict)
      seed           SWEETSPOT_SEED, an int in [0, 2**31)
      repeat         SWEETSPOT_REPEAT, which measurement of the candidate (0 first)
      workdir        the trial's working directory (the current directory)
      train, validation, test   the dataset's split files, when the stage has a dataset
      dataset_format csv or arrow
      target, task, classes     the target column, classification or regression, the class count
      epochs, learning_rate, batch_size   the candidate's training settings
      samples        the training rows to train on (SWEETSPOT_SAMPLES), or None
                     for every row; sample_rows() draws them
      threads        the stage's threads cap (SWEETSPOT_THREADS), or None
      slot           the resource slot this trial holds (SWEETSPOT_SLOT), or None
      timeout_seconds  the trial's time limit
    """

    def __init__(self, defaults=None, environ=None, out=None):
        env = os.environ if environ is None else environ
        self._env = env
        self._out = out if out is not None else sys.stdout
        self.candidate = self._read_candidate(env)
        knobs = {}
        if defaults:
            knobs.update(defaults)
        given = self.candidate.get("knobs")
        if isinstance(given, str):
            try:
                given = json.loads(given)
            except ValueError:
                given = None
        if isinstance(given, dict):
            knobs.update(given)
        self.knobs = knobs
        self.seed = _int_of(env, "SWEETSPOT_SEED", self.candidate.get("seed"))
        self.repeat = _int_of(env, "SWEETSPOT_REPEAT", self.candidate.get("repeat"))
        if self.repeat is None:
            self.repeat = 0
        self.workdir = env.get("SWEETSPOT_WORKDIR") or os.getcwd()
        self.train = env.get("SWEETSPOT_TRAIN") or None
        self.validation = env.get("SWEETSPOT_VALIDATION") or None
        self.test = env.get("SWEETSPOT_TEST") or None
        self.dataset_format = env.get("SWEETSPOT_DATASET_FORMAT") or None
        self.target = env.get("SWEETSPOT_TARGET") or None
        self.task = env.get("SWEETSPOT_TASK") or None
        self.classes = _int_of(env, "SWEETSPOT_CLASSES", None)
        self.epochs = _whole(self.candidate.get("epochs"))
        self.learning_rate = self.candidate.get("learning_rate")
        self.batch_size = _whole(self.candidate.get("batch_size"))
        self.samples = _int_of(env, "SWEETSPOT_SAMPLES", self.candidate.get("samples"))
        if self.samples is not None and self.samples < 1:
            raise TrialError("samples is %d: want a count of training rows, at least 1" % self.samples)
        self.threads = _int_of(env, "SWEETSPOT_THREADS", None)
        self.slot = env.get("SWEETSPOT_SLOT") or None
        timeout = env.get("SWEETSPOT_TIMEOUT_SECONDS", "")
        self.timeout_seconds = float(timeout) if timeout else None
        self._control = env.get("SWEETSPOT_CONTROL_FILE") or None
        self._last_step = None
        self._stopped = False
        self._finished = False

    @staticmethod
    def _read_candidate(env):
        text = env.get("SWEETSPOT_CANDIDATE_JSON")
        if not text:
            path = os.path.join(env.get("SWEETSPOT_WORKDIR") or os.getcwd(), "candidate.json")
            if env.get("SWEETSPOT_WORKDIR") and os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    text = f.read()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except ValueError as e:
            raise TrialError("the candidate is not JSON: %s" % e) from None
        if not isinstance(value, dict):
            raise TrialError("the candidate is not a JSON object")
        return value

    def knob(self, name, default=None):
        """A knob's value by name: the knobs object first, then a candidate
        column of that name, then default. Without a default, a missing knob
        is an error naming the knobs there are."""
        if name in self.knobs:
            return self.knobs[name]
        if name in self.candidate and self.candidate[name] is not None:
            return self.candidate[name]
        if default is not None:
            return default
        raise TrialError(
            "no knob %r: the candidate has %s" % (name, ", ".join(sorted(self.knobs)) or "no knobs")
        )

    def sample_rows(self, n_rows, seed=0):
        """The indices, ascending, of the training rows this trial trains on,
        out of n_rows: every row when the candidate sets no samples, else
        the first `samples` of one fixed shuffle of range(n_rows) (seeded
        by seed, the same for every trial: never the trial's own seed). So
        every model at one count trains on the same rows, and a smaller
        count's rows are among a larger one's, as the resource
        `samples` asks (docs/exec.md). Draw them from the training split
        only, and keep any early-stopping holdout inside them."""
        if isinstance(n_rows, bool) or not isinstance(n_rows, int) or n_rows < 0:
            raise TrialError("sample_rows: n_rows is %r: want the training split's row count" % (n_rows,))
        if self.samples is None:
            return list(range(n_rows))
        if self.samples > n_rows:
            raise TrialError(
                "samples is %d, but the training split has %d rows: ask for at most %d"
                % (self.samples, n_rows, n_rows)
            )
        order = list(range(n_rows))
        random.Random(seed).shuffle(order)
        return sorted(order[: self.samples])

    def report(self, step, **metrics):
        """Report intermediate metrics at a step (an epoch, say): one
        {"epoch": step, ...} line, an event on the trial's span and what a
        pruner judges. Steps are whole numbers from 0, increasing."""
        if self._finished:
            raise TrialError("report after finish")
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise TrialError("step is %r: want a whole number, at least 0" % (step,))
        if "epoch" in metrics:
            raise TrialError("epoch is the step: pass it as report's first argument")
        line = {"epoch": step}
        line.update(_checked(metrics))
        self._write(line)
        self._last_step = step

    def should_stop(self):
        """Whether the stage asks the trainer to stop (its pruner judged the
        last reported step worse than other trials'). Call it after report;
        on True, stop training, and finish with what you have (or exit).
        A trainer that goes on is killed after the pruner's grace period."""
        if self._stopped:
            return True
        if not self._control:
            return False
        deadline = time.monotonic() + ANSWER_WAIT_SECONDS
        while True:
            answer = _read_answer(self._control)
            if answer is not None:
                step, stop = answer
                if stop:
                    self._stopped = True
                    return True
                if self._last_step is None or step >= self._last_step:
                    return False
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_SECONDS)

    def finish(self, artifact=None, **metrics):
        """Report the trial's final metrics (accuracy, loss or rmse at least;
        params, model_bytes, ...), and the artifact: a file or directory the
        trainer wrote, relative to the working directory, named in the final
        line as "artifact" (checked to exist here; the stage keeps it in the
        run's models port with its digest).
        Call it once, last."""
        if self._finished:
            raise TrialError("finish called twice")
        if "epoch" in metrics:
            raise TrialError("epoch marks an intermediate report: leave it out of finish")
        line = _checked(metrics)
        if not any(k in line for k in ("accuracy", "loss", "rmse")):
            raise TrialError("finish needs accuracy, loss or rmse among the metrics")
        if artifact is not None:
            path = os.fspath(artifact)
            full = path if os.path.isabs(path) else os.path.join(self.workdir, path)
            if not os.path.exists(full):
                raise TrialError("artifact %s does not exist" % full)
            line["artifact"] = path
        self._write(line)
        self._finished = True

    def _write(self, obj):
        text = json.dumps(obj, allow_nan=False, separators=(",", ":"))
        self._out.write(text + "\n")
        self._out.flush()


def _int_of(env, name, fallback):
    value = _env_int(env, name, None)
    if value is not None:
        return value
    return _whole(fallback)


def _whole(v):
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


def _checked(metrics):
    """Metrics as JSON carries them: numbers finite, or strings, or bools."""
    out = {}
    for name, value in metrics.items():
        if value is None:
            continue
        if isinstance(value, bool) or isinstance(value, str):
            out[name] = value
            continue
        try:
            number = float(value)  # numpy and torch scalars too
        except (TypeError, ValueError):
            raise TrialError("%s is %r: want a number or a string" % (name, value)) from None
        if math.isnan(number) or math.isinf(number):
            raise TrialError(
                "%s is %s, which JSON cannot carry: leave it out, or fail the trial" % (name, number)
            )
        if isinstance(value, int) or (number.is_integer() and type(value).__name__.startswith("int")):
            out[name] = int(value)
        else:
            out[name] = number
    return out


def _read_answer(path):
    """The stage's latest answer, (step, stop), or None before its first."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    try:
        answer = json.loads(text)
        return int(answer["step"]), bool(answer["stop"])
    except (ValueError, KeyError, TypeError):
        return None  # the stage renames a whole file into place: never torn


_current = None


def trial(defaults=None):
    """The current trial (made on first call; defaults are knobs used when
    the candidate lacks them, so a trainer also runs by hand)."""
    global _current
    if _current is None:
        _current = Trial(defaults)
    elif defaults:
        for k, v in defaults.items():
            _current.knobs.setdefault(k, v)
    return _current


def report(step, **metrics):
    """trial().report(step, **metrics)."""
    trial().report(step, **metrics)


def should_stop():
    """trial().should_stop()."""
    return trial().should_stop()


def finish(artifact=None, **metrics):
    """trial().finish(artifact=..., **metrics)."""
    trial().finish(artifact=artifact, **metrics)
