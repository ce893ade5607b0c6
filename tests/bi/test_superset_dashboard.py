"""`make bi` end to end: Superset over a real sandbox snapshot, driven in headless Chromium.

Two real Dagster refreshes of the sandbox brand (small scale) publish the serving snapshot: the
first over 21 days, the second over the 7 days after them (the snapshot then holds 28). Between
them, `make bi` installs nothing new (.ci/run installs Superset first with `make bi-install`), sets
Superset up in a temporary BI_HOME and serves it on a free loopback port. The browser logs in with
the password from BI_ADMIN_PASSWORD, opens the dashboard and checks every chart of bi/superset/
answered with rows and drew them; after the second refresh renames a new snapshot into place,
the same Superset process shows the new numbers.

Marked `bi` (Superset's install takes minutes): `make test` leaves it out, .ci/run runs it with
`pytest -m bi tests/bi`.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import time
from datetime import date, timedelta
from pathlib import Path
from urllib.request import urlopen

import dagster as dg
import duckdb
import pytest
import yaml

# The sandbox singleton reads its size once, before the definitions are built.
os.environ.setdefault("SANDBOX_SCALE", "small")

from orchestration.definitions import build_definitions  # noqa: E402
from orchestration.jobs import range_tags  # noqa: E402
from orchestration.settings import PROJECT_ROOT, Settings  # noqa: E402

pytestmark = pytest.mark.bi

CHARTS_DIR = PROJECT_ROOT / "bi" / "superset" / "charts"
FIRST_DAYS, SECOND_DAYS = 21, 7
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_TIMEOUT_S = 900


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Refresher:
    """Runs the project's refresh job over parts of one range, on one warehouse and snapshot."""

    def __init__(self, tmp_path: Path, days: int):
        yesterday = date.today() - timedelta(days=1)
        self.settings = Settings(
            warehouse_path=tmp_path / "warehouse.duckdb",
            serving_path=tmp_path / "serving" / "marts.duckdb",
            history_start=yesterday - timedelta(days=days - 1),
            nightly_timezone="UTC",
            nightly_cron="0 2 * * *",
            nightly_schedule_running=True,
        )
        self.job = build_definitions(self.settings).resolve_job_def("refresh_warehouse")
        self.keys = self.job.partitions_def.get_partition_keys()
        config = yaml.safe_load((PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text())
        self._instance_cm = dg.instance_for_test(overrides=config)
        self.instance = self._instance_cm.__enter__()

    def run(self, first: str, last: str) -> None:
        result = self.job.execute_in_process(
            instance=self.instance, tags=range_tags(first, last), raise_on_error=False
        )
        assert result.success, f"refresh {first}..{last} failed"

    def close(self) -> None:
        self._instance_cm.__exit__(None, None, None)


def _snapshot_facts(path: Path) -> dict[str, int]:
    """What the dashboard must show, read from the snapshot itself."""
    with duckdb.connect(str(path), read_only=True) as conn:
        one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "days": one("select count(*) from mart_dark_social_daily"),
            "weeks": one("select count(distinct date_trunc('week', date)) from mart_dark_social_daily"),
            "pages": one("select count(distinct landing_path) from mart_dark_social_content"),
            "advocates": one("select count(*) from mart_member_engagement where is_advocate_candidate"),
        }


@pytest.fixture(scope="module")
def refresher(tmp_path_factory):
    refresher = Refresher(tmp_path_factory.mktemp("bi-warehouse"), FIRST_DAYS + SECOND_DAYS)
    refresher.run(refresher.keys[0], refresher.keys[FIRST_DAYS - 1])
    yield refresher
    refresher.close()


@pytest.fixture(scope="module")
def superset(refresher, tmp_path_factory):
    """`make bi` on the first snapshot, in its own process group; stopped (group and all) after."""
    port = _free_port()
    password = secrets.token_urlsafe(12)
    log_path = tmp_path_factory.mktemp("bi-log") / "make-bi.log"
    bi_home = tmp_path_factory.mktemp("bi-home")
    env = {
        **os.environ,
        "SERVING_PATH": str(refresher.settings.serving_path),
        "BI_HOME": str(bi_home),
        "BI_PORT": str(port),
        "BI_ADMIN_USER": "admin",
        "BI_ADMIN_PASSWORD": password,
    }
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "bi"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"make bi exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                with urlopen(f"{url}/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Superset not up after {STARTUP_TIMEOUT_S}s:\n{log_path.read_text()[-4000:]}")
            time.sleep(2)
        yield {"url": url, "password": password, "process": process, "log": log_path, "home": bi_home}
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Dashboard:
    """The dashboard in one logged-in page, with every chart-data answer it received."""

    def __init__(self, browser, url: str, password: str):
        self.url = url
        # A tall window, so that every chart is in view and loads without scrolling.
        self.context = browser.new_context(viewport={"width": 1400, "height": 7000})
        self.page = self.context.new_page()
        # Nothing leaves the machine: Superset's pages reference a telemetry pixel on the internet.
        self.page.route("**/*", self._loopback_only)
        self.answers: dict[int, dict] = {}
        self.page.on("response", self._record)
        self.page.goto(f"{url}/login/")
        self.page.fill("#username", "admin")
        self.page.fill("#password", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(lambda u: "/login" not in u, timeout=60_000)

    def _loopback_only(self, route) -> None:
        if route.request.url.startswith(self.url):
            route.continue_()
        else:
            route.abort()

    def _record(self, response) -> None:
        if "/api/v1/chart/data" not in response.url or response.request.method != "POST":
            return
        slice_id = response.request.post_data_json["form_data"]["slice_id"]
        try:
            body = response.json()
        except Exception as exc:  # an HTML error page instead of JSON
            body = {"error": f"HTTP {response.status}: {exc}"}
        self.answers[slice_id] = {"status": response.status, **body}

    def open(self, expected_charts: int) -> None:
        self.answers.clear()
        self.page.goto(f"{self.url}/superset/dashboard/marketing/?standalone=1")
        deadline = time.monotonic() + 180
        while len(self.answers) < expected_charts and time.monotonic() < deadline:
            self.page.wait_for_timeout(500)
        self.page.wait_for_load_state("networkidle")

    def chart(self, title: str):
        holder = self.page.locator(".dashboard-component-chart-holder").filter(
            has=self.page.locator("[data-test=editable-title]", has_text=title)
        )
        assert holder.count() == 1, f"chart {title!r} is not on the dashboard once"
        return holder

    def big_number(self, title: str) -> str:
        return self.chart(title).locator(".header-line").inner_text().strip()


def test_superset_reads_the_snapshot_read_only_and_logs_no_password(refresher, superset):
    with sqlite3.connect(superset["home"] / "superset.db") as meta:
        rows = meta.execute("select sqlalchemy_uri, extra, allow_dml from dbs").fetchall()
    assert len(rows) == 1
    uri, extra, allow_dml = rows[0]
    assert uri == f"duckdb:///{refresher.settings.serving_path}?access_mode=read_only"
    config = json.loads(extra)["engine_params"]["connect_args"]["config"]
    assert config == {"enable_external_access": False}
    assert not allow_dml
    assert password_not_logged(superset)


def password_not_logged(superset) -> bool:
    logs = [superset["log"], superset["home"] / "setup.log"]
    return all(superset["password"] not in path.read_text() for path in logs)


def _chart_files() -> dict[str, dict]:
    return {path.stem: yaml.safe_load(path.read_text()) for path in sorted(CHARTS_DIR.glob("*.yaml"))}


def test_dashboard_charts_load_with_data_then_show_the_next_snapshot_without_a_restart(
    refresher, superset, browser
):
    charts = _chart_files()
    assert len(charts) >= 10, "the dashboard as code lost its charts"
    dashboard = Dashboard(browser, superset["url"], superset["password"])

    # First snapshot: every chart answered with rows and drew them.
    first = _snapshot_facts(refresher.settings.serving_path)
    assert first["days"] == FIRST_DAYS
    dashboard.open(len(charts))
    assert len(dashboard.answers) == len(charts), "not every chart asked for its data"
    for slice_id, answer in dashboard.answers.items():
        assert answer["status"] == 200, f"chart {slice_id}: {answer}"
        for result in answer["result"]:
            assert result["status"] == "success" and result["error"] is None, f"chart {slice_id}: {result}"
            assert result["rowcount"] >= 1, f"chart {slice_id} answered with no rows"
    page = dashboard.page
    assert page.locator("[data-test=chart-error], .ant-alert-error").count() == 0
    for chart in charts.values():
        holder = dashboard.chart(chart["slice_name"])
        viz = chart["viz_type"]
        if viz.startswith("echarts") or viz == "heatmap_v2":
            # ECharts draws on a canvas: one per chart, with its size set.
            assert holder.locator("canvas").count() >= 1, chart["slice_name"]
        elif viz == "table":
            assert holder.locator("table tbody tr").count() >= 1, chart["slice_name"]
        elif viz == "big_number_total":
            assert dashboard.big_number(chart["slice_name"]) != "", chart["slice_name"]

    # The numbers are the snapshot's.
    assert dashboard.big_number("Days loaded") == str(FIRST_DAYS)
    by_name = _rows_by_chart_name(dashboard, charts)
    assert by_name["Dark social share per week (low, high, 28-day trend)"] == first["weeks"]
    assert by_name["Top pages by dark-social sessions"] == min(15, first["pages"])
    assert by_name["Advocates"] == min(25, first["advocates"])
    page.screenshot(path=str(superset["log"].parent / "dashboard-first.png"), full_page=True)

    # Second refresh: a new snapshot renamed into place while Superset keeps running.
    refresher.run(refresher.keys[FIRST_DAYS], refresher.keys[-1])
    second = _snapshot_facts(refresher.settings.serving_path)
    assert second["days"] == FIRST_DAYS + SECOND_DAYS
    assert superset["process"].poll() is None, "Superset stopped during the refresh"
    dashboard.open(len(charts))
    assert dashboard.big_number("Days loaded") == str(FIRST_DAYS + SECOND_DAYS)
    by_name = _rows_by_chart_name(dashboard, charts)
    assert by_name["Dark social share per week (low, high, 28-day trend)"] == second["weeks"]
    assert second["weeks"] > first["weeks"]
    assert superset["process"].poll() is None
    dashboard.context.close()


def _rows_by_chart_name(dashboard: Dashboard, charts: dict[str, dict]) -> dict[str, int]:
    """Rows each chart's query returned, by chart title (Superset numbers charts on import)."""
    names = {}
    for slice_id, answer in dashboard.answers.items():
        title = dashboard.page.evaluate(
            "id => fetch(`/api/v1/chart/${id}`).then(r => r.json()).then(j => j.result.slice_name)", slice_id
        )
        names[title] = answer["result"][0]["rowcount"]
    assert set(names) == {c["slice_name"] for c in charts.values()}
    return names
