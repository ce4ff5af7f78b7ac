"""The YAML reader under the config and the address book: hostile structure is refused while
parsing, with the line, and syntax errors read as plain words."""

from __future__ import annotations

import pytest

from invoice_mailer.addressbook.book import load_address_book
from invoice_mailer.config.load import load_config
from invoice_mailer.config.model import CsvConfig
from invoice_mailer.errors import ConfigError
from tests.support.configs import write_config

REFUSED_ALIAS = "anchors (&name) and aliases (*name) are not allowed here: write each value out"


def test_recursive_alias_in_address_book_is_a_line_numbered_error(tmp_path):
    path = tmp_path / "clienti.yaml"
    path.write_text("- code: C001\n  email: a@example.it\n  name: &loop [*loop]\n")
    with pytest.raises(ConfigError) as caught:
        load_address_book(path, CsvConfig())
    assert str(caught.value) == f"{path}: line 3, column 9: {REFUSED_ALIAS} in full"


def test_list_nested_thousands_deep_is_a_line_numbered_error(tmp_path):
    path = tmp_path / "clienti.yaml"
    path.write_text("- code: C001\n  email: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError) as caught:
        load_address_book(path, CsvConfig())
    assert str(caught.value).startswith(f"{path}: line 2, column ")
    assert str(caught.value).endswith(": nested more than 20 levels deep")


def test_deep_nesting_in_the_config_is_refused_too(tmp_path):
    path = write_config(tmp_path)
    path.write_text(path.read_text() + "signature: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+: nested more than 20 levels"):
        load_config(path)


def test_anchor_and_merge_key_in_the_config_are_refused(tmp_path):
    path = write_config(tmp_path)
    text = path.read_text().replace("smtp:\n", "smtp: &relay\n") + "other: *relay\n"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert REFUSED_ALIAS in str(caught.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "watch:\n  folder: /srv\n\tsettle: 2s\n",
            "line 3, column 1: tab characters are not allowed for indentation: use spaces",
        ),
        (
            'smtp:\n  ca_file: "C:\\relay\\ca.pem"\n',
            "line 2, column 22: unknown escape in a double-quoted value: use single quotes",
        ),
        ("watch:\n  folder: /srv\n settle: 2s\n", "line 3, column 2: the indentation does not"),
        ("sender:\n  name: Rossi: fatture\n", "line 2, column 14: unexpected ':' here"),
        ("watch:\n  patterns: ['*.pdf'\n", "line 3, column 1: a list opened with '[' is not"),
    ],
)
def test_syntax_errors_read_as_plain_words(tmp_path, content, message):
    path = tmp_path / "config.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value)
    assert "YAML syntax error" not in str(caught.value)
