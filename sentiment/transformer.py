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
hot reads get the cores first. At most WAITING more requests wait their turn; one more is refused at once (Busy: 503 with
Retry-After), so requests for this engine never hold more than a few of the process's WEB_THREADS
threads, whatever a client sends."""

import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings

from .domain.engine import LABELS
from .domain.transformer import calibrated, shown_text

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


class TransformerModel:
    def __init__(self, directory: Path, threads: int = 1, nice: int = 0):
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no pool of its own on every core
        import onnxruntime
        from tokenizers import Tokenizer

        self.meta = Meta.read(directory / "meta.json")
        try:
            self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises a bare Exception for a file it cannot read
            raise ValueError(f"tokenizer.json: {exc}") from exc
        self.tokenizer.enable_truncation(self.meta.max_tokens)
        self.tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # The model's thread, which creates the session so that ONNX Runtime's threads inherit its priority.
        self.runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sentiment-model", initializer=lower_priority,
                                         initargs=(nice,))
        try:
            self.session = self.runner.submit(onnxruntime.InferenceSession, str(directory / "model.onnx"), options,
                                              providers=["CPUExecutionProvider"]).result()
        except Exception as exc:  # ONNX Runtime's own exception types, one per failure
            self.close()
            raise ValueError(f"model.onnx: {exc}") from exc
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.order = [self.meta.labels.index(label) for label in LABELS]  # our LABELS order from the model's
        self.slots = threading.BoundedSemaphore(1 + WAITING)

    def close(self) -> None:
        self.runner.shutdown(wait=True)

    def logits(self, texts: list[str]) -> list[list[float]]:
        """Per text, the network's logits in its own label order (meta.labels)."""
        if not self.slots.acquire(blocking=False):
            raise Busy
        try:
            return self.runner.submit(self._run_all, texts).result()
        finally:
            self.slots.release()

    def _run_all(self, texts: list[str]) -> list[list[float]]:
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

    def probabilities(self, texts: list[str]) -> list[list[float]]:
        """Per text, calibrated probabilities in LABELS order (the network's alone)."""
        out = []
        for row in self.logits(texts):
            probs = calibrated(row, self.meta.temperature)
            out.append([probs[k] for k in self.order])
        return out


@lru_cache(maxsize=1)
def served_transformer() -> TransformerModel:
    return TransformerModel(settings.SENTIMENT_TRANSFORMER_DIR, settings.SENTIMENT_THREADS, settings.SENTIMENT_NICE)


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
