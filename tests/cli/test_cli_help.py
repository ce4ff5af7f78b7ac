"""Help that teaches: every subcommand's --help, from the real command line, says what it is
for and shows examples to copy."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from invoice_mailer.cli.main import build_parser

SCRIPT = Path(sys.executable).with_name("invoice-mailer")


def subcommands() -> list[str]:
    actions = build_parser()._subparsers._group_actions  # the one COMMAND argument
    (commands,) = [a for a in actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(commands.choices)


@pytest.mark.parametrize("command", subcommands())
def test_every_subcommand_help_has_a_description_and_examples(command):
    program = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "invoice_mailer"]
    shown = subprocess.run(
        [*program, command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    usage, description, *_rest = shown.stdout.split("\n\n")
    assert usage.startswith(f"usage: invoice-mailer {command}")
    assert len(description.split()) >= 8, shown.stdout  # a sentence, not a label
    examples = shown.stdout.split("examples:\n", 1)[1]
    assert any(
        line.strip().startswith("invoice-mailer") and f" {command}" in line
        for line in examples.splitlines()
    ), shown.stdout
    assert all(len(line) <= 100 for line in shown.stdout.splitlines()), shown.stdout
