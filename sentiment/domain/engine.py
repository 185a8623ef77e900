"""Scoring: a multinomial logistic model over the features of text.py, loaded once per
process from the weights the `train_sentiment` command writes. Pure Python, no network."""

import gzip
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .text import count_keywords, features_of, lexicon_hits, tokens_with_negation
from .transformer import blended

LABELS = ("Bearish", "Bullish", "Neutral")
ENGINES = ("fast", "transformer")  # what a request or SENTIMENT_ENGINE may name
MODEL_PATH = Path(__file__).resolve().parent.parent / "model" / "model.json.gz"
MAX_TEXT_LENGTH = 10_000


@dataclass(frozen=True)
class Analysis:
    sentiment: str
    confidence: float
    keywords: dict[str, int]
    probabilities: dict[str, float]

    def as_dict(self) -> dict:
        return {
            "sentiment": self.sentiment,
            "confidence": self.confidence,
            "keywords": self.keywords,
            "probabilities": self.probabilities,
        }


class Model:
    def __init__(self, weights: dict[str, list[float]], temperature: float = 1.0):
        self.weights = weights
        self.temperature = temperature

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> "Model":
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, dict) or data.get("labels") != list(LABELS):
            raise ValueError(f"its labels are not {list(LABELS)}")
        weights, temperature = data.get("weights"), data.get("temperature", 1.0)
        if not isinstance(weights, dict) or not all(
            isinstance(w, list) and len(w) == 3 and all(isinstance(x, (int, float)) for x in w) for w in weights.values()
        ):
            raise ValueError("its weights are not three numbers a feature")
        if not isinstance(temperature, (int, float)) or temperature <= 0:
            raise ValueError("its temperature is not a positive number")
        return cls(weights, temperature)

    def probabilities(self, feats: dict[str, float]) -> list[float]:
        scores = [0.0, 0.0, 0.0]
        for name, value in feats.items():
            w = self.weights.get(name)
            if w is not None:
                scores[0] += w[0] * value
                scores[1] += w[1] * value
                scores[2] += w[2] * value
        top = max(scores)
        exps = [math.exp((s - top) / self.temperature) for s in scores]
        total = sum(exps)
        return [e / total for e in exps]


@lru_cache(maxsize=1)
def default_model() -> Model:
    return Model.load()


def analyze(text: str, model: Model | None = None, beside: list[float] | None = None, weight: float = 1.0) -> Analysis:
    """The text's analysis by the fast engine; or, given `beside` (another engine's probabilities
    for it), by that engine with the fast engine's probabilities weighing `weight` in the average."""
    model = model or default_model()
    # The text is read once for the model and the keyword counts: normalising, tokenising and
    # matching the lexicon are most of the work.
    tokens = tokens_with_negation(text)
    hits = lexicon_hits(tokens)
    probs = model.probabilities(features_of(tokens, hits))
    if beside is not None:
        probs = blended(beside, probs, weight)
    best = max(range(3), key=probs.__getitem__)
    return Analysis(
        sentiment=LABELS[best],
        confidence=round(probs[best], 4),
        keywords=count_keywords(hits),
        probabilities={label: round(p, 4) for label, p in zip(LABELS, probs)},
    )
