"""The README a newcomer reads first: the quick start on top, one form of each command."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def anchors() -> set[str]:
    """GitHub's anchors of the README's headings."""
    headings = re.findall(r"^#+ (.+)$", README, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def test_the_quick_start_comes_first_with_the_two_commands_and_the_way_on():
    first = README.split("\n## ")[1]
    assert first.startswith("Quick start")
    for needed in ("Python 3.11", "make demo", "make test", "Debian 12", "package index"):
        assert needed in first
    links = re.findall(r"\]\(#([^)]+)\)", first)
    assert "install-as-a-service-debian-12" in links
    assert set(links) <= anchors()


def test_encrypt_password_is_shown_in_one_form_only():
    # Command lines (in the code blocks), not the table that names the subcommands.
    commands = [
        line
        for line in README.splitlines()
        if re.match(r"(sudo )?invoice-mailer .*encrypt-password", line)
    ]
    assert commands
    assert all("encrypt-password --key-file /etc/invoice-mailer/secret.key" in c for c in commands)
