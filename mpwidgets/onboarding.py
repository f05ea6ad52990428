"""Onboard your own device in the workbench: measurements in, predicted latency of every arch out.

``OnboardingModel`` holds the state (space, device name, the measurements or what is wrong with
them, the run's stage and progress, the ``multipredict.onboard.OnboardResult``) and runs
``multipredict.onboard.onboard`` in a background thread; ``OnboardingPanel`` is its view: a file
upload (CSV or parquet) or a measured profile from ``data/latency/``, Run, a progress bar, then the
cross-validated estimate, the closest public device, predicted-vs-measured, a summary and CSV
downloads. Reading, validation, training and the estimate all come from ``multipredict``.

    from mpwidgets import OnboardingModel, OnboardingPanel
    OnboardingPanel(space="nb201")                                   # in a notebook
    model = OnboardingModel(space="nb201", options={"source_epochs": 2, "source_devices": ["pixel3", "gold_6226"]})
    model.profile = "cpu-1t-b1"; model.run(); model.wait()           # in a script or a test
    model.result.predictions                                         # multipredict.onboard.OnboardResult
"""

from __future__ import annotations

import functools
import html
import json
import logging
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd
from traitlets import Dict, Float, HasTraits, Instance, Int, Unicode, observe

from multipredict.data import local
from multipredict.errors import MultipredictError
from multipredict.messages import user_message
from multipredict.onboard import OnboardResult, onboard, read_measurements

from . import figures
from .model import DONE, FAILED, IDLE, RUNNING, KernelUpdates, explain_error
from .views import _download_link, figure_widget, replace_figure

log = logging.getLogger(__name__)

# JSON of keyword arguments for ``multipredict.onboard.onboard`` (e.g. small settings for a test
# server); set by ``python -m mpwidgets.serve --onboard-options ...``
ENV_OPTIONS = "MPWIDGETS_ONBOARD_OPTIONS"
PROFILE_SAMPLES = 20  # measurements taken from a profile by default: onboarding is about a handful
STAGES = {"load": "loading the public devices' data",
          "pretrain": "pretraining on the public devices (only when no cached or shipped model matches)",
          "cross-validate": "estimating the quality: cross-validation on your measurements",
          "predict": "predicting every arch"}


def options_from_environment() -> dict[str, Any]:
    """The onboarding settings a server handed its kernels (``{}``: the engine's defaults)."""
    text = os.environ.get(ENV_OPTIONS, "").strip()
    if not text:
        return {}
    try:
        options = json.loads(text)
    except ValueError as error:
        raise MultipredictError(f"${ENV_OPTIONS} is not JSON ({error}); expected keyword arguments of "
                                "multipredict.onboard.onboard, e.g. '{\"source_epochs\": 2}'") from None
    if not isinstance(options, dict):
        raise MultipredictError(f"${ENV_OPTIONS} must be a JSON object of onboard() keyword arguments, "
                                f"not {type(options).__name__}")
    return options


def read_upload(space: str, filename: str, content: bytes) -> pd.DataFrame:
    """An uploaded file's measurements, read and validated by the engine as the CLI reads a path.

    The bytes go to a private temporary folder under the upload's own name, so that the engine
    picks CSV or parquet by its suffix (never pickle) and its messages name the user's file, not a
    temporary path.
    """
    name = re.sub(r"[^\w.+-]", "_", Path(filename or "measurements.csv").name) or "measurements.csv"
    with tempfile.TemporaryDirectory(prefix="mpwidgets-upload-") as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        try:
            return read_measurements(space, path)
        except MultipredictError as error:
            raise MultipredictError(str(error).replace(str(path), filename)) from None


def error_message(error: BaseException) -> str:
    """One line, as the command line says it (``multipredict.messages``); an internal error (a bug,
    not the user's input) in the workbench's words, its traceback in the kernel log."""
    message = user_message(error)
    return message if message is not None else explain_error(error)


class OnboardingModel(HasTraits):
    """State of the onboarding panel. Set ``profile`` (a measured profile of ``data/latency/``) or
    call ``load_upload``; ``measurements`` or ``error`` follow. ``run()`` starts ``onboard`` in a
    thread; ``status``, ``stage``, ``progress``, ``message`` and finally ``result`` follow it."""

    space = Unicode("nb201")
    device = Unicode("my_device", help="your device's name in the predictions")
    profile = Unicode(None, allow_none=True, help="a measured profile of data/latency/ for this space")
    profile_samples = Int(PROFILE_SAMPLES, help="how many of the profile's measurements to use (0: all)")
    source = Unicode("", help="where the measurements came from, in words")
    measurements = Instance(pd.DataFrame, allow_none=True, help="arch_id, latency_ms, validated by the engine")
    error = Unicode("", help="what is wrong with the measurements or the last run, in words")
    options = Dict(help="keyword arguments for multipredict.onboard.onboard (source_devices, folds, seed, "
                        "source_epochs, ...); {} for its defaults")
    status = Unicode(IDLE)
    stage = Unicode("")
    progress = Float(0.0)
    message = Unicode("")
    result = Instance(OnboardResult, allow_none=True)

    def __init__(self, space: str = "nb201", options: dict | None = None, **traits: Any):
        self._updates = KernelUpdates(what="onboarding")
        self._thread: threading.Thread | None = None
        self._stage_started = 0.0
        self._run = 0  # a run's number: what a run posts after the inputs changed (another space) is dropped
        super().__init__(space=space, options=dict(options or {}), **traits)

    # ---------------------------------------------------------------- inputs
    def profiles(self) -> list[str]:
        """The measured profiles of this machine (``data/latency/<space>_<profile>.csv``)."""
        return local.devices(self.space)

    def load_upload(self, filename: str, content: bytes) -> bool:
        """Take an uploaded CSV / parquet file; False (and ``error`` says why) when it is not usable."""
        if self._busy():
            return False
        with self.hold_trait_notifications():
            self.profile = None
            self._reset(filename)
            try:
                self.measurements = read_upload(self.space, filename, bytes(content))
            except Exception as error:
                self.error = error_message(error)
                return False
            self.source = f"{filename}: {len(self.measurements)} measurements"
            self.device = _device_name(Path(filename).stem)
        return True

    @observe("profile", "profile_samples")
    def _load_profile(self, change: dict) -> None:
        if self.profile is None or self._busy():
            return
        with self.hold_trait_notifications():
            self._reset(self.profile)
            try:
                measured = local.latencies(self.space)[self.profile].dropna()
                frame = pd.DataFrame({"arch_id": measured.index.to_numpy(), "latency_ms": measured.to_numpy()})
                if 0 < self.profile_samples < len(frame):  # a seeded handful, as a user would measure
                    frame = frame.sample(n=self.profile_samples, random_state=int(self.options.get("seed", 0)))
                self.measurements = read_measurements(self.space, frame.reset_index(drop=True))
            except Exception as error:
                self.error = f"measured profile {self.profile!r}: {error_message(error)}"
                return
            self.source = (f"measured profile {self.profile} (data/latency/): {len(self.measurements)} of its "
                           f"{len(measured)} measurements")
            self.device = _device_name(self.profile)

    @observe("space")
    def _on_space(self, change: dict) -> None:
        with self.hold_trait_notifications():
            self.profile = None
            self._reset("")

    def _reset(self, source: str) -> None:
        self._run += 1
        self.measurements, self.result, self.error, self.source = None, None, "", source
        self.status, self.stage, self.progress, self.message = IDLE, "", 0.0, ""

    def _busy(self) -> bool:
        if self.status == RUNNING:
            self.error = "onboarding is running: wait for it to finish first"
            return True
        return False

    # ---------------------------------------------------------------- the run
    def run(self) -> bool:
        """Start onboarding in the background; False (``error`` says why) when it cannot start."""
        if self._busy():
            return False
        if self.measurements is None:
            self.error = self.error or "no measurements yet: upload a CSV / parquet with columns arch,latency_ms " \
                                       "or pick a measured profile"
            return False
        options = dict(self.options)
        self._run += 1
        with self.hold_trait_notifications():
            self.result, self.error, self.status = None, "", RUNNING
            self._set_stage(self._run, "load", 0.0)
        args = (self._run, self.space, self.measurements.copy(), self.device.strip() or "my_device", options)
        self._thread = threading.Thread(target=self._work, args=args, daemon=True, name="mpwidgets-onboard")
        self._thread.start()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends and its result is in the model (scripts, tests)."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return False
        self._updates.apply()
        return True

    def _work(self, run: int, space: str, measurements: pd.DataFrame, device: str, options: dict) -> None:
        def progress(stage: str, fraction: float) -> None:
            self._updates.post(functools.partial(self._set_stage, run, stage, fraction))

        try:
            result = onboard(space, measurements, device=device, progress=progress, **options)
        except Exception as error:  # shown in the panel, never a traceback and never a dead kernel
            if user_message(error) is None:  # a bug, not the input: keep its traceback for the kernel log
                log.exception("onboarding %s failed", device)
            self._updates.post(functools.partial(self._fail, run, error))
            return
        self._updates.post(functools.partial(self._finish, run, result))

    def _set_stage(self, run: int, stage: str, fraction: float) -> None:
        if run != self._run:
            return
        now = time.monotonic()
        if stage != self.stage:
            self._stage_started = now
        with self.hold_trait_notifications():
            self.stage, self.progress = stage, float(fraction)
            left = ""
            elapsed = now - self._stage_started
            if 0 < fraction < 1 and elapsed > 2:
                left = f", about {_duration(elapsed * (1 - fraction) / fraction)} left"
            done = f": {fraction:.0%}{left}" if fraction > 0 else "..."
            self.message = f"{STAGES.get(stage, stage)}{done}"

    def _fail(self, run: int, error: Exception) -> None:
        if run != self._run:
            return
        with self.hold_trait_notifications():
            self.error = error_message(error)
            self.status, self.message = FAILED, "onboarding stopped"

    def _finish(self, run: int, result: OnboardResult) -> None:
        if run != self._run:
            return
        with self.hold_trait_notifications():
            self.result = result
            self.status, self.stage, self.progress = DONE, "done", 1.0
            self.message = f"done: predicted {len(result.predictions)} archs of {result.space}"

    # ---------------------------------------------------------------- what the panel offers
    def summary_rows(self) -> list[tuple[str, str]]:
        """The result as (what, value) rows for the panel's table."""
        r = self.result
        if r is None:
            return []
        where = {"trained": "trained now", "cache": "from the cache", "shipped": "shipped with multipredict"}
        tuned = {"head": "hardware embedding + head (arch body kept)", "all": "every weight"}
        settings = ", ".join(f"{k}={v}" for k, v in r.settings.items())
        return [("device", r.device), ("search space", r.space), ("your measurements", str(r.n_measurements)),
                ("cross-validated Spearman ρ", f"{r.cv_spearman:.3f} ({r.cv_folds} folds)"),
                ("cross-validated Kendall τ", f"{r.cv_kendall:.3f}"),
                ("closest public device (Eq. 1)", str(r.closest_source)),
                ("fine-tuned", tuned.get(r.fine_tuned, str(r.fine_tuned))),
                ("pretrained model", where.get(r.pretrained_from, r.pretrained_from)),
                ("public devices", f"{len(r.source_devices)}: {', '.join(r.source_devices)}"),
                ("archs predicted", str(len(r.predictions))), ("settings", settings)]


def _device_name(text: str) -> str:
    return re.sub(r"[^\w.+-]", "_", text).strip("_") or "my_device"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


# ==================================================================== the view
class OnboardingPanel(w.VBox):
    """Upload or pick measurements, Run, and see what the engine predicts for your device:
    ``OnboardingPanel(space="nb201")`` or ``OnboardingPanel(model=OnboardingModel(...))``."""

    def __init__(self, space: str = "nb201", options: dict | None = None, *, model: OnboardingModel | None = None):
        super().__init__(layout=w.Layout(width="100%"))
        self.model = model if model is not None else OnboardingModel(space=space, options=options)
        m = self.model
        wide = {"description_width": "150px"}
        self.upload = w.FileUpload(accept=".csv,.parquet,.pq,.txt", multiple=False,
                                   description="Upload CSV / parquet", layout=w.Layout(width="220px"))
        self.upload.add_class("mp-onboard-upload")
        self.upload.observe(self._on_upload, "value")
        self.profile = w.Dropdown(description="or a measured profile", style=wide, layout=w.Layout(width="420px"))
        self.profile.add_class("mp-onboard-profile")
        self.profile_samples = w.BoundedIntText(value=m.profile_samples, min=0, max=100_000,
                                                description="measurements used", style=wide,
                                                tooltip="how many of the profile's measurements onboarding gets "
                                                        "(a seeded random handful; 0: all)",
                                                layout=w.Layout(width="230px"))
        self.profile_samples.add_class("mp-onboard-samples")
        w.link((m, "profile_samples"), (self.profile_samples, "value"))
        self.device = w.Text(description="device name", style={"description_width": "initial"},
                             layout=w.Layout(width="300px"))
        self.device.add_class("mp-onboard-device")
        w.link((m, "device"), (self.device, "value"))
        self.source = w.HTML()
        self.source.add_class("mp-onboard-source")
        self.run_button = w.Button(description="Run onboarding", button_style="primary", icon="play")
        self.run_button.add_class("mp-onboard-run")
        self.run_button.on_click(self._on_run)
        self.progress = w.FloatProgress(value=0, min=0, max=1, description="", layout=w.Layout(width="320px"))
        self.status = w.HTML()
        self.status.add_class("mp-onboard-status")
        self.errors = w.HTML()
        self.errors.add_class("mp-onboard-error")
        self.estimate = w.HTML()
        self.estimate.add_class("mp-onboard-estimate")
        self.figure_box = w.Box(layout=w.Layout(width="55%", min_width="420px"))
        self.figure: w.DOMWidget | None = None
        self.summary = w.HTML()
        self.summary.add_class("mp-onboard-summary")
        self.downloads = w.HTML()
        self.downloads.add_class("mp-onboard-downloads")
        settings = w.HTML(self._settings_note())
        help_text = w.HTML(
            "<h3 style='margin:4px 0'>Onboard your own device</h3>Give latencies you measured for a handful of "
            "archs (10-20; a CSV or parquet with columns <code>arch,latency_ms</code>, arch as id or arch string), "
            "or pick one of this machine's measured profiles. The predictor pretrained on the public devices adds "
            "yours and predicts every arch; cross-validation on your own measurements says how far to trust it.")
        self.profile.observe(self._on_profile, "value")
        m.observe(self._sync_profiles, "space")
        m.observe(self._sync_profile, "profile")
        m.observe(self._refresh, ["measurements", "error", "status", "stage", "progress", "message", "source"])
        m.observe(self._show_result, "result")
        self._syncing = False
        self._sync_profiles()
        self._refresh()
        self._show_result()
        self.children = [
            help_text, settings,
            w.HBox([self.upload, self.profile, self.profile_samples], layout=w.Layout(flex_flow="row wrap",
                                                                                        grid_gap="12px")),
            self.source, w.HBox([self.device, self.run_button, self.progress]), self.status, self.errors,
            self.estimate, w.HBox([self.figure_box, w.VBox([self.summary, self.downloads],
                                                           layout=w.Layout(width="45%"))],
                                  layout=w.Layout(width="100%", flex_flow="row wrap")),
        ]
        self.add_class("mp-onboarding")

    def _settings_note(self) -> str:
        options = self.model.options
        if not options:
            return ""
        text = ", ".join(f"{k}={v}" for k, v in options.items())
        return (f"<small class='mp-onboard-settings'>onboarding settings: {html.escape(text)} "
                "(set by whoever started this page; not the engine's defaults)</small>")

    # ---------------------------------------------------------------- input
    def _on_upload(self, change) -> None:
        files = change["new"]
        if not files:
            return
        item = files[0]
        self.model.load_upload(item["name"], bytes(item["content"]))
        self.upload.value = ()  # the bytes are read: don't keep them in the page, and let the same file come again

    # the dropdown's "" is the model's None: a None value would show an empty box, not the placeholder
    def _on_profile(self, change) -> None:
        if not self._syncing and (change["new"] or None) != self.model.profile:
            self.model.profile = change["new"] or None

    def _sync_profile(self, change=None) -> None:
        self._syncing = True
        try:
            known = self.model.profile in (v for _, v in self.profile.options)
            self.profile.value = self.model.profile if known else ""
        finally:
            self._syncing = False

    def _sync_profiles(self, change=None) -> None:
        names = self.model.profiles()
        placeholder = "(choose one)" if names else f"none for {self.model.space} in data/latency/"
        self._syncing = True
        try:
            self.profile.options = [(placeholder, "")] + [(n, n) for n in names]
            self.profile.value = ""
            self.profile.disabled = not names
        finally:
            self._syncing = False

    def _on_run(self, _button) -> None:
        try:
            self.model.run()
        except Exception as error:
            log.exception("starting onboarding failed")
            self.model.error = error_message(error)

    # ---------------------------------------------------------------- output
    def _refresh(self, change=None) -> None:
        m = self.model
        busy = m.status == RUNNING
        self.run_button.disabled = busy or m.measurements is None
        self.upload.disabled = busy
        self.profile.disabled = self.profile_samples.disabled = busy or not self.model.profiles()
        self.source.value = f"<i>{html.escape(m.source)}</i>" if m.measurements is not None else ""
        self.progress.value = m.progress
        self.progress.description = m.stage
        self.progress.bar_style = {DONE: "success", FAILED: "danger"}.get(m.status, "")
        self.status.value = f"<span class='mp-status-{m.status}'>{html.escape(m.message)}</span>" if m.message else ""
        if m.error:
            lines = "".join(f"<div>{html.escape(line)}</div>" for line in m.error.splitlines() if line.strip())
            self.errors.value = ("<div style='border:1px solid #d33;background:#fff3f3;color:#900;padding:6px 10px;"
                                 f"border-radius:4px'>{lines}</div>")
        else:
            self.errors.value = ""

    def _show_result(self, change=None) -> None:
        r = self.model.result
        if r is None:
            self.estimate.value = self.summary.value = self.downloads.value = ""
            self.figure_box.children = []
            self.figure = None
            return
        self.estimate.value = (
            f"<div style='font-size:15px;margin:6px 0'>Cross-validated Spearman ρ <b>{r.cv_spearman:.3f}</b> "
            f"(Kendall τ {r.cv_kendall:.3f}; {r.cv_folds} folds over your {r.n_measurements} measurements, each "
            f"predicted by a fold that never saw it) · closest public device <b>{html.escape(str(r.closest_source))}"
            "</b></div>")
        # a fresh widget carries its whole state when created (as the results plot does at a run's end)
        figure = figure_widget(f"onboarding_{r.device}")
        figure.add_class("mp-onboard-figure")
        replace_figure(figure, figures.onboarding_scatter(r.cv_predictions, r.device, r.cv_spearman))
        self.figure = figure
        self.figure_box.children = [figure]
        rows = "".join(f"<tr><th style='text-align:left;white-space:nowrap'>{html.escape(k)}</th>"
                       f"<td>{html.escape(v)}</td></tr>"
                       for k, v in self.model.summary_rows())
        self.summary.value = f"<table class='mp-table'>{rows}</table>"
        links = [_download_link(r.predictions.to_csv(index=False).encode(), f"{r.device}_predictions.csv",
                                     "text/csv", f"predicted latency of every arch (CSV, {len(r.predictions)} rows)",
                                     "mp-onboard-download-predictions")]
        if r.cv_predictions is not None:
            links.append(_download_link(r.cv_predictions.to_csv(index=False).encode(),
                                             f"{r.device}_cross_validation.csv", "text/csv",
                                             "cross-validated predictions of your measurements (CSV)",
                                             "mp-onboard-download-cv"))
        self.downloads.value = "Download: " + " · ".join(links)
