"""The market tasks' lock, on the real Redis."""

import time

from market.locks import Lease as _Lock


def test_a_held_lock_is_renewed_past_its_lease():
    first = _Lock("poll:binance", 1)
    assert first.__enter__()
    try:
        time.sleep(2.5)  # more than two leases: still held, because its run is alive and renews it
        other = _Lock("poll:binance", 1)
        assert not other.__enter__()
        other.__exit__(None, None, None)
    finally:
        first.__exit__(None, None, None)
    again = _Lock("poll:binance", 1)
    assert again.__enter__()
    again.__exit__(None, None, None)


def test_a_run_that_lost_its_lock_does_not_release_the_next_holders():
    first = _Lock("poll:binance", 1)
    assert first.__enter__()
    first.done.set()  # its renewals stop, as when its worker is frozen or killed
    deadline = time.monotonic() + 5
    second = _Lock("poll:binance", 60)
    while not second.__enter__():  # the first run's lease lapses
        assert time.monotonic() < deadline
        time.sleep(0.1)
    try:
        first.__exit__(None, None, None)  # the first run ends late: it must not release the second's lock
        third = _Lock("poll:binance", 1)
        assert not third.__enter__()
        third.__exit__(None, None, None)
    finally:
        second.__exit__(None, None, None)
    fourth = _Lock("poll:binance", 1)
    assert fourth.__enter__()
    fourth.__exit__(None, None, None)
