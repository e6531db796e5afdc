"""The dashboard under load, in a real browser: four sessions press Plan at once (each with its
own number of micro-batches), a fifth opens Home while they solve and must load within 3 s, and
each of the four ends with the plan of its own scenario. Solves queue for the worker processes
(one per core), and the queue position is on the page.

Also in a real browser: a model whose name and description are Markdown is shown as text, and
the image it names is never fetched.
"""
from __future__ import annotations

import http.server
import json
import os
import threading
import time
from typing import ClassVar

import pytest
from test_browser import BARS, CHROMIUM, CHROMIUM_ARGS, server, settle  # noqa: F401  (server: a fixture)

from opplan.limits import cores
from opplan.ui.caps import ONE_VALUE

pytestmark = [pytest.mark.browser]
FIRST_PAGE_BUDGET = 3.0   # the target, printed beside the measurement
STARVED = 12.0            # what fails the test: a server starved by the solves, as before worker processes
OTHER_WORK_LIMIT = 1.0       # load average per core from other work above which a page load time means nothing
DEVICES = 8
MICROBATCHES = (24, 26, 28, 30)      # 1F1B's iteration is 3(M + P - 1): each session's own number
# under a cap of 5 activation units (the default of "one value") the planner uses its whole time
# limit (10 s) on these scenarios: the four solves overlap the fifth session's visit


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_home(browser, url: str):
    page = browser.new_context(viewport={"width": 1400, "height": 1800}).new_page()
    page.set_default_timeout(90_000)
    page.goto(url)
    settle(page)
    return page


def type_number(page, label: str, value: float) -> None:
    """Type a value and commit it (the rerun it starts is awaited by the caller)."""
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")


def wait_for_any(pages, text: str, seconds: float) -> bool:
    """True once any of ``pages`` shows ``text``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if any(page.get_by_text(text, exact=False).count() for page in pages):
            return True
        time.sleep(0.2)
    return False


def one_f_one_b_iteration(page) -> float:
    page.wait_for_function("[...document.querySelectorAll('[data-testid=stTable] thead th')]"
                           ".some(th => th.innerText.trim().startsWith('iteration'))")
    table = page.locator("[data-testid=stTable] table")
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    column = next((k for k, h in enumerate(headers) if h.startswith("iteration")), None)
    assert column is not None, headers
    for row in table.locator("tbody tr").all():
        cells = row.locator("th, td").all_inner_texts()
        if cells[0].strip() == "1F1B":
            return float(cells[column].replace(",", ""))
    raise AssertionError(f"no 1F1B row in {headers}")


def test_four_sessions_solve_while_a_fifth_loads_quickly(server, browser):  # noqa: F811
    busy = os.getloadavg()[0] / cores()       # other work on the machine, before this test adds its own
    began = time.monotonic()
    pages = [browser.new_context(viewport={"width": 1400, "height": 1800}).new_page() for _ in MICROBATCHES]
    for page in pages:                      # the sessions are set up side by side, as users would
        page.set_default_timeout(90_000)
        page.goto(server)
    for page in pages:
        page.wait_for_selector('.stApp[data-test-script-state="notRunning"]')
    for page, m in zip(pages, MICROBATCHES):
        type_number(page, "Micro-batches", m)
    for page, m in zip(pages, MICROBATCHES):
        page.wait_for_function(f"document.querySelector('.stApp[data-test-script-state=\"notRunning\"]') && "
                               f"[...document.querySelectorAll('input')].some(i => i.value === '{m}')")
        page.locator("[data-testid=stSelectbox]").filter(has_text="Memory cap per device").click()
        page.get_by_role("option", name=ONE_VALUE).click()
    for page in pages:
        page.get_by_label("Cap (activation units)").wait_for()
        settle(page)
    print(f"\n4 sessions set up in {time.monotonic() - began:.1f} s")
    for page in pages:                      # as close to "at once" as four users get
        page.get_by_role("button", name="Plan", exact=True).click()
    # more solves than workers: the later ones show where they stand in the queue
    if len(pages) > cores():
        assert wait_for_any(pages, "waiting for a free solver", 20.0), "no session showed its queue position"

    fifth = browser.new_context().new_page()
    fifth.set_default_timeout(120_000)
    t0 = time.monotonic()
    fifth.goto(server)
    fifth.get_by_role("button", name="Plan", exact=True).wait_for()
    fifth.wait_for_selector('.stApp[data-test-script-state="notRunning"]')
    load = time.monotonic() - t0
    print(f"fifth session's Home page loaded in {load:.2f} s while 4 sessions solve "
          f"({cores()} worker(s) at a time; load average per core from other work: {busy:.1f})")
    still_solving = sum(not p.locator("[data-testid=stTable]").count() for p in pages)

    for page, m in zip(pages, MICROBATCHES):
        page.wait_for_function(f"document.querySelectorAll('{BARS}').length > 100", timeout=90_000)
        settle(page)
        assert one_f_one_b_iteration(page) == 3 * (m + DEVICES - 1), f"session with M={m} shows another scenario"
        # the headline: success, warning, or (a cap below every expert schedule's peak) info
        assert page.locator("[data-testid=stAlertContentSuccess], [data-testid=stAlertContentWarning], "
                            "[data-testid=stAlertContentInfo]").count()
    print(f"all four solved with their own scenarios in {time.monotonic() - began:.1f} s")
    # the 3 s target is judged on a machine doing only this test's work, and then only loosely
    # (a second test-suite process or a noisy neighbour doubles it): the time is printed above; the
    # assertion catches the starvation the issue measured (20-25 s), not scheduling noise
    if busy < OTHER_WORK_LIMIT:
        assert still_solving, "the fifth session must load while the others solve"
        assert load <= STARVED, f"the fifth session waited {load:.2f} s (target {FIRST_PAGE_BUDGET:g} s)"


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self):
        _Recorder.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_markdown_in_a_model_is_text_and_nothing_is_fetched(server, browser, tmp_path):  # noqa: F811
    listener = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    pixel = f"http://127.0.0.1:{listener.server_address[1]}/pixel.png"
    name = f"![tracker]({pixel}) :red[red] **bold**"
    model = {"format": "opplan-model/1", "name": name, "description": f"see ![desc]({pixel}?d) [link](javascript:x)",
             "operators": [{"id": k, "time": {"forward": 1, "input_grad": 1, "weight_grad": 1},
                            "activation_bytes": 1e8} for k in ("a", "b")], "edges": [{"src": "a", "dst": "b"}]}
    page = open_home(browser, server)
    page.locator("[data-testid=stSidebarNav] a", has_text="Model").click()
    settle(page)
    page.locator("[data-testid=stMain] [data-testid=stFileUploaderDropzoneInput]").set_input_files(
        files=[{"name": "![f](x).json", "mimeType": "application/json", "buffer": json.dumps(model).encode()}])
    settle(page)
    main = page.locator("[data-testid=stMain]")
    main.get_by_text(name, exact=False).first.wait_for()
    page.wait_for_timeout(1000)
    listener.shutdown()
    assert _Recorder.hits == [], "the browser fetched the address the model named"
    images = page.evaluate("[...document.querySelectorAll('img')].map(i => i.src)")
    assert not any("127.0.0.1" in src for src in images), images
    assert "javascript:x" in main.inner_text() and not page.locator("a[href^='javascript']").count()
