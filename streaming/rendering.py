"""A group event's JSON, rendered by its first local subscriber and shared by the others.

The event is the same object for every local subscriber (serving.channel_layer hands it to each one's
deliver()): the rendering is kept on it, and each connection only adds its own `seq`.
"""

import json

from .protocol import book_message

RENDERED = "__rendered__"  # an event's JSON, rendered by its first local subscriber
RENDERED_BY_DEPTH = "__rendered_by_depth__"  # a book event's JSON per depth asked for


def rendered(event: dict) -> str:
    """An event's JSON, rendered by its first local subscriber and shared by the others."""
    text = event.get(RENDERED)
    if text is None:
        text = event[RENDERED] = json.dumps({"type": event["type"].replace(".", "_"), **event["data"]})
    return text


def rendered_book(event: dict, depth: int) -> str:
    """A book event's JSON cut to a depth, rendered once per depth asked for."""
    by_depth = event.setdefault(RENDERED_BY_DEPTH, {})
    if depth not in by_depth:
        by_depth[depth] = json.dumps(book_message(event["data"], depth))
    return by_depth[depth]
