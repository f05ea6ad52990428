"""The workbench's state: one traitlets ``HasTraits`` object that every widget observes.

``ExperimentModel`` holds the fields of an ``ExperimentSpec`` (space, devices, the transfer
method's encoding / hardware embedding / predictor, methods to compare, sample budgets, repeats,
seed, protocol, quick), keeps ``spec`` (or an ``error`` in words) in step with them, runs the spec
through the engine's public runner in a background thread, and streams each finished trial into
``results``. It holds no experiment logic: specs, validation, runs, task distance and the results
store all come from ``multipredict``.

    model = ExperimentModel(space="fbnet")
    model.test_devices = ["fpga"]
    model.samples = [5, 10]
    model.run()          # returns at once; model.status / model.results follow the run
    model.wait()
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
from traitlets import Bool, Dict, HasTraits, Instance, Int, List, Unicode, observe

from multipredict import config, tasks
from multipredict.spaces import LATENCY_SPACES
from multipredict.data import catalogue
from multipredict.data.catalogue import KINDS
from multipredict.errors import MultipredictError
from multipredict.messages import one_line, user_message
from multipredict.experiments import ExperimentSpec, ResultStore, TrialResult, method_names
from multipredict.experiments import methods as method_registry
from multipredict.experiments import run as run_spec
from multipredict.experiments.runner import COLUMNS

log = logging.getLogger(__name__)

PROTOCOLS = ("paper", "help")
EXECUTORS = {"thread": None, "processes": "processes"}
PREDICTORS = ("auto", "gcn", "mlp")  # TrialOptions' choices (multipredict.methods.transfer), without importing torch here
FINE_TUNE = ("auto", "head", "all")  # TrialOptions.target_train's choices, likewise
HELP = "HELP"  # the registry's name of the HELP baseline
IDLE, RUNNING, CANCELLING, DONE, CANCELLED, FAILED = "idle", "running", "cancelling", "done", "cancelled", "failed"


def join_threads(threads, timeout: float | None, apply: Callable[[], None]) -> bool:
    """What every model's ``wait`` does: join ``threads`` (None entries skipped) within ``timeout``
    seconds in all, then ``apply()`` (bring their posted results into the model) and return True;
    False while one is still running."""
    deadline = None if timeout is None else time.monotonic() + timeout
    for thread in threads:
        if thread is not None:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                return False
    apply()
    return True


def request_cancel(model, cancel: threading.Event | None, message: str) -> None:
    """What every model's ``cancel`` does: set the run's event and say what finishes first."""
    if cancel is not None and model.status == RUNNING:
        cancel.set()
        model.status = CANCELLING
        model.message = message
# Traits that make up the spec: a change to any of them rebuilds (and revalidates) it.
SPEC_TRAITS = ("space", "train_devices", "test_devices", "use_transfer", "encoding", "embedding", "predictor",
               "fine_tune", "compare", "samples", "method_samples", "repeats", "seed", "protocol", "help_protocol",
               "quick")


class ChoiceError(MultipredictError):
    """A choice in the workbench that cannot make a spec (e.g. a sample budget that is not a number)."""


def explain_error(error: BaseException) -> str:
    """An error as one line for the error area, in the command line's words (`user_message`): the
    engine's own messages and pydantic's per-field ones without their boilerplate; never a traceback."""
    message = user_message(error)
    if message is not None:
        return message
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    if isinstance(error, ValueError):
        return one_line(str(error))
    return f"unexpected {type(error).__name__}: {one_line(str(error))} (the details are in the kernel log)"


def start_loader(compute: Callable[[], Any], deliver: Callable[[Any, str], None], *, now: bool, name: str,
                 context: str = "", expected: tuple[type[BaseException], ...] = ()) -> threading.Thread | None:
    """What every model's background load does: ``compute()`` in a daemon thread named ``name`` (at
    once, in the caller's thread, when ``now``: tests and papermill), then ``deliver(value, "")``, or
    ``deliver(None, problem)`` with the error in one line (``explain_error``, after ``context + ": "``).
    Errors that are not the user's (no ``user_message``, not one of ``expected``) go to the log with
    their traceback. ``deliver`` runs in the loading thread: post to the kernel from there. Returns
    the thread (None when ``now``)."""
    def load() -> None:
        try:
            value = compute()
        except Exception as error:
            if user_message(error) is None and not isinstance(error, expected):
                log.exception("%s failed", name)
            problem = explain_error(error)
            deliver(None, f"{context}: {problem}" if context else problem)
            return
        deliver(value, "")

    if now:
        load()
        return None
    thread = threading.Thread(target=load, daemon=True, name=name)
    thread.start()
    return thread


@config.cache_per_data_source(maxsize=4)
def _distance_matrix(space: str) -> pd.DataFrame:
    names = [d.name for d in ordered_devices(space)]
    return tasks.device_correlation(space, names, names)


@config.cache_per_data_source(maxsize=256)
def _closest(space: str, train: tuple[str, ...], test: str) -> tuple[str, float]:
    row = tasks.closest_training_device(space, list(train), [test]).iloc[0]
    return str(row["closest_train"]), float(row["spearman"])


def ordered_devices(space: str) -> list[catalogue.Device]:
    """The space's devices grouped by kind (GPU, CPU, mobile, ...), catalogue order within a kind."""
    devices = catalogue.devices(space)
    rank = {k: i for i, k in enumerate(KINDS)}
    return sorted(devices, key=lambda d: rank.get(d.kind, len(rank)))


def devices_by_kind(space: str) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for device in ordered_devices(space):
        groups.setdefault(device.kind, []).append(device.name)
    return groups


def transfer_methods() -> dict[tuple[str, str], str]:
    """(encoding, hardware embedding) -> name of the registered transfer method that uses them."""
    out: dict[tuple[str, str], str] = {}
    for name in method_names():
        fixed = method_registry.get(name).fixed
        if "encoding" in fixed and "embedding" in fixed:
            out.setdefault((fixed["encoding"], fixed["embedding"]), name)
    return out


def parse_budgets(text: str) -> list[int]:
    """'10, 20 50' -> [10, 20, 50]; anything else is a ChoiceError that says what was expected."""
    parts = [p for p in text.replace(",", " ").split() if p]
    if not parts:
        raise ChoiceError("no sample budget given; type one or more numbers of few-shot samples, e.g. 10, 20")
    budgets = []
    for part in parts:
        try:
            value = int(part)
        except ValueError:
            raise ChoiceError(f"sample budget {part!r} is not a whole number; type numbers of few-shot samples "
                              "separated by commas, e.g. 5, 10, 20") from None
        if value < 0:
            raise ChoiceError(f"sample budget {value} is negative; a budget counts measured archs, e.g. 10")
        budgets.append(value)
    return list(dict.fromkeys(budgets))


def parse_method_budgets(text: str, known: Sequence[str]) -> dict[str, list[int]]:
    """'BRP-NAS: 900, 3200; FLOPs: 0' -> {'BRP-NAS': [900, 3200], 'FLOPs': [0]}."""
    out: dict[str, list[int]] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        name, colon, budgets = part.rpartition(":")
        name = name.strip()
        if not colon or not name:
            raise ChoiceError(f"per-method budgets {part!r}: expected 'method: budgets', e.g. BRP-NAS: 900, 3200")
        if name not in known:
            raise ChoiceError(f"per-method budgets name unknown method {name!r}; registered methods: "
                              f"{', '.join(known)}")
        out[name] = parse_budgets(budgets)
    return out


class KernelUpdates:
    """Hands updates (trait changes, hence widget redraws) from a worker thread to the kernel's main
    thread. Widgets (plotly's FigureWidget above all) are not thread-safe: the kernel's main thread
    handles the browser's messages to them while a worker thread would be editing them, so updates
    are queued and the kernel's event loop applies them between messages. Without an event loop
    (plain Python, tests) they apply at once, under ``lock``."""

    def __init__(self, lock: threading.RLock | None = None, what: str = "workbench") -> None:
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = lock if lock is not None else threading.RLock()
        self._what = what
        try:  # the kernel's event loop, when built in a notebook cell
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    def post(self, update: Callable[[], None]) -> None:
        if self._loop is None:
            with self._lock:
                update()
            return
        self._queue.put(update)
        try:
            self._loop.call_soon_threadsafe(self.apply)
        except RuntimeError:  # the kernel's loop is closed (shutting down): nobody is watching
            pass

    def apply(self) -> None:
        if self._loop is not None and threading.current_thread() is not threading.main_thread():
            return  # only the main thread applies queued updates
        while True:
            try:
                update = self._queue.get_nowait()
            except queue.Empty:
                return
            try:
                update()
            except Exception:  # one bad update must not stop the ones after it
                log.exception("%s update failed", self._what)


class ExperimentModel(HasTraits):
    """State of the workbench. Widgets set the spec traits; the model derives ``spec`` / ``error``,
    runs, and fills ``results``, ``status``, ``completed`` / ``total``."""

    # ---- what to run (the ExperimentSpec's fields) ----
    space = Unicode("nb201")
    train_devices = List(Unicode())
    test_devices = List(Unicode())
    use_transfer = Bool(True, help="run the Multi-Predict transfer method picked by encoding x embedding")
    encoding = Unicode("vec")
    embedding = Unicode("table")
    predictor = Unicode("auto")
    fine_tune = Unicode("auto", help="which weights fine-tuning a target trains: auto, head (arch body frozen), all")
    compare = List(Unicode(), help="further registered methods to run beside it (HELP, BRP-NAS, FLOPs, ...)")
    samples = List(Int(), default_value=[10, 20])
    method_samples = Dict(help="method -> its own sample budgets (e.g. BRP-NAS: [900, 3200]); ticked methods only")
    repeats = Int(3)
    seed = Int(0)
    protocol = Unicode("paper")
    help_protocol = Bool(True, help="run HELP under HELP's own protocol, as the paper quotes it")
    quick = Bool(False)
    executor = Unicode("thread")

    # ---- derived ----
    spec = Instance(ExperimentSpec, allow_none=True)
    input_errors = Dict(help="control name -> message, for inputs that cannot even be parsed")
    spec_error = Unicode("")
    run_error = Unicode("")
    error = Unicode("", help="everything wrong now, in words (empty when the spec is valid)")
    distance = Instance(pd.DataFrame, allow_none=True, help="device x device Spearman of the space")
    closest = Instance(pd.DataFrame, allow_none=True, help="each test device's closest training device")

    # ---- the run ----
    status = Unicode(IDLE)
    completed = Int(0)
    total = Int(0)
    cached = Int(0, help="trials that came from the results store instead of running")
    message = Unicode("")
    results = Instance(pd.DataFrame)
    trial_errors = List(Unicode())
    running_spec = Instance(ExperimentSpec, allow_none=True)

    def __init__(self, space: str = "nb201", preset: str | None = None, store: ResultStore | None = None,
                 load_distance: str = "background", **traits: Any):
        """``preset``: a device set of ``multipredict.tasks.DEVICE_SETS`` (default ``<space>-default``);
        ``store``: a results store (trials already stored are not rerun); ``load_distance``:
        ``background`` (a thread), ``now`` or ``never`` for the task-distance matrix."""
        self._building = True
        super().__init__(space=space, results=pd.DataFrame(columns=COLUMNS), **traits)
        self.store = store
        self._load_distance = load_distance
        self._lock = threading.RLock()
        self._updates = KernelUpdates(self._lock)  # see _post
        self._thread: threading.Thread | None = None
        self._cancel: threading.Event | None = None
        self._distance_token = 0
        if not (traits.get("train_devices") or traits.get("test_devices")):
            self.apply_preset(preset or (tasks.default_device_set(space) if space in LATENCY_SPACES else None))
        self._building = False
        self._rebuild_spec()
        self._refresh_closest()
        self._start_distance()

    # ---------------------------------------------------------------- choices on offer
    def device_groups(self) -> dict[str, list[str]]:
        return devices_by_kind(self.space)

    def device_descriptions(self) -> dict[str, str]:
        return {d.name: d.description for d in catalogue.devices(self.space)}

    def device_kinds(self) -> dict[str, str]:
        return {d.name: d.kind for d in catalogue.devices(self.space)}

    def presets(self) -> list[str]:
        """The device sets of this space that the current data source has data for."""
        return tasks.available_device_sets(self.space) if self.space in LATENCY_SPACES else []

    def encodings(self) -> list[str]:
        return list(dict.fromkeys(enc for enc, _ in transfer_methods()))

    def embeddings(self) -> list[str]:
        return list(dict.fromkeys(emb for _, emb in transfer_methods()))

    def comparable_methods(self) -> list[str]:
        """Every registered method, the transfer variants first."""
        tl = list(dict.fromkeys(transfer_methods().values()))
        return tl + [m for m in method_names() if m not in tl]

    # ---------------------------------------------------------------- actions
    def apply_preset(self, name: str | None) -> None:
        """Take the train / test devices (and the space) of a named device set."""
        if not name:
            return
        device_set = tasks.device_set(name)
        with self.hold_trait_notifications():
            self.space = device_set.space
            self.train_devices = list(device_set.train)
            self.test_devices = list(device_set.test)

    def toggle_device(self, role: str, device: str) -> None:
        """Add ``device`` to (or remove it from) ``train`` or ``test`` devices."""
        if role not in ("train", "test"):
            raise ChoiceError(f"role {role!r}: expected 'train' or 'test'")
        trait = f"{role}_devices"
        chosen = list(getattr(self, trait))
        setattr(self, trait, [d for d in chosen if d != device] if device in chosen else chosen + [device])

    def set_devices(self, role: str, devices: Sequence[str], selected: bool) -> None:
        """Select or unselect several devices at once (a whole kind)."""
        trait = f"{role}_devices"
        chosen = [d for d in getattr(self, trait) if d not in devices]
        setattr(self, trait, chosen + list(devices) if selected else chosen)

    def set_input_error(self, control: str, message: str | None) -> None:
        errors = dict(self.input_errors)
        if message:
            errors[control] = message
        else:
            errors.pop(control, None)
        self.input_errors = errors

    def transfer_method(self) -> str:
        """The registered transfer method for the chosen encoding and hardware embedding."""
        combos = transfer_methods()
        name = combos.get((self.encoding, self.embedding))
        if name is None:
            listing = "; ".join(f"{n} ({e} + {h})" for (e, h), n in combos.items())
            raise ChoiceError(f"no registered transfer method combines the {self.encoding!r} encoding with the "
                              f"{self.embedding!r} hardware embedding; pick another pair. Registered: {listing}")
        return name

    def methods(self) -> list[str]:
        chosen = [self.transfer_method()] if self.use_transfer else []
        return list(dict.fromkeys(chosen + list(self.compare)))

    def build_spec(self) -> ExperimentSpec:
        """The ExperimentSpec of the current choices; raises the engine's validation error."""
        if self.input_errors:
            raise ChoiceError("\n".join(self.input_errors.values()))
        methods = self.methods()
        if not methods:
            raise ChoiceError("no method chosen: tick 'Multi-Predict transfer' or at least one method to compare")
        method_options: dict[str, dict[str, Any]] = {}
        transfer_options = {k: v for k, v in (("predictor", self.predictor), ("target_train", self.fine_tune))
                            if v != "auto"}
        if self.use_transfer and transfer_options:
            method_options[self.transfer_method()] = transfer_options
        if self.help_protocol and HELP in methods:
            method_options[HELP] = {"protocol": "help"}
        method_samples = {m: list(b) for m, b in self.method_samples.items() if m in methods}
        spec = ExperimentSpec(space=self.space, methods=methods, train_devices=self.train_devices,
                              test_devices=self.test_devices, samples=self.samples, method_samples=method_samples,
                              repeats=self.repeats,
                              seed=self.seed, protocol=self.protocol, quick=self.quick,
                              method_options=method_options, name="workbench")
        return spec.check_data()  # a budget larger than a pool shows at once, not when Run is pressed

    def run(self) -> bool:
        """Start the current spec in the background. False (and ``error`` says why) when the choices
        do not make a valid spec or a run is already going; nothing starts then."""
        with self._lock:
            if self.status in (RUNNING, CANCELLING):
                self.run_error = "a run is already going: wait for it or press Cancel first"
                return False
            self._rebuild_spec()
            if self.spec is None:
                return False
            spec, self._cancel = self.spec, threading.Event()
            with self.hold_trait_notifications():
                self.run_error = ""
                self.trial_errors = []
                self.running_spec = spec
                self.results = pd.DataFrame(columns=COLUMNS)
                self.completed, self.total, self.cached = 0, spec.n_trials(), 0
                self.status = RUNNING
                self.message = f"running {spec.n_trials()} trials: {', '.join(spec.methods)}"
            self._rows: list[dict[str, Any]] = []
            self._thread = threading.Thread(target=self._work, args=(spec, self._cancel), daemon=True,
                                            name="mpwidgets-run")
            self._thread.start()
            return True

    def cancel(self) -> None:
        """Stop scheduling trials; the trials already running finish and their rows are kept."""
        request_cancel(self, self._cancel, "cancelling: the trial that is running finishes first")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends and its results are in the model (scripts, tests); True when it ended."""
        return join_threads([self._thread], timeout, self._drain)

    def wait_for_distance(self, timeout: float | None = None) -> bool:
        return join_threads([getattr(self, "_distance_thread", None)], timeout, self._drain)

    # ---------------------------------------------------------------- from worker threads to the UI thread
    def _post(self, update: Callable[[], None]) -> None:
        """Apply ``update`` on the kernel's main thread (`KernelUpdates`)."""
        self._updates.post(update)

    def _drain(self) -> None:
        self._updates.apply()

    # ---------------------------------------------------------------- the run, in its thread
    def _work(self, spec: ExperimentSpec, cancel: threading.Event) -> None:
        try:
            frame = run_spec(spec, EXECUTORS.get(self.executor), on_result=self._on_trial, cancel=cancel,
                             store=self.store)
        except Exception as error:  # the run must end in a state the UI can show, never kill the kernel
            log.exception("run of spec %s failed", spec.spec_hash()[:12])
            self._post(functools.partial(self._fail, error))
            return
        self._post(functools.partial(self._finish, frame, cancel))

    def _fail(self, error: Exception) -> None:
        with self.hold_trait_notifications():
            self.run_error = f"the run stopped: {explain_error(error)}"
            self.status = FAILED
            self.message = f"failed after {self.completed} of {self.total} trials"

    def _finish(self, frame: pd.DataFrame, cancel: threading.Event) -> None:
        with self.hold_trait_notifications():
            self.results = frame
            cancelled = bool(frame.attrs.get("cancelled")) or cancel.is_set() and self.completed < self.total
            self.status = CANCELLED if cancelled else DONE
            stored = f", {self.cached} from the results store" if self.cached else ""
            failed = f", {len(self.trial_errors)} failed" if self.trial_errors else ""
            self.message = (f"cancelled after {self.completed} of {self.total} trials{stored}{failed}" if cancelled
                            else f"done: {self.total} trials{stored}{failed}")

    def _on_trial(self, result: TrialResult | pd.DataFrame | dict | list) -> None:
        self._post(functools.partial(self._add_trial, *_unpack(result)))

    def _add_trial(self, rows: list[dict], completed: int | None, total: int | None, cached: bool,
                   error: str | None, label: str) -> None:
        with self.hold_trait_notifications():
            self._rows.extend(rows)
            frame = pd.DataFrame(self._rows)
            self.results = frame.reindex(columns=COLUMNS + [c for c in frame.columns if c not in COLUMNS])
            self.completed = completed if completed is not None else self.completed + 1
            if total is not None:
                self.total = total
            self.cached += int(bool(cached))
            if error:
                self.trial_errors = self.trial_errors + [f"{label} failed: {error}"]
            if self.status == RUNNING:
                self.message = f"{self.completed} of {self.total} trials done ({label})"

    # ---------------------------------------------------------------- derived state
    @observe(*SPEC_TRAITS, "input_errors")
    def _on_choice(self, change: dict) -> None:
        if self._building:
            return
        if change["name"] == "space":
            self._on_space(change["old"], change["new"])
        self._rebuild_spec()
        if change["name"] in ("space", "train_devices", "test_devices"):
            self._refresh_closest()

    def _on_space(self, old: str, new: str) -> None:
        self.message = f"loading the {new} device data..."  # sent at once: the loading takes seconds
        known = set(catalogue.device_names(new)) if new in LATENCY_SPACES else set()
        preset = tasks.default_device_set(new) if new in LATENCY_SPACES else None
        with self.hold_trait_notifications():
            if preset is not None:
                self.apply_preset(preset)
            else:
                self.train_devices = [d for d in self.train_devices if d in known]
                self.test_devices = [d for d in self.test_devices if d in known]
        self._start_distance()
        self.message = ""

    def _rebuild_spec(self) -> None:
        try:
            spec, error = self.build_spec(), ""
        except Exception as exc:  # ValidationError, MultipredictError, or a surprise: shown, never raised
            spec, error = None, explain_error(exc)
        with self.hold_trait_notifications():
            self.spec = spec
            self.spec_error = error

    @observe("spec_error", "run_error")
    def _on_error(self, change: dict) -> None:
        self.error = "\n".join(e for e in (self.spec_error, self.run_error) if e)

    @observe("spec")
    def _clear_stale_run_error(self, change: dict) -> None:
        if self.status not in (RUNNING, CANCELLING) and change["new"] is not None:
            self.run_error = ""

    def _refresh_closest(self) -> None:
        train = tuple(self.train_devices)
        rows = []
        if train and self.space in LATENCY_SPACES:
            known = set(catalogue.device_names(self.space))
            for test in self.test_devices:
                if test in known and all(t in known for t in train) and test not in train:
                    try:
                        name, rho = _closest(self.space, train, test)
                    except MultipredictError as exc:
                        log.info("no closest device for %s: %s", test, exc)
                        continue
                    rows.append({"test": test, "closest_train": name, "spearman": rho})
        self.closest = pd.DataFrame(rows, columns=["test", "closest_train", "spearman"])

    def _set_distance(self, token: int, matrix: pd.DataFrame) -> None:
        if token == self._distance_token:  # not a space left since
            self.distance = matrix

    def _start_distance(self) -> None:
        if self._load_distance == "never" or self.space not in LATENCY_SPACES:
            return
        self._distance_token += 1
        token, space = self._distance_token, self.space
        self.distance = None

        def deliver(matrix: pd.DataFrame | None, problem: str) -> None:
            self._post(functools.partial(self._set_distance, token, matrix) if not problem
                       else functools.partial(setattr, self, "run_error", problem))

        self._distance_thread = start_loader(functools.partial(_distance_matrix, space), deliver,
                                             now=self._load_distance == "now", name="mpwidgets-distance",
                                             context=f"the task-distance heatmap of {space} could not be computed")


def _unpack(result: Any) -> tuple[list[dict], int | None, int | None, bool, str | None, str]:
    """Rows, progress and a label from what the runner's ``on_result`` hands over."""
    if isinstance(result, TrialResult):
        trial = result.trial
        label = f"{trial.method}, {trial.samples} samples, seed {trial.seed}"
        return list(result.rows), result.completed, result.total, result.cached, result.error, label
    if isinstance(result, pd.DataFrame):
        rows = result.to_dict("records")
    elif isinstance(result, dict):
        rows = [result]
    else:
        rows = list(result)
    first = rows[0] if rows else {}
    error = next((r.get("error") for r in rows if r.get("error")), None)
    label = f"{first.get('method', '?')}, {first.get('samples', '?')} samples, seed {first.get('seed', '?')}"
    return rows, None, None, False, error, label
