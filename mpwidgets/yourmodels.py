"""Your own models in the workbench: an encoding table and your device's measurements in, predicted
latency of every encoded model out.

``YourModelsModel`` holds the state (the encoding table ``multipredict encode`` wrote, the uploaded
measurements or what is wrong with them, the encoding and predictor, the
``multipredict.yourmodels.PredictResult``); ``YourModelsPanel`` is its view: a path to the table, a
file upload (CSV or parquet, ``model,latency_ms``), Predict, then the cross-validated Spearman,
predicted against measured (each measurement predicted by a fit that never saw it), the ranking
table and downloads. Reading, validation and fitting all come from ``multipredict.yourmodels``
(a fit takes well under a second with the default predictor, so it runs in the kernel's thread).

    from mpwidgets.yourmodels import YourModelsModel, YourModelsPanel
    YourModelsPanel(encodings="enc.parquet")                          # in a notebook
    YourModelsPanel(folder="results/yourmodels")                      # offers the tables found there
    model = YourModelsModel(); model.load_encodings("enc.parquet")   # in a script or a test
    model.load_upload("my_device.csv", open("my_device.csv", "rb").read()); model.run()
    model.result.predictions                                         # model, predicted_ms, measured_ms
"""

from __future__ import annotations

import html
import json
import re
import tempfile
from pathlib import Path

import ipywidgets as w
import pandas as pd
from traitlets import HasTraits, Instance, Int, Unicode, observe

from multipredict.outputs import TABLE_SUFFIXES
from multipredict.yourmodels import ENCODINGS, PREDICTORS, PredictResult, predict_latency, read_encodings
from multipredict.yourmodels.predict import read_user_measurements

from . import figures
from .model import DONE, FAILED, IDLE
from .onboarding import error_message
from .views import _download_link, error_box, figure_widget, replace_figure

RANKING_ROWS = 25  # rows of the ranking table in the panel (the download has them all)


class YourModelsModel(HasTraits):
    """State of the "your models" panel: ``load_encodings(path)``, ``load_upload(name, bytes)``,
    then ``run()``; ``error`` says what is wrong, ``result`` holds the prediction."""

    encodings_path = Unicode("", help="the encoding table (parquet or CSV written by multipredict encode)")
    folder = Unicode("", help="a folder whose tables the panel offers (the dashboard's: <results store>/yourmodels)")
    encodings = Instance(pd.DataFrame, allow_none=True)
    measurements = Instance(pd.DataFrame, allow_none=True, help="model, latency_ms, validated by the engine")
    source = Unicode("", help="where the measurements came from, in words")
    encoding = Unicode("hwl", help="one of multipredict.yourmodels.ENCODINGS")
    predictor = Unicode("auto", help="auto or one of multipredict.yourmodels.PREDICTORS")
    error = Unicode("")
    status = Unicode(IDLE)
    result = Instance(PredictResult, allow_none=True)
    ranking_rows = Int(RANKING_ROWS)

    def tables(self) -> list[str]:
        """The tables (parquet / CSV) in ``folder``, newest first; none when it is unset or missing."""
        folder = Path(self.folder).expanduser() if self.folder else None
        if folder is None or not folder.is_dir():
            return []
        found = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES]
        return [str(p) for p in sorted(found, key=lambda p: (-p.stat().st_mtime, p.name))]

    def load_encodings(self, path: str) -> bool:
        """Read an encoding table; False (``error`` says why) when it is not one."""
        with self.hold_trait_notifications():
            self._forget()
            self.encodings, self.measurements, self.source = None, None, ""
            self.encodings_path = str(path)
            try:
                self.encodings = read_encodings(path)
            except Exception as error:  # shown in the panel, never a traceback
                self.error = error_message(error)
                return False
        return True

    def load_upload(self, filename: str, content: bytes) -> bool:
        """Take an uploaded CSV / parquet of ``model,latency_ms``; False (``error`` says why) when it
        is not usable (the engine's own words, naming the user's file)."""
        with self.hold_trait_notifications():
            self._forget()
            self.measurements, self.source = None, ""
            if self.encodings is None:
                self.error = "load an encoding table first: the measurements name its models"
                return False
            name = re.sub(r"[^\w.+-]", "_", Path(filename or "measurements.csv").name) or "measurements.csv"
            with tempfile.TemporaryDirectory(prefix="mpwidgets-upload-") as folder:
                path = Path(folder) / name
                path.write_bytes(bytes(content))
                try:
                    self.measurements = read_user_measurements(path, self.encodings)
                except Exception as error:
                    self.error = error_message(error).replace(str(path), filename)
                    return False
            self.source = f"{filename}: {len(self.measurements)} measurements"
        return True

    @observe("encoding", "predictor")
    def _on_settings(self, change: dict) -> None:
        self._forget()

    def _forget(self) -> None:
        self.result, self.error, self.status = None, "", IDLE

    def run(self) -> bool:
        """Fit and predict (``multipredict.yourmodels.predict_latency``); False when it cannot."""
        if self.encodings is None or self.measurements is None:
            self.error = ("no encoding table yet: give the path of the table `multipredict encode` wrote"
                          if self.encodings is None else
                          "no measurements yet: upload a CSV / parquet with columns model,latency_ms")
            return False
        try:
            result = predict_latency(self.encodings, self.measurements, encoding=self.encoding,
                                     predictor=self.predictor)
        except Exception as error:
            with self.hold_trait_notifications():
                self.result, self.error, self.status = None, error_message(error), FAILED
            return False
        with self.hold_trait_notifications():
            self.result, self.error, self.status = result, "", DONE
        return True

    def ranking(self) -> pd.DataFrame:
        """Every predicted model, fastest first, with its rank and the measurement where there is one."""
        if self.result is None:
            return pd.DataFrame(columns=["rank", "model", "predicted_ms", "measured_ms"])
        table = self.result.predictions.sort_values("predicted_ms", kind="stable").reset_index(drop=True)
        table.insert(0, "rank", range(1, len(table) + 1))
        return table


class YourModelsPanel(w.VBox):
    """Pick the encoding table, upload your measurements, Predict: ``YourModelsPanel()`` or
    ``YourModelsPanel(model=YourModelsModel())``; ``folder``: where to look for tables (the path
    field offers them; any other path can be typed)."""

    def __init__(self, encodings: str | None = None, *, model: YourModelsModel | None = None,
                 folder: str | Path | None = None):
        super().__init__(layout=w.Layout(width="100%"))
        self.add_class("mp-yourmodels")
        self.model = model if model is not None else YourModelsModel()
        m = self.model
        if folder is not None:
            m.folder = str(folder)
        self.path = w.Combobox(value=encodings or m.encodings_path, options=m.tables(), ensure_option=False,
                               description="encoding table", style={"description_width": "initial"},
                               placeholder="enc.parquet (from multipredict encode)"
                               + (f", e.g. in {m.folder}" if m.folder else ""), layout=w.Layout(width="520px"))
        self.path.add_class("mp-yourmodels-path")
        self.load_button = w.Button(description="Load")
        self.load_button.add_class("mp-yourmodels-load")
        self.load_button.on_click(self._on_load)
        self.upload = w.FileUpload(accept=".csv,.parquet,.pq,.txt", multiple=False,
                                   description="Upload measurements", layout=w.Layout(width="230px"))
        self.upload.add_class("mp-yourmodels-upload")
        self.upload.observe(self._on_upload, "value")
        self.encoding = w.Dropdown(options=list(ENCODINGS), value=m.encoding, description="features")
        w.link((m, "encoding"), (self.encoding, "value"))
        self.predictor = w.Dropdown(options=["auto", *PREDICTORS], value=m.predictor, description="predictor")
        w.link((m, "predictor"), (self.predictor, "value"))
        self.run_button = w.Button(description="Predict", button_style="primary", icon="play")
        self.run_button.add_class("mp-yourmodels-run")
        self.run_button.on_click(lambda _: m.run())
        self.info, self.errors, self.summary, self.table, self.downloads = (w.HTML() for _ in range(5))
        self.errors.add_class("mp-yourmodels-errors")
        self.downloads.add_class("mp-yourmodels-downloads")
        self.info.add_class("mp-yourmodels-info")
        self.figure_box = w.Box(layout=w.Layout(width="55%", min_width="420px"))
        self.figure: w.DOMWidget | None = None
        self.children = [
            w.HTML("<b>Your own models</b>: the table <code>multipredict encode</code> wrote, and your device's "
                   "latency of a few of its models (CSV <code>model,latency_ms</code>, 5-20 rows)"),
            w.HBox([self.path, self.load_button]), self.info, w.HBox([self.upload, self.encoding, self.predictor,
                                                                      self.run_button]),
            self.errors, self.summary, w.HBox([self.figure_box, w.VBox([self.table, self.downloads])])]
        m.observe(self._refresh, ["encodings", "measurements", "error", "status", "source"])
        m.observe(self._show_result, "result")
        if encodings:
            m.load_encodings(encodings)
        self._refresh()
        self._show_result()

    def _on_load(self, _=None) -> None:
        self.model.load_encodings(self.path.value.strip())
        self.path.options = self.model.tables()  # a table written since the panel was built is offered too

    def _on_upload(self, change) -> None:
        files = change["new"]
        if files:
            item = files[0] if isinstance(files, (list, tuple)) else next(iter(files.values()))
            self.model.load_upload(item["name"], bytes(item["content"]))

    def _refresh(self, change=None) -> None:
        m = self.model
        self.run_button.disabled = m.encodings is None or m.measurements is None
        self.upload.disabled = m.encodings is None
        parts = []
        if m.encodings is not None:
            ok = int((m.encodings["status"] == "ok").sum())
            parts.append(f"{len(m.encodings)} encoded models ({ok} ok) in {html.escape(m.encodings_path)}")
        if m.measurements is not None:
            parts.append(html.escape(m.source))
        self.info.value = "<i>" + " · ".join(parts) + "</i>" if parts else ""
        self.errors.value = error_box(m.error)

    def _show_result(self, change=None) -> None:
        r = self.model.result
        if r is None:
            self.summary.value = self.table.value = self.downloads.value = ""
            self.figure_box.children, self.figure = [], None
            return
        self.summary.value = f"<div class='mp-yourmodels-summary' style='margin:6px 0'>{html.escape(r.summary())}</div>"
        figure = figure_widget("your_models")
        figure.add_class("mp-yourmodels-figure")
        # the onboarding figure, with the model's name where it shows an arch id
        replace_figure(figure, figures.onboarding_scatter(r.cv_predictions.rename(columns={"model": "arch_id"}),
                                                          "your device", r.cv_spearman))
        self.figure, self.figure_box.children = figure, [figure]
        ranking = self.model.ranking()
        shown = ranking.head(self.model.ranking_rows)
        rows = "".join(f"<tr><td>{row.rank}</td><td>{html.escape(str(row.model))}</td><td>{row.predicted_ms:.3f}</td>"
                       f"<td>{'' if pd.isna(row.measured_ms) else f'{row.measured_ms:.3f}'}</td></tr>"
                       for row in shown.itertuples())
        more = f"<div><small>{len(ranking) - len(shown)} more in the download</small></div>" \
            if len(ranking) > len(shown) else ""
        self.table.value = ("<table class='mp-table mp-yourmodels-ranking'><tr><th>rank</th><th>model</th>"
                            f"<th>predicted ms</th><th>measured ms</th></tr>{rows}</table>{more}")
        record = json.dumps(r.summary_record(), indent=1, default=str).encode()
        self.downloads.value = "Download: " + " · ".join([
            _download_link(r.predictions.to_csv(index=False).encode(), "predictions.csv", "text/csv",
                           f"predicted latency of every model (CSV, {len(r.predictions)} rows)",
                           "mp-yourmodels-download-predictions"),
            _download_link(record, "summary.json", "application/json", "summary (JSON, as predict writes it)",
                           "mp-yourmodels-download-summary")])
