"""One contract, run against every exchange feed with messages recorded from each exchange's
documented examples (tests/exchanges/feed_payloads): what each message becomes, and the requests
the feed sends."""

import json
from decimal import Decimal as D
from pathlib import Path

import pytest

from market.domain.candles import Candle
from market.domain.feeds import Ack, Alive, CandleUpdate, Rejected, Trade
from market.feeds import BinanceFeed, CoinbaseFeed, KrakenFeed

PAYLOADS = Path(__file__).parent / "feed_payloads"
NOW = 1_800_000_000_000


class FeedContract:
    name: str
    feed: type
    market: str  # the feed's id for BTC
    rest_id: str  # the REST listing's id for BTC
    expected_trades: list[Trade]
    expected_candle: CandleUpdate | None

    @pytest.fixture
    def recorded(self) -> dict:
        return json.loads((PAYLOADS / f"{self.name}.json").read_text())

    def parse(self, message, now=NOW):
        feed = self.feed("wss://example.invalid")
        # Through the feed's own decoding: numbers exactly as printed.
        return feed.parse(feed.decode(json.dumps(message)), {self.market: "BTC"}, now)

    def test_the_market_id_is_the_feeds_name_for_the_market(self):
        assert self.feed("wss://x").market_id("BTC", self.rest_id) == self.market

    def test_a_trade_becomes_the_exchanges_price_time_and_trade_id(self, recorded):
        assert self.parse(recorded["trade"]) == self.expected_trades

    def test_prices_keep_every_digit_the_exchange_printed(self, recorded):
        trade = self.parse(recorded["trade"])[0]
        assert isinstance(trade.price, D) and trade.price == self.expected_trades[0].price

    def test_a_candle_becomes_the_exchanges_own_candle(self, recorded):
        if self.expected_candle is None:
            assert not self.feed.candle_timeframes
            return
        assert self.expected_candle.timeframe in self.feed.candle_timeframes
        assert self.parse(recorded["candle"]) == [self.expected_candle]

    def test_a_subscription_answer_is_an_acknowledgement(self, recorded):
        assert [type(e) for e in self.parse(recorded["subscribed"])] == [Ack]

    def test_an_error_names_the_exchanges_reason(self, recorded):
        events = self.parse(recorded["error"])
        assert len(events) == 1 and isinstance(events[0], Rejected)
        reason = recorded["error"].get("reason") or recorded["error"].get("msg") or recorded["error"]["error"]
        assert reason in events[0].detail

    def test_a_heartbeat_is_a_sign_of_life_with_nothing_to_store(self, recorded):
        key = "heartbeat" if "heartbeat" in recorded else "subscribed"
        assert all(isinstance(e, (Alive, Ack)) for e in self.parse(recorded[key]))

    def test_a_market_this_connection_does_not_follow_is_ignored(self, recorded):
        assert self.parse(recorded["other_market"]) == []

    @pytest.mark.parametrize("broken", ['{"stream": "x"', "[1, 2", "null", "42", '"text"', "{}", '{"data": 1, "stream": 2}'])
    def test_a_message_of_the_wrong_shape_is_a_reading_error_or_nothing_to_store(self, broken):
        feed = self.feed("wss://x")
        try:
            events = feed.parse(feed.decode(broken), {self.market: "BTC"}, NOW)
        except (ValueError, KeyError, TypeError, AttributeError):
            return  # the ingest counts it and reads on
        assert all(isinstance(e, (Alive, Ack)) for e in events)  # never a price or a candle

    def test_subscribe_and_unsubscribe_name_every_market(self):
        feed = self.feed("wss://x")
        markets = [self.market, "OTHER"]
        for build in (feed.subscribe, feed.unsubscribe):
            text = json.dumps(build(markets, 1)).lower()
            assert self.market.lower() in text and "other" in text
        assert len(json.dumps(feed.subscribe([self.market], 1))) > 0

    def test_a_connection_carries_no_more_streams_than_the_exchange_allows(self):
        feed = self.feed("wss://x")
        per_connection = feed.max_streams // feed.streams_per_market()
        assert per_connection >= 1 and per_connection * feed.streams_per_market() <= feed.max_streams


class TestBinanceFeed(FeedContract):
    name, feed, market, rest_id = "binance", BinanceFeed, "BTCUSDT", "BTCUSDT"
    expected_trades = [Trade("BTC", D("16542.12000000"), 1672515782135, 12345)]
    expected_candle = CandleUpdate("BTC", "1m", Candle(1672515780000, D("16540.00000000"), D("16545.50000000"),
                                                       D("16538.01000000"), D("16542.12000000"), D("1000.5"), False))

    def test_a_closed_kline_is_marked_closed(self, recorded):
        (update,) = self.parse(recorded["closed_candle"])
        assert update.candle.closed and update.candle.volume == D("1200.5")

    def test_streams_are_lowercase_aggregate_trades_and_klines_of_every_timeframe(self):
        (request,) = BinanceFeed("wss://x").subscribe(["BTCUSDT"], 7)
        assert request["method"] == "SUBSCRIBE" and request["id"] == 7
        assert request["params"][0] == "btcusdt@aggTrade"
        assert {p.split("_")[1] for p in request["params"][1:]} == {"1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w"}

    def test_many_markets_are_split_into_requests_of_bounded_size(self):
        requests = BinanceFeed("wss://x").subscribe([f"C{i}USDT" for i in range(100)], 1)
        assert len(requests) > 1 and all(len(r["params"]) <= 200 for r in requests)
        assert len({r["id"] for r in requests}) == len(requests)

    def test_a_listing_answer_to_the_probe_is_an_acknowledgement(self, recorded):
        assert self.parse(recorded["listed"]) == [Ack("3")]
        assert BinanceFeed("wss://x").probe(3) == {"method": "LIST_SUBSCRIPTIONS", "id": 3}

    def test_an_error_in_the_nested_form_is_read_too(self):
        assert isinstance(self.parse({"error": {"code": 2, "msg": "Invalid request"}, "id": 1})[0], Rejected)


class TestCoinbaseFeed(FeedContract):
    name, feed, market, rest_id = "coinbase", CoinbaseFeed, "BTC-USD", "BTC-USD"
    expected_trades = [Trade("BTC", D("400.23"), 1415348367028, 10)]
    expected_candle = None

    def test_the_last_match_sent_after_subscribing_is_a_trade_too(self, recorded):
        assert self.parse(recorded["last_match"]) == [Trade("BTC", D("400.20"), 1415348366000, 9)]

    def test_it_subscribes_to_matches_and_heartbeats(self):
        (request,) = CoinbaseFeed("wss://x").subscribe(["BTC-USD"], 1)
        assert request == {"type": "subscribe", "product_ids": ["BTC-USD"], "channels": ["matches", "heartbeat"]}


class TestKrakenFeed(FeedContract):
    name, feed, market, rest_id = "kraken", KrakenFeed, "BTC/USD", "XXBTZUSD"
    expected_trades = [Trade("BTC", D("26412.3"), 1695628177708, 74122561), Trade("BTC", D("26412.4"), 1695628177812, 74122562)]
    expected_candle = CandleUpdate("BTC", "1m", Candle(1696436760000, D("27509.9"), D("27512.3"), D("27509.8"), D("27512.3"),
                                                       D("0.10912841"), True))

    def test_an_open_candle_is_open_until_its_period_ends(self, recorded):
        (update,) = self.parse(recorded["candle"], now=1696436760000 + 30_000)
        assert not update.candle.closed

    def test_a_pong_is_an_acknowledgement(self, recorded):
        assert self.parse(recorded["pong"]) == [Ack("pong")]
        assert KrakenFeed("wss://x").probe(101) == {"method": "ping", "req_id": 101}

    def test_it_subscribes_to_trades_and_the_candles_of_each_interval_but_the_week(self):
        requests = KrakenFeed("wss://x").subscribe(["BTC/USD"], 10)
        channels = [(r["params"]["channel"], r["params"].get("interval")) for r in requests]
        assert channels[0] == ("trade", None) and requests[0]["params"]["snapshot"] is False
        assert [i for _, i in channels[1:]] == [1, 5, 15, 30, 60, 240, 1440]
        assert all(r["params"]["snapshot"] for r in requests[1:])
        assert all("snapshot" not in r["params"] for r in KrakenFeed("wss://x").unsubscribe(["BTC/USD"], 1))
