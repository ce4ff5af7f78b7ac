"""The shipped systemd files, checked by systemd's own tools as an admin would install them.

`systemd-analyze verify` and `systemd-analyze security --offline=true` read unit files without
a running systemd; systemd-sysusers and systemd-tmpfiles apply the snippets under `--root=`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from invoice_mailer.config.credentials import CREDENTIAL_NAME
from invoice_mailer.config.model import DEFAULT_KEY_FILE

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "systemd"
BINARY = "/opt/invoice-mailer/bin/invoice-mailer"
MAX_EXPOSURE = 1.5

# (file in the repo, name it is verified under): the template as a real instance.
UNITS = [
    ("invoice-mailer.service", "invoice-mailer.service"),
    ("invoice-mailer@.service", "invoice-mailer@shop.service"),
]
UNIT_IDS = ["plain", "template"]

# The one complaint verify may make on a machine where invoice-mailer is not installed.
MISSING_BINARY = re.compile(
    rf"^\S+\.service: Command {re.escape(BINARY)} is not executable: No such file or directory$"
)

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def installed(tmp_path: Path, source: str, name: str) -> Path:
    """A copy of the unit under the name systemctl would load it by."""
    target = tmp_path / name
    shutil.copyfile(SYSTEMD / source, target)
    return target


def analyze(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    plain = {"SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "", "LC_ALL": "C.UTF-8"}
    return subprocess.run(
        ["systemd-analyze", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **plain, **(env or {})},
    )


def complaints(result: subprocess.CompletedProcess[str]) -> list[str]:
    """What `verify` said, less the missing-binary line of a machine without the program."""
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    if result.returncode != 0 and not lines:
        return [f"verify failed silently with status {result.returncode}"]
    return [line for line in lines if not MISSING_BINARY.match(line)]


def directives(path: Path) -> dict[str, list[str]]:
    """`Section.Key` -> values in order, as systemd reads them (repeats accumulate)."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return found


@needs_analyze
@pytest.mark.parametrize(("source", "name"), UNITS, ids=UNIT_IDS)
def test_verify_finds_nothing_wrong(tmp_path: Path, source: str, name: str) -> None:
    result = analyze("verify", str(installed(tmp_path, source, name)))
    assert complaints(result) == []


@needs_analyze
def test_verify_would_catch_a_typo(tmp_path: Path) -> None:
    """The check above is not vacuous: a misspelt option is reported."""
    unit = installed(tmp_path, "invoice-mailer.service", "invoice-mailer.service")
    unit.write_text(unit.read_text().replace("UMask=0077", "UMaks=0077"))
    result = analyze("verify", str(unit))
    assert "Unknown key 'UMaks'" in result.stdout + result.stderr


@needs_analyze
@pytest.mark.parametrize(("source", "name"), UNITS, ids=UNIT_IDS)
def test_security_exposure_is_at_most_1_5(tmp_path: Path, source: str, name: str) -> None:
    result = analyze("security", "--offline=true", str(installed(tmp_path, source, name)))
    output = result.stdout + result.stderr
    found = re.search(rf"Overall exposure level for {re.escape(name)}: (\d+\.\d+)", output)
    assert found, output
    assert float(found.group(1)) <= MAX_EXPOSURE, output


# The drop-in the README's install guide has the admin write for an export folder on a cifs mount.
CIFS_DROP_IN = """\
[Unit]
RequiresMountsFor=/mnt/fatture

[Service]
ReadWritePaths=
ReadWritePaths=/mnt/fatture
"""


@needs_analyze
@pytest.mark.parametrize(("source", "name"), UNITS, ids=UNIT_IDS)
def test_admin_drop_in_keeps_the_unit_valid_and_hardened(
    tmp_path: Path, source: str, name: str
) -> None:
    """What `systemctl edit` leaves behind, loaded the way systemd loads it."""
    installed(tmp_path, source, name)
    drop_ins = tmp_path / f"{name}.d"
    drop_ins.mkdir()
    (drop_ins / "override.conf").write_text(CIFS_DROP_IN)
    env = {"SYSTEMD_UNIT_PATH": f"{tmp_path}:"}  # the trailing ":" keeps the system paths
    assert complaints(analyze("verify", name, env=env)) == []
    security = analyze("security", "--offline=true", name, env=env)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", security.stdout)
    assert found, security.stdout + security.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE


@pytest.mark.parametrize(("source", "name"), UNITS, ids=UNIT_IDS)
def test_required_directives(source: str, name: str) -> None:
    unit = directives(SYSTEMD / source)
    expected = {
        "Service.Type": ["notify"],
        "Service.User": ["invoice-mailer"],
        "Service.Restart": ["on-failure"],
        "Service.RestartPreventExitStatus": ["78"],
        "Service.WatchdogSec": ["60"],
        "Service.TimeoutStopSec": ["30"],
        "Service.UMask": ["0077"],
        "Service.StateDirectoryMode": ["0700"],
        "Service.LoadCredential": [f"{CREDENTIAL_NAME}:{DEFAULT_KEY_FILE}"],
        "Service.ExecReload": ["/bin/kill -HUP $MAINPID"],
        "Service.ProtectSystem": ["strict"],
        "Service.ProtectHome": ["yes"],
        "Service.NoNewPrivileges": ["yes"],
        "Service.MemoryDenyWriteExecute": ["yes"],
        "Service.RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6"],
        "Service.SystemCallFilter": ["@system-service", "~@privileged @resources", "setpriority"],
        "Service.CapabilityBoundingSet": [""],
    }
    assert {key: unit.get(key) for key in expected} == expected
    assert unit["Service.ReadWritePaths"], "the export folder must be writable"
    assert "Service.IPAddressDeny" not in unit  # SMTP and DNS servers change address
    assert unit["Install.WantedBy"] == ["multi-user.target"]


def test_units_agree_with_the_program_and_the_example_config() -> None:
    """Names the admin never sees mismatch silently: binary, config, state dir, key."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert Path(BINARY).name in scripts
    example = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    assert example["smtp"]["key_file"] == str(DEFAULT_KEY_FILE)

    plain = directives(SYSTEMD / "invoice-mailer.service")
    assert plain["Service.ExecStartPre"] == [f"{BINARY} -c /etc/invoice-mailer/config.yaml check"]
    assert plain["Service.ExecStart"] == [f"{BINARY} -c /etc/invoice-mailer/config.yaml run"]
    assert "/var/lib/" + plain["Service.StateDirectory"][0] == example["state_dir"]

    template = directives(SYSTEMD / "invoice-mailer@.service")
    assert template["Service.ExecStartPre"] == [f"{BINARY} -c /etc/invoice-mailer/%i.yaml check"]
    assert template["Service.ExecStart"] == [f"{BINARY} -c /etc/invoice-mailer/%i.yaml run"]
    assert template["Service.StateDirectory"] == ["invoice-mailer/%i"]


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="no systemd-sysusers")
def test_sysusers_snippet_makes_a_system_user_without_login(tmp_path: Path) -> None:
    (tmp_path / "etc/sysusers.d").mkdir(parents=True)
    shutil.copyfile(
        SYSTEMD / "invoice-mailer.sysusers.conf", tmp_path / "etc/sysusers.d/invoice-mailer.conf"
    )
    result = subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    passwd = (tmp_path / "etc/passwd").read_text().splitlines()
    entry = next(line.split(":") for line in passwd if line.startswith("invoice-mailer:"))
    _, _, uid, gid, _, home, shell = entry
    assert int(uid) < 1000  # a system account
    assert (home, shell) == ("/var/lib/invoice-mailer", "/usr/sbin/nologin")
    groups = [line.split(":") for line in (tmp_path / "etc/group").read_text().splitlines()]
    assert ["invoice-mailer", "x", gid, ""] in groups


@pytest.mark.skipif(
    shutil.which("systemd-sysusers") is None or shutil.which("systemd-tmpfiles") is None,
    reason="no systemd-sysusers/systemd-tmpfiles",
)
@pytest.mark.skipif(os.geteuid() != 0, reason="setting file owners needs root")
def test_tmpfiles_snippet_locks_down_the_config_folder(tmp_path: Path) -> None:
    for folder, snippet in (("sysusers.d", "sysusers"), ("tmpfiles.d", "tmpfiles")):
        (tmp_path / "etc" / folder).mkdir(parents=True)
        shutil.copyfile(
            SYSTEMD / f"invoice-mailer.{snippet}.conf",
            tmp_path / "etc" / folder / "invoice-mailer.conf",
        )
    etc = tmp_path / "etc/invoice-mailer"
    etc.mkdir()
    for name in ("config.yaml", "shop.yaml", "clienti.csv", "secret.key"):
        (etc / name).write_text("x")
        (etc / name).chmod(0o644)  # as an editor or a careless copy leaves them
    for tool in ("systemd-sysusers", "systemd-tmpfiles"):
        args = [tool, f"--root={tmp_path}"] + (["--create"] if tool.endswith("tmpfiles") else [])
        result = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    gid = next(
        int(line.split(":")[2])
        for line in (tmp_path / "etc/group").read_text().splitlines()
        if line.startswith("invoice-mailer:")
    )

    def mode_and_owner(path: Path) -> tuple[str, int, int]:
        st = path.stat()
        return oct(st.st_mode & 0o7777), st.st_uid, st.st_gid

    assert mode_and_owner(etc) == ("0o750", 0, gid)
    assert mode_and_owner(etc / "config.yaml") == ("0o640", 0, gid)
    assert mode_and_owner(etc / "shop.yaml") == ("0o640", 0, gid)
    assert mode_and_owner(etc / "clienti.csv") == ("0o640", 0, gid)
    assert mode_and_owner(etc / "secret.key") == ("0o600", 0, 0)


# -- the office's web page (invoice-mailer-web.service) ------------------------------------------

WEB_UNIT = "invoice-mailer-web.service"


@needs_analyze
def test_web_unit_verifies_and_is_hardened_like_the_main_unit(tmp_path: Path) -> None:
    unit = installed(tmp_path, WEB_UNIT, WEB_UNIT)
    assert complaints(analyze("verify", str(unit))) == []
    output = analyze("security", "--offline=true", str(unit)).stdout
    found = re.search(rf"Overall exposure level for {re.escape(WEB_UNIT)}: (\d+\.\d+)", output)
    assert found, output
    assert float(found.group(1)) <= MAX_EXPOSURE, output


def test_web_unit_reads_the_state_folder_and_writes_nowhere() -> None:
    unit = directives(SYSTEMD / WEB_UNIT)
    main = directives(SYSTEMD / "invoice-mailer.service")
    assert unit["Service.ExecStart"] == [f"{BINARY} -c /etc/invoice-mailer/config.yaml web"]
    assert unit["Service.User"] == main["Service.User"]  # the state folder is 0700, its own
    assert unit["Service.ReadOnlyPaths"] == ["/var/lib/" + main["Service.StateDirectory"][0]]
    for writable in ("StateDirectory", "ReadWritePaths", "LoadCredential", "LogsDirectory"):
        assert f"Service.{writable}" not in unit
    assert unit["Service.ProtectSystem"] == ["strict"]
    assert unit["Service.RestartPreventExitStatus"] == ["78"]
    assert unit["Service.CapabilityBoundingSet"] == [""]
