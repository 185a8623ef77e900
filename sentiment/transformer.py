"""The transformer engine (SENTIMENT_ENGINE=transformer, or "engine": "transformer" per request): a
fine-tuned sentence encoder with a classification head, exported to ONNX and quantised to int8, run
by ONNX Runtime on the text the `tokenizers` library makes of it. No torch, no network: the model
directory (SENTIMENT_TRANSFORMER_DIR, default sentiment/model/transformer/) holds `model.onnx`,
`tokenizer.json` and `meta.json` (its labels in output order, the calibration temperature, the
longest input in tokens, the fast engine's weight beside it, where it came from and how it
scored).

The web process's cores are shared with every other request. A process runs the model on a thread
of its own, one request at a time, on SENTIMENT_THREADS threads (default 1) that never spin
waiting for work and run SENTIMENT_NICE (default 10) below the process's others (Linux), so the
hot reads get the cores first. With SENTIMENT_WORKER=process that thread hands the texts to a
process of its own instead (spawned, at the same priority, replaced if it dies). At most WAITING
more requests wait their turn; one more is refused at once (Busy: 503 with Retry-After), so
requests for this engine never hold more than a few of the process's WEB_THREADS threads,
whatever a client sends."""

import json
import logging
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings

from .domain.engine import LABELS
from .domain.transformer import calibrated, shown_text

log = logging.getLogger(__name__)
MODEL_DIR = Path(__file__).resolve().parent / "model" / "transformer"
WAITING = 3  # requests a process lets wait for the model (100 texts take about 0.8 s)


def lower_priority(nice: int) -> None:
    """This thread, and those it starts (ONNX Runtime's), `nice` lower than it was (19 at most). On
    Linux a thread has a priority of its own; elsewhere the call would lower the whole process, so
    it is skipped."""
    if sys.platform.startswith("linux") and nice > 0:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))


class Busy(Exception):
    """The model is running and WAITING requests already wait for it."""


# What loading a model directory raises for files that are missing or not a model.
NOT_A_MODEL = (OSError, ValueError, KeyError, TypeError, RuntimeError)


@dataclass
class Meta:
    labels: list[str]  # the model's outputs, in order
    temperature: float
    max_tokens: int
    fast_weight: float  # the fast engine's share of the probabilities answered (0: none)
    fast_model_sha256: str | None = None  # the fast model that weight was fitted beside

    @classmethod
    def read(cls, path: Path) -> "Meta":
        data = json.loads(path.read_text())
        labels, temperature, max_tokens = data["labels"], data.get("temperature", 1.0), data.get("max_tokens", 64)
        fast_weight = data.get("fast_weight", 0.0)
        if sorted(labels) != sorted(LABELS):
            raise ValueError(f"its labels are not {list(LABELS)}")
        if not isinstance(temperature, (int, float)) or temperature <= 0:
            raise ValueError("its temperature is not a positive number")
        if not isinstance(max_tokens, int) or not 8 <= max_tokens <= 512:
            raise ValueError("its max_tokens is not within 8-512")
        if not isinstance(fast_weight, (int, float)) or not 0 <= fast_weight <= 1:
            raise ValueError("its fast_weight is not within 0-1")
        fast_model = data.get("fast_model_sha256")
        return cls(labels, float(temperature), max_tokens, float(fast_weight), fast_model if isinstance(fast_model, str) else None)


class Network:
    """The tokenizer and the ONNX Runtime session: what turns texts into logits. Made on the thread
    (or in the process) that runs it, so that ONNX Runtime's threads inherit its priority."""

    def __init__(self, directory: Path, max_tokens: int, threads: int):
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no pool of its own on every core
        import onnxruntime
        from tokenizers import Tokenizer

        try:
            self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises a bare Exception for a file it cannot read
            raise ValueError(f"tokenizer.json: {exc}") from exc
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = onnxruntime.InferenceSession(str(directory / "model.onnx"), options,
                                                        providers=["CPUExecutionProvider"])
        except Exception as exc:  # ONNX Runtime's own exception types, one per failure
            raise ValueError(f"model.onnx: {exc}") from exc
        self.inputs = {i.name for i in self.session.get_inputs()}

    def run_all(self, texts: list[str]) -> list[list[float]]:
        return [self._run(e.ids) for e in self.tokenizer.encode_batch([shown_text(t) for t in texts])]

    def _run(self, ids: list[int]) -> list[float]:
        # One text a run. The int8 graph quantises each run's activations with one scale, so in a
        # batch a text's answer would depend on the texts (and the padding) beside it: 1.2 % of the
        # held-out tweets changed label that way. Alone, a text always gets the same answer, at
        # about 4 % less speed than in batches of 32.
        feed = {"input_ids": np.array([ids], dtype=np.int64), "attention_mask": np.ones((1, len(ids)), dtype=np.int64)}
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        (logits,) = self.session.run(None, feed)
        return logits[0].tolist()


# A worker process's network (SENTIMENT_WORKER=process), or why it could not be made.
_child_network: Network | None = None
_child_error: str = ""


def _child_start(directory: str, max_tokens: int, threads: int, nice: int) -> None:
    global _child_network, _child_error
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="sentiment-parent-watch", daemon=True).start()
    lower_priority(nice)
    try:
        _child_network = Network(Path(directory), max_tokens, threads)
    except (*NOT_A_MODEL, ImportError) as exc:  # said by the first call: an initializer's error breaks the pool
        _child_error = str(exc)


def _exit_with_parent(parent: int) -> None:
    """A worker process outlives no web process, however that one ended (a web process killed, or
    one that leaves without shutting its pool down, never waits for it)."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def _child_run(texts: list[str]) -> list[list[float]]:
    if _child_network is None:
        raise ValueError(_child_error)
    return _child_network.run_all(texts)


class TransformerModel:
    """The model as a web process serves it: `worker` "thread" runs the network on a thread of the
    process, "process" in a process of its own (spawned; the texts go to it and the logits come
    back), restarted if it dies."""

    def __init__(self, directory: Path, threads: int = 1, nice: int = 0, worker: str = "thread"):
        self.meta = Meta.read(directory / "meta.json")
        self.order = [self.meta.labels.index(label) for label in LABELS]  # our LABELS order from the model's
        self.slots = threading.BoundedSemaphore(1 + WAITING)
        self.worker, self.start_args = worker, (directory, threads, nice)
        self.restarting = threading.Lock()
        self.start()

    def start(self) -> None:
        """A runner with the network loaded; kept only once it answers (a restart that fails leaves
        the broken runner in place, and the next request tries again)."""
        directory, threads, nice = self.start_args
        if self.worker == "process":
            import multiprocessing

            runner = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_child_start,
                                         initargs=(str(directory), self.meta.max_tokens, threads, nice))
            loading = runner.submit(_child_run, [])  # loaded, or why not
        else:
            runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sentiment-model", initializer=lower_priority,
                                        initargs=(nice,))
            loading = runner.submit(Network, directory, self.meta.max_tokens, threads)
        try:
            loaded = loading.result()
        except BaseException:
            runner.shutdown(wait=True)
            raise
        # The thread's Network; None with a worker process, which holds its own.
        self.network = loaded if isinstance(loaded, Network) else None
        self.runner, self.run_all = runner, self.network.run_all if self.network else _child_run

    def close(self) -> None:
        self.runner.shutdown(wait=True)

    def logits(self, texts: list[str]) -> list[list[float]]:
        """Per text, the network's logits in its own label order (meta.labels)."""
        if not self.slots.acquire(blocking=False):
            raise Busy
        try:
            runner = self.runner
            return runner.submit(self.run_all, texts).result()
        except BrokenProcessPool as exc:
            # The worker process died (killed, out of memory): this request is refused like a busy
            # one, and a new process loads the model for the next (once, whoever sees it first).
            with self.restarting:
                if self.runner is runner:
                    runner.shutdown(wait=False)
                    try:
                        self.start()
                    except Exception:  # the next request tries again
                        log.exception("the sentiment worker process could not be restarted")
            raise Busy from exc
        finally:
            self.slots.release()

    def probabilities(self, texts: list[str]) -> list[list[float]]:
        """Per text, calibrated probabilities in LABELS order (the network's alone)."""
        out = []
        for row in self.logits(texts):
            probs = calibrated(row, self.meta.temperature)
            out.append([probs[k] for k in self.order])
        return out


@lru_cache(maxsize=1)
def served_transformer() -> TransformerModel:
    return TransformerModel(settings.SENTIMENT_TRANSFORMER_DIR, settings.SENTIMENT_THREADS, settings.SENTIMENT_NICE,
                            settings.SENTIMENT_WORKER)


def problem() -> str | None:
    """Why the transformer engine cannot be served, or None. Loads a copy and lets it go: the server
    checks before it forks its processes, and each loads its own on its first request."""
    try:
        TransformerModel(settings.SENTIMENT_TRANSFORMER_DIR, settings.SENTIMENT_THREADS).close()
    except ImportError as exc:
        return f"ONNX Runtime or tokenizers is not installed ({exc})"
    except NOT_A_MODEL as exc:
        return f"{settings.SENTIMENT_TRANSFORMER_DIR} is not a transformer sentiment model ({exc})"
    return None
