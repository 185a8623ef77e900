"""Text normalisation and features, shared by training and scoring (one place)."""

import re

from .lexicon import MAX_PHRASE_WORDS, TERMS

URL = re.compile(r"https?://\S+|www\.\S+")
CASHTAG = re.compile(r"\$[A-Za-z][A-Za-z0-9.]{0,9}\b")
MENTION = re.compile(r"@\w+")
PERCENT = re.compile(r"([+-]?)\d+(?:\.\d+)?\s?%")
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
_EMOJI_RE = re.compile("|".join(map(re.escape, EMOJI)))


def normalise(text: str) -> str:
    text = _EMOJI_RE.sub(lambda m: EMOJI[m.group(0)], text)
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


def lexicon_hits(tokens: list[tuple[str, bool, bool]]) -> list[tuple[str, int, bool]]:
    """Lexicon terms found, longest phrase first: (term, polarity after negation, intensified)."""
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


def features(text: str) -> dict[str, float]:
    """Sparse features: words and word pairs (negation-marked), lexicon counts, shape."""
    tokens = tokens_with_negation(text)
    feats: dict[str, float] = {}

    def add(name: str, value: float = 1.0) -> None:
        feats[name] = feats.get(name, 0.0) + value

    marked = [("not_" + t if neg else t) for t, neg, _ in tokens]
    for word in marked:
        add("w:" + word)
    for a, b in zip(marked, marked[1:]):
        add("b:" + a + " " + b)
    bull = bear = 0.0
    for _, polarity, intensified in lexicon_hits(tokens):
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
    hits = lexicon_hits(tokens_with_negation(text))
    bull = sum(1 for _, p, _ in hits if p > 0)
    bear = sum(1 for _, p, _ in hits if p < 0)
    return {"bullish": bull, "bearish": bear, "total": bull + bear}
