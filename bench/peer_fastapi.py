"""The peer for the HTTP benchmark: the kind of server cryptosite replaces, a FastAPI app under
uvicorn (httptools, uvloop) answering the same JSON from Python dicts in memory, and the
candles floor: the same 1,000 candles read with one indexed SELECT and rendered with orjson.
A baseline, not part of the product. Started by bench/bench_api.py:

    uvicorn bench.peer_fastapi:app --workers N   (PEER_DATABASE: the benchmark's SQLite file)
"""

import os
import sqlite3

import orjson
from fastapi import FastAPI, Query
from fastapi.responses import Response

app = FastAPI()

PRICE = {"symbol": "BTC", "price": 50000.5, "timestamp": 1633659200000, "source": "binance", "stale": False}
PRICES = {
    source: {
        symbol: {"price": 50000.5, "symbol": symbol, "source": source, "timestamp": "2024-01-15T10:30:00.123456+00:00",
                 "change_pct": 2.45}
        for symbol in ("BTC", "ETH", "SOL", "ADA")
    }
    for source in ("Binance", "Coinbase")
}
COINS = {"Binance": ["ADA", "BTC", "ETH", "SOL"], "Coinbase": ["ADA", "BTC", "ETH", "SOL"]}

_db = None
CANDLES_SQL = (
    "SELECT open_time, open, high, low, close, volume, closed FROM market_candle "
    "WHERE source = ? AND symbol = ? AND timeframe = ? ORDER BY open_time DESC LIMIT ?"
)


def _connection() -> sqlite3.Connection:
    global _db
    if _db is None:
        _db = sqlite3.connect(os.environ["PEER_DATABASE"])
    return _db


@app.get("/api/market/price")
async def price(symbol: str = Query(...), source: str = "binance"):
    return PRICE


@app.get("/prices")
async def prices():
    return PRICES


@app.get("/coins")
async def coins():
    return COINS


@app.get("/floor/ohlc")
async def floor_ohlc(symbol: str = "ETH", timeframe: str = "1h", limit: int = 1000):
    """The floor for candles: one indexed SELECT, rows rendered with orjson (on the event loop: no
    thread hop, the cheapest way to run it)."""
    rows = _connection().execute(CANDLES_SQL, ("binance", symbol, timeframe, limit)).fetchall()
    rows.reverse()
    body = {"symbol": symbol, "timeframe": timeframe, "source": "binance", "ohlc": [
        {"timestamp": t, "open": o, "high": h, "low": lo, "close": c, "volume": v, "closed": bool(x)}
        for t, o, h, lo, c, v, x in rows
    ]}
    return Response(orjson.dumps(body), media_type="application/json")
