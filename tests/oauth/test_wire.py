"""The two OAuth POSTs (oauth/wire.py) against a local HTTP server that answers what a broken
or hostile sign-in server might: a redirect (never followed), garbage, too much, an error whose
description tries to reach the terminal."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from invoice_mailer.oauth.wire import MAX_ANSWER, OAuthError, OAuthUnreachable, post_form

ANSWERS: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/redirect": (302, {"Location": "http://127.0.0.1:9/steal"}, b""),
    "/garbage": (200, {"Content-Type": "text/html"}, b"<html>maintenance</html>"),
    "/huge": (200, {}, b"{" + b" " * (MAX_ANSWER + 10) + b"}"),
    "/hostile": (
        400,
        {},
        json.dumps(
            {"error": "invalid_grant", "error_description": "AADSTS70000\x1b[2J: bad\r\nTrace"}
        ).encode(),
    ),
}


SEEN: list[bytes] = []  # every form the server received


class _Answers(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        SEEN.append(self.rfile.read(int(self.headers["Content-Length"])))
        status, headers, body = ANSWERS[self.path]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def base_url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_a_redirect_is_not_followed(base_url):
    SEEN.clear()
    with pytest.raises(OAuthError, match="answered HTTP 302") as refused:
        post_form(base_url + "/redirect", {"refresh_token": "r-secret"}, 5)
    assert len(SEEN) == 1  # the form went nowhere else
    assert "r-secret" not in str(refused.value)


@pytest.mark.parametrize("path", ["/garbage", "/huge"])
def test_an_unreadable_answer_is_worth_trying_later(base_url, path):
    with pytest.raises(OAuthUnreachable):
        post_form(base_url + path, {"refresh_token": "r-secret"}, 5)


def test_the_servers_error_is_one_clean_line(base_url):
    with pytest.raises(OAuthError) as refused:
        post_form(base_url + "/hostile", {"refresh_token": "r-secret"}, 5)
    assert refused.value.error == "invalid_grant"
    assert str(refused.value).endswith("refused: invalid_grant (AADSTS70000 [2J: bad)")
