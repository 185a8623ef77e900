"""The sentiment engine alone: pure Python, no database."""

import pytest

from sentiment.domain.engine import analyze
from sentiment.domain.text import keyword_counts, tokens_with_negation


@pytest.mark.parametrize(
    "text",
    ["BTC to the moon 🚀🚀", "HODL, diamond hands 💎🙌", "Golden cross on the daily, breakout confirmed",
     "Analyst raises price target on Coinbase to $300", "ETH just hit a new all-time high!", "Massive short squeeze, LFG"],
)
def test_bullish_slang_reads_bullish(text):
    assert analyze(text).sentiment == "Bullish"


@pytest.mark.parametrize(
    "text",
    ["Got rekt, this is a rug pull", "Death cross forming, capitulation next", "$200M of longs liquidated as BTC dumps",
     "Exchange hacked, withdrawals halted", "Bank downgraded to sell, price target cut to $20", "Bitcoin crashes 15% 📉"],
)
def test_bearish_slang_reads_bearish(text):
    assert analyze(text).sentiment == "Bearish"


@pytest.mark.parametrize(
    "text", ["The Ethereum developer call is on Thursday", "What wallet do you use for SOL?", "Kraken publishes its proof of reserves"]
)
def test_plain_statements_read_neutral(text):
    assert analyze(text).sentiment == "Neutral"


@pytest.mark.parametrize(
    ("text", "label"),
    [("we're so back, $SOL ripping through resistance", "Bullish"), ("ETH reclaimed 4k and support held", "Bullish"),
     ("it's over, BTC lost support and alts are bleeding", "Bearish"), ("Stablecoin depegs, withdrawals frozen", "Bearish"),
     ("Wen is the next token unlock? need the date", "Neutral")],
)
def test_social_market_language(text, label):
    assert analyze(text).sentiment == label


def test_negation_flips_a_keyword():
    assert keyword_counts("not bullish at all") == {"bullish": 0, "bearish": 1, "total": 1}
    assert keyword_counts("this isn't a crash") == {"bullish": 1, "bearish": 0, "total": 1}
    assert analyze("Not bullish at all on ETH, this looks terrible").sentiment == "Bearish"


def test_traps_count_against_the_side_they_trap():
    assert keyword_counts("bear trap, bears got caught") == {"bullish": 1, "bearish": 1, "total": 2}
    assert keyword_counts("classic bull trap") == {"bullish": 0, "bearish": 1, "total": 1}
    assert keyword_counts("just a dead cat bounce") == {"bullish": 0, "bearish": 1, "total": 1}


def test_never_been_this_is_a_degree_not_a_negation():
    assert keyword_counts("I have never been this bearish on crypto") == {"bullish": 0, "bearish": 1, "total": 1}
    assert keyword_counts("haven't been so bullish in years") == {"bullish": 1, "bearish": 0, "total": 1}
    assert keyword_counts("never been bullish on this coin") == {"bullish": 0, "bearish": 1, "total": 1}
    assert analyze("Never been this bearish on crypto").sentiment == "Bearish"


def test_negation_ends_at_the_end_of_the_clause():
    marked = {t: neg for t, neg, _ in tokens_with_negation("not sure, but bullish")}
    assert marked["sure"] is True and marked["bullish"] is False


def test_urls_cashtags_and_mentions_do_not_count_as_words():
    tokens = [t for t, _, _ in tokens_with_negation("$BTC pumping https://t.co/moon @bearish_guy")]
    assert "moon" not in tokens and "bearish_guy" not in tokens and "cashtag" in tokens


def test_confidence_is_the_probability_of_the_chosen_label():
    result = analyze("Bitcoin is surging! Great bullish momentum.")
    assert result.confidence == max(result.probabilities.values())
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
