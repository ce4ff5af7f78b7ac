"""Writing real config files for tests."""

from __future__ import annotations

from pathlib import Path

import yaml


def base_config(tmp_path: Path, **sections) -> dict:
    """A minimal valid config as a dict, with folders made under tmp_path."""
    folder = tmp_path / "export"
    folder.mkdir(exist_ok=True)
    config = {
        "watch": {"folder": str(folder), "settle": "0.2s", "method": "events"},
        "state_dir": str(tmp_path / "state"),
        "sender": {"address": "fatture@example.it", "name": "Rossi S.r.l."},
        "smtp": {"host": "localhost", "security": "none", "port": 2525},
    }
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(name), dict):
            config[name] = {**config[name], **value}
        else:
            config[name] = value
    return config


def write_config(tmp_path: Path, name: str = "config.yaml", **sections) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(base_config(tmp_path, **sections), sort_keys=False))
    return path
