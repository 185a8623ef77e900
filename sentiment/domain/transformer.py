"""What the transformer engine does around its network, in pure Python: the text it is shown (links
stripped: a t.co link says nothing of sentiment and costs ten tokens) and the calibrated
probabilities from its logits (temperature scaling, fitted on held-out texts when it was trained),
averaged with the fast engine's where the model says so."""

import math
import re
from collections.abc import Sequence

# Linear: one pass, no nested quantifier (work bounded whatever the text).
_LINK = re.compile(r"https?://\S*")
_SPACES = re.compile(r"\s+")


def shown_text(text: str) -> str:
    """The text as the model was trained on it: links out, spaces squeezed (never empty)."""
    return _SPACES.sub(" ", _LINK.sub(" ", text)).strip() or text.strip() or "."


def calibrated(logits: Sequence[float], temperature: float) -> list[float]:
    """Softmax of logits / temperature."""
    scaled = [x / temperature for x in logits]
    top = max(scaled)
    exps = [math.exp(x - top) for x in scaled]
    total = sum(exps)
    return [e / total for e in exps]


def blended(transformer: Sequence[float], fast: Sequence[float], fast_weight: float) -> list[float]:
    """The two engines' probabilities averaged, the fast engine's weighing `fast_weight`."""
    return [(1 - fast_weight) * t + fast_weight * f for t, f in zip(transformer, fast)]
