"""`bulkimg sandbox serve` as a real process: prints its URL, answers, stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from bulkimg.shopify.documents import ADMIN_API_VERSION, load_document


def test_serve_prints_its_url_answers_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "cli.sqlite"
    env = os.environ | {"SHOPIFY_ACCESS_TOKEN": "shpat_cli_test"}
    command = [sys.executable, "-m", "bulkimg", "sandbox", "serve", "--state", str(state)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        prefix = "Sandbox shop at http://127.0.0.1:"
        assert line.startswith(prefix) and line.rstrip().endswith(f"(API {ADMIN_API_VERSION})")
        url = line.split()[3]
        response = httpx.post(
            f"{url}/admin/api/{ADMIN_API_VERSION}/graphql.json",
            json={"query": load_document("shop")},
            headers={"X-Shopify-Access-Token": "shpat_cli_test"},
        )
        assert response.json()["data"]["shop"]["name"] == "bulkimg sandbox"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "shpat_cli_test" not in stderr
    assert state.is_file() and not state.with_name(state.name + "-wal").exists()
