"""docker-compose.yml's shape, checked without a Docker engine (none on these machines): the
services and what each waits for, health checks, volumes, the env file, the settings it passes
(each one documented), and its nginx configuration, which the real nginx parses (``nginx -t``)
and which proxies like the one ``make cluster`` writes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from command.cluster import ClusterSpec, nginx_conf
from tests.support import BASE_DIR

COMPOSE = BASE_DIR / "docker-compose.yml"
ENV_EXAMPLE = BASE_DIR / "compose.env.example"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_the_services_and_what_each_waits_for(compose):
    services = compose["services"]
    assert set(services) == {"db", "db-replica", "redis", "migrate", "web", "proxy"}
    # every long-running service says when it is healthy
    for name in ("db", "db-replica", "redis", "web", "proxy"):
        assert services[name]["healthcheck"]["test"], name
    # migrations run once, before any web process; nginx waits for healthy web processes
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["web"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["proxy"]["depends_on"]["web"]["condition"] == "service_healthy"
    assert str(services["web"]["deploy"]["replicas"]).startswith("${WEB_REPLICAS")
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    # the replica is a streaming copy of the primary
    replica = "\n".join(services["db-replica"]["command"])
    assert "pg_basebackup -h db" in replica and " -R " in replica
    assert "replication" in compose["configs"]["allow-replication"]["content"]


def test_volumes_env_file_and_photo_storage(compose):
    services = compose["services"]
    declared = set(compose["volumes"])
    used = {
        volume.split(":")[0]
        for service in services.values()
        for volume in service.get("volumes", [])
        if not volume.startswith((".", "/"))
    }
    assert used == declared == {"pgdata", "pgreplica", "media", "static"}
    # photos on one volume shared by every web process (or S3 with MEDIA_STORAGE=s3)
    assert "media:/data/media" in services["web"]["volumes"]
    assert services["web"]["environment"]["MEDIA_ROOT"] == "/data/media"
    # static files collected once into a volume nginx serves
    assert "static:/data/static" in services["migrate"]["volumes"]
    assert "static:/data/static:ro" in services["proxy"]["volumes"]
    for name in ("migrate", "web"):
        assert services[name]["env_file"] == [".env"]


def test_every_variable_is_in_the_env_example_and_every_setting_in_the_readme(compose):
    text = COMPOSE.read_text()
    example = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if line and not line.startswith("#")
    )
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    assert required <= set(example), required - set(example)
    readme = (BASE_DIR / "README.md").read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", readme))
    app_settings = set(compose["services"]["web"]["environment"]) | set(example)
    compose_only = {"POSTGRES_PASSWORD", "POSTGRES_USER", "POSTGRES_DB", "WEB_REPLICAS", "PROXY_PORT"}
    assert app_settings - compose_only - documented == set(), "document these in the README's settings table"


def _proxy_headers(conf: str) -> set[str]:
    return {" ".join(line.split()) for line in conf.splitlines() if "proxy_set_header" in line}


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is installed by `make deps`")
def test_nginx_parses_the_proxy_configuration_and_it_proxies_like_make_cluster(compose, tmp_path: Path):
    # given: the compose file's nginx configuration, its hosts and paths made local
    conf = compose["configs"]["nginx"]["content"].replace("$$", "$")
    conf = conf.replace("web:8000", "127.0.0.1:9").replace("/data/static/", f"{tmp_path}/static/")
    (tmp_path / "site.conf").write_text(conf)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  client_body_temp_path {tmp_path}/body;\n  proxy_temp_path {tmp_path}/proxy;\n"
        f"  include {tmp_path}/site.conf;\n}}\n"
    )
    # when: the real nginx checks it
    checked = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
    )
    # then
    assert checked.returncode == 0, checked.stderr
    # and it passes the same headers to Daphne as make cluster's nginx (websocket upgrade included)
    cluster = nginx_conf(ClusterSpec(workdir=str(tmp_path)))
    assert _proxy_headers(conf) == _proxy_headers(cluster)
    assert "Upgrade $http_upgrade" in conf and "least_conn" in conf
