"""`invoice-mailer check` as the admin runs it (a subprocess): it answers fast on hostile YAML,
lists every problem of config, key file and address book at once, and says what would not work.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.support.configs import base_config, write_config

LOL = ", ".join(['"lol"'] * 10)


def run_cli(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """The real command line; a hang (an alias bomb) fails the test through the timeout."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "invoice_mailer", *args],
        capture_output=True,
        text=True,
        timeout=20,
    )


def billion_laughs(indent: str = "") -> str:
    """Nine levels of ten aliases each: 10^9 strings if anything ever expanded it."""
    lines = [f"{indent}lol0: &l0 [{LOL}]"]
    lines += [f"{indent}lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def test_alias_bomb_in_the_config_is_refused_with_its_line(tmp_path):
    path = write_config(tmp_path)
    lines = path.read_text().count("\n")
    path.write_text(path.read_text() + billion_laughs())
    result = run_cli("-c", str(path), "check")
    assert result.returncode == 78
    assert result.stderr == (
        f"invoice-mailer: {path}: line {lines + 1}, column 7: anchors (&name) and aliases "
        "(*name) are not allowed here: write each value out in full\n"
    )


def test_alias_bomb_in_the_address_book_is_refused_with_its_line(tmp_path):
    book = tmp_path / "clienti.yaml"
    book.write_text("- code: C001\n  email: a@example.it\n" + billion_laughs("  "))
    path = write_config(tmp_path, customers={"address_book": str(book)})
    result = run_cli("-c", str(path), "check")
    assert result.returncode == 78
    assert f"{book}: 1 problem\n  line 3, column 9: anchors (&name) and aliases (*name)" in (
        result.stderr
    )


@pytest.mark.parametrize(
    ("security", "port", "fix"),
    [
        ("tls", 587, "587 speaks STARTTLS, not implicit TLS: with security: tls use port: 465"),
        ("starttls", 465, "465 expects implicit TLS, not STARTTLS: with security: starttls use"),
    ],
)
def test_tls_mode_on_the_other_protocols_port_is_refused_with_the_fix(
    tmp_path, security, port, fix
):
    path = write_config(
        tmp_path, smtp={"host": "mail.example.it", "security": security, "port": port}
    )
    result = run_cli("-c", str(path), "check")
    assert result.returncode == 78
    assert f"line 12, smtp.port: port {fix}" in result.stderr
    assert "or keep port: " in result.stderr


def test_public_provider_without_password_is_refused(tmp_path):
    path = write_config(tmp_path, smtp={"host": "smtp.gmail.com", "security": "tls", "port": 465})
    result = run_cli("-c", str(path), "check")
    assert result.returncode == 78
    assert "smtp.password: smtp.gmail.com accepts mail only after a login" in result.stderr
    assert "app password" in result.stderr


def test_excel_headings_get_the_mapping_to_write(tmp_path):
    book = tmp_path / "clienti.csv"
    book.write_text("Ragione sociale;E-mail;P.IVA\nRossi S.r.l.;mario@rossi.example;01234567890\n")
    path = write_config(tmp_path, customers={"address_book": str(book)})
    result = run_cli("-c", str(path), "check")
    assert result.returncode == 78
    found = "(headings found: 'Ragione sociale', 'E-mail', 'P.IVA')"
    assert f"line 1, no column 'Email' or 'PEC' for the addresses {found}" in result.stderr
    mapping = 'columns: {name: "Ragione sociale", email: "E-mail", vat: "P.IVA"}'
    assert f"line 1, to use the file's headings, write under customers.csv: {mapping}" in (
        result.stderr
    )


def test_skipped_rows_optional_headings_and_smtputf8_are_warnings(tmp_path):
    book = tmp_path / "clienti.csv"
    book.write_text(
        "Codice;Denominazione;Email;Partita IVA\n"
        "C001;Rossi;mario@rossi.example;01234567890\n"
        "C002;Bianchi;bianchi@bianchi-.example;\n"
        "C003;Verdi;verdì@verdi.example;\n"
    )
    path = write_config(
        tmp_path, customers={"address_book": str(book)}, copy_to=["archìvio@example.it"]
    )
    result = run_cli("-c", str(path), "check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        f"config OK: watching {tmp_path / 'export'}, 2 customers (1 row skipped),"
    )
    assert f"{path}: 1 warning\n  line 16, copy_to[0]: archìvio@example.it has non-ASCII" in (
        result.stderr
    )
    assert f"{book}: 5 warnings" in result.stderr
    assert "line 1, no column 'RagioneSociale' for the customer name; 'Denominazione'" in (
        result.stderr
    )
    assert 'columns: {name: "Denominazione", vat: "Partita IVA"}' in result.stderr
    assert "line 3, Email: 'bianchi@bianchi-.example' can never be sent" in result.stderr
    assert "(customer C002 left out)" in result.stderr
    assert "line 4, verdì@verdi.example has non-ASCII letters before the @" in result.stderr


def test_a_language_without_templates_is_said_once_and_a_bad_one_in_a_template_refused(
    tmp_path,
):
    book = tmp_path / "clienti.csv"
    book.write_text(
        "Codice;RagioneSociale;Email;Lingua\n"
        "C001;Kowalski;a@kowalski.example;pl\n"
        "C002;Müller;b@mueller.example;de\n"
        "C003;Nowak;c@nowak.example;PL\n"
        "C004;Smith;d@smith.example;en\n"
        "C005;Rossi;e@rossi.example;\n"
    )
    german = {"customer_subject": "{doc} Nr. {number}", "customer_body": "Anbei {doc}.\n"}
    path = write_config(
        tmp_path,
        customers={"address_book": str(book)},
        templates={"de": {**german, "doc_names": {"Fattura": "Rechnung"}}},
    )
    result = run_cli("-c", str(path), "check")
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        f"{book}: 1 warning\n"
        "  line 2, no templates for pl (Polish): C001 (line 2), C003 (line 4) get the Italian "
        "message; add templates.pl.customer_subject and templates.pl.customer_body to the config\n"
    )
    assert result.stdout.startswith(f"config OK: watching {tmp_path / 'export'}, 5 customers,")

    # The German templates are checked as the Italian ones are: a wrong field stops the service.
    wrong = {**german, "customer_body": "Anbei {dok}.\n"}
    path = write_config(tmp_path, customers={"address_book": str(book)}, templates={"de": wrong})
    result = run_cli("-c", str(path), "check")
    assert result.returncode == 78
    assert f"{path}: 1 problem\n  line 18, templates.de.customer_body: unknown field {{dok}}" in (
        result.stderr
    )


def test_every_problem_at_once_config_key_file_and_address_book(tmp_path):
    key = tmp_path / "secret.key"
    assert run_cli("genkey", "--key-file", str(key)).returncode == 0
    key.chmod(0o644)
    book = tmp_path / "clienti.csv"
    book.write_text("Cliente;Mail\nC001;a@example.it\n")
    path = write_config(
        tmp_path,
        watch={"settle": "2x"},
        smtp={"security": "tls", "password": "enc:gAAAAtoken", "key_file": str(key)},
        customers={"address_book": str(book)},
    )
    result = run_cli("-c", str(path), "check")
    assert result.returncode == 78
    assert f"{path}: 2 problems" in result.stderr
    assert "line 3, watch.settle: expected a duration" in result.stderr
    assert f"line 13, smtp.password: key file {key} can be read by other users" in result.stderr
    assert f"run: chmod 600 {key}" in result.stderr
    assert f"{book}: 3 problems" in result.stderr
    assert "no column 'Codice' for the customer code" in result.stderr


def test_tab_in_the_yaml_in_plain_words(tmp_path):
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("  settle: 0.2s", "\tsettle: 0.2s"))
    result = run_cli("-c", str(path), "check")
    assert result.returncode == 78
    assert result.stderr == (
        f"invoice-mailer: {path}: line 3, column 1: tab characters are not allowed for "
        "indentation: use spaces\n"
    )


def test_config_option_before_or_after_the_command(tmp_path):
    path = write_config(tmp_path)
    before = run_cli("-c", str(path), "check")
    after = run_cli("check", "-c", str(path))
    assert before.returncode == after.returncode == 0, after.stderr
    assert after.stdout == before.stdout
    assert after.stdout.startswith(f"config OK: watching {tmp_path / 'export'}")


@pytest.fixture
def shared_dir():
    """A folder another user can enter (pytest's tmp_path is root's alone), removed after."""
    folder = Path(tempfile.mkdtemp(prefix="invoice-mailer-perm-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def as_other_user(*args: str) -> subprocess.CompletedProcess:
    """Root reads everything: run as nobody; anyone else is already denied a 0600 root file."""
    if os.geteuid() != 0:
        return run_cli(*args)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is needed to run as another user")
    nobody = (setpriv, "--reuid=65534", "--regid=65534", "--clear-groups")
    if run_cli("--version", prefix=nobody).returncode != 0:
        pytest.skip("the interpreter cannot be run as nobody here")
    return run_cli(*args, prefix=nobody)


def test_unreadable_config_says_which_file_and_what_to_run(shared_dir):
    path = shared_dir / "config.yaml"
    path.write_text(yaml.safe_dump(base_config(shared_dir)))
    path.chmod(0o600 if os.geteuid() == 0 else 0o000)
    result = as_other_user("-c", str(path), "check")
    assert result.returncode == 78
    assert result.stderr == (
        f"invoice-mailer: {path}: cannot be read: permission denied; run as root or as the "
        f"service's user: runuser -u invoice-mailer -- invoice-mailer -c {path} check\n"
    )


def test_unreadable_state_dir_says_which_file_and_what_to_run(shared_dir):
    path = shared_dir / "config.yaml"
    path.write_text(yaml.safe_dump(base_config(shared_dir)))
    state = shared_dir / "state"
    state.mkdir(mode=0o700 if os.geteuid() == 0 else 0o000)
    result = as_other_user("-c", str(path), "status")
    state.chmod(0o700)
    assert result.returncode == 1
    assert "unexpected error" not in result.stderr
    assert result.stderr == (
        f"invoice-mailer: cannot use {state / 'ledger.db'}: permission denied; run as root or "
        f"as the service's user: runuser -u invoice-mailer -- invoice-mailer -c {path} status\n"
    )


def test_ledger_of_the_service_user_says_permission_denied_and_what_to_run(shared_dir):
    from invoice_mailer.ledger.database import Ledger

    path = shared_dir / "config.yaml"
    path.write_text(yaml.safe_dump(base_config(shared_dir)))
    state = shared_dir / "state"
    state.mkdir(mode=0o755)
    with Ledger(state):
        pass
    (state / "ledger.db").chmod(0o600 if os.geteuid() == 0 else 0o000)
    state.chmod(0o755 if os.geteuid() == 0 else 0o555)
    result = as_other_user("-c", str(path), "retry")
    state.chmod(0o700)
    assert result.returncode == 1
    assert result.stderr.startswith(f"invoice-mailer: cannot open the ledger {state / 'ledger.db'}")
    assert result.stderr.endswith(
        "permission denied); run as root or as the service's user: "
        f"runuser -u invoice-mailer -- invoice-mailer -c {path} retry\n"
    )
