"""Scoring's work is bounded whatever the text: every regex the engine runs on user text scans in
linear time, and the engine's work grows with the text, not its square. Pure Python, no database.

The engine's growth is counted (lines of Python run), not timed. The budgets are CPU time of the
thread that scores (time.thread_time), the best of a few runs: time spent waiting for a core that
other processes hold is not counted, so a loaded machine does not fail them."""

import gc
import random
import re
import sys
import time
from collections.abc import Callable

import pytest

from sentiment.domain import text as text_module
from sentiment.domain.engine import MAX_TEXT_LENGTH, analyze
from sentiment.domain.lexicon import MAX_PHRASE_WORDS, TERMS
from sentiment.domain.text import EMOJI, EMOJI_POLARITY, PERCENT, lexicon_hits, normalise

BUDGET = 0.050  # seconds: the bound for one worst case
REQUEST_CHARS = 64 * 1024  # the default SENTIMENT_MAX_REQUEST_CHARS
BATCH = 100

# Every regex of the text code, found rather than listed: a pattern added later is covered too.
PATTERNS = {name: value for name, value in vars(text_module).items() if isinstance(value, re.Pattern)}

# Runs of what each pattern's quantifiers consume, what its alternatives start with, and what
# almost matches it, repeated to length.
UNITS = {
    "digits": "7",
    "unicode digits": "٣",
    "digits and dots": "1.",
    "a number with a long fraction": "1.1111111111",
    "signed numbers": "+1",
    "negative numbers": "-1",
    "signs": "+-",
    "numbers and spaces": "1 ",
    "percentages": "1 %",
    "letters": "a",
    "capitals": "A",
    "letters and digits": "a1",
    "digits and letters": "1a",
    "words with apostrophes and hyphens": "a'-",
    "exclamation marks": "!",
    "question and exclamation marks": "?!",
    "dots": ".",
    "clause punctuation": ",;:",
    "spaces": " ",
    "mixed whitespace": " \t\n\r\u00a0\u2003",
    "rockets": "🚀",
    "every emoji": "".join(EMOJI),
    "accented letters": "é",
    "combining accents": "e\u0301",
    "letters that lowercase to two": "İ",
    "chinese": "中",
    "url schemes": "http://",
    "almost urls": "https:/",
    "www prefixes": "www.",
    "almost www": "ww",
    "dollar signs": "$",
    "cashtags": "$a",
    "cashtags with dots": "$a.",
    "at signs": "@",
    "mentions": "@a",
    "negations": "not ",
    "contractions": "n't",
    "buts": "but ",
    "butts": "butt",
    "never been": "never been ",
    "almost never been this": "not been th",
    "all-time": "all-time ",
    "phrase starts": "price ",
    "lexicon words": "moon ",
    "intensifiers": "very ",
    "a post": "BTC +5.2% 🚀 $BTC @whale https://t.co/x not bullish, but never been this bearish! ",
}


def repeated(unit: str, length: int) -> str:
    return (unit * (length // len(unit) + 1))[:length]


WORST_CASES = {name: repeated(unit, MAX_TEXT_LENGTH) for name, unit in UNITS.items()}
# And two that are not repetitions: a fraction as long as a text, a word too long to be a cashtag.
WORST_CASES["a number with a 9,998-digit fraction"] = "1." + "1" * (MAX_TEXT_LENGTH - 2)
WORST_CASES["a dollar sign and a 9,999-letter word"] = "$" + "a" * (MAX_TEXT_LENGTH - 1)


def best_time(work: Callable[[], object], runs: int = 5, enough: float = 0.0) -> float:
    """The least CPU time of `runs` runs, in seconds; stops early at a run no slower than `enough`."""
    best = float("inf")
    # As timeit does: the garbage collector off while timing. A full collection walks every object
    # of the test process (Django, the model...), milliseconds that have nothing to do with the text.
    gc.disable()
    try:
        for _ in range(runs):
            start = time.thread_time()
            work()
            best = min(best, time.thread_time() - start)
            if best <= enough:
                break
    finally:
        gc.enable()
    return best


def too_slow(inputs: dict[str, list[str]]) -> list[str]:
    """Each pattern run over each input (one text, or a batch of texts one by one) over BUDGET."""
    slow = []
    for pattern_name, pattern in PATTERNS.items():
        for form, texts in inputs.items():
            took = best_time(lambda pattern=pattern, texts=texts: [pattern.findall(t) for t in texts], enough=BUDGET)
            if took > BUDGET:
                slow.append(f"{pattern_name} on {form}: {took * 1000:.0f} ms")
    return slow


@pytest.mark.parametrize("case", WORST_CASES)
def test_every_pattern_scans_a_worst_case_text_of_10000_characters_in_under_50_ms(case):
    text = WORST_CASES[case]
    # Later patterns scan the text as normalise() left it (an emoji becomes a word: up to 16 times longer).
    assert not too_slow({"the text": [text], "the text normalised": [normalise(text)]})


@pytest.mark.parametrize("case", UNITS)
def test_every_pattern_scans_a_batch_of_100_worst_case_texts_filling_a_request_in_under_50_ms(case):
    batch = [repeated(UNITS[case], REQUEST_CHARS // BATCH)] * BATCH
    assert not too_slow({"a batch": batch})


@pytest.mark.parametrize("case", WORST_CASES)
def test_normalising_a_worst_case_text_of_10000_characters_takes_under_50_ms(case):
    assert best_time(lambda: normalise(WORST_CASES[case]), enough=BUDGET) <= BUDGET


def python_steps(work: Callable[[], object]) -> int:
    """How many lines of Python (and calls into Python functions) `work` runs: a count, not a time,
    so it is the same on a busy machine as on an idle one."""
    steps = 0

    def trace(frame, event, arg):
        nonlocal steps
        steps += 1
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        work()
    finally:
        sys.settrace(previous)
    return steps


@pytest.mark.parametrize("case", WORST_CASES)
def test_scoring_twice_the_text_runs_about_twice_the_python_not_four_times(case):
    half, full = WORST_CASES[case][: MAX_TEXT_LENGTH // 2], WORST_CASES[case]
    analyze(half)  # the model is loaded once per process: not part of the count
    steps_half, steps_full = python_steps(lambda: analyze(half)), python_steps(lambda: analyze(full))
    # Linear: at most twice, less the fixed cost; quadratic: about four times. Counted, not timed: a
    # CPU-time ratio failed in CI at 4.3 ms then 16.6 ms on a linear case (a neighbour's load). The
    # regexes' own scanning runs in C, out of this count: the 50 ms budgets above cover it.
    assert steps_full <= 2.2 * steps_half, f"{steps_half} steps, then {steps_full}"


def test_scoring_a_text_normalises_it_once(monkeypatch):
    calls = []
    real = text_module.normalise
    monkeypatch.setattr(text_module, "normalise", lambda text: calls.append(text) or real(text))
    analyze("Bitcoin is surging! Great bullish momentum.")
    assert calls == ["Bitcoin is surging! Great bullish momentum."]


# The pattern before it was made linear: the reference the new one must agree with.
QUADRATIC_PERCENT = re.compile(r"([+-]?)\d+(?:\.\d+)?\s?%")


def test_percentages_are_found_exactly_as_the_quadratic_pattern_found_them():
    rng = random.Random(23)
    alphabet = "0123456789٣.+-% \ta"
    for _ in range(20_000):
        sample = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14)))
        assert PERCENT.sub(replace_percent, sample) == QUADRATIC_PERCENT.sub(replace_percent, sample), sample


def replace_percent(match: re.Match) -> str:
    return {"-": "<down>", "+": "<up>"}.get(match.group(1), "<pct>")


def lexicon_hits_joining_every_window(tokens: list[tuple[str, bool, bool]]) -> list[tuple[str, int, bool]]:
    """lexicon_hits as it was: every word joined to the next ones and looked up."""
    hits = []
    words = [t[0] for t in tokens]
    i = 0
    while i < len(words):
        for n in range(min(MAX_PHRASE_WORDS, len(words) - i), 0, -1):
            phrase = " ".join(words[i : i + n])
            polarity = TERMS.get(phrase) or (EMOJI_POLARITY.get(phrase) if n == 1 else None)
            if polarity:
                negated = any(tokens[j][1] for j in range(i, i + n))
                hits.append((phrase, -polarity if negated else polarity, tokens[i][2]))
                i += n
                break
        else:
            i += 1
    return hits


def test_lexicon_terms_are_found_exactly_as_when_every_window_was_joined():
    rng = random.Random(23)
    vocabulary = sorted({word for term in TERMS for word in term.split()} | set(EMOJI_POLARITY) | {"btc", "the", "!"})
    for _ in range(5_000):
        tokens = [(rng.choice(vocabulary), rng.random() < 0.2, rng.random() < 0.2) for _ in range(rng.randint(1, 12))]
        assert lexicon_hits(tokens) == lexicon_hits_joining_every_window(tokens), tokens
