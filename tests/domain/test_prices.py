from decimal import Decimal as D

from market.domain.prices import change_pct, composite_price


def test_change_pct_is_relative_to_the_previous_price():
    assert change_pct(D("100"), D("102.45")) == D("2.4500")
    assert change_pct(D("200"), D("199")) == D("-0.5000")
    assert change_pct(None, D("5")) is None


def test_composite_is_the_median_after_rejecting_outliers():
    price, used = composite_price({"binance": D("100"), "coinbase": D("101"), "kraken": D("150")})
    assert used == ["binance", "coinbase"]
    assert price == D("100.5")


def test_composite_of_agreeing_sources_uses_all_of_them():
    price, used = composite_price({"binance": D("100"), "coinbase": D("100.2"), "kraken": D("99.9")})
    assert used == ["binance", "coinbase", "kraken"]
    assert price == D("100")
