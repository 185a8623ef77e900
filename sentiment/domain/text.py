"""Text normalisation and features, shared by training and scoring (one place)."""

import re

from .lexicon import MAX_PHRASE_WORDS, PHRASE_STARTS, TERMS

# Every pattern here runs on user text and scans it in linear time: each character is read by a
# few tries to match at most (a run of digits by two: from its start, and from the number before a
# dot), never by one try per character before it. tests/sentiment/test_bounds.py times each
# pattern on its worst cases; keep it so.
URL = re.compile(r"https?://\S+|www\.\S+")
CASHTAG = re.compile(r"\$[A-Za-z][A-Za-z0-9.]{0,9}\b")
MENTION = re.compile(r"@\w+")
# The look-behind starts a number only where its digits start. Without it, n digits and no "%"
# were tried from each digit, n²/2 steps (10,000 digits took 1.7 s); with it every match is the
# same, since a number found from inside a run of digits is found from the run's start first.
PERCENT = re.compile(r"([+-]?)(?<!\d)\d+(?:\.\d+)?\s?%")
TOKEN = re.compile(r"[a-z][a-z0-9'\-]*|[0-9]+(?:\.[0-9]+)?|[!?]")
NEGATORS = {"not", "no", "never", "neither", "nor", "without", "hardly", "barely", "cannot", "nothing", "none"}
INTENSIFIERS = {"very", "extremely", "super", "massive", "massively", "huge", "hugely", "really", "so", "insanely", "absolutely"}
# Punctuation that ends a negation's scope.
CLAUSE_END = re.compile(r"[.,;:!?]|\bbut\b")
NEGATION_SCOPE = 3
# "never been this bullish", "have not been so bearish in years": a degree, not a negation.
NEVER_BEEN_THIS = re.compile(r"\b(?:never|not) been (this|so|more)\b")

EMOJI = {
    "🚀": " emo_rocket ", "🌙": " emo_moon ", "🌕": " emo_moon ", "📈": " emo_chart_up ", "📉": " emo_chart_down ",
    "🔥": " emo_fire ", "💎": " emo_diamond ", "🙌": " emo_hands ", "🐂": " emo_bull ", "🐻": " emo_bear ",
    "😱": " emo_scream ", "💀": " emo_skull ", "🩸": " emo_blood ", "🔴": " emo_red ", "🟢": " emo_green ",
    "✅": " emo_check ", "❌": " emo_cross ", "🤡": " emo_clown ", "😭": " emo_cry ", "😢": " emo_cry ",
    "💰": " emo_money ", "🤑": " emo_money ", "⚠": " emo_warning ", "🆘": " emo_sos ", "👀": " emo_eyes ",
    "💪": " emo_strong ", "🎉": " emo_party ", "😍": " emo_love ", "🤮": " emo_vomit ", "💩": " emo_poop ",
}
EMOJI_POLARITY = {
    "emo_rocket": 1, "emo_moon": 1, "emo_chart_up": 1, "emo_diamond": 1, "emo_bull": 1, "emo_green": 1,
    "emo_money": 1, "emo_strong": 1, "emo_party": 1, "emo_fire": 1,
    "emo_chart_down": -1, "emo_bear": -1, "emo_skull": -1, "emo_blood": -1, "emo_red": -1, "emo_cry": -1,
    "emo_clown": -1, "emo_vomit": -1, "emo_poop": -1, "emo_scream": -1, "emo_sos": -1,
}
# Each emoji is one character: a translation table replaces them in one pass, with no Python call
# per emoji (a text of 10,000 emoji took 10 ms through a regex and a function).
EMOJI_TABLE = str.maketrans(EMOJI)
# A single word's polarity: the lexicon's, else its emoji's.
WORD_POLARITY = {**EMOJI_POLARITY, **TERMS}


def normalise(text: str) -> str:
    text = text.translate(EMOJI_TABLE)
    text = URL.sub(" ", text)
    text = CASHTAG.sub(" cashtag ", text)
    text = MENTION.sub(" ", text)
    text = PERCENT.sub(lambda m: " pct_down " if m.group(1) == "-" else (" pct_up " if m.group(1) == "+" else " pct "), text)
    text = text.lower().replace("’", "'").replace("n't", " not").replace("all-time", "all time")
    return NEVER_BEEN_THIS.sub(r"been \1", text)


def tokens_with_negation(text: str) -> list[tuple[str, bool, bool]]:
    """(token, negated, intensified) for each token of each clause."""
    out: list[tuple[str, bool, bool]] = []
    for clause in CLAUSE_END.split(normalise(text)):
        negate_left = 0
        intensify = False
        for token in TOKEN.findall(clause):
            if token in NEGATORS:
                negate_left = NEGATION_SCOPE
                out.append((token, False, False))
                continue
            if token in INTENSIFIERS:
                intensify = True
                out.append((token, False, False))
                continue
            out.append((token, negate_left > 0, intensify))
            negate_left = max(0, negate_left - 1)
            intensify = False
    return out


def term_length(words: list[str], i: int) -> int:
    """How many words the longest lexicon term starting at words[i] has; 0 for none."""
    # Most words begin no phrase: they are looked up alone, not joined to the words after them.
    if words[i] in PHRASE_STARTS:
        for n in range(min(MAX_PHRASE_WORDS, len(words) - i), 1, -1):
            if " ".join(words[i : i + n]) in TERMS:
                return n
    return 1 if words[i] in WORD_POLARITY else 0


def lexicon_hits(tokens: list[tuple[str, bool, bool]]) -> list[tuple[str, int, bool]]:
    """Lexicon terms found, longest phrase first: (term, polarity after negation, intensified)."""
    hits = []
    words = [t[0] for t in tokens]
    i = 0
    while i < len(words):
        n = term_length(words, i)
        if not n:
            i += 1
            continue
        phrase = " ".join(words[i : i + n])
        polarity = WORD_POLARITY[phrase] if n == 1 else TERMS[phrase]
        negated = any(negated for _, negated, _ in tokens[i : i + n])
        hits.append((phrase, -polarity if negated else polarity, tokens[i][2]))
        i += n
    return hits


def features(text: str) -> dict[str, float]:
    """Sparse features: words and word pairs (negation-marked), lexicon counts, shape."""
    tokens = tokens_with_negation(text)
    return features_of(tokens, lexicon_hits(tokens))


def features_of(tokens: list[tuple[str, bool, bool]], hits: list[tuple[str, int, bool]]) -> dict[str, float]:
    """features() of a text already read: its tokens and their lexicon hits."""
    feats: dict[str, float] = {}

    def add(name: str, value: float = 1.0) -> None:
        feats[name] = feats.get(name, 0.0) + value

    marked = [("not_" + t if neg else t) for t, neg, _ in tokens]
    for word in marked:
        add("w:" + word)
    for a, b in zip(marked, marked[1:]):
        add("b:" + a + " " + b)
    bull = bear = 0.0
    for _, polarity, intensified in hits:
        weight = 1.5 if intensified else 1.0
        if polarity > 0:
            bull += weight
        else:
            bear += weight
    if bull:
        add("lex:bull", bull)
    if bear:
        add("lex:bear", bear)
    add("lex:none", 1.0 if not bull and not bear else 0.0)
    add("lex:diff", bull - bear)
    add("bias", 1.0)
    return feats


def keyword_counts(text: str) -> dict[str, int]:
    return count_keywords(lexicon_hits(tokens_with_negation(text)))


def count_keywords(hits: list[tuple[str, int, bool]]) -> dict[str, int]:
    bull = sum(1 for _, p, _ in hits if p > 0)
    bear = sum(1 for _, p, _ in hits if p < 0)
    return {"bullish": bull, "bearish": bear, "total": bull + bear}
