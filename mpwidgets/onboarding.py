"""Onboard your own device in the workbench: measurements in, predicted latency of every arch out.

``OnboardingModel`` holds the state (space, device name, the measurements or what is wrong with
them, the run's stage and progress, the ``multipredict.onboard.OnboardResult``) and runs
``multipredict.onboard.onboard`` in a background thread; ``OnboardingPanel`` is its view: a file
upload (CSV or parquet) or a measured profile from ``data/latency/``, Run, a progress bar, then the
estimated Spearman on the archs not measured with its interval and advice (the cross-validated
estimate below it), the closest public device, predicted-vs-measured, a summary and downloads; and
"Next archs to measure": ``multipredict.suggest.suggest`` given the archs already measured, as a
table and a CSV in the format of ``multipredict suggest``. Reading, validation, training, the
estimates and the choice of archs all come from ``multipredict``.

    from mpwidgets import OnboardingModel, OnboardingPanel
    OnboardingPanel(space="nb201")                                   # in a notebook
    model = OnboardingModel(space="nb201", options={"source_epochs": 2, "source_devices": ["pixel3", "gold_6226"]})
    model.profile = "cpu-1t-b1"; model.run(); model.wait()           # in a script or a test
    model.result.predictions                                         # multipredict.onboard.OnboardResult
    model.suggest_k = 5; model.suggest_next(); model.wait()
    model.suggestions                                                # order, arch, arch_id
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

from multipredict import suggest as selection
from multipredict.data import local
from multipredict.errors import MultipredictError
from multipredict.messages import user_message
from multipredict.onboard import OnboardResult, onboard, read_measurements
from multipredict.threads import torch_threads

from . import figures
from .model import DONE, FAILED, IDLE, RUNNING, KernelUpdates, explain_error, join_threads
from .views import _download_link, error_box, figure_widget, replace_figure

log = logging.getLogger(__name__)

# JSON of keyword arguments for ``multipredict.onboard.onboard`` (e.g. small settings for a test
# server); set by ``python -m mpwidgets.serve --onboard-options ...``
ENV_OPTIONS = "MPWIDGETS_ONBOARD_OPTIONS"
PROFILE_SAMPLES = 20  # measurements taken from a profile by default: onboarding is about a handful
STAGES = {"load": "loading the public devices' data",
          "pretrain": "pretraining on the public devices (only when no cached or shipped model matches)",
          "cross-validate": "estimating the quality: cross-validation on your measurements",
          "estimate": "estimating the Spearman on the archs you did not measure (out-of-bag fine-tunes)",
          "predict": "predicting every arch"}
SUGGESTIONS_SHOWN = 20  # rows of the suggestions' table in the panel (the download has them all)
SUGGEST_K = 10  # archs suggested by default: what the advice's "measuring 10 more archs" is about
STRATEGY_NOTES = {  # one line each (multipredict.suggest's docstring has the details)
    "random": "archs at random (the paper)",
    "reference": "HELP's 10 reference archs first, then random",
    "stratified": "spread evenly from fast to slow on the public devices' latency ranks",
    "kcenter": "farthest from each other and from the archs measured, in the public devices' latency ranks",
    "representative": "k-means centres in the public devices' latency ranks (follows where the archs are dense)",
    "herding": "archs whose spread matches the whole space as the pretrained predictor sees it (kernel herding)",
    "design": "archs that pin down the pretrained predictor's head: each one where its view of the archs is least "
              "covered yet (experimental design; measured best for FBNet on HELP's meta-test devices)",
    "reference+design": "HELP's 10 reference archs, then experimental design given them (measured best for NB201 "
                        "on HELP's meta-test devices)",
    "active": "where an ensemble fine-tuned on your measurements disagrees most (fits a predictor: seconds to "
              "minutes)",
    "reference+stratified": "HELP's reference archs, then spread evenly from fast to slow"}


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
    # the next archs to measure (multipredict.suggest), given the measurements
    suggest_k = Int(SUGGEST_K, help="how many archs to suggest measuring next")
    suggest_strategy = Unicode(help="one of multipredict.suggest.STRATEGIES (default: the space's default_strategy, "
                                    "following the space until another is chosen)")
    suggest_status = Unicode(IDLE)
    suggest_message = Unicode("")
    suggestions = Instance(pd.DataFrame, allow_none=True,
                           help="order, arch, arch_id (multipredict.suggest.suggestion_table): the archs to measure "
                                "next, in that order")

    def __init__(self, space: str = "nb201", options: dict | None = None, **traits: Any):
        self._updates = KernelUpdates(what="onboarding")
        self._thread: threading.Thread | None = None
        self._stage_started = 0.0
        self._run = 0  # a run's number: what a run posts after the inputs changed (another space) is dropped
        self._suggest_thread: threading.Thread | None = None
        self._ask = 0  # the same for a request for suggestions (dropped when the measurements, k or strategy change)
        traits.setdefault("suggest_strategy", selection.default_strategy(space))
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
            if self.suggest_strategy == selection.DEFAULT_STRATEGIES.get(change["old"]):  # not chosen by the user
                self.suggest_strategy = selection.default_strategy(change["new"])

    def _reset(self, source: str) -> None:
        self._run += 1
        self.measurements, self.result, self.error, self.source = None, None, "", source
        self.status, self.stage, self.progress, self.message = IDLE, "", 0.0, ""
        self._forget_suggestions()

    @observe("suggest_k", "suggest_strategy")
    def _on_suggest_inputs(self, change: dict) -> None:
        if self.suggest_status == FAILED:  # its complaint was about the k or strategy now changed
            self.error = ""
        self._forget_suggestions()  # the table and its download always match the k and strategy shown

    def _forget_suggestions(self) -> None:
        self._ask += 1
        with self.hold_trait_notifications():
            self.suggestions, self.suggest_status, self.suggest_message = None, IDLE, ""

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
            self._forget_suggestions()
            self.result, self.error, self.status = None, "", RUNNING
            self._set_stage(self._run, "load", 0.0)
        args = (self._run, self.space, self.measurements.copy(), self.device.strip() or "my_device", options)
        self._thread = threading.Thread(target=self._work, args=args, daemon=True, name="mpwidgets-onboard")
        self._thread.start()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run and the request for suggestions end and their results are in the
        model (scripts, tests)."""
        return join_threads([self._thread, self._suggest_thread], timeout, self._updates.apply)

    def _work(self, run: int, space: str, measurements: pd.DataFrame, device: str, options: dict) -> None:
        def progress(stage: str, fraction: float) -> None:
            self._updates.post(functools.partial(self._set_stage, run, stage, fraction))

        try:
            result = onboard(space, measurements, device=device, progress=progress, store=True, **options)
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
            self.message = f"done: predicted {len(result.predictions)} archs of {result.space}" + (
                " (the stored result of the same onboarding, read back)" if result.reused_from else "")

    # ---------------------------------------------------------------- the next archs to measure
    def suggest_next(self) -> bool:
        """Start choosing the next ``suggest_k`` archs to measure (``multipredict.suggest.suggest``
        with ``suggest_strategy``, given the measured archs and their latencies) in the background;
        ``suggestions`` follows. False (``error`` says why) when it cannot start; the engine's own
        complaints (k above the archs not yet measured, ...) come in ``error`` when it ends."""
        if self._busy():
            return False
        if self.suggest_status == RUNNING:
            self.error = "already choosing the next archs: wait for it to finish first"
            return False
        if self.measurements is None:
            self.error = self.error or "no measurements yet: the next archs are chosen given those you measured"
            return False
        self._ask += 1
        k, strategy = int(self.suggest_k), self.suggest_strategy
        what = f"choosing {k} arch{'s' if k != 1 else ''} to measure next ({strategy})"
        if strategy == "active":
            what += ": fitting a predictor and fine-tuning an ensemble on your measurements"
        elif selection.uses_predictor(strategy):
            what += ": placing every arch with the pretrained predictor"
        with self.hold_trait_notifications():
            self.suggestions, self.error, self.suggest_status, self.suggest_message = None, "", RUNNING, what + "..."
        args = (self._ask, self.space, k, strategy, self.measurements["arch_id"].to_numpy().copy(),
                self.measurements["latency_ms"].to_numpy().copy(), int(self.options.get("seed", 0)),
                self.options.get("threads", 1))
        self._suggest_thread = threading.Thread(target=self._suggest_work, args=args, daemon=True,
                                                name="mpwidgets-suggest")
        self._suggest_thread.start()
        return True

    def _suggest_work(self, ask: int, space: str, k: int, strategy: str, measured, measured_ms, seed: int,
                      threads: int | None) -> None:
        try:
            with torch_threads(threads):  # "active" fine-tunes: one torch thread, as onboard() runs
                ids = selection.suggest(space, k, strategy=strategy, measured=measured, measured_ms=measured_ms,
                                        seed=seed)
            table = selection.suggestion_table(space, ids)
        except Exception as error:  # in the error area, never a traceback
            if user_message(error) is None:
                log.exception("suggesting archs failed")
            self._updates.post(functools.partial(self._suggest_failed, ask, error))
            return
        self._updates.post(functools.partial(self._suggest_done, ask, strategy, table))

    def _suggest_failed(self, ask: int, error: Exception) -> None:
        if ask != self._ask:
            return
        with self.hold_trait_notifications():
            self.error = error_message(error)
            self.suggest_status, self.suggest_message = FAILED, ""

    def _suggest_done(self, ask: int, strategy: str, table: pd.DataFrame) -> None:
        if ask != self._ask:
            return
        with self.hold_trait_notifications():
            self.suggestions = table
            self.suggest_status = DONE
            self.suggest_message = (f"{len(table)} arch{'s' if len(table) != 1 else ''} to measure next ({strategy}), "
                                    f"in the order to measure them; none of your {len(self.measurements)} measured "
                                    "ones")

    # ---------------------------------------------------------------- what the panel offers
    def quality_interval(self) -> str:
        """The estimated Spearman on the archs not measured and its interval, as
        "0.925 (80% interval 0.899-0.953)"; "" before a run (or from an engine without it)."""
        q = self.result.quality if self.result is not None else {}
        if not q or q.get("spearman_estimate") is None:
            return ""
        return (f"{q['spearman_estimate']:.3f} ({q['level']:.0%} interval {q['spearman_low']:.3f}-"
                f"{q['spearman_high']:.3f})")

    def summary_rows(self) -> list[tuple[str, str]]:
        """The result as (what, value) rows for the panel's table."""
        r = self.result
        if r is None:
            return []
        where = {"trained": "trained now", "cache": "from the cache", "shipped": "shipped with multipredict"}
        tuned = {"head": "hardware embedding + head (arch body kept)", "all": "every weight"}
        settings = ", ".join(f"{k}={v}" for k, v in r.settings.items())
        estimate = [("estimated Spearman ρ, archs not measured", self.quality_interval())] if r.quality else []
        return [("device", r.device), ("search space", r.space), ("your measurements", str(r.n_measurements)),
                *estimate, ("cross-validated Spearman ρ", f"{r.cv_spearman:.3f} ({r.cv_folds} folds)"),
                ("cross-validated Kendall τ", f"{r.cv_kendall:.3f}"),
                ("closest public device (Eq. 1)", str(r.closest_source)),
                *([("fine-tuned from (predictions averaged)", ", ".join(r.start_sources))]
                  if len(r.start_sources) > 1 else []),
                ("fine-tuned", tuned.get(r.fine_tuned, str(r.fine_tuned))),
                ("pretrained model", where.get(r.pretrained_from, r.pretrained_from)),
                ("public devices", f"{len(r.source_devices)}: {', '.join(r.source_devices)}"),
                ("archs predicted", str(len(r.predictions))), ("settings", settings)]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


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
        self.next_box = self._next_archs_section()
        settings = w.HTML(self._settings_note())
        help_text = w.HTML(
            "<h3 style='margin:4px 0'>Onboard your own device</h3>Give latencies you measured for a handful of "
            "archs (10-20; a CSV or parquet with columns <code>arch,latency_ms</code>, arch as id or arch string), "
            "or pick one of this machine's measured profiles. The predictor pretrained on the public devices adds "
            "yours and predicts every arch, estimates how well it ranks the archs you did not measure (with an "
            "interval) and says what measuring more would add; then it suggests which archs to measure next.")
        self.profile.observe(self._on_profile, "value")
        m.observe(self._sync_profiles, "space")
        m.observe(self._sync_strategies, "space")
        m.observe(self._sync_profile, "profile")
        m.observe(self._refresh, ["measurements", "error", "status", "stage", "progress", "message", "source"])
        m.observe(self._show_result, "result")
        m.observe(self._show_suggestions, ["suggestions", "suggest_status", "suggest_message", "suggest_strategy"])
        self._syncing = False
        self._sync_profiles()
        self._refresh()
        self._show_result()
        self._show_suggestions()
        self.children = [
            help_text, settings,
            w.HBox([self.upload, self.profile, self.profile_samples], layout=w.Layout(flex_flow="row wrap",
                                                                                        grid_gap="12px")),
            self.source, w.HBox([self.device, self.run_button, self.progress]), self.status, self.errors,
            self.estimate, w.HBox([self.figure_box, w.VBox([self.summary, self.downloads],
                                                           layout=w.Layout(width="45%"))],
                                  layout=w.Layout(width="100%", flex_flow="row wrap")),
            self.next_box,
        ]
        self.add_class("mp-onboarding")

    def _next_archs_section(self) -> w.VBox:
        """"Next archs to measure": k, the strategy, a button, the table and its download."""
        m = self.model
        self.suggest_k = w.IntText(value=m.suggest_k, description="how many", style={"description_width": "initial"},
                                   tooltip="how many archs to measure next", layout=w.Layout(width="140px"))
        self.suggest_k.add_class("mp-onboard-suggest-k")
        w.link((m, "suggest_k"), (self.suggest_k, "value"))
        self.suggest_strategy = w.Dropdown(
            options=self._strategy_options(), value=m.suggest_strategy, description="strategy",
            style={"description_width": "initial"}, layout=w.Layout(width="270px"))
        self.suggest_strategy.add_class("mp-onboard-suggest-strategy")
        w.link((m, "suggest_strategy"), (self.suggest_strategy, "value"))
        self.suggest_button = w.Button(description="Suggest archs", icon="list-ol",
                                       tooltip="choose the next archs to measure, given those you measured")
        self.suggest_button.add_class("mp-onboard-suggest")
        self.suggest_button.on_click(self._on_suggest)
        self.strategy_note = w.HTML()
        self.strategy_note.add_class("mp-onboard-strategy-note")
        self.suggest_status = w.HTML()
        self.suggest_status.add_class("mp-onboard-suggest-status")
        self.suggestions = w.HTML()
        self.suggestions.add_class("mp-onboard-suggestions")
        self.suggest_download = w.HTML()
        self.suggest_download.add_class("mp-onboard-suggest-downloads")
        heading = w.HTML("<h4 style='margin:10px 0 2px 0'>Next archs to measure</h4><small>Measure these on your "
                         "device, add them to your measurements and run again: the estimate above says what that "
                         "should add. None of them is one you measured.</small>")
        box = w.VBox([heading, w.HBox([self.suggest_k, self.suggest_strategy, self.suggest_button],
                                      layout=w.Layout(flex_flow="row wrap", grid_gap="12px")),
                      self.strategy_note, self.suggest_status, self.suggestions, self.suggest_download],
                     layout=w.Layout(width="100%", display="none"))
        box.add_class("mp-onboard-next")
        return box

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

    def _strategy_options(self) -> list[tuple[str, str]]:
        default = selection.default_strategy(self.model.space)
        return [(f"{s} (default)" if s == default else s, s) for s in selection.STRATEGIES]

    def _sync_strategies(self, change=None) -> None:
        """The dropdown marks the space's default strategy; the model's choice stays selected (new
        options select their first for a moment, which the link passes on to the model)."""
        chosen = self.model.suggest_strategy
        self.suggest_strategy.options = self._strategy_options()
        self.suggest_strategy.value = chosen

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

    def _on_suggest(self, _button) -> None:
        try:
            self.model.suggest_next()
        except Exception as error:
            log.exception("starting the suggestions failed")
            self.model.error = error_message(error)

    # ---------------------------------------------------------------- output
    def _refresh(self, change=None) -> None:
        m = self.model
        busy = m.status == RUNNING
        self.run_button.disabled = busy or m.measurements is None
        self.suggest_button.disabled = busy or m.measurements is None or m.suggest_status == RUNNING
        self.upload.disabled = busy
        self.profile.disabled = self.profile_samples.disabled = busy or not self.model.profiles()
        self.source.value = f"<i>{html.escape(m.source)}</i>" if m.measurements is not None else ""
        self.progress.value = m.progress
        self.progress.description = m.stage
        self.progress.bar_style = {DONE: "success", FAILED: "danger"}.get(m.status, "")
        self.status.value = f"<span class='mp-status-{m.status}'>{html.escape(m.message)}</span>" if m.message else ""
        self.errors.value = error_box(m.error)

    def _show_result(self, change=None) -> None:
        r = self.model.result
        self.next_box.layout.display = "none" if r is None else "flex"
        if r is None:
            self.estimate.value = self.summary.value = self.downloads.value = ""
            self.figure_box.children = []
            self.figure = None
            return
        interval = self.model.quality_interval()
        quality = ""
        if interval:
            q = r.quality
            quality = (
                "<div class='mp-onboard-quality' style='font-size:17px;margin:6px 0 2px 0'>Estimated Spearman ρ on "
                f"the archs you did not measure: <b>{html.escape(interval)}</b></div>"
                f"<div class='mp-onboard-interval-from' style='font-size:11px;color:#666'>interval: "
                f"{html.escape(str(q.get('interval_from', '')))}</div>"
                "<div class='mp-onboard-advice' style='font-size:15px;margin:4px 0'>"
                f"{html.escape(_sentence(str(q.get('advice', ''))))}; see <i>Next archs to measure</i> below</div>")
        cv_size = "13px;color:#444" if quality else "15px"
        self.estimate.value = (
            f"{quality}<div style='font-size:{cv_size};margin:6px 0'>Cross-validated Spearman ρ "
            f"<b>{r.cv_spearman:.3f}</b> (Kendall τ {r.cv_kendall:.3f}; {r.cv_folds} folds over your "
            f"{r.n_measurements} measurements, each predicted by a fold that never saw it) · closest public device "
            f"<b>{html.escape(str(r.closest_source))}</b></div>")
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
        if r.quality:
            record = json.dumps(r.summary_record(), indent=1, default=str).encode()
            links.append(_download_link(record, f"{r.device}_summary.json", "application/json",
                                        "summary (JSON, as onboard --summary writes it)",
                                        "mp-onboard-download-summary"))
        self.downloads.value = "Download: " + " · ".join(links)

    def _show_suggestions(self, change=None) -> None:
        m = self.model
        self._refresh()
        note = STRATEGY_NOTES.get(m.suggest_strategy, "")
        self.strategy_note.value = (f"<small>{html.escape(m.suggest_strategy)}: {html.escape(note)}</small>"
                                    if note else "")
        self.suggest_status.value = (f"<span class='mp-status-{m.suggest_status}'>{html.escape(m.suggest_message)}"
                                     "</span>" if m.suggest_message else "")
        table = m.suggestions
        if table is None:
            self.suggestions.value = self.suggest_download.value = ""
            return
        shown = table.head(SUGGESTIONS_SHOWN)
        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in table.columns)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                       for row in shown.itertuples(index=False))
        more = (f"<div><small>... and {len(table) - len(shown)} more in the download</small></div>"
                if len(table) > len(shown) else "")
        self.suggestions.value = (f"<table class='mp-table' style='font-size:12px'><tr>{head}</tr>{rows}</table>"
                                  f"{more}")
        device = m.result.device if m.result is not None else _device_name(m.device)
        self.suggest_download.value = "Download: " + _download_link(
            table.to_csv(index=False).encode(), f"{device}_next_{len(table)}.csv", "text/csv",
            f"the {len(table)} archs to measure next (CSV: order, arch, arch_id, as multipredict suggest writes)",
            "mp-onboard-download-suggestions")
