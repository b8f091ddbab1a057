"""The notebooks as a learner meets them: JupyterLab on loopback, Debian's chromium driven by Playwright.

JupyterLab serves a clone of the course (as a learner's machine has it). In the browser, the welcome notebook
and a factor notebook run with Run All; then the test answers a quiz and clicks "Check my work". It asserts that
the widgets render as widgets (never "Loading widget…", an error box or a text repr), that the check's result
table appears with its caption, and that the browser's console shows no error. Screenshots go to
$FACTORLAB_ARTIFACTS/browser (default: .ci/artifacts/browser), for a person to look at.

It needs chromium (Debian's package) and Playwright (`pip install playwright`; its own browser download is not
used): without them the test is skipped, unless FACTORLAB_REQUIRE_BROWSER=1 (CI sets it), which makes their
absence a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from factorlab.process import free_port, port_open, wait_until

from conftest import ROOT

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
RUN_ALL_TIMEOUT = 420  # seconds for a notebook's Run All; the kernel then waits for every cell
NOTHING_STARTED_TIMEOUT = 60  # seconds for the first cell to start once Run All is clicked
# Factor VII's notebook: its messages name $PORT, which must not turn into math (and it runs in about a minute;
# a person looking at another notebook sets FACTORLAB_BROWSER_FACTOR, e.g. to 09_disposability).
FACTOR = os.environ.get("FACTORLAB_BROWSER_FACTOR", "07_port_binding")
NB = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"  # the notebook in the tab on show
# Settings a classroom image would set too: every cell rendered (JupyterLab otherwise leaves the cells out of
# view unrendered, which a test cannot look at), and no pop-up asking whether to fetch Jupyter news.
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}


def _browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    missing = [what for what, there in (("chromium", CHROMIUM), ("playwright", sync_playwright)) if not there]
    if missing:
        reason = f"a real-browser test needs {' and '.join(missing)} (apt-get install chromium; pip install playwright)"
        if os.environ.get("FACTORLAB_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return sync_playwright


@pytest.fixture(scope="module")
def artifacts() -> Path:
    folder = Path(os.environ.get("FACTORLAB_ARTIFACTS", ROOT / ".ci" / "artifacts")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a free loopback port, serving a clone of the course: (base URL, token)."""
    sync_playwright = _browser_or_skip()
    top = tmp_path_factory.mktemp("browser")
    clone = top / "course"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, capture_output=True)
    settings = top / "settings"
    for name, values in SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "PYTHONPATH": str(clone / "src"), "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTER_RUNTIME_DIR": str(top / "runtime"), "HOME": str(top / "home")}
    # Started as a learner starts it, not through factorlab's Process: that caps an app's address space, and a
    # kernel under the cap cannot start the threads a check needs.
    log = top / "jupyterlab.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
                                   f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
                                   f"--ServerApp.root_dir={clone / 'notebooks'}", "--allow-root"], cwd=str(clone),
                                  env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        assert wait_until(lambda: port_open(port) or server.poll() is not None, 60) and server.poll() is None, \
            log.read_text()[-3000:]
        yield f"http://127.0.0.1:{port}", token, sync_playwright
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # JupyterLab shuts its kernels down, and they stop what they started
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


def _run_all(page, base: str, token: str, notebook: str, artifacts: Path) -> list[str]:
    """Open a notebook, Run All, wait until every code cell has run; the browser's console errors."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{base}/lab/tree/{notebook}?reset&token={token}")  # reset: no tabs of an earlier test
    page.wait_for_selector(f"{NB} .jp-CodeCell", timeout=120_000)
    page.wait_for_function("(document.querySelector('.jp-Notebook-ExecutionIndicator') || {}).dataset?.status "
                           "=== 'idle'", timeout=120_000)  # the kernel has started
    # Run > Run All Cells, as a learner does it, once the notebook has the focus (the menu item acts on it).
    page.locator(f"{NB} .jp-Cell").first.click()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    run_all = page.get_by_role("menuitem", name=re.compile(r"^Run All Cells"))
    run_all.and_(page.locator(":not([aria-disabled='true'])")).wait_for(timeout=30_000)
    run_all.click()
    # The stored outputs show counts already: the run has started once a cell shows "[*]" (queued or running),
    # and is done when every code cell shows a count again. Run All stops at a cell that raises: the kernel is
    # then idle with cells left unrun, and the test says which error stopped it.
    deadline, idle_polls, started = time.monotonic() + RUN_ALL_TIMEOUT, 0, False
    while True:
        prompts = page.evaluate("[...document.querySelectorAll('" + NB + " .jp-CodeCell .jp-InputArea-prompt')]"
                                ".map(p => p.textContent)")
        started = started or any("*" in p for p in prompts)
        if started and prompts and all(re.search(r"\[\d+\]", p) for p in prompts):
            return errors
        status = page.evaluate("(document.querySelector('.jp-Notebook-ExecutionIndicator') || {}).dataset?.status")
        idle_polls = idle_polls + 1 if started and status == "idle" and not any("*" in p for p in prompts) else 0
        if idle_polls >= 6 or time.monotonic() > deadline or (not started and time.monotonic() > deadline - (
                RUN_ALL_TIMEOUT - NOTHING_STARTED_TIMEOUT)):
            page.screenshot(path=str(artifacts / f"{Path(notebook).stem}-stopped.png"))
            shown = page.locator(f"{NB} .jp-OutputArea-output[data-mime-type*='stderr']").all_inner_texts()
            raise AssertionError(f"Run All of {notebook} stopped with cells unrun ({prompts.count('[ ]:')} of "
                                 f"{len(prompts)}; kernel {status}); errors shown: {shown[-2:]}")
        time.sleep(0.5)


def _widgets_render(page) -> None:
    """Every widget output is a widget: none still loading, none failed, none shown as its text repr."""
    text = page.locator(NB).inner_text()
    for wrong in ("Loading widget", "Error displaying widget", "VBox(children=", "Button(description=",
                  "[Quiz, run this cell", "[Check my work: "):  # the last two: a panel's text, for widgets not live
        assert wrong not in text, f"{wrong!r} on the page"
    assert page.locator(f"{NB} .widget-button").count() > 0 or page.locator(f"{NB} table").count() > 0


@contextlib.contextmanager
def _browser_page(lab):
    """Debian's chromium, driven by Playwright, with one page the size of a laptop screen: (page, base, token)."""
    base, token, sync_playwright = lab
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000}), base, token
        finally:
            browser.close()


@pytest.mark.timeout(600)
def test_the_welcome_notebook_runs_in_a_browser_and_shows_the_scorecard(lab, artifacts):
    with _browser_page(lab) as (page, base, token):
        errors = _run_all(page, base, token, "00_welcome.ipynb", artifacts)
        _widgets_render(page)
        card = page.locator(f"{NB} table", has_text="Codebase").last
        card.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "00_welcome-scorecard.png"))
        assert card.is_visible()
        assert errors == [], errors


@pytest.mark.timeout(600)
def test_a_factor_notebook_runs_in_a_browser_quizzes_and_checks(lab, artifacts):
    with _browser_page(lab) as (page, base, token):
        errors = _run_all(page, base, token, f"{FACTOR}.ipynb", artifacts)
        _widgets_render(page)
        quiz = page.locator(f"{NB} .widget-radio-box").first
        quiz.scroll_into_view_if_needed()
        quiz.locator("label").first.click()
        feedback = page.locator(f"{NB} .widget-html", has_text=re.compile("Right|Not quite")).first
        feedback.wait_for(timeout=30_000)
        page.screenshot(path=str(artifacts / f"{FACTOR}-quiz.png"))
        button = page.get_by_role("button", name="Check my work")
        assert button.count() == 1
        box = page.locator(f"{NB} .widget-vbox", has=button).last  # the button's own box, and its output
        assert box.locator("table").count() == 0
        button.click()
        table = box.locator("table", has=page.locator("caption", has_text=f"{FACTOR}:")).first
        table.wait_for(timeout=120_000)
        table.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / f"{FACTOR}-check.png"))
        assert table.locator("mjx-container").count() == 0, "MathJax typeset the table's $…$ as math"
        caption = table.locator("caption").inner_text()
        assert re.fullmatch(rf"{FACTOR}: \d+ passed, \d+ failed|{FACTOR}: \d+ failed", caption.strip()), caption
        assert errors == [], errors


@pytest.mark.timeout(600)
def test_a_factor_notebook_opened_shows_its_widgets_from_the_saved_state(lab, artifacts):
    """Before anything runs: an untrusted notebook shows each panel's text (what it is, what to do); trusted, it
    draws the widgets from the state saved in the notebook, which keeps only what differs from the defaults."""
    with _browser_page(lab) as (page, base, token):
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{base}/lab/tree/{FACTOR}.ipynb?reset&token={token}")
        page.wait_for_selector(f"{NB} .jp-CodeCell", timeout=120_000)
        page.wait_for_function("(document.querySelector('.jp-Notebook-ExecutionIndicator') || {}).dataset"
                               "?.status === 'idle'", timeout=120_000)
        plain = page.locator(f"{NB} .jp-OutputArea-output", has_text="[Quiz, run this cell to answer it]")
        check = page.locator(f"{NB} .jp-OutputArea-output", has_text="[Check my work: ")
        check.first.wait_for(timeout=60_000)  # the outputs are drawn after the cells, in order: the check's last
        assert plain.count() >= 1 and check.count() == 1
        plain.first.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / f"{FACTOR}-opened.png"))
        page.locator(f"{NB} .jp-Cell").first.click()
        page.keyboard.press("Control+Shift+C")  # the command palette: Trust Notebook, as a learner would
        page.keyboard.type("Trust Notebook")
        page.keyboard.press("Enter")
        page.locator(".jp-Dialog button.jp-mod-accept").click()
        radio = page.locator(f"{NB} .widget-radio-box").first
        radio.wait_for(timeout=60_000)
        assert radio.locator("label").count() >= 2 and radio.locator("input:checked").count() == 0
        assert page.get_by_role("button", name="Check my work").count() == 1
        radio.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / f"{FACTOR}-trusted.png"))
        _widgets_render(page)
        assert errors == [], errors


@pytest.mark.timeout(900)
def test_the_capstone_runs_in_a_browser_and_scores_the_learners_folder(lab, artifacts):
    """The capstone with Run All: its figures plotted, its scorecard drawn; then "Score my app" scores the
    learner's exercises/12 (as shipped: factor XII's checks fail, and the table names them)."""
    with _browser_page(lab) as (page, base, token):
        errors = _run_all(page, base, token, "13_capstone.ipynb", artifacts)
        _widgets_render(page)
        assert page.locator(f"{NB} .jp-RenderedImage img").count() >= 2, "the figures are drawn"
        card = page.locator(f"{NB} table", has=page.locator("caption", has_text="the app this notebook ran"))
        card.first.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "13_capstone-scorecard.png"))
        assert "12 of 12 factors pass" in card.first.locator("caption").inner_text()
        button = page.get_by_role("button", name="Score my app")
        assert button.count() == 1
        box = page.locator(f"{NB} .widget-vbox", has=button).last
        button.click()
        mine = box.locator("table", has=page.locator("caption", has_text="exercises/12_admin_processes")).first
        mine.wait_for(timeout=300_000)
        mine.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "13_capstone-score-mine.png"))
        caption = mine.locator("caption").inner_text().strip()
        assert re.fullmatch(r"exercises/12_admin_processes: \d+ of 12 factors pass", caption), caption
        assert "12 of 12" not in caption and "purge-expired" in mine.inner_text()
        assert errors == [], errors


@pytest.mark.timeout(300)
def test_the_grading_report_renders_its_matrix_and_a_cell_opens_its_messages(tmp_path, artifacts):
    """report.html of a real `factorlab grade` (three submissions, one rejected), opened in chromium: a row per
    submission, a column per factor, and a failing cell's badge opens to the checks' messages."""
    sync_playwright = _browser_or_skip()
    for name, source in (("solved", "solutions"), ("shipped", "exercises")):
        for exercise in ("01_codebase", "02_dependencies"):
            shutil.copytree(ROOT / source / exercise, tmp_path / name / "exercises" / exercise)
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    done = subprocess.run([sys.executable, "-m", "factorlab", "grade", str(tmp_path / "solved"),
                           str(tmp_path / "shipped"), str(tmp_path / "broken.zip"), "--runner", "local",
                           "--factors", "01-02", "--out", str(tmp_path / "grades")],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    with _browser_page((None, None, sync_playwright)) as (page, _, _):
        page.goto((tmp_path / "grades" / "report.html").as_uri())
        assert page.locator("#grades > tbody > tr").count() == 3
        assert page.locator("#grades > thead > tr > th").count() == 4  # submission, score, I, II
        assert page.locator("tr[data-student='solved'] td[data-status='passed']").count() == 2
        rejected = page.locator("tr[data-student='broken'] .reason")
        assert "not a readable archive" in rejected.inner_text()
        cell = page.locator("tr[data-student='shipped'] td[data-factor='01_codebase']")
        assert cell.get_attribute("data-status") == "failed"
        message = cell.locator(".message").first
        assert not message.is_visible()
        cell.locator("summary").click()
        message.wait_for(state="visible", timeout=5000)
        assert "Seen:" in cell.inner_text()
        page.screenshot(path=str(artifacts / "grading-report.png"), full_page=True)
