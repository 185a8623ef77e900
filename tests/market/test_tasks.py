"""The market tasks' lock, on the real Redis."""

import time

from market.tasks import _Lock


def test_a_run_that_outlived_its_lock_does_not_release_the_next_holders():
    first = _Lock("poll:binance", 1)
    assert first.__enter__()
    assert not _Lock("poll:binance", 1).__enter__()  # held
    deadline = time.monotonic() + 5
    second = _Lock("poll:binance", 60)
    while not second.__enter__():  # the first run's TTL runs out
        assert time.monotonic() < deadline
        time.sleep(0.1)
    first.__exit__(None, None, None)  # the first run ends late: it must not release the second's lock
    assert not _Lock("poll:binance", 1).__enter__()
    second.__exit__(None, None, None)
    assert _Lock("poll:binance", 1).__enter__()
