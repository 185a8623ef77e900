"""Price alerts' writes: set and delete them (API keys' own), evaluate stored prices against them
at ingest, and deliver what fires to its webhook.

Evaluation (`evaluate`) runs in whichever process stored the prices (the poll task, the ingest
process), after the commit. Each process keeps an index per market (alerts.index.MarketIndex)
while that market's alerts version in Redis is the one it was built under; every create, delete,
fire and re-arm changes the version after its commit, so every process rebuilds that market's
index (one indexed query) at its next price of it. A fire is one conditional UPDATE ... WHERE
armed RETURNING: of two processes checking the same price, only the one whose UPDATE changed the
row delivers it (exactly once). The same UPDATE refuses the alerts of a revoked or expired API key
(however stale an index is) and those within their repeat cooldown.

Deliveries run on a queue and worker of their own (CELERY_TASK_ROUTES), each try under a total
deadline (alerts.sender), at most ALERT_WEBHOOKS_PER_KEY of one key's at a time, and only while the
key is still good (checked again right before each try).
"""

import json
import logging
import random
import secrets
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

import httpx
from celery import current_app
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from apikeys.models import ApiKey
from core import keys
from core.cache import redis_client
from market import selectors as market_selectors
from market.domain.alerts import AlertSpec
from market.domain.errors import InvalidInput
from market.markets import ensure_listed
from market.ticks import StoredTick

from . import selectors, sender, webhooks
from .index import MarketIndex, Row, Windows
from .models import Delivery, DeliveryAttempt, PriceAlert

log = logging.getLogger(__name__)


class TooManyAlerts(InvalidInput):
    status = 409


class Refused(InvalidInput):
    """A delivery that will never be sent (its alert deleted, its key revoked or expired): given up."""


def good_keys(now: datetime) -> Q:
    """The API keys whose alerts are armed: neither revoked nor expired (revoked through the admin
    or `manage.py apikey revoke`, both of which set the flag)."""
    return Q(revoked=False) & (Q(expiry_date__isnull=True) | Q(expiry_date__gt=now))


# --- set and delete ---------------------------------------------------------------------------
def create_alert(key: ApiKey, spec: AlertSpec, webhook_url: str) -> tuple[PriceAlert, str]:
    """A new alert of this key on a tracked market (404: not listed; 400: listed, not tracked);
    returns it and its signing secret (shown to the client this once)."""
    webhooks.check_target(webhook_url, settings.ALERT_WEBHOOK_ALLOW_PRIVATE)
    ensure_listed(spec.source, spec.symbol)
    if not market_selectors.is_tracked(spec.source, spec.symbol):
        raise InvalidInput(f"{spec.symbol} on {spec.source} is not tracked: alerts are checked against the stored prices "
                           "of tracked markets")
    latest = market_selectors.latest_tick(spec.source, spec.symbol)
    secret = "whsec_" + secrets.token_hex(24)
    with transaction.atomic():
        ApiKey.objects.select_for_update().filter(pk=key.pk).first()  # one create at a time per key (the bound)
        if PriceAlert.objects.filter(key=key).count() >= settings.ALERTS_PER_KEY:
            raise TooManyAlerts(f"Too many alerts: this key has {settings.ALERTS_PER_KEY}, the most allowed "
                                "(ALERTS_PER_KEY); delete some first")
        alert = PriceAlert.objects.create(
            key=key, source=spec.source, symbol=spec.symbol, condition=spec.condition, threshold=spec.threshold,
            window=spec.window or "", repeat=spec.repeat, webhook_url=webhook_url, secret=secret,
            since_ms=latest.timestamp_ms if latest else -1,
        )
    changed(spec.source, spec.symbol)
    return alert, secret


def delete_alert(key: ApiKey, alert_id: int) -> None:
    """Delete one of this key's alerts (another key's is not found), with its deliveries' log."""
    alert = selectors.alert_of(key, alert_id)
    alert.delete()
    changed(alert.source, alert.symbol)


# --- the alerts version of each market (Redis) ------------------------------------------------
def changed(source: str, symbol: str) -> int | None:
    """Tell every process that this market's alerts changed (after the commit). None: Redis away
    (a process then rebuilds its index at every price until it is back)."""
    return changed_many([(source, symbol)])[0]


def changed_many(markets: list[tuple[str, str]]) -> list[int | None]:
    """`changed` for several markets in one round trip."""
    try:
        pipe = redis_client().pipeline(transaction=False)
        for market in markets:
            pipe.incr(keys.alerts_version_key(*market))
        return [int(v) for v in pipe.execute()]
    except Exception as exc:
        log.warning("alerts versions of %d markets not changed: %s", len(markets), exc)
        return [None] * len(markets)


def _versions(markets: list[tuple[str, str]]) -> list[object]:
    try:
        found = redis_client().mget([keys.alerts_version_key(*m) for m in markets])
        return [b"0" if v is None else v for v in found]  # never changed (or Redis lost its data: see MAX_INDEX_AGE)
    except Exception as exc:
        log.warning("alerts versions unreadable (%s): indexes rebuilt from the database", exc)
        return [None] * len(markets)


# --- the per-process index ---------------------------------------------------------------------
# An index is rebuilt at least this often whatever the version says: a version Redis lost (a restart
# without persistence) and then counted up to the same number again is not trusted for longer.
MAX_INDEX_AGE = 60.0
_indexes: dict[tuple[str, str], MarketIndex] = {}
_windows: dict[tuple[str, str], Windows] = {}


def forget_indexes() -> None:
    _indexes.clear()
    _windows.clear()


def load_index(source: str, symbol: str, version: object) -> MarketIndex:
    """One market's armed alerts and repeat alerts waiting to re-arm (fired one-shots are not read)."""
    good = PriceAlert.objects.filter(key__in=ApiKey.objects.filter(good_keys(timezone.now())))
    rows = (
        good.filter(source=source, symbol=symbol).exclude(armed=False, repeat=False)
        .values_list("id", "condition", "threshold", "window", "repeat", "armed", "since_ms")
    )
    return MarketIndex((Row(*r) for r in rows), version)


def _index_of(market: tuple[str, str], version: object) -> MarketIndex:
    index = _indexes.get(market)
    if index is None or version is None or index.version != version or time.monotonic() - index.built > MAX_INDEX_AGE:
        index = _indexes[market] = load_index(*market, version)
        index.built = time.monotonic()
    return index


def _windows_of(market: tuple[str, str]) -> Windows:
    windows = _windows.get(market)
    if windows is None:
        windows = _windows[market] = Windows(lambda since: market_selectors.price_points(*market, since))
    return windows


# --- evaluation ---------------------------------------------------------------------------------
def evaluate(ticks: Iterable[StoredTick]) -> int:
    """Check stored prices against the alerts of their markets (only those); fire the ones met,
    exactly once, and queue their webhooks. Returns how many fired. Called after the commit.

    Every change of one call is written in one transaction, in rounds that hold at most one price
    per market (the usual batch is one round): an alert fired by one price and armed again by a
    later one of the same batch is changed in that order."""
    ticks = sorted(ticks, key=lambda t: t.timestamp_ms)
    if not ticks:
        return 0
    markets = list(dict.fromkeys((t.source, t.symbol) for t in ticks))
    versions = dict(zip(markets, _versions(markets), strict=True))
    rounds: list[list[tuple]] = []
    seen: dict[tuple[str, str], int] = {}
    for tick in ticks:
        market = (tick.source, tick.symbol)
        index = _index_of(market, versions[market])
        if not index.rows:
            continue
        price = float(tick.price)
        windows = _windows_of(market)
        outcome = index.check(tick.timestamp_ms, price,
                              lambda span, w=windows, ts=tick.timestamp_ms, p=price: w.reference(span, ts, p))
        if not outcome.fire and not outcome.rearm:
            continue
        # Applied to this process's index at once (the next price of the batch sees it); the UPDATEs
        # below decide what really changed, and the version tells whether the index can stay.
        for alert_id in outcome.fire:
            index.fired(alert_id, tick.timestamp_ms + _cooldown_ms())
        for alert_id in outcome.rearm:
            index.rearmed(alert_id)
        n = seen[market] = seen.get(market, -1) + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append((tick, price, outcome))
    if not rounds:
        return 0
    try:
        fired = _apply(rounds)
    except Exception:
        for market in seen:  # their indexes took changes the database did not
            _indexes.pop(market, None)
        raise
    for market, version in zip(seen, changed_many(list(seen)), strict=True):
        index = _indexes.get(market)
        if index is not None and version is not None and versions[market] is not None and version == int(versions[market]) + 1:
            index.version = str(version).encode()  # nobody else changed this market meanwhile
        else:
            _indexes.pop(market, None)  # another process did too: read again at the next price
    return fired


# What a fire's UPDATE returns: the fields of its delivery, without reading the rows again.
RETURNED = ("id", "condition", "threshold", "window", "symbol", "source", "repeat", "webhook_url")


def _update_returning(ids: list[int], assignments: str, params: list, guard: str, guard_params: list) -> list[dict]:
    """UPDATE the alerts among `ids` that `guard` still holds for, in one statement, and return the
    rows it changed: concurrent callers are serialised on the rows, so each row changes once."""
    if not ids:
        return []
    quote = connection.ops.quote_name
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {quote(PriceAlert._meta.db_table)} SET {assignments} WHERE id IN ({marks}) AND {guard} "
                       f"RETURNING {', '.join(quote(c) for c in RETURNED)}", [*params, *ids, *guard_params])
        return [dict(zip(RETURNED, row, strict=True)) for row in cursor.fetchall()]


def _cooldown_ms() -> int:
    return int(settings.ALERT_REPEAT_COOLDOWN_SECONDS * 1000)


def _fire_guard(ts: int, now: datetime) -> tuple[str, list]:
    """What a fire by the price at `ts` requires of a row, whatever this process's index believes:
    armed, newer than its since_ms (set before it was created, or within its cooldown), and its key
    neither revoked nor expired."""
    quote, key_model = connection.ops.quote_name, ApiKey._meta
    sql = (f"armed = %s AND since_ms < %s AND key_id IN (SELECT {quote(key_model.pk.column)} FROM {quote(key_model.db_table)} "
           f"WHERE revoked = %s AND (expiry_date IS NULL OR expiry_date > %s))")
    return sql, [True, ts, False, connection.ops.adapt_datetimefield_value(now)]


def _apply(rounds: list[list[tuple]]) -> int:
    """Fire and re-arm, in one transaction; a delivery for each fire this call's UPDATE made."""
    now = timezone.now()
    fired_count = 0
    with transaction.atomic():
        deliveries = []
        for plans in rounds:
            for tick, price, outcome in plans:  # one UPDATE per price: its time sets the cooldown
                fired = _update_returning(outcome.fire, "armed = %s, fired_count = fired_count + 1, last_fired_at = %s, since_ms = %s",
                                          [False, now, tick.timestamp_ms + _cooldown_ms()], *_fire_guard(tick.timestamp_ms, now))
                deliveries += [_delivery(alert, tick, price, now, outcome.fields.get(alert["id"], {})) for alert in fired]
                fired_count += len(fired)
            rearm = [alert_id for _, _, outcome in plans for alert_id in outcome.rearm]
            _update_returning(rearm, "armed = %s", [True], 'armed = %s AND "repeat" = %s', [False, True])
        Delivery.objects.bulk_create(deliveries)
        ids = [str(d.id) for d in deliveries]
        transaction.on_commit(lambda: _enqueue(ids))
    return fired_count


def _delivery(alert: dict, tick: StoredTick, price: float, now, extra: dict) -> Delivery:
    """The webhook of one fire: its body is fixed here (and signed as is at every try)."""
    delivery_id = uuid.uuid4()
    payload = {
        "delivery_id": str(delivery_id), "alert_id": alert["id"], "event": "alert.fired",
        "condition": alert["condition"], "threshold": alert["threshold"], "window": alert["window"] or None,
        "symbol": alert["symbol"], "source": alert["source"], "price": price, "timestamp": tick.timestamp_ms,
        "fired_at": int(now.timestamp() * 1000), "repeat": bool(alert["repeat"]), **extra,
    }
    return Delivery(id=delivery_id, alert_id=alert["id"], url=alert["webhook_url"],
                    body=json.dumps(payload, separators=(",", ":")))


# The delivery task, by name: alerts.tasks imports this module, never the other way round. The
# signature resolves to the registered task, so its routing (its own queue) and eager mode apply.
DELIVER_TASK = "alerts.tasks.deliver_webhook"


def _enqueue(ids: list[str]) -> None:
    for delivery_id in ids:
        try:
            current_app.signature(DELIVER_TASK, args=(delivery_id,)).delay()
        except Exception as exc:  # the broker away: the delivery stays pending in the log
            log.error("webhook delivery %s not queued: %s", delivery_id, exc)


def evaluate_safely(ticks: list[StoredTick]) -> None:
    """What the ingest paths call: an evaluation failure is logged, never lets the stored prices
    or their publishing down."""
    if not ticks:
        return
    try:
        evaluate(ticks)
    except Exception:
        log.exception("price alerts not evaluated for %d prices", len(ticks))


# --- delivery ---------------------------------------------------------------------------------
def _schedule() -> list[float]:
    return webhooks.retry_schedule(settings.ALERT_RETRY_BASE_SECONDS, settings.ALERT_RETRY_MAX_SECONDS,
                                   settings.ALERT_RETRY_FOR_SECONDS)


# A delivery whose key has ALERT_WEBHOOKS_PER_KEY tries in flight is looked at again after about this long.
DEFER_SECONDS = 2.0
# A try's slot is held at most its deadline and this much more (a worker that died holding it).
SLOT_MARGIN_SECONDS = 30.0


def _claim(delivery: Delivery) -> bool | None:
    """Right before a try, with its key's row locked (one claim at a time per key): True, a slot of
    its key taken for this try; False, its key has ALERT_WEBHOOKS_PER_KEY tries in flight (wait);
    None, another run of this delivery is sending it or has made this try. Raises Refused for one
    never to send."""
    if delivery.alert is None:
        raise Refused("The alert was deleted: its secret is gone, nothing to sign with")
    now = timezone.now()
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(good_keys(now), pk=delivery.alert.key_id).first()
        if key is None:
            raise Refused("The alert's API key was revoked or expired: its alerts are disarmed")
        sending = Delivery.objects.filter(alert__key_id=key.pk, sending_until__gt=now)
        if sending.filter(pk=delivery.pk).exists():
            return None
        if sending.count() >= settings.ALERT_WEBHOOKS_PER_KEY:
            return False
        lease = timedelta(seconds=settings.ALERT_WEBHOOK_TIMEOUT + SLOT_MARGIN_SECONDS)
        # Only if this try is still the next one (another run may have made it meanwhile).
        this_try = Delivery.objects.filter(pk=delivery.pk, state=Delivery.PENDING, attempts=delivery.attempts)
        return True if this_try.update(sending_until=now + lease) else None


def attempt_delivery(delivery_id: str) -> float | None:
    """One try of a pending delivery, logged (an attempt row whatever happens); returns the wait
    before the next try, or None when it is finished (delivered, given up, or not pending).
    A delivery whose key has its most tries in flight is not tried: it waits (no try logged)."""
    delivery = Delivery.objects.select_related("alert").filter(pk=delivery_id, state=Delivery.PENDING).first()
    if delivery is None:
        return None
    number = delivery.attempts + 1
    at, started = timezone.now(), time.perf_counter()
    status, error, excerpt, refused = None, "", "", False
    try:
        claimed = _claim(delivery)
        if claimed is None:
            return None  # a duplicate run (the sweep's, say): the run sending it goes on
        if not claimed:
            wait = webhooks.jittered(DEFER_SECONDS, random.random())
            Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() + timedelta(seconds=wait))
            return wait
        # Checked again (DNS may have changed), and the connection pinned to the address checked.
        target = webhooks.pin_target(delivery.url, settings.ALERT_WEBHOOK_ALLOW_PRIVATE)
        body = delivery.body.encode()
        headers = {"Content-Type": "application/json", "User-Agent": "cryptosite-webhooks/1",
                   **webhooks.signed_headers(delivery.alert.secret, str(delivery.id), int(time.time()), body), **target.headers}
        answer = sender.post(target.url, body, headers, target.extensions, settings.ALERT_WEBHOOK_TIMEOUT)
        status, excerpt = answer.status, answer.excerpt
    except Refused as exc:
        error, refused = str(exc), True
    except InvalidInput as exc:
        error = str(exc)
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except Exception as exc:  # anything else (the deadline too) is logged as this try's error, and tried again
        error = f"{type(exc).__name__}: {exc}"
    duration = int((time.perf_counter() - started) * 1000)
    ok = status is not None and 200 <= status < 300
    schedule = _schedule()
    finished = ok or number > len(schedule) or refused
    wait = None if finished else webhooks.jittered(schedule[number - 1], random.random())
    try:
        with transaction.atomic():
            DeliveryAttempt.objects.create(delivery=delivery, number=number, at=at, status_code=status,
                                           error=error[:300], response=excerpt[:300], duration_ms=duration)
            Delivery.objects.filter(pk=delivery.pk).update(
                attempts=number, state=(Delivery.DELIVERED if ok else Delivery.FAILED) if finished else Delivery.PENDING,
                finished_at=timezone.now() if finished else None, sending_until=None,
                next_attempt_at=timezone.now() + timedelta(seconds=wait or 0))
    except IntegrityError:  # this try's number is logged already: a duplicate run of the task
        return None
    if not ok:
        log.info("webhook %s try %d: %s", delivery.id, number, status or error)
    return wait


# A pending delivery this far past its next try has lost its task: queued again.
OVERDUE_SECONDS = 120


def requeue_overdue(now=None) -> int:
    """Queue again the pending deliveries whose try is overdue (a broker that was away when they
    were queued, a worker that died holding them). Two runs of one try log it once (its number is
    unique); the receiver may see it twice, with the same X-Cryptosite-Delivery id."""
    now = now or timezone.now()
    overdue = Delivery.objects.filter(state=Delivery.PENDING, next_attempt_at__lt=now - timedelta(seconds=OVERDUE_SECONDS))
    ids = [str(i) for i in overdue.values_list("id", flat=True)[:1000]]
    if ids:
        # Not again before they could have run: the next sweep leaves them to this queueing.
        Delivery.objects.filter(pk__in=ids).update(next_attempt_at=now)
        log.warning("%d webhook deliveries were overdue; queued again", len(ids))
        _enqueue(ids)
    return len(ids)


def prune_deliveries(now: datetime | None = None) -> int:
    """Delete finished deliveries (delivered or given up), with their tries, older than
    ALERT_DELIVERY_LOG_DAYS; pending ones are kept whatever their age. Returns how many."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.ALERT_DELIVERY_LOG_DAYS)
    old = Delivery.objects.exclude(state=Delivery.PENDING).filter(finished_at__lt=cutoff)
    pruned = 0
    while ids := list(old.values_list("pk", flat=True)[:1000]):  # in batches: a short lock each
        Delivery.objects.filter(pk__in=ids).delete()
        pruned += len(ids)
    return pruned
