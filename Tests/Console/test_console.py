"""The web console in a real headless browser (Debian's chromium and chromium-driver, through Selenium).

One scenario against a real carmad (``$CARMA_BIN``, else ``.build/debug/carmad``), on each backend:
``embedded`` (its own data directory) and ``postgres`` (cluster mode on a throw-away PostgreSQL 15
started with ``scripts/pg-sandbox.sh``; the test fails, not skips, when its binaries are missing).
20 linked fragments are stored, one of them holding markup that would run if the console rendered
content as HTML; three records are damaged (two in the primary copy only, so a cycle restores them
exactly; one in both copies, so only reconstruction can bring it back): on the embedded backend
carmad is stopped, ``carmad faults`` zeroes the records and carmad is started again; on the cluster
backend the rows are deleted with ``psql`` while carmad runs. Then the browser searches, opens
fragments, sees a blank's repair state, presses "Dream now" on the Health page, waits until the list
shows the blanks repaired, checks that the hostile fragment's markup is shown as text and never ran,
draws the topology, and the topology before and after the cycle that repaired the blanks.

Every wait is explicit with a timeout (WebDriverWait); nothing sleeps to let something happen.
Screenshots of each page go to ``$CARMA_CONSOLE_ARTIFACTS`` (default ``bench-results/console``,
git-ignored).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

selenium = pytest.importorskip("selenium", reason="selenium (scripts/install-deps.sh --test installs it)")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
MANUAL_DREAM_ONLY = ["--dream-interval", "3600", "--dream-max-interval", "3600", "--dream-idle-delay", "100000"]
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
TIMEOUT = 30
PG_BIN = Path(os.environ.get("PG_BIN") or "/usr/lib/postgresql/15/bin")
BACKENDS = ["embedded", "postgres"]


def carmad_binary() -> Path:
    path = Path(os.environ.get("CARMA_BIN") or REPO_ROOT / ".build" / "debug" / "carmad")
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"carmad not found at {path}: build it (swift build --product carmad) or set CARMA_BIN", pytrace=False)
    return path


class Carmad:
    """carmad on a port it picks itself (read back from its JSON log), on a data directory that outlives it."""

    def __init__(self, data_dir: Path, log_path: Path, extra_args: Optional[List[str]] = None) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        args = [str(carmad_binary()), "--data-dir", str(data_dir), "--port", "0", "--log-format", "json",
                "--cache-bytes", "0", *MANUAL_DREAM_ONLY, *(extra_args or [])]
        self.log = open(log_path, "ab")
        self.offset = log_path.stat().st_size
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.port = self._wait_for_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def _wait_for_port(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_path.read_bytes()[self.offset:].decode("utf-8", "replace").splitlines():
                if "carmad listening" in line:
                    return int(json.loads(line)["http.port"])
            if self.process.poll() is not None:
                raise RuntimeError(f"carmad exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            time.sleep(0.05)  # polling the log for the port, not a wait for an outcome
        raise RuntimeError("carmad did not report its port")

    def request(self, method: str, path: str, body: Optional[dict] = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, json.loads(raw) if raw else {}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


TOPICS = [
    "The build server moved to rack 4 in the east machine room.",
    "Rack 4 has its own UPS and a dedicated network switch.",
    "The network switch in rack 4 was replaced in March.",
    "Backups of the build server run nightly at two in the morning.",
    "Nightly backups are copied to the offsite storage bucket.",
    # Longer than a sketch holds verbatim (320 bytes), so that, lost in both logs, it is rebuilt
    # approximately from its neighbours (note-04, note-06) rather than restored exactly.
    "The offsite bucket keeps thirty days of backup history. Nightly backups are copied to the offsite "
    "storage bucket after the build server finishes its backup run. Deploys go through the staging cluster "
    "before production, and the bucket also receives a copy of every staging database snapshot. Restores "
    "are tested once a month by the on-call engineer, who records the restore time in the ops board.",
    "Deploys go through the staging cluster before production.",
    "The staging cluster runs the same kernel as production.",
    "Production kernels are patched on the first Tuesday of the month.",
    "Patch Tuesday changes are announced in the ops channel.",
    "The ops channel is where on-call engineers coordinate incidents.",
    "On-call rotation changes every Monday at nine.",
    "Incident reviews are written within two days of an outage.",
    "Outage reviews list the timeline, the cause and the follow-ups.",
    "Follow-up tasks from reviews are tracked in the ops board.",
    "The ops board is reviewed in the weekly infrastructure meeting.",
    "The infrastructure meeting is on Thursdays after lunch.",
    "Lunch orders for the meeting go through the office manager.",
    "The office manager also handles badge access to the machine room.",
]


class Postgres:
    """A throw-away PostgreSQL 15 (scripts/pg-sandbox.sh) in its own temporary directory, on a free port."""

    def __init__(self) -> None:
        missing = [tool for tool in ("initdb", "pg_ctl", "postgres", "psql", "createdb", "pg_isready")
                   if not os.access(PG_BIN / tool, os.X_OK)]
        if missing:
            pytest.fail(f"PostgreSQL 15 binaries missing in {PG_BIN} ({', '.join(missing)}): the postgres case needs them; "
                        "install them with scripts/install-deps.sh --test (apt-get install postgresql-15) or set PG_BIN",
                        pytrace=False)
        # Directly under the temporary directory: when run as root, the script hands it to the
        # postgres user, who must be able to reach it.
        self.directory = Path(tempfile.mkdtemp(prefix="carma-console-pg-"))
        started = subprocess.run([str(REPO_ROOT / "scripts" / "pg-sandbox.sh"), "start", str(self.directory)],
                                 capture_output=True, text=True)
        if started.returncode != 0:
            shutil.rmtree(self.directory, ignore_errors=True)
            pytest.fail(f"pg-sandbox.sh start failed:\n{started.stdout}{started.stderr}", pytrace=False)
        self.url = started.stdout.strip().splitlines()[-1]
        assert self.url.startswith("postgresql://postgres@127.0.0.1:") and self.url.endswith("/carma"), self.url
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])

    def psql(self, sql: str) -> str:
        done = subprocess.run([str(PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
                               "-U", "postgres", "-d", "carma", "-tAc", sql], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def destroy(self) -> None:
        subprocess.run([str(REPO_ROOT / "scripts" / "pg-sandbox.sh"), "stop", str(self.directory)], capture_output=True)
        shutil.rmtree(self.directory, ignore_errors=True)


def sql_list(ids: List[str]) -> str:
    return ",".join("'" + fragment.replace("'", "''") + "'" for fragment in ids)


@pytest.fixture(scope="module", params=BACKENDS)
def store(request) -> Iterator[Carmad]:
    backend = request.param
    root = Path(tempfile.mkdtemp(prefix="carma-console-"))
    data_dir, log_path = root / "data", root / "carmad.log"
    database = Postgres() if backend == "postgres" else None
    extra = ["--database-url", database.url, "--node-name", "console-test"] if database else []
    server = None
    try:
        server = Carmad(data_dir, log_path, extra)
        for index, content in enumerate(TOPICS):
            links = [f"note-{(index + 1) % len(TOPICS):02d}"]
            if index % 3 == 0:
                links.append(f"note-{(index + 2) % len(TOPICS):02d}")
            status, _ = server.request("PUT", f"/fragments/note-{index:02d}", {
                "content": content, "links": links, "tags": ["infra", "ops" if index % 2 else "hardware"],
                "metadata": {"source": "console-test", "n": index}})
            assert status == 201
        status, _ = server.request("PUT", "/fragments/hostile", {
            "content": XSS, "links": ["note-00"], "tags": ["xss"]})
        assert status == 201
        # note-01 and note-02: primary copy only (a cycle restores them exactly); note-05: both
        # copies (left for reconstruction from its neighbours).
        if database:
            # Cluster mode: the rows go while carmad runs (a read finds them missing).
            database.psql(f"DELETE FROM carma_payloads WHERE id IN ({sql_list(['note-01', 'note-02', 'note-05'])})")
            database.psql(f"DELETE FROM carma_redundancy WHERE id IN ({sql_list(['note-05'])})")
        else:
            server.stop()
            for log, ids in (("primary", ["note-01", "note-02"]), ("both", ["note-05"])):
                done = subprocess.run([str(carmad_binary()), "faults", "--data-dir", str(data_dir), "--log", log, "zero", *ids],
                                      capture_output=True, text=True)
                assert done.returncode == 0, done.stdout + done.stderr
            server = Carmad(data_dir, log_path)
        server.backend = backend
        # What a read reports: zeroed bytes fail the checksum; a deleted row is missing.
        server.blank_reason = "missing" if database else "checksum_mismatch"
        # Agents read them: each read finds the damage and serves a flagged blank.
        for fragment in ("note-01", "note-02", "note-05"):
            status, body = server.request("GET", f"/fragments/{fragment}")
            assert status == 200 and body["status"] == "blank", body
        yield server
    finally:
        if server:
            server.stop()
        if database:
            database.destroy()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = Options()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    # The browser's console log, to check that the Content-Security-Policy refused nothing.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary:
        options.binary_location = binary
    driver_path = shutil.which("chromedriver")
    service = Service(executable_path=driver_path) if driver_path else Service()
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(TIMEOUT)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    path = Path(os.environ.get("CARMA_CONSOLE_ARTIFACTS") or REPO_ROOT / "bench-results" / "console")
    path.mkdir(parents=True, exist_ok=True)
    return path


def wait(driver, condition, timeout: float = TIMEOUT):
    return WebDriverWait(driver, timeout).until(condition)


def text_of(driver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def screenshot(driver, path: Path) -> None:
    """The whole page (up to 1600 px tall), then the window back to its size."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(900, height + 140), 1600))
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 900)


def list_statuses(driver) -> dict:
    """The list's rows, id to status, read in one script (no element can go stale in between)."""
    pairs = driver.execute_script(
        "return Array.from(document.querySelectorAll('#fragment-table tr.list-row'), r => [r.dataset.id, r.dataset.status])")
    return dict(pairs)


def graph_nodes(driver, svg_id: str) -> dict:
    """A drawing's nodes, id to (status, x, y), read in one script."""
    rows = driver.execute_script(
        "return Array.from(document.querySelectorAll('#' + arguments[0] + ' [data-id]'), n => {"
        " const c = n.querySelector('circle'); return [n.dataset.id, n.dataset.status, c.getAttribute('cx'), c.getAttribute('cy')]; })",
        svg_id)
    return {row[0]: tuple(row[1:]) for row in rows}


def test_console_in_a_browser(store: Carmad, browser: webdriver.Chrome, artifacts: Path) -> None:
    driver = browser
    # The embedded run's screenshots go to the artifacts directory itself (the one docs/console is refreshed from), the others to a subdirectory.
    if store.backend != "embedded":
        artifacts = artifacts / store.backend
        artifacts.mkdir(parents=True, exist_ok=True)
    driver.get_log("browser")  # drained: what an earlier run left there (its injected script) is not this run's
    # GET / redirects to the console.
    driver.get(store.url + "/")
    wait(driver, EC.url_contains("/ui"))
    wait(driver, EC.presence_of_element_located((By.CSS_SELECTOR, "#fragment-table tr.list-row")))

    # The list: 20 fragments, the damaged ones flagged blank; 25 a page, so one page.
    statuses = list_statuses(driver)
    assert len(statuses) == 20
    assert {statuses["note-01"], statuses["note-02"], statuses["note-05"]} == {"blank"}
    assert statuses["note-00"] == "ok"

    # Paging: 10 a page, the next page by its cursor, back to the first.
    Select(driver.find_element(By.ID, "list-limit")).select_by_value("10")
    wait(driver, lambda d: len(list_statuses(d)) == 10)
    first_page = list(list_statuses(driver))
    driver.find_element(By.ID, "next-page").click()
    wait(driver, lambda d: list(list_statuses(d)) != first_page)
    second_page = list(list_statuses(driver))
    assert len(second_page) == 10 and first_page[-1] < second_page[0]
    driver.find_element(By.ID, "first-page").click()
    wait(driver, lambda d: list(list_statuses(d)) == first_page)

    # Search: the right hit first, with its score.
    driver.find_element(By.ID, "search-text").send_keys("offsite backup bucket history")
    Select(driver.find_element(By.ID, "search-mode")).select_by_value("text")
    driver.find_element(By.CSS_SELECTOR, "#search-form button[type=submit]").click()
    wait(driver, EC.presence_of_element_located((By.CSS_SELECTOR, "#search-results tr.search-hit")))
    hits = [row.get_attribute("data-id") for row in driver.find_elements(By.CSS_SELECTOR, "#search-results tr.search-hit")]
    assert hits[0] == "note-04", hits
    assert "note-05" in hits  # the blank is found by its sketch, flagged
    assert float(driver.find_element(By.CSS_SELECTOR, "#search-results tr.search-hit td.score").text) > 0
    screenshot(driver, artifacts / "memory.png")

    # A fragment: content, links both ways, history.
    driver.find_element(By.CSS_SELECTOR, "#search-results tr.search-hit[data-id='note-04'] a").click()
    wait(driver, EC.text_to_be_present_in_element((By.ID, "fragment-content"), "Nightly backups are copied"))
    wait(driver, EC.presence_of_element_located((By.CSS_SELECTOR, "#history li[data-kind='created']")))
    wait(driver, EC.presence_of_element_located((By.CSS_SELECTOR, "#links-in a")))
    assert [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#links-out a")] == ["note-05"]
    assert "note-03" in [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#links-in a")]

    # A blank: its repair state, honestly.
    driver.find_element(By.CSS_SELECTOR, "#links-out a").click()
    wait(driver, EC.presence_of_element_located((By.ID, "blank-banner")))
    assert text_of(driver, "#rebuild-state") in ("queued", "failed")
    assert store.blank_reason in text_of(driver, "#blank-banner")
    assert not driver.find_elements(By.ID, "fragment-content")
    screenshot(driver, artifacts / "blank.png")

    # Health: the queue holds the three blanks; "Dream now" runs a cycle and the chart shows it.
    driver.find_element(By.ID, "nav-health").click()
    wait(driver, EC.text_to_be_present_in_element((By.ID, "queue-depth"), "3"))
    assert text_of(driver, "#count-blank") == "3"
    driver.find_element(By.ID, "dream-now").click()
    wait(driver, lambda d: d.find_element(By.ID, "dream-result").get_attribute("data-done") == "true", 60)
    wait(driver, EC.presence_of_element_located((By.CSS_SELECTOR, "#cycle-chart svg rect")))
    wait(driver, EC.text_to_be_present_in_element((By.ID, "count-blank"), "0"))
    screenshot(driver, artifacts / "health.png")

    # Memory list: the two exact repairs are ok again; note-05 (lost in both logs) is no longer blank.
    driver.find_element(By.ID, "nav-memory").click()
    wait(driver, lambda d: list_statuses(d).get("note-01") == "ok" and list_statuses(d).get("note-02") == "ok")
    assert list_statuses(driver)["note-05"] == "reconstructed"

    # The reconstruction is marked, with its confidence and its sources as links.
    driver.get(store.url + "/ui#/fragment/note-05")
    wait(driver, EC.presence_of_element_located((By.ID, "reconstruction-banner")))
    assert "confidence" in text_of(driver, "#reconstruction-banner")
    assert driver.find_elements(By.CSS_SELECTOR, "#reconstruction-sources a")
    screenshot(driver, artifacts / "reconstructed.png")

    # The hostile fragment: its markup is text on the page and never ran.
    driver.get(store.url + "/ui#/fragment/hostile")
    wait(driver, EC.text_to_be_present_in_element((By.ID, "fragment-content"), "<script>"))
    assert text_of(driver, "#fragment-content") == XSS
    assert driver.execute_script("return typeof window.__xss") == "undefined"
    assert not driver.find_elements(By.CSS_SELECTOR, "#fragment-content img, #fragment-content script")

    # Topology around a fragment: nodes coloured by status; a click opens the fragment.
    # (around follows links outward: note-03 links note-04 and note-05)
    driver.get(store.url + "/ui#/topology/note-03")
    wait(driver, EC.presence_of_element_located((By.CSS_SELECTOR, "#topology-graph svg a.graph-node")))
    nodes = {a.get_attribute("data-id"): a.find_element(By.TAG_NAME, "circle").get_attribute("class")
             for a in driver.find_elements(By.CSS_SELECTOR, "#topology-graph svg a.graph-node")}
    assert set(nodes) == {"note-03", "note-04", "note-05"}, nodes
    assert "node-reconstructed" in nodes["note-05"] and "node-ok" in nodes["note-04"] and "node-ok" in nodes["note-03"]
    driver.find_element(By.CSS_SELECTOR, "#topology-graph svg a.graph-node[data-id='note-04']").click()
    wait(driver, EC.text_to_be_present_in_element((By.ID, "fragment-content"), "Nightly backups are copied"))
    assert driver.execute_script("return typeof window.__xss") == "undefined"

    # The whole graph before and after the cycle "Dream now" ran: the same nodes at the same places;
    # before, the three damaged fragments blank; after, two ok and one reconstructed.
    status, dream = store.request("GET", "/dream")
    assert status == 200 and dream["recent_cycles"], dream
    cycle = str(dream["recent_cycles"][0]["id"])
    driver.get(store.url + "/ui#/topology")
    wait(driver, EC.presence_of_element_located((By.CSS_SELECTOR, "#topology-cycle[data-loaded='true']")))
    wait(driver, EC.presence_of_element_located((By.CSS_SELECTOR, "#topology-now a.graph-node")))
    options = [o.get_attribute("value") for o in driver.find_elements(By.CSS_SELECTOR, "#topology-cycle option")]
    assert options[0] == "" and options[1] == cycle, options  # "now", then the newest cycle
    Select(driver.find_element(By.ID, "topology-cycle")).select_by_value(cycle)
    wait(driver, EC.presence_of_element_located((By.CSS_SELECTOR, f".pair[data-cycle='{cycle}'] #topology-after [data-id]")))
    before, after = graph_nodes(driver, "topology-before"), graph_nodes(driver, "topology-after")
    assert len(before) == 20 and set(before) == set(after)
    assert all(before[i][1:] == after[i][1:] for i in before)  # same layout
    assert [before[i][0] for i in ("note-01", "note-02", "note-05")] == ["blank"] * 3, before
    assert [after[i][0] for i in ("note-01", "note-02", "note-05")] == ["ok", "ok", "reconstructed"], after
    assert before["note-00"][0] == after["note-00"][0] == "ok"
    assert "before cycle " + cycle in text_of(driver, ".pair")
    assert "computed from the cycle's report" in text_of(driver, "#topology-caption")
    assert [c.text for c in driver.find_elements(By.CSS_SELECTOR, "#topology-legend .chip")][:3] == ["ok", "blank", "reconstructed"]
    # Side by side on a wide screen, stacked on a narrow one.
    top = "return document.getElementById(arguments[0]).getBoundingClientRect().top"
    assert driver.execute_script(top, "topology-before") == driver.execute_script(top, "topology-after")
    screenshot(driver, artifacts / "topology.png")
    driver.set_window_size(480, 900)
    assert driver.execute_script(top, "topology-before") < driver.execute_script(top, "topology-after")
    driver.set_window_size(1280, 900)

    # The page never needed anything the policy forbids (an inline style or script would show here).
    refused = [entry["message"] for entry in driver.get_log("browser") if "Content Security Policy" in entry["message"]]
    assert refused == []
    # And the policy holds: even a script element put into the page does not run.
    driver.execute_script("const s = document.createElement('script'); s.textContent = 'window.__csp = 1'; document.body.append(s)")
    assert driver.execute_script("return typeof window.__csp") == "undefined"
    driver.get_log("browser")  # that refusal was meant: drained for the next run


def test_dream_now_without_the_token_shows_401(tmp_path: Path, browser: webdriver.Chrome) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-console-token\n")
    data_dir, log_path = tmp_path / "data", tmp_path / "carmad.log"
    # Writes (POST /dream among them) need the token; reads, and the console's files, do not.
    server = Carmad(data_dir, log_path, ["--auth-token-file", str(token_file)])
    try:
        browser.get(server.url + "/ui#/health")
        button = wait(browser, EC.element_to_be_clickable((By.ID, "dream-now")))
        button.click()
        wait(browser, EC.text_to_be_present_in_element((By.ID, "dream-result"), "401"))
        assert "token" in text_of(browser, "#dream-result")
        # With the token, the same button starts a cycle.
        field = browser.find_element(By.ID, "token")
        field.send_keys("s3cret-console-token")
        browser.find_element(By.CSS_SELECTOR, "#token-form button").click()
        button = wait(browser, EC.element_to_be_clickable((By.ID, "dream-now")))
        wait(browser, EC.presence_of_element_located((By.ID, "queue-depth")))
        browser.find_element(By.ID, "dream-now").click()
        wait(browser, lambda d: d.find_element(By.ID, "dream-result").get_attribute("data-done") == "true", 60)
        assert "started" in text_of(browser, "#dream-result")
    finally:
        browser.execute_script("sessionStorage.clear()")
        server.stop()
