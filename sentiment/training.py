"""Training and evaluation of the sentiment model (scikit-learn, at build time only).

The scoring side (sentiment.domain) is pure Python; this module fits its weights from
labelled CSV files (`text,label` with 0 Bearish, 1 Bullish, 2 Neutral).
"""

import csv
import gzip
import json
from collections import Counter
from pathlib import Path

from .domain.engine import LABELS, MODEL_PATH, Model, analyze
from .domain.text import features

DEFAULT_C = 2.0
MIN_COUNT = 2
# Rows of the project's own labelled files (crypto and market posts) count this many times: they
# are a few hundred beside 9,543 news tweets, and they carry the language of social posts that
# the news tweets lack.
EXTRA_WEIGHT = 3.0


def read_labelled(path: Path) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not {"text", "label"} <= set(reader.fieldnames or ()):
            raise ValueError(f"{path}: the header must name the columns text and label")
        for row in reader:
            label = int(row["label"])
            if label not in (0, 1, 2):
                raise ValueError(f"{path}: label {label} is not 0, 1 or 2")
            texts.append(row["text"])
            labels.append(label)
    return texts, labels


def fit(
    texts: list[str], labels: list[int], c: float = DEFAULT_C, sample_weights: list[float] | None = None
) -> Model:
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    missing = set(range(3)) - set(labels)
    if missing:
        raise ValueError(f"the training rows have no {', '.join(LABELS[k] for k in sorted(missing))} example")
    rows = [features(t) for t in texts]
    counts = Counter(name for row in rows for name in row)
    rows = [{k: v for k, v in row.items() if counts[k] >= MIN_COUNT} for row in rows]
    vectorizer = DictVectorizer()
    matrix = vectorizer.fit_transform(rows)
    clf = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    clf.fit(matrix, labels, sample_weight=sample_weights)
    order = [list(clf.classes_).index(i) for i in range(3)]
    weights: dict[str, list[float]] = {}
    for j, name in enumerate(vectorizer.feature_names_):
        w = [float(clf.coef_[k, j]) for k in order]
        if max(abs(x) for x in w) >= 1e-4:
            weights[name] = [round(x, 5) for x in w]
    bias = weights.setdefault("bias", [0.0, 0.0, 0.0])
    for i, k in enumerate(order):
        bias[i] = round(bias[i] + float(clf.intercept_[k]), 5)
    return Model(weights)


def save(model: Model, path: Path = MODEL_PATH, meta: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"labels": list(LABELS), "temperature": model.temperature, "weights": model.weights, "meta": meta or {}}
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as fh:
        json.dump(data, fh, separators=(",", ":"), sort_keys=True)


def trained_on(path: Path = MODEL_PATH) -> list[str]:
    """The names of the files a saved model was trained on, as its meta records them ([] if it does not)."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        named = json.load(fh).get("meta", {}).get("trained_on", [])
    return [n for n in named if isinstance(n, str)] if isinstance(named, list) else []


def scores(truth: list[int], predicted: list[int]) -> dict:
    """Accuracy, macro-F1 and per-class precision/recall/F1."""
    out = {"n": len(truth), "accuracy": sum(t == p for t, p in zip(truth, predicted)) / max(1, len(truth))}
    f1s = []
    for k, label in enumerate(LABELS):
        tp = sum(1 for t, p in zip(truth, predicted) if t == k and p == k)
        fp = sum(1 for t, p in zip(truth, predicted) if t != k and p == k)
        fn = sum(1 for t, p in zip(truth, predicted) if t == k and p != k)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}
        f1s.append(f1)
    out["macro_f1"] = sum(f1s) / 3
    return out


def predict(model: Model, texts: list[str]) -> list[int]:
    return [LABELS.index(analyze(t, model).sentiment) for t in texts]


def training_set(
    datasets: dict[str, tuple[list[str], list[int]]], extra_weight: float = EXTRA_WEIGHT,
    file_weights: dict[str, float] | None = None,
) -> tuple[list[str], list[int], list[float]]:
    """Concatenate datasets; the first is the main corpus, the others weigh `extra_weight` a row
    (or what `file_weights` says for that dataset's name)."""
    texts: list[str] = []
    labels: list[int] = []
    weights: list[float] = []
    for n, (name, (t, l)) in enumerate(datasets.items()):
        texts += t
        labels += l
        weights += [1.0 if n == 0 else (file_weights or {}).get(name, extra_weight)] * len(t)
    return texts, labels, weights


def train(datasets: dict[str, tuple[list[str], list[int]]], c: float = DEFAULT_C) -> Model:
    texts, labels, weights = training_set(datasets)
    return fit(texts, labels, c, weights)


def held_out(
    train_sets: dict[str, tuple[list[str], list[int]]],
    test_sets: dict[str, tuple[list[str], list[int]]],
    c: float = DEFAULT_C,
) -> dict[str, dict]:
    """Train on every training set, score each test set (rows the model never saw)."""
    model = train(train_sets, c)
    return {name: scores(labels, predict(model, texts)) for name, (texts, labels) in test_sets.items()}


def fold_assignment(labels: list[int], folds: int = 5, seed: int = 13) -> dict[int, int]:
    """Row index -> fold, stratified: each label's rows shuffled (seeded), then dealt round the folds.
    evaluate_sentiment's folds, and the transformer's validation fold, are these."""
    import random

    idx = list(range(len(labels)))
    random.Random(seed).shuffle(idx)
    idx.sort(key=lambda i: labels[i])  # stable: each label's rows stay shuffled
    return {i: n % folds for n, i in enumerate(idx)}


def cross_validate(
    datasets: dict[str, tuple[list[str], list[int]]], folds: int = 5, c: float = DEFAULT_C, seed: int = 13
) -> dict[str, dict]:
    """Stratified k-fold cross-validation over several datasets at once: each fold trains on the
    other folds of every dataset and is scored per dataset on its held-out rows."""
    assignment = {name: fold_assignment(labels, folds, seed) for name, (_, labels) in datasets.items()}
    truth: dict[str, list[int]] = {name: [] for name in datasets}
    pred: dict[str, list[int]] = {name: [] for name in datasets}
    for fold in range(folds):
        rest = {}
        for name, (texts, labels) in datasets.items():
            keep = [i for i in range(len(texts)) if assignment[name][i] != fold]
            rest[name] = ([texts[i] for i in keep], [labels[i] for i in keep])
        model = train(rest, c)
        for name, (texts, labels) in datasets.items():
            held = [i for i in range(len(texts)) if assignment[name][i] == fold]
            truth[name].extend(labels[i] for i in held)
            pred[name].extend(predict(model, [texts[i] for i in held]))
    return {name: scores(truth[name], pred[name]) for name in datasets}
