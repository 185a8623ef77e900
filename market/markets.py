"""The markets the server serves: the tracked ones (the admin's list, which every process follows),
and the untracked ones a client asks for: checked against the exchange's listing, admitted up to
UNTRACKED_MARKETS_MAX, polled while a live subscriber watches them, and forgotten when unused."""

import operator
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import reduce

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from core.clientip import asking

from . import aio, documents, selectors
from .domain.errors import MarketError
from .domain.timeframes import TIMEFRAMES, align
from .exchanges import ExchangeError, get_exchange
from .exchanges.errors import NOT_LISTED
from .models import Candle, OnDemandMarket, TrackedMarket
from .ticks import StoredTick

# A live subscriber's untracked market is polled this long after its last touch (each connection
# touches its markets every minute).
ON_DEMAND_SECONDS = 120


class TooManyUntracked(MarketError):
    """The server already stores data for UNTRACKED_MARKETS_MAX untracked markets: 503 (the
    capacity is the server's, not this client's rate), until one of them is forgotten."""

    status = 503


class TooManyUntrackedForClient(TooManyUntracked):
    """This client first asked for UNTRACKED_MARKETS_PER_CLIENT of the untracked markets stored:
    429 (its share, so that one client cannot take the room of all), until one is forgotten."""

    status = 429


def ensure_listed(source: str, symbol: str) -> None:
    """404 for a symbol the exchange does not list (tracked symbols are known)."""
    if selectors.is_tracked(source, symbol):
        return
    try:
        aio.run(get_exchange(source).market_id(symbol))
    except ExchangeError as exc:
        if exc.status == NOT_LISTED:
            raise ExchangeError(f"Symbol not found: {symbol}", NOT_LISTED) from None
        raise


def tracked_set_changed() -> None:
    """The admin added, removed, enabled or disabled tracked markets: every process and the
    stored /prices and /coins documents follow within two seconds."""
    selectors.forget_poll_schedule()
    documents.forget_tracked()


def keep_polled(source: str, symbol: str) -> bool:
    """Poll a market while a live subscriber watches it: tracked ones are polled anyway (True);
    an untracked one is polled on demand for the next two minutes (False)."""
    if selectors.is_tracked(source, symbol):
        return True
    admit_untracked(source, symbol, poll_seconds=ON_DEMAND_SECONDS)
    return False


def watch(source: str, symbol: str) -> tuple[bool, StoredTick | None]:
    """What a new live subscriber needs, in one call: the symbol checked (404 if not listed), the
    market kept polled (True when tracked), and its newest stored price."""
    ensure_listed(source, symbol)
    return keep_polled(source, symbol), selectors.latest_tick(source, symbol)


def admit_untracked(source: str, symbol: str, poll_seconds: int = 0) -> None:
    """Before the server stores anything of an untracked market (a price, candles, polls for a
    live subscriber): mark it used, polled for `poll_seconds` more; a market not admitted yet is
    admitted while fewer than UNTRACKED_MARKETS_MAX are (else TooManyUntracked) and, for a client's
    request, while fewer than UNTRACKED_MARKETS_PER_CLIENT were first asked for by that client
    (core.clientip.asking; else TooManyUntrackedForClient). Without these a stranger could make the
    server fetch and keep every market an exchange lists, or take all the room there is.

    Two requests admitting two new markets at once may both pass a count: the bound is exceeded by
    at most the requests in flight, which is not worth a lock on every untracked request."""
    now = timezone.now()
    changes = {"used_at": now}
    if poll_seconds:
        changes["expires_at"] = now + timedelta(seconds=poll_seconds)
    if OnDemandMarket.objects.filter(source=source, symbol=symbol).update(**changes):
        return
    limit, share, client = settings.UNTRACKED_MARKETS_MAX, settings.UNTRACKED_MARKETS_PER_CLIENT, asking()
    if OnDemandMarket.objects.count() >= limit:
        raise TooManyUntracked(
            f"Too many untracked markets: this server keeps data for at most {limit} markets it does not track "
            f"(UNTRACKED_MARKETS_MAX); ask for {symbol} on {source} again later, or for a tracked symbol"
        )
    if client and share and OnDemandMarket.objects.filter(admitted_for=client).count() >= share:
        raise TooManyUntrackedForClient(
            f"Too many untracked markets for this client: at most {share} of the markets this server keeps "
            f"without tracking them are first asked for by one client (UNTRACKED_MARKETS_PER_CLIENT); ask for "
            f"{symbol} on {source} again once one of yours is forgotten, or for a tracked symbol"
        )
    OnDemandMarket.objects.update_or_create(
        source=source, symbol=symbol,
        defaults={"expires_at": changes.get("expires_at", now), "used_at": now, "admitted_for": client or ""},
    )


def _any_market(markets: Iterable[tuple[str, str]]) -> Q:
    """Rows of any of these (source, symbol) markets (none when empty)."""
    return reduce(operator.or_, (Q(source=source, symbol=symbol) for source, symbol in markets), Q(pk__in=[]))


def untracked_candle_floor(timeframe: str, now_ms: int) -> int:
    """The oldest open time of an untracked market's candles the server stores: its newest
    UNTRACKED_CANDLES per timeframe."""
    return align(now_ms, timeframe) - (settings.UNTRACKED_CANDLES - 1) * TIMEFRAMES[timeframe]


def prune_untracked(now: datetime | None = None) -> int:
    """Forget the untracked markets nobody used for UNTRACKED_RETENTION_HOURS, with their candles,
    and cut the others' candles back to their stored depth (the newest UNTRACKED_CANDLES per
    timeframe); tracked markets' candles are never touched. Returns the candles deleted."""
    now = now or timezone.now()
    tracked = set(TrackedMarket.objects.values_list("source", "symbol"))
    cutoff = now - timedelta(hours=settings.UNTRACKED_RETENTION_HOURS)
    # A market the operator has tracked since needs no place among the untracked ones.
    OnDemandMarket.objects.filter(Q(used_at__lt=cutoff) | _any_market(tracked)).delete()
    kept = tracked | set(OnDemandMarket.objects.values_list("source", "symbol"))
    deleted, _ = Candle.objects.exclude(_any_market(kept)).delete()
    now_ms = int(now.timestamp() * 1000)
    for timeframe in TIMEFRAMES:
        too_old = Candle.objects.filter(timeframe=timeframe, open_time__lt=untracked_candle_floor(timeframe, now_ms))
        deleted += too_old.exclude(_any_market(tracked)).delete()[0]
    return deleted
