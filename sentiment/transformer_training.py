"""Fine-tuning the transformer engine (torch and transformers, at build time only: .venv-train,
`make sentiment-transformer`). The server never imports this module; it runs what `export` writes
with ONNX Runtime (sentiment.transformer).

The network: the encoder, mean pooling over the attention mask (how the sentence encoder was
trained), dropout, one linear layer to the three labels. Trained with AdamW, a linear warm-up and
decay, cross-entropy weighted by each row's weight (the project's own posts weigh
training.EXTRA_WEIGHT) and by its class (balanced), on the text as served (links out), in
batches of like length. Exported to ONNX, then quantised to int8 per output channel (per-tensor
int8 costs about a point of accuracy; per channel, little)."""

import copy
import json
import logging
import math
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .domain.engine import LABELS
from .domain.transformer import shown_text
from .training import EXTRA_WEIGHT

Log = Callable[[str], None]


@dataclass(frozen=True)
class Recipe:
    epochs: int = 3
    lr: float = 5e-5
    batch: int = 32
    max_tokens: int = 64
    warmup: float = 0.06  # of all steps
    weight_decay: float = 0.01
    dropout: float = 0.1
    threads: int = 2
    seed: int = 0
    extra_weight: float = EXTRA_WEIGHT  # a row of the extra files (the project's posts) against one news tweet
    file_weights: tuple[tuple[str, float], ...] = ()  # (file name, weight): a row of that extra file instead

    def as_dict(self) -> dict:
        return asdict(self)


class Tuned:
    """A fine-tuned network with its tokenizer (torch), until it is exported."""

    def __init__(self, network, tokenizer, pad_id: int, recipe: Recipe):
        self.network, self.tokenizer, self.pad_id, self.recipe = network, tokenizer, pad_id, recipe

    def encode(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch([shown_text(t) for t in texts])]

    def logits(self, texts: list[str], batch: int = 64) -> np.ndarray:
        import torch

        encoded = self.encode(texts)
        self.network.eval()
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        out = np.zeros((len(encoded), len(LABELS)), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(order), batch):
                chosen = order[start:start + batch]
                ids, mask = _padded([encoded[i] for i in chosen], self.pad_id)
                out[chosen] = self.network(ids, mask).numpy()
        return out


def _padded(seqs: list[list[int]], pad_id: int):
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return ids, mask


def _network(encoder: Path, dropout: float):
    import torch
    import transformers
    from transformers import AutoConfig, AutoModel

    transformers.logging.set_verbosity_error()  # not the report of the layers left unread

    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            config = AutoConfig.from_pretrained(encoder)
            self.encoder = AutoModel.from_pretrained(encoder, config=config, attn_implementation="eager",
                                                     add_pooling_layer=False)
            self.dropout = torch.nn.Dropout(dropout)
            self.head = torch.nn.Linear(config.hidden_size, len(LABELS))

        def forward(self, input_ids, attention_mask):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return self.head(self.dropout(pooled))

    return Classifier()


def tokenizer_of(encoder: Path, max_tokens: int):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(encoder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_tokens)
    return tokenizer


def pad_id_of(encoder: Path) -> int:
    return int(json.loads((encoder / "config.json").read_text()).get("pad_token_id") or 0)


def scores(truth: list[int], logits: np.ndarray) -> dict:
    from .training import scores as label_scores

    return label_scores(list(truth), [int(k) for k in np.asarray(logits).argmax(1)])


def fine_tune(
    encoder: Path,
    texts: list[str],
    labels: list[int],
    weights: list[float],
    recipe: Recipe,
    watch: dict[str, tuple[list[str], list[int]]] | None = None,
    log: Log = print,
) -> Tuned:
    """Fine-tune `encoder` on the rows; after each epoch, log the loss and the scores on `watch`
    (never trained on). Keeps the last epoch: a choice of epoch made on held-out rows would make
    their scores flatter the model."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    torch.set_num_threads(recipe.threads)
    random.seed(recipe.seed)
    np.random.seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    tokenizer = tokenizer_of(encoder, recipe.max_tokens)
    tuned = Tuned(_network(encoder, recipe.dropout), tokenizer, pad_id_of(encoder), recipe)
    encoded = tuned.encode(texts)
    targets = torch.tensor(labels)
    # Each row's weight times its class's ("balanced" over the weighted counts); a batch's loss is
    # divided by its size times the mean weight, so batches of heavier rows keep their weight.
    row_weights = np.asarray(weights, dtype=np.float64)
    per_class = np.array([row_weights[np.asarray(labels) == k].sum() for k in range(len(LABELS))])
    class_weights = row_weights.sum() / (len(LABELS) * per_class)
    w = torch.tensor(row_weights * class_weights[np.asarray(labels)], dtype=torch.float32)
    w_mean = float(w.mean())

    network = tuned.network
    decay = [p for p in network.parameters() if p.ndim > 1]
    no_decay = [p for p in network.parameters() if p.ndim <= 1]
    optimiser = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=recipe.lr)
    rng = random.Random(recipe.seed)

    def batches() -> list[list[int]]:
        # Shuffled, then sorted by length within chunks of 50 batches: little padding, still mixed.
        order = list(range(len(encoded)))
        rng.shuffle(order)
        chunk, out = recipe.batch * 50, []
        for start in range(0, len(order), chunk):
            part = sorted(order[start:start + chunk], key=lambda i: len(encoded[i]))
            out += [part[j:j + recipe.batch] for j in range(0, len(part), recipe.batch)]
        rng.shuffle(out)
        return out

    total = math.ceil(len(encoded) / recipe.batch) * recipe.epochs
    warm = max(1, int(recipe.warmup * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: s / warm if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    for epoch in range(1, recipe.epochs + 1):
        network.train()
        started, loss_sum, steps = time.perf_counter(), 0.0, 0
        for chosen in batches():
            ids, mask = _padded([encoded[i] for i in chosen], tuned.pad_id)
            losses = torch.nn.functional.cross_entropy(network(ids, mask), targets[chosen], reduction="none")
            loss = (losses * w[chosen]).sum() / (len(chosen) * w_mean)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
            loss_sum, steps = loss_sum + loss.item(), steps + 1
        line = f"  epoch {epoch}/{recipe.epochs}: {time.perf_counter() - started:.0f} s, loss {loss_sum / steps:.4f}"
        for name, (watch_texts, watch_labels) in (watch or {}).items():
            r = scores(watch_labels, tuned.logits(watch_texts))
            line += f"; {name} accuracy {r['accuracy']:.3f} macro-F1 {r['macro_f1']:.3f}"
        log(line)
    return tuned


def export(tuned: Tuned, dest: Path, meta: dict) -> dict:
    """Write dest/model.onnx (int8, per channel), tokenizer.json and meta.json; return file sizes."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dest.mkdir(parents=True, exist_ok=True)
    network = copy.deepcopy(tuned.network).eval()
    with tempfile.TemporaryDirectory() as scratch:
        fp32 = Path(scratch) / "model_fp32.onnx"
        example = (torch.full((2, 16), 1000, dtype=torch.long), torch.ones((2, 16), dtype=torch.long))
        torch.onnx.export(
            network, example, str(fp32), input_names=["input_ids", "attention_mask"], output_names=["logits"],
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                          "logits": {0: "batch"}},
            opset_version=17, dynamo=False,
        )
        logging.disable(logging.INFO)  # the quantiser logs a line per tensor
        try:
            quantize_dynamic(str(fp32), str(dest / "model.onnx"), weight_type=QuantType.QInt8, per_channel=True)
        finally:
            logging.disable(logging.NOTSET)
    tuned.tokenizer.save(str(dest / "tokenizer.json"))
    write_meta(dest, tuned.recipe, meta)
    return {name: (dest / name).stat().st_size for name in ("model.onnx", "tokenizer.json", "meta.json")}


def write_meta(dest: Path, recipe: Recipe, meta: dict) -> None:
    """dest/meta.json: what serving reads (labels, longest input; no calibration or blend unless
    `meta` says so), and whatever else `meta` records."""
    full = {"labels": list(LABELS), "max_tokens": recipe.max_tokens, "temperature": 1.0, "fast_weight": 0.0, **meta}
    (dest / "meta.json").write_text(json.dumps(full, indent=1, sort_keys=True) + "\n")


def fit_temperature(logits: np.ndarray, labels: list[int]) -> float:
    """The temperature minimising the log-loss of softmax(logits / T) on held-out rows (a grid
    search over 0.25-5; scaling keeps each argmax, so it calibrates without changing answers)."""
    truth = np.asarray(labels)
    best, best_loss = 1.0, math.inf
    for t in np.exp(np.linspace(math.log(0.25), math.log(5.0), 200)):
        z = logits / t
        z = z - z.max(1, keepdims=True)
        loss = float(-(z[np.arange(len(truth)), truth] - np.log(np.exp(z).sum(1))).mean())
        if loss < best_loss:
            best, best_loss = float(t), loss
    return round(best, 4)


WEIGHTS = [round(0.1 * k, 1) for k in range(11)]


def _best_weight(transformer: np.ndarray, fast: np.ndarray, truth: np.ndarray) -> float:
    """The fast engine's weight in the average of probabilities with the best macro-F1 (ties: the smaller)."""
    from .training import scores as label_scores

    def f1(w: float) -> float:
        return label_scores(list(truth), list(((1 - w) * transformer + w * fast).argmax(1)))["macro_f1"]

    return max(WEIGHTS, key=lambda w: (round(f1(w), 6), -w))


def fit_blend(transformer: np.ndarray, fast: np.ndarray, labels: list[int], seed: int = 0) -> tuple[float, list[int]]:
    """The fast engine's weight beside the transformer (fitted on all the held-out rows) and, per
    row, the label a weight fitted on the other half of them gives: two-fold cross-fitting, so the
    blend's score is not flattered by its own fit."""
    truth = np.asarray(labels)
    halves = np.arange(len(truth)) % 2
    np.random.default_rng(seed).shuffle(halves)
    predicted = np.zeros(len(truth), dtype=int)
    for half in (0, 1):
        fit_rows, score_rows = halves != half, halves == half
        w = _best_weight(transformer[fit_rows], fast[fit_rows], truth[fit_rows])
        predicted[score_rows] = ((1 - w) * transformer[score_rows] + w * fast[score_rows]).argmax(1)
    return _best_weight(transformer, fast, truth), [int(k) for k in predicted]


def _fast_probabilities(model, texts: list[str]) -> np.ndarray:
    from .domain.engine import analyze

    return np.array([[analyze(t, model).probabilities[label] for label in LABELS] for t in texts])


def _answers(served, fast_model, texts: list[str]) -> list[int]:
    """The labels the engine answers, as the server computes them (int8 model, calibrated, blended)."""
    from .domain.engine import analyze

    probs = served.probabilities(texts)
    return [LABELS.index(analyze(t, fast_model, p, served.meta.fast_weight).sentiment) for t, p in zip(texts, probs)]


def build(
    main: tuple[list[str], list[int]],
    extras: dict[str, tuple[list[str], list[int]]],
    holdout: dict[str, tuple[list[str], list[int]]],
    encoder: Path,
    recipe: Recipe,
    dest: Path,
    fast_model_path: Path,
    meta: dict,
    validation_fold: int = 0,
    folds: int = 5,
    log: Log = print,
    main_name: str = "main",
    fast_files: list[str] | None = None,
) -> dict:
    """The shipped model in `dest`, with its figures.

    With a validation fold (default 0 of evaluate_sentiment's stratified split, of the news tweets
    and of each extra file): first a run without that fold, exported and scored as served; on its
    held-out rows the temperature is fitted, and the fast engine's weight beside the transformer
    (its score cross-fitted: each half scored with a weight fitted on the other), each file scored
    on its own. The fast engine there is trained on the `fast_files` among the rest (the main file
    and those the served fast model was trained on; all if None). Then the same recipe on every row
    makes the model shipped. `holdout` sets are scored by it, never trained on."""
    from . import training
    from .domain.engine import Model
    from .transformer import TransformerModel

    started = time.perf_counter()
    figures: dict = {}
    temperature, fast_weight = 1.0, 0.0
    if validation_fold >= 0:
        # The same fold of every training file: the news tweets measure the tweets' goal, the posts the posts'.
        rest, held = {}, {}  # the main file first: training_set weighs its rows 1, the others' more
        for name, (set_texts, set_labels) in {main_name: main, **extras}.items():
            fold = training.fold_assignment(set_labels, folds)
            rest[name] = ([set_texts[i] for i, f in fold.items() if f != validation_fold],
                          [set_labels[i] for i, f in fold.items() if f != validation_fold])
            held[name] = ([set_texts[i] for i, f in fold.items() if f == validation_fold],
                          [set_labels[i] for i, f in fold.items() if f == validation_fold])
        held_texts = [t for set_texts, _ in held.values() for t in set_texts]
        held_labels = [k for _, set_labels in held.values() for k in set_labels]
        rows = training.training_set(rest, recipe.extra_weight, dict(recipe.file_weights))
        log(f"validation run: {len(rows[0])} rows; held out (fold {validation_fold} of {folds}): "
            + ", ".join(f"{len(set_labels)} of {name}" for name, (_, set_labels) in held.items()))
        tuned = fine_tune(encoder, *rows, recipe, watch=held, log=log)
        with tempfile.TemporaryDirectory() as scratch:
            export(tuned, Path(scratch), {})
            served = TransformerModel(Path(scratch), recipe.threads)
            logits = np.array(served.logits(held_texts))
            served.close()
        del tuned
        # Calibration and the fast engine's weight: fitted on every held-out row, tweets and posts.
        temperature = fit_temperature(logits, held_labels)
        scaled = np.exp((logits - logits.max(1, keepdims=True)) / temperature)
        fast_rest = {name: part for name, part in rest.items() if fast_files is None or name in fast_files}
        fast = _fast_probabilities(training.train(fast_rest), held_texts)
        fast_weight, blended = fit_blend(scaled / scaled.sum(1, keepdims=True), fast, held_labels, recipe.seed)
        figures["validation"] = {"rows": f"fold {validation_fold} of {folds} of each training file, never trained on "
                                         "in this run"}
        start = 0
        for name, (_, set_labels) in held.items():
            part = slice(start, start + len(set_labels))
            start = part.stop
            if not set_labels:  # a file too small to have rows in every fold
                continue
            figures["validation"][name] = {
                "transformer": _brief(scores(set_labels, logits[part])),
                "fast engine (same training rows)": _brief(scores(set_labels, fast[part])),
                "both (weight cross-fitted)": _brief(training.scores(set_labels, blended[part])),
            }
        figures["validation"].update(temperature=temperature, fast_weight=fast_weight,
                                     seconds=round(time.perf_counter() - started))
        log(f"validation: {figures['validation']}")
    rows = training.training_set({"main": main, **extras}, recipe.extra_weight, dict(recipe.file_weights))
    log(f"shipped model: {len(rows[0])} rows")
    final_started = time.perf_counter()
    tuned = fine_tune(encoder, *rows, recipe, log=log)
    figures["training_seconds"] = round(time.perf_counter() - final_started)
    meta = {**meta, "temperature": temperature, "fast_weight": fast_weight, "recipe": recipe.as_dict(),
            "rows": len(rows[0]), "figures": figures}
    sizes = export(tuned, dest, meta)
    served, fast_model = TransformerModel(dest, recipe.threads), Model.load(fast_model_path)
    for name, (held_texts, held_labels) in holdout.items():
        figures[name] = {
            "engine": _brief(training.scores(held_labels, _answers(served, fast_model, held_texts))),
            "transformer alone": _brief(scores(held_labels, np.array(served.logits(held_texts)))),
            "fast engine alone": _brief(scores(held_labels, _fast_probabilities(fast_model, held_texts))),
        }
    served.close()
    figures["seconds"] = round(time.perf_counter() - started)
    figures["sizes"] = sizes
    write_meta(dest, recipe, meta)  # again: `meta` holds `figures`, now with the held-out posts' scores
    return figures


def _brief(r: dict) -> dict:
    return {"n": r["n"], "accuracy": round(r["accuracy"], 4), "macro_f1": round(r["macro_f1"], 4)}
