"""The login's rate limit (office/webauth.py): what a failure counts against, that a flood of
addresses cannot make it forget a user's failures, and, through the real `invoice-mailer web`
over loopback, that guesses for one user from many addresses are limited together."""

from __future__ import annotations

import http.client
from urllib.parse import urlencode

from invoice_mailer.office.passwords import hash_password
from invoice_mailer.office.webauth import ATTEMPTS, KEYS_KEPT, WINDOW, RateLimit, login_keys
from tests.support.webprocess import WebProcess, free_port

USERS = {"anna": "hash", "Bruno": "hash"}


def test_a_failure_counts_against_the_address_and_only_a_real_user_name():
    assert login_keys("192.0.2.7", "anna", USERS) == ("address:192.0.2.7", "user:anna")
    assert login_keys("192.0.2.7", "BRUNO", USERS) == ("address:192.0.2.7", "user:bruno")
    assert login_keys("192.0.2.7", "nobody", USERS) == ("address:192.0.2.7",)


def test_an_ipv6_client_is_counted_by_its_64_block():
    one = login_keys("2001:db8:1:2::1", "x", USERS)
    assert one == login_keys("2001:db8:1:2:ffff:ffff:ffff:fffe", "x", USERS)
    assert one == ("address:2001:db8:1:2::/64",)
    assert login_keys("2001:db8:1:3::1", "x", USERS) != one
    assert login_keys("::ffff:192.0.2.7", "x", USERS) == ("address:192.0.2.7",)  # IPv4 client


def test_a_flood_of_addresses_does_not_forget_a_users_failures():
    now = [1000.0]
    limit = RateLimit(clock=lambda: now[0])
    for n in range(ATTEMPTS):  # guesses for anna, each from another address
        limit.failed(*login_keys(f"198.51.100.{n}", "anna", USERS))
    assert limit.wait("user:anna") > 0
    for n in range(2 * KEYS_KEPT):  # then many more addresses, with names nobody has
        limit.failed(*login_keys(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", f"x{n}", USERS))
    assert limit.wait("user:anna") > 0  # still limited
    now[0] += WINDOW
    assert limit.wait("user:anna") == 0  # until the window has passed


def _login(port: int, source: str, name: str, password: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, 10, source_address=(source, 0))
    try:
        body = urlencode({"utente": name, "password": password})
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        connection.request("POST", "/accesso", body, headers)
        return connection.getresponse().status
    finally:
        connection.close()


def test_guesses_for_one_user_from_many_addresses_are_limited_together(filled_office):
    users = {"anna": hash_password("una password lunga")}
    with WebProcess(filled_office.config, listen=f"0.0.0.0:{free_port()}", users=users) as web:
        refusals = [_login(web.port, f"127.0.0.{n}", "anna", "indovino") for n in range(2, 7)]
        right_but_late = _login(web.port, "127.0.0.9", "anna", "una password lunga")
        other_user_same_address = _login(web.port, "127.0.0.9", "nessuno", "x")
    assert refusals == [401] * ATTEMPTS
    assert right_but_late == 429
    assert other_user_same_address == 401  # that address itself had not failed yet
