"""Where a request's key is found (pure: no database, no Redis)."""

from apikeys.credentials import key_from, key_from_asgi


def test_the_api_key_scheme_of_authorization_carries_the_key_whatever_its_case():
    assert key_from("Api-Key abc.def", None) == "abc.def"
    assert key_from("api-key   abc.def ", None) == "abc.def"
    assert key_from("API-KEY abc.def", None) == "abc.def"


def test_x_api_key_carries_the_key():
    assert key_from(None, " abc.def ") == "abc.def"


def test_authorization_of_another_scheme_is_not_a_key():
    assert key_from("Bearer metrics-token", None) is None
    assert key_from("Bearer metrics-token", "abc.def") == "abc.def"


def test_no_header_is_anonymous_but_an_empty_one_is_a_wrong_key():
    assert key_from(None, None) is None
    assert key_from("Api-Key", None) == ""
    assert key_from(None, "") == ""


def test_a_key_header_sent_twice_is_read_as_django_reads_it_never_as_no_key():
    """The edge and /ws join a repeated header with commas, as Django's ASGI request does: a wrong
    key followed by another scheme stays a (wrong) key, never anonymous."""
    headers = [(b"host", b"x"), (b"authorization", b"Api-Key wrong.key"), (b"authorization", b"Bearer token")]
    assert key_from_asgi(headers) == "wrong.key,Bearer token"
    assert key_from_asgi([(b"x-api-key", b"a.b"), (b"x-api-key", b"c.d")]) == "a.b,c.d"
    assert key_from_asgi([(b"authorization", b"Api-Key a.b")]) == "a.b"
    assert key_from_asgi([(b"host", b"x")]) is None
