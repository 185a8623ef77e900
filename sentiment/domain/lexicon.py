"""Market and crypto vocabulary with its polarity: +1 bullish, -1 bearish.

Terms are matched on normalised tokens (see text.py), longest phrase first. Negation flips a
term ("not bullish" counts as bearish).
"""

BULLISH = """
bullish, bull, bulls, bull run, bull market, moon, mooning, to the moon, moonshot, pump, pumping, pumped,
hodl, hodling, diamond hands, buy the dip, btfd, ath, all time high, new high, new highs, record high,
breakout, breaks out, broke out, breaking out, golden cross, rally, rallies, rallied, rallying,
surge, surges, surged, surging, soar, soars, soared, soaring, jump, jumps, jumped, spike, spikes, spiked,
skyrocket, skyrockets, skyrocketed, rocket, gain, gains, gained, climbs, climbed, rises, rose, rising,
rebound, rebounds, rebounded, recovery, recovers, recovered, upgrade, upgrades, upgraded,
raises price target, raised price target, price target raised, raises target, boosts price target,
outperform, outperforms, overweight, buy rating, strong buy, beat estimates, beats estimates, tops estimates,
beats, record profit, profit jumps, profit rises, higher than expected, above expectations,
better than expected, accumulate, accumulating, accumulation, adoption, approves, approved, approval,
etf approval, inflows, short squeeze, uptrend, higher highs, green candle, green candles, parabolic,
undervalued, lfg, wagmi, strong growth, soaring demand, partnership, halving, upside, outperformed,
buy signal, long, longs, moons, pumps, bullrun, all-time high, tops, boost, boosts, boosted,
inflow, buys, bought, buying, adds, added, reclaims, reclaimed, reclaim,
holds support, held support, support holds, support held, flips resistance, breaks resistance, broke resistance,
broke the downtrend, breaks the downtrend, breaking the downtrend, higher low, higher lows, bid, bids,
squeeze, squeezed, send it, sending, ripping, rips, ripped, printing, green,
oversold, bottom is in, bounce, bounced, bounces, strength, strong, stronger, strongest, outperforming,
record highs, new ath, best day, best week, best month, all time highs, beat expectations,
beats expectations, upgrade to buy, upgraded to buy, we are back, so back, bear trap, bear traps
"""

BEARISH = """
bearish, bear, bears, bear market, bull trap, bull traps, dead cat bounce, dump, dumping, dumped, dumps, rekt, rug, rug pull, rugpull, rugged,
fud, scam, ponzi, capitulation, capitulate, death cross, crash, crashes, crashed, crashing,
plunge, plunges, plunged, plunging, tank, tanks, tanked, tumble, tumbles, tumbled, slump, slumps, slumped,
sink, sinks, sank, slide, slides, slid, drop, drops, dropped, fall, falls, fell, falling,
decline, declines, declined, sell-off, selloff, sell off, selling pressure, liquidation, liquidations,
liquidated, downgrade, downgrades, downgraded, cuts price target, cut price target, price target cut,
cuts target, lowers price target, lowered price target, cut to, underperform, underperforms, underweight,
sell rating, misses, misses estimates, missed estimates, below expectations, lower than expected,
worse than expected, loss widens, profit warning, layoffs, lays off, bankruptcy, bankrupt, hack, hacked,
exploit, exploited, breach, delist, delisted, delisting, outflows, lawsuit, sues, probe, fraud,
ban, bans, banned, crackdown, insolvency, insolvent, default, recession, downtrend, lower lows,
red candle, red candles, bleeding, bloodbath, overvalued, bubble, weak, weakness, ngmi,
collapse, collapses, collapsed, halts, halted, suspends, suspended, fined, downside, shorts, short,
sell signal, plummets, plummeted, plummet, slashes, slashed, cuts, warns, losses, lower,
outflow, sells, sold, selling, loses support, lost support,
losing support, breaks support, broke support, breaking support, broke down, breaks down, breakdown,
lower high, rejected, rejection, nuke, nuked, nukes, wrecked, bleed, bleeds, red,
overbought, top is in, falling knife, weaker, weakest, underperforming,
worst day, worst week, worst month, miss expectations, misses expectations, downgrade to sell,
downgraded to sell, it's over, cooked, outage, depeg, depegs, depegged, freeze, freezes, frozen,
contagion, panic, panic selling, unlock, dilution, delayed, delays, postponed, postpones
"""


def _terms(block: str, polarity: int) -> dict[str, int]:
    return {t.strip(): polarity for t in block.replace("\n", " ").split(",") if t.strip()}


TERMS: dict[str, int] = {**_terms(BULLISH, 1), **_terms(BEARISH, -1)}
MAX_PHRASE_WORDS = max(len(t.split()) for t in TERMS)
# The first word of each phrase of two words or more.
PHRASE_STARTS = frozenset(t.split()[0] for t in TERMS if " " in t)
