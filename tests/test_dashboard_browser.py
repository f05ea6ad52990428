"""The dashboard in a real browser: Voila serves it on a free loopback port, headless Debian
chromium drives it through Playwright (device selection by list and by a heatmap click, an invalid
budget, a small DEMO run), and any page error fails the test. Screenshots before and after the
run go to artifacts/ (not committed). Each mode is tested in its own test, on one server."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
DEMO = "DEMO synthetic (not a predictor)"
START_TIMEOUT = 120  # s: Voila start plus running the notebook on a busy 2-core machine
# the onboarding panel's settings on the test server: a real onboard() run in seconds, not a long pretraining
TINY_ONBOARDING = {"source_devices": ["pixel3", "silver_4114"], "source_epochs": 2, "source_samples": 300,
                   "target_epochs": 5}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def server(tmp_path_factory, mirror):
    pytest.importorskip("voila")
    port = free_port()
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    results = tmp_path_factory.mktemp("results")
    env = dict(os.environ)
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mpwidgets.serve", "--port", str(port), "--space", "fbnet", "--demo",
             "--results", str(results), "--cull-idle-timeout", "120",
             "--onboard-options", json.dumps(TINY_ONBOARDING)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 60
    while not port_open(port):  # not a GET of the page: that would start a kernel
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            pytest.fail(f"Voila did not start on {url}:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    yield {"url": url, "port": port, "log": log, "results": results}
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


def outward_address() -> str | None:
    """This machine's address on its default route (a UDP 'connect' sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))
            address = sock.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def chromium_and_playwright():
    """Playwright's sync API, or a skip (a failure in CI) when Debian's chromium is missing."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):  # CI must prove the dashboard works in a browser, never skip it
            pytest.fail("no /usr/bin/chromium in CI: scripts/install_browser.sh did not install it")
        pytest.skip("no /usr/bin/chromium: run scripts/install_browser.sh (.ci/run does)")
    return pytest.importorskip("playwright.sync_api")


@contextlib.contextmanager
def chromium_page(playwright, name: str):
    """A page in headless chromium that allows downloads; any page error fails the test. On a
    failure its screenshot goes to artifacts/<name>_failure.png and the page and console errors
    are printed."""
    ARTIFACTS.mkdir(exist_ok=True)
    page_errors: list[str] = []
    console: list[str] = []
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # tall: Voila scrolls inside its own container, so a full-page screenshot is only the viewport
            page = browser.new_page(viewport={"width": 1500, "height": 3000}, accept_downloads=True)
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.on("console", lambda m: console.append(f"{m.type}: {m.text[:500]}")
                    if m.type in ("error", "warning") else None)
            try:
                yield page
            except Exception:
                page.screenshot(path=str(ARTIFACTS / f"{name}_failure.png"), full_page=True)
                print("page errors:", page_errors, "\nconsole:", "\n".join(console), sep="\n")
                raise
        finally:
            browser.close()
    assert page_errors == [], f"page errors: {page_errors}"


def test_listens_on_loopback_only(server):
    address = outward_address()
    if address is None:
        pytest.skip("this machine has no address besides loopback")
    with socket.socket() as sock:
        sock.settimeout(2)
        assert sock.connect_ex((address, server["port"])) != 0, f"Voila answers on {address}"


def test_dashboard_in_chromium(server):
    playwright = chromium_and_playwright()
    from mpwidgets.model import ordered_devices

    with chromium_page(playwright, "dashboard") as page:
        page.goto(server["url"], timeout=START_TIMEOUT * 1000)
        page.wait_for_selector(".mp-dashboard", timeout=START_TIMEOUT * 1000)
        heatmap = page.locator(".mp-heatmap-figure .nsewdrag").first
        heatmap.wait_for(timeout=60_000)
        test_picker = page.locator(".mp-devices-test")
        closest = test_picker.locator(".mp-closest")
        closest.wait_for(timeout=30_000)
        assert "pixel3" in closest.inner_text()  # FBNet: pixel3 is every default test device's closest
        page.screenshot(path=str(ARTIFACTS / "dashboard_before.png"), full_page=True)

        # a device picked from the grouped list
        test_picker.locator(".mp-device-test", has_text="gold_6226").locator("input").check()
        page.wait_for_function(
            "() => document.querySelector('.mp-closest').innerText.includes('gold_6226')", timeout=20_000)

        # a device picked by clicking its column of the heatmap (click mode: test)
        names = [d.name for d in ordered_devices("fbnet")]
        box = heatmap.bounding_box()
        column, row = names.index("pixel2"), names.index("gold_6240")  # a middle row: the modebar sits on top
        page.mouse.click(box["x"] + (column + 0.5) * box["width"] / len(names),
                         box["y"] + (row + 0.5) * box["height"] / len(names))
        page.wait_for_function(
            "() => document.querySelector('.mp-closest').innerText.includes('pixel2')", timeout=20_000)
        pixel2 = test_picker.locator(".mp-device-test", has_text="pixel2").locator("input")
        playwright.expect(pixel2).to_be_checked()

        # an invalid budget: explained in words, Run disabled
        budgets = page.locator(".mp-samples input")
        budgets.fill("5, lots")
        budgets.press("Enter")
        error = page.locator(".mp-error")
        error.get_by_text("is not a whole number").wait_for(timeout=20_000)
        assert "Traceback" not in error.inner_text()
        run = page.locator(".mp-run")
        assert run.is_disabled()
        budgets.fill("2, 5")
        budgets.press("Enter")
        page.wait_for_function("() => !document.querySelector('.mp-run').disabled", timeout=20_000)

        # a small run of the DEMO method only
        page.locator(".mp-use_transfer input").uncheck()
        page.locator(".mp-compare", has_text="DEMO").locator("input").check()
        page.locator(".mp-compare", has_text="FLOPs").locator("input").check()  # a real engine method
        repeats = page.locator(".mp-repeats input")
        repeats.fill("2")
        repeats.press("Enter")
        page.wait_for_function("() => !document.querySelector('.mp-run').disabled", timeout=20_000)
        run.click()
        page.locator(".mp-status .mp-status-running").wait_for(timeout=20_000)
        page.locator(".mp-status .mp-status-done").wait_for(timeout=90_000)
        figure = page.locator(".mp-results-figure")
        # plotly.js draws after the last message: wait for a line per test device for DEMO and FLOPs
        playwright.expect(figure.locator(".scatterlayer .trace").nth(9)).to_be_attached(timeout=20_000)
        assert "ρ" in figure.inner_text() or "Spearman" in figure.inner_text()
        table = page.locator(".mp-results-table")
        assert DEMO in table.inner_text() and "FLOPs" in table.inner_text() and "pixel2" in table.inner_text()
        assert "failed" not in page.locator(".mp-status").inner_text()
        link = page.locator(".mp-download-csv")
        assert link.get_attribute("download").endswith(".csv")
        page.screenshot(path=str(ARTIFACTS / "dashboard_after.png"), full_page=True)


def upload(page, panel, path: Path, button: str = ".mp-onboard-upload") -> None:
    """Choose ``path`` in the panel's FileUpload (``button``: its class). Its <input type=file> is
    never in the page (the button clicks a detached one), so the file goes in through the file
    chooser it opens."""
    with page.expect_file_chooser(timeout=20_000) as chooser:
        panel.locator(button).click()
    chooser.value.set_files(str(path))


def test_onboarding_panel_in_chromium(server, tmp_path):
    """Upload a CSV of 20 fpga measurements (FBNet), run onboarding, see the estimate with its
    interval, the scatter and download the predictions; ask for the next 5 archs to measure and
    download them, ask for too many; then a bad CSV shows the CLI's message in the panel."""
    playwright = chromium_and_playwright()
    import numpy as np
    import pandas as pd

    from multipredict.data import help

    latency = help.latency("fbnet", "fpga")
    ids = np.random.default_rng(0).choice(len(latency), 20, replace=False)
    good = tmp_path / "fpga_20.csv"
    pd.DataFrame({"arch": ids, "latency_ms": latency[ids]}).to_csv(good, index=False)
    bad = tmp_path / "wrong_columns.csv"
    bad.write_text("id,ms\n1,2\n")
    with chromium_page(playwright, "onboarding") as page:
        panel = page.locator(".mp-onboarding")
        page.goto(server["url"], timeout=START_TIMEOUT * 1000)
        panel.wait_for(timeout=START_TIMEOUT * 1000)
        assert "source_epochs=2" in panel.inner_text()  # the page says these are not the defaults
        upload(page, panel, good)
        panel.locator(".mp-onboard-source", has_text="fpga_20.csv: 20 measurements").wait_for(timeout=30_000)
        playwright.expect(panel.locator(".mp-onboard-device input")).to_have_value("fpga_20")
        run = panel.locator(".mp-onboard-run")
        playwright.expect(run).to_be_enabled(timeout=10_000)
        run.click()
        estimate = panel.locator(".mp-onboard-estimate", has_text="Cross-validated Spearman")
        estimate.wait_for(timeout=300_000)
        assert "closest public device" in estimate.inner_text()
        playwright.expect(panel.locator(".mp-onboard-status")).to_contain_text("done: predicted 5000 archs")
        figure = panel.locator(".mp-onboard-figure")
        playwright.expect(figure.locator(".scatterlayer .trace .point")).to_have_count(20, timeout=30_000)
        assert "measured latency (ms)" in figure.inner_text()
        assert "pixel3" in panel.locator(".mp-onboard-summary").inner_text()
        with page.expect_download(timeout=30_000) as download:
            panel.locator(".mp-onboard-download-predictions").click()
        predictions = pd.read_csv(download.value.path())
        assert download.value.suggested_filename == "fpga_20_predictions.csv"
        assert len(predictions) == 5000 and predictions["predicted_ms"].notna().all()
        assert predictions["measured_ms"].notna().sum() == 20
        # the estimate on the archs not measured, with its interval (FBNet has a calibration) and the advice
        text = estimate.inner_text()
        found = re.search(r"did not measure: (\d\.\d{3}) \(80% interval (\d\.\d{3})-(\d\.\d{3})\)", text)
        assert found and float(found[2]) <= float(found[1]) <= float(found[3]), text
        assert "calibrated on" in text and "measuring 10 more archs is expected to add" in text.lower()
        assert text.index("80% interval") < text.index("Cross-validated Spearman")
        # the next archs to measure: 5, stratified; none of the 20 measured; the CSV multipredict suggest writes
        next_archs = panel.locator(".mp-onboard-next")
        playwright.expect(next_archs).to_be_visible()
        strategy = next_archs.locator(".mp-onboard-suggest-strategy select")  # its options' values are labels
        from multipredict.suggest import default_strategy

        playwright.expect(strategy).to_have_value(f"{default_strategy('fbnet')} (default)")  # an FBNet page
        strategy.select_option(label="stratified")
        k = next_archs.locator(".mp-onboard-suggest-k input")
        playwright.expect(k).to_have_value("10")
        k.fill("5")
        k.press("Enter")
        next_archs.locator(".mp-onboard-suggest").click()
        playwright.expect(next_archs.locator(".mp-onboard-suggestions tr")).to_have_count(6, timeout=60_000)
        assert "5 archs to measure next (stratified)" in next_archs.inner_text()
        with page.expect_download(timeout=30_000) as download:
            next_archs.locator(".mp-onboard-download-suggestions").click()
        suggested = pd.read_csv(download.value.path())
        assert download.value.suggested_filename == "fpga_20_next_5.csv"
        assert list(suggested.columns) == ["order", "arch", "arch_id"] and len(suggested) == 5
        assert not set(suggested["arch_id"]) & set(ids.tolist())
        for arch in suggested["arch_id"]:
            assert str(arch) in next_archs.locator(".mp-onboard-suggestions").inner_text()
        panel.scroll_into_view_if_needed()
        panel.screenshot(path=str(ARTIFACTS / "onboarding_after.png"))
        # more than the archs not yet measured: the engine's one line in the error area, no table
        k.fill("9999")
        k.press("Enter")
        playwright.expect(next_archs.locator(".mp-onboard-suggestions tr")).to_have_count(0)
        next_archs.locator(".mp-onboard-suggest").click()
        panel.locator(".mp-onboard-error").get_by_text("k=9999 is more than the").wait_for(timeout=30_000)
        playwright.expect(next_archs.locator(".mp-onboard-download-suggestions")).to_have_count(0)

        upload(page, panel, bad)
        error = panel.locator(".mp-onboard-error")
        error.get_by_text("found ['id', 'ms']").wait_for(timeout=30_000)  # the CLI's words (test_widgets)
        assert "wrong_columns.csv" in error.inner_text() and "Traceback" not in error.inner_text()
        playwright.expect(panel.locator(".mp-onboard-figure")).to_have_count(0)
        assert run.is_disabled()


def test_accuracy_mode_in_chromium(server):
    """Switch to the accuracy mode, see the task-distance heatmap, get the engine's one-line
    message for a task transferred to itself and for a k above the pool, then run two NB201
    tasks (quick, k = 10, one repeat) and see the improvement heatmap and the per-target table."""
    playwright = chromium_and_playwright()
    with chromium_page(playwright, "accuracy") as page:
        panel = page.locator(".mp-accuracy")
        page.goto(server["url"], timeout=START_TIMEOUT * 1000)
        page.locator(".mp-mode button", has_text="Accuracy across tasks").click(timeout=START_TIMEOUT * 1000)
        panel.wait_for(timeout=20_000)
        playwright.expect(page.locator(".mp-onboarding")).to_be_hidden()  # the latency workbench is put away
        panel.locator(".mp-acc-distance-figure .nsewdrag").first.wait_for(timeout=60_000)
        assert "nb201/ImageNet16-120" in panel.locator(".mp-acc-distance-figure").inner_text()

        def tick(role: str, task: str, on: bool) -> None:
            box = panel.locator(f".mp-acc-{role}", has_text=task).locator("input")
            box.check() if on else box.uncheck()

        for role in ("source", "target"):  # two tasks: nb201/cifar10 and nb201/cifar100
            tick(role, "nb201/ImageNet16-120", False)
        repeats = panel.locator(".mp-acc-repeats input")
        repeats.fill("1")
        repeats.press("Enter")
        status = panel.locator(".mp-acc-status")
        playwright.expect(status).to_contain_text("ready: 6 units", timeout=20_000)

        # a task transferred to itself only, then a k above the pool: the engine's words, Run disabled
        error = panel.locator(".mp-acc-error")
        run = panel.locator(".mp-acc-run")
        for role in ("source", "target"):
            tick(role, "nb201/cifar100", False)
        error.get_by_text("no source task differs from a target task").wait_for(timeout=20_000)
        assert run.is_disabled() and "Traceback" not in error.inner_text()
        for role in ("source", "target"):
            tick(role, "nb201/cifar100", True)
        samples = panel.locator(".mp-acc-samples input")
        samples.fill("5000")
        samples.press("Enter")
        error.get_by_text("is not below task nb201/cifar10's pool").wait_for(timeout=20_000)
        assert run.is_disabled()
        samples.fill("10")
        samples.press("Enter")
        panel.locator(".mp-acc-quick input").check()
        playwright.expect(run).to_be_enabled(timeout=20_000)
        playwright.expect(error).to_have_text("")

        run.click()
        panel.locator(".mp-acc-status .mp-status-done").wait_for(timeout=120_000)
        assert "done: 6 units" in status.inner_text()
        figure = panel.locator(".mp-acc-improvement-figure")
        playwright.expect(figure.locator(".heatmaplayer .hm")).to_have_count(1, timeout=20_000)
        playwright.expect(figure).to_contain_text("transfer - ZCP from scratch, k = 10", timeout=20_000)
        table = panel.locator(".mp-acc-table")
        playwright.expect(table.locator("tr")).to_have_count(3)  # a header and one row per target
        playwright.expect(table).not_to_contain_text("…")  # nothing pending
        text = table.inner_text()
        assert "nb201/cifar10" in text and "nb201/cifar100" in text
        assert panel.locator(".mp-acc-download-trials").get_attribute("download") == "accuracy_trials.csv"
        panel.screenshot(path=str(ARTIFACTS / "accuracy_after.png"))


def test_search_mode_in_chromium(server):
    """Switch to the search mode, see eyeriss's latency percentiles, get the engine's one line for
    more trained archs than fit the budget, then run a 20-arch search at the 50th percentile: the
    best-so-far curve and the predicted Pareto scatter appear, a click on a trained arch shows it,
    and the search's files download as a zip."""
    playwright = chromium_and_playwright()
    import io
    import zipfile

    with chromium_page(playwright, "search") as page:
        panel = page.locator(".mp-search")
        page.goto(server["url"], timeout=START_TIMEOUT * 1000)
        page.locator(".mp-mode button", has_text="Search under a latency budget").click(
            timeout=START_TIMEOUT * 1000)
        panel.wait_for(timeout=20_000)
        playwright.expect(page.locator(".mp-onboarding")).to_be_hidden()
        median = panel.locator(".mp-search-p50")
        playwright.expect(median).to_contain_text(" ms", timeout=60_000)  # eyeriss's latency has loaded
        assert panel.locator(".mp-search-device select").input_value() == "eyeriss"
        note = panel.locator(".mp-search-budget-note")
        playwright.expect(note).to_contain_text("archs counted under")

        # more archs to train than fit under the budget: the engine's words, Run disabled
        budget = panel.locator(".mp-search-budget input")
        budget.fill("15000")
        budget.press("Enter")
        error = panel.locator(".mp-search-error")
        error.get_by_text("fewer than the 15000 the search trains").wait_for(timeout=20_000)
        run = panel.locator(".mp-search-run")
        assert run.is_disabled() and "Traceback" not in error.inner_text()
        budget.fill("20")
        budget.press("Enter")
        median.click()
        playwright.expect(run).to_be_enabled(timeout=20_000)
        playwright.expect(error).to_have_text("")

        run.click()
        panel.locator(".mp-search-status .mp-status-done").wait_for(timeout=120_000)
        assert "done: 20 archs trained" in panel.locator(".mp-search-status").inner_text()
        curve = panel.locator(".mp-search-curve")
        playwright.expect(curve.locator(".scatterlayer .trace .js-line")).to_have_count(1, timeout=20_000)
        assert "trained archs" in curve.inner_text()
        front = panel.locator(".mp-search-front")
        trained = front.locator(".scatterlayer .trace").last.locator(".point")  # the trained archs (SVG)
        playwright.expect(trained).to_have_count(20, timeout=20_000)
        assert "predicted Pareto front" in front.inner_text() and "eyeriss" in front.inner_text()
        details = panel.locator(".mp-search-details")
        playwright.expect(details).to_contain_text("the search's choice")
        # a click on a trained arch that is not the chosen one shows it
        chosen = details.locator("td").first.inner_text()
        for index in range(20):
            box = trained.nth(index).bounding_box()
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.wait_for_timeout(300)
            if details.locator("td").first.inner_text() != chosen:
                break
        playwright.expect(details).to_contain_text("(trained;", timeout=20_000)
        assert re.search(r"\|\w+~0\|\+", details.inner_text())  # its arch string
        with page.expect_download(timeout=30_000) as download:
            panel.locator(".mp-search-download-zip").click()
        files = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())).namelist()
        assert {"chosen.json", "chosen.onnx", "pareto.csv", "trajectory.csv"} <= set(files)
        panel.screenshot(path=str(ARTIFACTS / "search_after.png"))


def test_your_models_mode_in_chromium(server, tmp_path):
    """Open ?mode=models, pick the table `encode` wrote (4 tiny CNNs, one CPU profile) from the
    results store's yourmodels/ folder, upload 3 measurements of a device twice as slow as this CPU:
    the predicted-vs-measured scatter, the ranking of all 4 and the predictions' download appear."""
    playwright = chromium_and_playwright()
    import pandas as pd

    from multipredict.measure.protocol import MeasurementProtocol
    from multipredict.yourmodels import encode_models
    from multipredict.yourmodels.zoo import CNNSpec, Stage, ZooFactory

    factories = {f"cnn_w{width}_k{kernel}": ZooFactory(CNNSpec(
        name=f"cnn_w{width}_k{kernel}", family="resnet", resolution=32, stem_width=8,
        stages=(Stage(1, width, kernel, 1), Stage(1, 2 * width, 3, 1)))) for width, kernel in ((8, 3), (16, 3), (16, 5),
                                                                                                 (32, 7))}
    table_path = server["results"] / "yourmodels" / "enc.parquet"
    table_path.parent.mkdir(exist_ok=True)
    encoded = encode_models(factories, table_path, profiles=["cpu-1t-b1"], input_shape=(3, 32, 32), progress=False,
                            protocol=MeasurementProtocol(warmup=1, min_warmup_seconds=0.0, repeats=3, max_attempts=1))
    table = encoded.table.set_index("model")
    assert (table["status"] == "ok").all(), table["error"].tolist()
    measured = (table["latency_ms:cpu-1t-b1"] * 2).iloc[:3]  # a device twice as slow as this CPU; 1 model left
    mine = tmp_path / "my device.csv"
    pd.DataFrame({"model": measured.index, "latency_ms": measured.to_numpy()}).to_csv(mine, index=False)
    with chromium_page(playwright, "your_models") as page:
        panel = page.locator(".mp-yourmodels")
        page.goto(server["url"] + "?mode=models", timeout=START_TIMEOUT * 1000)
        panel.wait_for(timeout=START_TIMEOUT * 1000)
        playwright.expect(page.locator(".mp-mode button.mod-active")).to_have_text("Your own models")
        playwright.expect(page.locator(".mp-onboarding")).to_be_hidden()  # the other modes are put away
        playwright.expect(page.locator(".mp-search")).to_be_hidden()
        # the store's folder is offered; the path field takes it
        path = panel.locator(".mp-yourmodels-path input")
        playwright.expect(panel.locator(".mp-yourmodels-path datalist option")).to_have_attribute(
            "value", str(table_path))
        path.fill(str(table_path))
        panel.locator(".mp-yourmodels-load").click()
        playwright.expect(panel.locator(".mp-yourmodels-info")).to_contain_text("4 encoded models (4 ok)",
                                                                               timeout=20_000)
        upload(page, panel, mine, ".mp-yourmodels-upload")
        playwright.expect(panel.locator(".mp-yourmodels-info")).to_contain_text("my device.csv: 3 measurements",
                                                                               timeout=20_000)
        run = panel.locator(".mp-yourmodels-run")
        playwright.expect(run).to_be_enabled(timeout=10_000)
        run.click()
        playwright.expect(panel.locator(".mp-yourmodels-summary")).to_contain_text("cross-validated Spearman",
                                                                                  timeout=30_000)
        figure = panel.locator(".mp-yourmodels-figure")
        playwright.expect(figure.locator(".scatterlayer .trace .point")).to_have_count(3, timeout=30_000)
        assert "measured latency (ms)" in figure.inner_text()
        ranking = panel.locator(".mp-yourmodels-ranking tr")
        playwright.expect(ranking).to_have_count(5)  # a header and the 4 models
        ranked = [ranking.nth(i).locator("td").nth(1).inner_text() for i in range(1, 5)]
        assert sorted(ranked) == sorted(factories)
        with page.expect_download(timeout=30_000) as download:
            panel.locator(".mp-yourmodels-download-predictions").click()
        assert download.value.suggested_filename == "predictions.csv"
        predictions = pd.read_csv(download.value.path()).set_index("model")
        assert sorted(predictions.index) == sorted(factories) and predictions["predicted_ms"].gt(0).all()
        assert predictions["measured_ms"].dropna().round(6).to_dict() == measured.round(6).to_dict()
        assert list(predictions["predicted_ms"].sort_values(kind="stable").index) == ranked  # fastest first
        panel.screenshot(path=str(ARTIFACTS / "your_models_after.png"))
