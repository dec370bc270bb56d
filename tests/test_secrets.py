"""No credential in any message or traceback, whatever characters it holds; private files 0600."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock
from urllib.parse import quote, unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkimg.catalog import ColumnMap, open_catalog, parse_mysql_url, read_catalog
from bulkimg.cli import main
from bulkimg.config import Settings
from bulkimg.demo.run import LocalS3
from bulkimg.demo.samples import SampleData
from bulkimg.sandbox import FaultRule, SandboxConfig, SandboxShop, serve
from tests.helpers.catalog import ROWS, mysql_table
from tests.helpers.cli import bulkimg

SPECIAL = "/#?@%"
PRINTABLE = "abcdefghijkLMNOPQRSTuvwxyz0123456789" + SPECIAL + ":+=&;!$*~-_.[]"


@st.composite
def secrets(draw: st.DrawFn, alphabet: str = PRINTABLE + "é€ß") -> str:
    """A credential of 8 to 32 characters holding at least one of / # ? @ %."""
    base = draw(st.text(alphabet, min_size=6, max_size=28))
    special = draw(st.text(SPECIAL, min_size=1, max_size=4))
    at = draw(st.integers(0, len(base)))
    return base[:at] + special + base[at:]


def forms(secret: str) -> set[str]:
    """The ways a secret could show: as given, percent-encoded, percent-decoded."""
    return {f for f in (secret, quote(secret, safe=""), quote(secret), unquote(secret)) if f}


def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """bulkimg in this process; its exit code and everything it printed."""
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, env), redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue() + err.getvalue()


@pytest.fixture
def refusing_shop(tmp_path: Path) -> Iterator[str]:
    """A sandbox shop over loopback whose token no generated one equals."""
    config = SandboxConfig(access_token="shpat_the_right_token")
    with SandboxShop(tmp_path / "shop.sqlite", config) as shop, serve(shop) as url:
        yield url


@pytest.mark.fault_matrix(
    area="Secrets",
    fault="generated credentials holding / # ? @ % (and non-ASCII): a MySQL password inside the"
    " catalog URL (raw and percent-encoded) MariaDB refuses, an AWS secret key S3 answers"
    " NoSuchBucket to, a Shopify token the shop refuses",
    outcome="each one line, exit 2, no traceback; no form of any credential (raw, encoded, decoded)"
    " in stdout, stderr or any file written",
)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(password=secrets(), aws_secret=secrets(), token=secrets(PRINTABLE))
def test_no_credential_in_any_message_whatever_it_holds(
    tmp_path: Path,
    mysql_url: str,
    s3_server: LocalS3,
    refusing_shop: str,
    password: str,
    aws_secret: str,
    token: str,
) -> None:
    db = urlsplit(mysql_url)
    catalog = tmp_path / "nav_items.csv"
    catalog.write_text("No_,Image_SKU,Web_Product_Group_ID,Description\n1,1102192,G-1,t\n")
    printed: list[str] = []
    for given_as in (password, quote(password, safe="")):
        url = f"mysql://bulkimg_nobody:{given_as}@{db.hostname}:{db.port or 3306}/test"
        code, text = run_cli("build", "--all", "--bucket", "b", env={"BULKIMG_CATALOG": url})
        assert code == 2, text
        assert "cannot connect to catalog mysql://bulkimg_nobody:***@" in text
        printed.append(text)
    s3_env = {
        "BULKIMG_CATALOG": str(catalog),
        "AWS_ENDPOINT_URL_S3": s3_server.endpoint_url,
        "AWS_S3_BUCKET": "no-such-bucket-here",
        "AWS_ACCESS_KEY_ID": "AKIAPROPERTYTEST",
        "AWS_SECRET_ACCESS_KEY": aws_secret,
    }
    code, text = run_cli("build", "--all", env=s3_env)
    assert code == 2 and "NoSuchBucket" in text, text
    printed.append(text)
    shop_env = {"SHOPIFY_SHOP": refusing_shop, "SHOPIFY_ACCESS_TOKEN": token}
    code, text = run_cli("reconcile", env=shop_env)
    assert code == 2 and "Shopify refused the access token" in text, text
    printed.append(text)
    for text in printed:
        assert "Traceback" not in text
        assert len([line for line in text.splitlines() if line.startswith("bulkimg:")]) == 1
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    for secret in (password, aws_secret, token):
        for form in forms(secret):
            assert all(form not in text for text in printed), (form, printed)
            assert form.encode() not in written, form


@pytest.mark.parametrize("password", ["pa/ss#w?rd@x%41", "p@ss:w/rd?#", "100%/sure", "pä/ss€#"])
def test_a_catalog_password_with_url_characters_connects_raw_or_encoded(
    mysql_url: str, password: str
) -> None:
    db = urlsplit(mysql_url)
    user = f"bulkimg_{uuid.uuid4().hex[:6]}"
    admin = mysql_table(mysql_url, ROWS)
    with admin as table:
        conn = admin._connect()
        with conn.cursor() as cur:
            # The raw form is percent-decoded too: "%41" in a raw password would read as "A".
            cur.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (unquote(password),))
            cur.execute(f"GRANT SELECT ON `{db.path.lstrip('/')}`.* TO '{user}'@'%'")
        conn.commit()
        try:
            for given_as in (password, quote(unquote(password), safe="")):
                url = f"mysql://{user}:{given_as}@{db.hostname}:{db.port or 3306}{db.path}"
                target = parse_mysql_url(url)
                assert (target.user, target.password) == (user, unquote(password))
                assert given_as not in target.display and ":***@" in target.display
                source = open_catalog(url, table, ColumnMap())
                assert read_catalog(source).variant_count == len(ROWS) - 3
        finally:
            with conn.cursor() as cur:
                cur.execute(f"DROP USER '{user}'@'%'")
            conn.close()


def test_a_port_that_is_not_a_number_is_one_line_without_the_password(tmp_path: Path) -> None:
    url = "mysql://root:pa/ss@127.0.0.1:33o6/test"
    result = bulkimg(tmp_path, "build", "--all", "--bucket", "b", env={"BULKIMG_CATALOG": url})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "bulkimg: error: catalog URL mysql://root:***@127.0.0.1:33o6/test:"
        " the port must be a number"
    )


@pytest.mark.fault_matrix(
    area="Secrets",
    fault="a half-filled .env: AWS_ACCESS_KEY_ID set, AWS_SECRET_ACCESS_KEY empty (and the"
    " reverse)",
    outcome="one line naming both settings, exit 2, no traceback, nothing written",
)
@pytest.mark.parametrize(
    ("key_id", "secret", "given", "empty"),
    [
        ("AKIAHALFFILLED", "", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        ("", "half/filled/secret", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
    ],
)
def test_half_filled_aws_credentials_are_one_line(
    tmp_path: Path, sample: SampleData, key_id: str, secret: str, given: str, empty: str
) -> None:
    catalog = sample.write_csv(tmp_path / "nav_items.csv")
    (tmp_path / ".env").write_text(
        f"AWS_ACCESS_KEY_ID={key_id}\nAWS_SECRET_ACCESS_KEY={secret}\nAWS_S3_BUCKET=b\n"
        f"BULKIMG_CATALOG={catalog}\n"
    )
    result = bulkimg(tmp_path, "build", "--all")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("bulkimg:")]
    assert errors == [
        f"bulkimg: error: {given} is set but {empty} is empty (environment or .env): set both,"
        " or neither to use the instance role or AWS profile"
    ]
    assert not (tmp_path / "output" / "productset.jsonl").exists()


def test_an_unexpected_error_prints_its_traceback_with_every_credential_masked(
    tmp_path: Path,
) -> None:
    """A bug's traceback still reaches the user, but a credential in it is masked."""
    secret = "s3cr/et#with?url@chars%"
    script = (
        "import sys\n"
        "from bulkimg import cli\n"
        "def boom(*a, **k):\n"
        "    from bulkimg.config import load_settings\n"
        "    s = load_settings()\n"
        "    raise RuntimeError('oops ' + s.aws_secret_access_key.get_secret_value())\n"
        "cli.run_build = boom\n"
        "cli.main(['build', '--all', '--catalog', 'x.csv', '--bucket', 'b'])\n"
    )
    env = {**os.environ, "AWS_SECRET_ACCESS_KEY": secret, "AWS_ACCESS_KEY_ID": "AKIAX"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "RuntimeError: oops ***" in result.stderr
    assert "internal error (a bug)" in result.stderr
    assert all(form not in result.stderr for form in forms(secret))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


SIGNED = (b"X-Amz-Signature", b"X-Amz-Credential")


@pytest.mark.fault_matrix(
    area="Secrets",
    fault="files holding presigned URLs (productSet lines built, resolved and retried, plan,"
    " preview, resolution, manifest, failures, results, the run archive) under umask 022",
    outcome="each created 0600 from the start (os.open's mode, no chmod after); every file of"
    " output/ that holds a signature is 0600",
)
def test_files_holding_presigned_urls_are_created_0600(
    settings: Settings, shop: SandboxShop
) -> None:
    from bulkimg.run.preview import render_preview
    from bulkimg.run.rotation import archive_run
    from tests.helpers.shop import retry, submit

    old = os.umask(0o022)
    try:
        shop.faults.add(FaultRule("media_fetch", status=404, url_contains="1102192-2a"))
        assert submit(settings).exit_code == 1
        shop.faults.clear()
        assert retry(settings).exit_code == 0
        render_preview(settings)
        archive_run(settings.output_dir, "test", keep=3)
    finally:
        os.umask(old)
    out = settings.output_dir
    files = [p for p in out.rglob("*") if p.is_file() and "cache" not in p.parts]
    signed = [p for p in files if any(mark in p.read_bytes() for mark in SIGNED)]
    names = {p.name.split("-")[0].split(".")[0] for p in signed}
    assert "productset" in names, names  # the test sees what it must (the preview: gzipped)
    assert any(p.parent.name == "retry" for p in signed)
    assert {str(p.relative_to(out)): oct(_mode(p)) for p in signed if _mode(p) != 0o600} == {}
    for name in ("plan.jsonl", "manifest.jsonl", "failures.jsonl", "preview.html"):
        assert _mode(out / name) == 0o600, name
    (archive,) = (out / "runs").iterdir()
    for name in ("plan.jsonl", "manifest.jsonl", "preview.html"):  # copied, not moved
        assert _mode(archive / name) == 0o600, name


def test_umask_does_not_matter_to_the_private_mode(tmp_path: Path) -> None:
    """0600 is asked of os.open: the umask can only take bits away."""
    from bulkimg.outputs import create_private

    old = os.umask(0)
    try:
        with create_private(tmp_path / "x.jsonl") as handle:
            handle.write(b"{}\n")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "x.jsonl") == 0o600
