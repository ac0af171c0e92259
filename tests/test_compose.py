"""compose.yaml and deploy/nginx.conf describe the two-instance stack docs/deploy.md explains.

Docker is not available to the tests; these check the files' structure, which is what a typo
would break.
"""

from __future__ import annotations

import re

import yaml

from tests.conftest import ROOT


def test_compose_runs_two_bots_behind_nginx_with_postgres_and_redis() -> None:
    stack = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = stack["services"]
    assert set(services) == {"bot-a", "bot-b", "nginx", "postgres", "redis"}
    for name in ("bot-a", "bot-b"):
        bot = services[name]
        env = bot["environment"]
        url = env["QUERYLOG_URL"]
        assert url.startswith("postgresql://") and "@postgres:5432/" in url
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert "index:/data/index" in bot["volumes"]  # one index folder, flock-protected
        assert any(v.endswith(":/data/knowledge:ro") for v in bot["volumes"])
        assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert "ports" not in bot  # reached through nginx only
    assert services["nginx"]["ports"] and "postgres" in services["postgres"]["image"]
    assert services["redis"]["image"].startswith("redis:")


def test_nginx_upstream_lists_both_instances_and_retries_the_other() -> None:
    conf = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    upstream = re.search(r"upstream union_bot \{(.*?)\}", conf, re.S).group(1)
    assert re.findall(r"server (bot-[ab]):8080", upstream) == ["bot-a", "bot-b"]
    assert re.search(r"proxy_next_upstream [^;]*error[^;]*non_idempotent;", conf)
    assert conf.count("proxy_pass http://union_bot;") >= 2
    deploy = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert "compose.yaml" in deploy and "upstream union_bot" in deploy
