"""Host names and mail domains are checked as the resolver and the IDNA codec will see them."""

from __future__ import annotations

import pytest

from invoice_mailer.config.load import load_config
from invoice_mailer.config.netnames import domain_problem, host_problem, non_ascii_local_part
from invoice_mailer.errors import ConfigError
from tests.support.configs import write_config


@pytest.mark.parametrize(
    "host",
    ["smtps.pec.aruba.it", "localhost", "127.0.0.1", "::1", "[::1]", "müller.de", "relay.lan."],
)
def test_usable_hosts(host):
    assert host_problem(host) is None


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("smtp..example.it", "an empty part between two dots"),
        ("a" * 64 + ".example.it", "a part is longer than 63 characters"),
        (("a" * 60 + ".") * 5 + "it", "longer than 253 characters"),
        ("-smtp.example.it", "may hold only letters, digits and '-'"),
        ("smtp.exa mple.it", "may hold only letters, digits and '-'"),
        ("300.1.1.1", "not a valid IP address"),
    ],
)
def test_unusable_hosts(host, reason):
    assert reason in host_problem(host)


def test_idn_domain_and_non_ascii_local_part():
    assert domain_problem("pec.società.it") is None
    assert non_ascii_local_part("fatturè@example.it")
    assert not non_ascii_local_part("fatture@società.it")


def test_host_the_idna_codec_refuses_is_a_config_error_with_its_line(tmp_path):
    path = write_config(tmp_path, smtp={"host": "smtp..example.it"})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "line 10, smtp.host: expected a host name like smtp.example.it or an IP address: " in (
        str(caught.value)
    )
    assert "an empty part between two dots" in str(caught.value)


@pytest.mark.parametrize(
    ("section", "value", "key"),
    [
        ("copy_to", ["archivio@exa-.it"], "copy_to"),
        ("sender", {"address": "fatture@" + "a" * 64 + ".it"}, "sender.address"),
        ("all_to", {"address": "studio@x..it"}, "all_to.address"),
        ("alerts", {"to": "admin@-x.it"}, "alerts.to"),
    ],
)
def test_addresses_whose_domain_cannot_be_encoded_are_config_errors(tmp_path, section, value, key):
    path = write_config(tmp_path, **{section: value})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert f", {key}: " in str(caught.value)
