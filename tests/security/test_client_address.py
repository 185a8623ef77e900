"""Who the client is, as a stranger would try to fake it: forwarded headers are believed only from
TRUSTED_PROXIES (all of them, joined as Django joins them), IPv6 clients are counted per /64, and
neither /metrics nor a debug page opens to a forged loopback address."""

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from core import threads
from core.clientip import client_ip, is_local, rate_client
from core.ratelimit import Rate, parse_rate
from cryptosite import edge
from cryptosite.asgi import application


class TestWhoTheClientIs:
    def test_forwarded_headers_are_ignored_when_no_proxy_is_trusted(self, settings):
        settings.TRUSTED_PROXIES = []
        assert client_ip("198.51.100.7", "127.0.0.1") == "198.51.100.7"

    def test_forwarded_headers_from_an_untrusted_peer_are_ignored(self, settings):
        settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
        assert client_ip("198.51.100.7", "203.0.113.1") == "198.51.100.7"

    def test_the_client_is_the_nearest_untrusted_hop_behind_trusted_proxies(self, settings):
        settings.TRUSTED_PROXIES = ["10.0.0.0/8", "127.0.0.1"]
        assert client_ip("127.0.0.1", "203.0.113.1") == "203.0.113.1"
        # A forged leftmost hop is not believed; a chain of trusted proxies is walked past.
        assert client_ip("127.0.0.1", "127.0.0.1, 198.51.100.9, 10.1.2.3") == "198.51.100.9"
        assert client_ip("10.0.0.2", "198.51.100.9:4321") == "198.51.100.9"
        assert client_ip("10.0.0.2", "[2001:db8::5]:443") == "2001:db8::5"

    def test_a_hop_that_is_not_an_address_counts_against_the_proxy_that_passed_it_on(self, settings):
        settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
        assert client_ip("10.0.0.2", "203.0.113.1, unknown") == "10.0.0.2"
        assert client_ip("10.0.0.2", "") == "10.0.0.2"

    def test_ipv4_mapped_ipv6_is_the_ipv4_client(self, settings):
        settings.TRUSTED_PROXIES = []
        assert client_ip("::ffff:198.51.100.7", None) == "198.51.100.7"

    def test_ipv6_clients_are_counted_per_64(self):
        assert rate_client("2001:db8:1:2:aaaa::1") == rate_client("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
        assert rate_client("2001:db8:1:3::1") != rate_client("2001:db8:1:2::1")
        assert rate_client("198.51.100.7") == "198.51.100.7"

    def test_a_request_through_an_untrusted_local_proxy_is_not_local(self, settings):
        settings.TRUSTED_PROXIES = []
        assert is_local("127.0.0.1", None)
        assert not is_local("127.0.0.1", "203.0.113.1")
        assert not is_local("198.51.100.7", "127.0.0.1")
        settings.TRUSTED_PROXIES = ["127.0.0.1"]
        assert not is_local("127.0.0.1", "203.0.113.1")
        assert is_local("127.0.0.1", "127.0.0.1")


class TestRates:
    def test_rates_are_parsed_by_the_project(self):
        assert parse_rate("100/m") == Rate(100, 60)
        assert parse_rate("10/5m") == Rate(10, 300)
        assert parse_rate("30/15s") == Rate(30, 15)
        assert parse_rate(" 5/d ") == Rate(5, 86400)

    @pytest.mark.parametrize("text", ["10/0m", "0/m", "10", "10/m/", "ten/m", "10/5w", "", "9" * 5000 + "/" + "9" * 5000])
    def test_a_bad_rate_is_refused(self, text):
        with pytest.raises(ValueError):
            parse_rate(text)

    def test_a_zero_second_window_is_a_configuration_error_caught_at_start(self, settings):
        settings.RATE_LIMIT = "10/0m"
        with pytest.raises(SystemCheckError, match="RATE_LIMIT"):
            call_command("check")

    def test_a_bad_proxy_list_and_the_retired_num_proxies_are_configuration_errors(self, settings):
        settings.TRUSTED_PROXIES = ["10.0.0.0/8", "proxy.example"]
        settings.NUM_PROXIES = "1"
        with pytest.raises(SystemCheckError) as raised:
            call_command("check")
        assert "TRUSTED_PROXIES" in str(raised.value) and "NUM_PROXIES" in str(raised.value)


def served(client: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=application, client=(client, 5000)),
                             base_url="http://localhost")


@pytest.fixture
async def cleanup():
    yield
    await edge.close_connections()
    threads.close_connections()


@pytest.mark.django_db(transaction=True)
class TestThroughTheServedApplication:
    """The edge (the hot reads) and Django (everything else) agree on who the client is."""

    @pytest.mark.parametrize("path", ["/coins", "/api/no-such-endpoint"])
    async def test_one_ipv6_host_gets_one_budget_for_its_whole_64(self, settings, cleanup, path):
        settings.RATE_LIMIT = "2/d"
        for address, status in (("2001:db8:0:7::1", 404 if "no-such" in path else 200),
                                ("2001:db8:0:7::2", None), ("2001:db8:0:7:ffff::3", 429), ("2001:db8:0:8::1", None)):
            async with served(address) as client:
                response = await client.get(path)
            if status is not None:
                assert response.status_code == status
            else:
                assert response.status_code != 429
        # The first two spent the /64's budget; the third (same /64) was refused; another /64 was not.

    async def test_a_client_cannot_pick_its_own_address_with_x_forwarded_for(self, settings, cleanup):
        settings.RATE_LIMIT = "1/d"
        settings.TRUSTED_PROXIES = []
        async with served("198.51.100.7") as client:
            assert (await client.get("/coins", headers={"X-Forwarded-For": "203.0.113.1"})).status_code == 200
            assert (await client.get("/coins", headers={"X-Forwarded-For": "203.0.113.2"})).status_code == 429
            assert (await client.get("/api/nothing", headers={"X-Forwarded-For": "203.0.113.3"})).status_code == 429

    @pytest.mark.parametrize("path", ["/coins", "/api/nothing"])
    async def test_every_x_forwarded_for_header_is_read_as_django_joins_them(self, settings, cleanup, path):
        settings.RATE_LIMIT = "1/d"
        settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
        # The proxy appends its own header; a client's forged one comes first. The client is the
        # nearest untrusted hop of them all, at the edge and in Django alike.
        async with served("10.0.0.2") as client:
            first = await client.get(path, headers=[("X-Forwarded-For", "192.0.2.1"), ("X-Forwarded-For", "203.0.113.5")])
            again = await client.get(path, headers=[("X-Forwarded-For", "192.0.2.99"), ("X-Forwarded-For", "203.0.113.5")])
            other = await client.get(path, headers=[("X-Forwarded-For", "203.0.113.6")])
        assert first.status_code != 429 and again.status_code == 429 and other.status_code != 429

    async def test_metrics_do_not_open_to_a_forged_loopback_address(self, settings, cleanup):
        settings.METRICS_TOKEN = ""
        settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
        async with served("198.51.100.7") as client:
            assert (await client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})).status_code == 403
        async with served("10.0.0.2") as client:
            assert (await client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1, 203.0.113.9"})).status_code == 403
        async with served("127.0.0.1") as client:  # an untrusted proxy on this machine passing a stranger on
            assert (await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})).status_code == 403
            assert (await client.get("/metrics")).status_code == 200

    async def test_a_non_ascii_authorization_header_to_metrics_is_a_401_not_a_500(self, settings, cleanup):
        settings.METRICS_TOKEN = "a-metrics-token"
        async with served("198.51.100.7") as client:
            response = await client.get("/metrics", headers={"Authorization": "Bearer caf\u00e9".encode("latin-1")})
            assert response.status_code == 401 and response.json()["error"]
            assert (await client.get("/metrics", headers={"Authorization": "Bearer a-metrics-token"})).status_code == 200


@pytest.mark.django_db(transaction=True)
class TestDebugPages:
    """Even with DEBUG on, Django's debug pages (every URL pattern, settings) reach this machine only."""

    async def test_a_stranger_gets_the_plain_404_page(self, settings, cleanup):
        settings.DEBUG = True
        async with served("198.51.100.7") as client:
            response = await client.get("/widgets/no-such-widget/")
        assert response.status_code == 404
        assert "URLconf" not in response.text and "api/market" not in response.text

    async def test_a_stranger_behind_a_local_proxy_gets_the_plain_404_page(self, settings, cleanup):
        settings.DEBUG = True
        async with served("127.0.0.1") as client:
            response = await client.get("/widgets/no-such-widget/", headers={"X-Forwarded-For": "203.0.113.9"})
        assert response.status_code == 404 and "URLconf" not in response.text

    async def test_this_machine_gets_the_debug_page(self, settings, cleanup):
        settings.DEBUG = True
        async with served("127.0.0.1") as client:
            response = await client.get("/widgets/no-such-widget/")
        assert response.status_code == 404 and "URLconf" in response.text
