"""Market depth: order books per exchange and consolidated across them (book.py, pure), fetched
from each exchange's public REST depth endpoint (market.exchanges), cached a moment, served over
REST (views.py) and, while someone watches, over the WebSocket (services.py, market.tasks)."""
