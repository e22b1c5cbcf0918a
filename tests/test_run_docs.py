"""docs/configuration.md and deploy/ keep up with the settings module."""

from __future__ import annotations

import re

from tests.conftest import REPO

SETTINGS = REPO / "doseport" / "settings.py"
DOC = REPO / "docs" / "configuration.md"


def env_names() -> set[str]:
    source = SETTINGS.read_text()
    return set(re.findall(r"(?:env_\w+|parse_bind)\(\s*\"([A-Z][A-Z0-9_]+)\"", source))


def test_it_documents_every_environment_variable_with_a_default() -> None:
    names = env_names()
    assert {"DOSEPORT_HOME", "DATABASE_URL", "REDIS_URL", "SECRET_KEY"} <= names
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^\| `([A-Z0-9_]+)` \| ([^|]+) \|", DOC.read_text(), re.M)
    }
    missing = sorted(names - rows.keys())
    assert not missing, f"add these to docs/configuration.md: {missing}"
    assert all(rows[name].strip() for name in names)


def test_it_ships_service_units_for_every_long_running_process() -> None:
    deploy = REPO / "deploy"
    for unit, command in [
        ("doseport-web.service", "doseport web"),
        ("doseport-worker.service", "doseport worker"),
        ("doseport-stores.service", "doseport stores"),
    ]:
        text = (deploy / unit).read_text()
        assert f"ExecStart=/opt/doseport/.venv/bin/{command}" in text
        assert "EnvironmentFile=/etc/doseport/doseport.env" in text
    example = (deploy / "doseport.env.example").read_text()
    assert "DOSEPORT_HOME=" in example and "DATABASE_URL=" in example
    assert "proxy_pass http://127.0.0.1:8000" in (deploy / "nginx-doseport.conf").read_text()
