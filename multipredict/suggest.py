"""Which archs to measure on a new device: sample selection for onboarding.

The paper draws the k archs at random. The strategies here use what is known before measuring
anything: how every arch runs on the public devices. Each arch gets a **latency profile**: its
latency on each public source device as a rank in [0, 1] (0 the fastest arch of the candidates on
that device). A new device ranks archs much like some public device, so archs spread over the
profile space cover the rankings the new device can have.

- ``random``: k archs at random (the paper).
- ``reference``: HELP's 10 reference archs first (those among the candidates), then random.
- ``stratified``: sort the candidates by their mean profile rank, cut them into k equal strata and
  take one arch at random from each, so the k archs span the whole range from fast to slow
  evenly; the order interleaves the strata, so any prefix is spread too.
- ``reference+stratified``: HELP's reference archs, then stratified for the rest.
- ``kcenter``: greedy farthest-point selection in the profile space (starting from the arch
  nearest the centre, or from the archs already measured).
- ``representative``: k-means in the profile space (k clusters plus one per arch already
  measured); from each cluster that holds no measured arch, the arch nearest its centre, largest
  clusters first. Unlike ``kcenter`` it follows the archs' density instead of reaching for outliers.
- ``herding``: kernel herding (Chen, Welling & Smola, UAI 2010) in the arch representation of the
  pretrained transfer predictor (what its head sees of an arch, `arch_representation`): greedily
  the arch that brings the chosen archs' mean feature map (Gaussian kernel, median-heuristic
  bandwidth, random Fourier features) closest to that of all candidates. The k archs then match
  the candidates' distribution as the predictor sees it, so fine-tuning on them approximates
  fine-tuning on the whole pool; the profile-space strategies above cover what the public devices
  see instead.
- ``design``: sequential transductive experimental design (Yu, Bi & Tresp, ICML 2006) in what the
  output layer of a new device's fine-tune is linear in: each arch as the pretrained head's last
  hidden layer sees it on every source device (a new device starts from one source device's
  embedding row, Eq. 1), reduced to its `DESIGN_COMPONENTS` principal axes. Greedily, the arch whose
  label most lowers the summed posterior variance of a Bayesian linear model on those axes
  (isotropic prior on the centred, unwhitened scores: an axis counts as much as the archs vary along
  it), given the archs chosen or measured so far, over a random sample of `DESIGN_SHORTLIST`
  candidates (an estimate of the sum over all of them) that the picks are made from. Herding matches
  where the archs are; design covers the directions in which the predictor's view of them varies, so
  its archs pin down a device's head.
- ``reference+design``: HELP's reference archs, then ``design`` given them.
- ``active``: needs measurements: fine-tunes an ensemble of predictors on bootstrap resamples of
  the measured archs and takes the archs whose predicted rank the ensemble disagrees on most
  (among a stratified shortlist, so the batch does not pile up in one corner).

With ``measured`` archs, every strategy is sequential: it suggests the next k, given those.

Each space has its default (`DEFAULT_STRATEGIES`), measured with `onboard`'s two starts against
random archs on HELP's meta-test devices (`benchmarks/selection.py`, 20 archs, 60 seeds; paired
mean minus random 40, standard error): NB201 ``reference+design`` +.0003 (.0005), FBNet ``design``
alone on 8 principal axes +.0002 (.0003); both beat random 20 (+.0044 / +.0053) and are not below it
on any meta-test device. On FBNet the reference archs cost about .001 with two starts
(``reference+design`` -.0008 there) and 8 axes beat 16 (`DESIGN_COMPONENTS`): chosen among nine
variants on seeds 0-59, it held on fresh seeds 60-119 (+.0001) and on the 18 held-out FBNet devices
(+.0022 over random 40, +.0025 over ``reference+design``). On NB201 design alone on 8 axes was no
better than ``reference+design`` (seeds 0-29), which stays. With one start (the paper's onboarding)
``reference+design`` and ``design`` (16 axes) measured best in both spaces over seeds 0-29
(NB201 / FBNet .9581 / .9681 and .9586 / .9671, against .9543 / .9610 for random 20 and .9600 /
.9678 for random 40); there, on NB201, the gap to random 40 over 60 seeds (.0008) was Eq. 1's pick
of the source row over the designed archs, not the fit. The predictor-placing strategies need the
pretrained predictor: shipped for the default sources (seconds), pretrained once for other
``sources`` (minutes, then cached).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .errors import MultipredictError, UnknownNameError

STRATEGIES: tuple[str, ...] = ("random", "reference", "stratified", "kcenter", "representative", "herding",
                               "design", "active", "reference+stratified", "reference+design")
# kernel herding: random Fourier features of the Gaussian kernel, and the archs its bandwidth is taken from
HERDING_FEATURES = 512
BANDWIDTH_SAMPLE = 200
# experimental design: the label noise's variance, in units of the prior variance of the linear model's weights
# on the features it places archs on (scaled to a mean variance of 1), and how many candidates (drawn at random)
# it sums the variance over and picks among
DESIGN_NOISE = 0.1
DESIGN_SHORTLIST = 2000
# the principal axes of the head's source-device views that the design places archs on, per space (FBNet's 8
# chosen with onboard's two starts among 8, 16 and 32, see the module's docs)
DESIGN_COMPONENTS = {"nb201": 16, "fbnet": 8}
# what each space's suggestions take when no strategy is named (see the module's docs)
DEFAULT_STRATEGIES = {"nb201": "reference+design", "fbnet": "design"}


def default_strategy(space: str) -> str:
    """The strategy `suggest` takes for ``space`` when none is named (`DEFAULT_STRATEGIES`)."""
    if space not in DEFAULT_STRATEGIES:
        raise UnknownNameError("space with latency profiles", space, tuple(DEFAULT_STRATEGIES))
    return DEFAULT_STRATEGIES[space]


def latency_profile(space: str, sources: Sequence[str] | None = None) -> pd.DataFrame:
    """Arch id x public source device: each device's latency as a rank in [0, 1] over the archs it
    measured (default devices: every HELP device of the space); archs lacking a device are
    dropped."""
    from .data import help, tables

    devices = list(sources) if sources is not None else help.devices(space)
    table = tables.latencies(space)
    unknown = [d for d in devices if d not in table.columns]
    if unknown:
        raise UnknownNameError(f"{space} device", unknown[0], list(table.columns))
    frame = table[devices].dropna()
    return frame.rank(pct=True)


def uses_predictor(strategy: str) -> bool:
    """Whether ``strategy`` places archs with the pretrained transfer predictor (loaded, or pretrained
    for custom sources, before it can choose)."""
    return strategy.split("+")[-1] in (*PLACING_RULES, "active")


def _rng(seed: int, space: str, strategy: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(f"{space}:{strategy}".encode())])


def _interleave(n: int) -> list[int]:
    """0..n-1 in bit-reversed (van der Corput) order: every prefix is spread over the range."""
    bits = max(1, int(np.ceil(np.log2(max(n, 2)))))
    order = sorted(range(2 ** bits), key=lambda i: int(format(i, f"0{bits}b")[::-1], 2))
    return [i for i in order if i < n]


def _stratified(score: pd.Series, k: int, measured: np.ndarray, rng: np.random.Generator) -> list[int]:
    """One arch per empty stratum of ``score`` (candidates incl. measured, cut into k + m strata)."""
    ordered = score.sort_values(kind="stable")
    strata = np.array_split(ordered.index.to_numpy(), k + len(measured))
    taken = set(measured.tolist())
    empty = [i for i, s in enumerate(strata) if not taken.intersection(s.tolist())]
    chosen = []
    for position in _interleave(len(empty)):
        stratum = [a for a in strata[empty[position]] if a not in taken]
        if stratum:
            chosen.append(int(rng.choice(stratum)))
    return chosen[:k]


def _kcenter(profile: pd.DataFrame, k: int, measured: np.ndarray) -> list[int]:
    points = profile.to_numpy(dtype=float)
    ids = profile.index.to_numpy()
    position = {a: i for i, a in enumerate(ids)}
    centres = [position[a] for a in measured if a in position]
    if not centres:
        centres = [int(np.argmin(((points - points.mean(axis=0)) ** 2).sum(axis=1)))]
        first = [int(ids[centres[0]])]
    else:
        first = []
    distance = np.min([((points - points[c]) ** 2).sum(axis=1) for c in centres], axis=0)
    chosen = list(first)
    while len(chosen) < k:
        best = int(np.argmax(distance))
        chosen.append(int(ids[best]))
        distance = np.minimum(distance, ((points - points[best]) ** 2).sum(axis=1))
    return chosen[:k]


def _representative(profile: pd.DataFrame, k: int, measured: np.ndarray, rng: np.random.Generator) -> list[int]:
    from scipy.cluster.vq import kmeans2

    points = profile.to_numpy(dtype=float)
    ids = profile.index.to_numpy()
    n_clusters = min(len(ids), k + len(measured))
    centres, label = kmeans2(points, n_clusters, minit="++", seed=rng)
    held = set(label[np.isin(ids, measured)].tolist())
    sizes = np.bincount(label, minlength=n_clusters)
    chosen = []
    for cluster in np.argsort(-sizes, kind="stable"):
        members = np.flatnonzero(label == cluster)
        if cluster in held or len(members) == 0:
            continue
        nearest = members[np.argmin(((points[members] - centres[cluster]) ** 2).sum(axis=1))]
        chosen.append(int(ids[nearest]))
    if len(chosen) < k:  # clusters shared with measured archs or empty: random for the rest
        rest = np.setdiff1d(ids, np.concatenate([measured, chosen]).astype(np.int64))
        chosen += [int(a) for a in rng.choice(rest, size=k - len(chosen), replace=False)]
    return chosen[:k]


def _standardised(features: np.ndarray) -> np.ndarray:
    return (features - features.mean(axis=0)) / np.maximum(features.std(axis=0), 1e-9)


def _herding(features: np.ndarray, k: int, start: np.ndarray, rng: np.random.Generator) -> list[int]:
    """Kernel herding on the rows of ``features`` (one per candidate): ``k`` row positions, each the
    one that brings the mean random-Fourier feature map of the rows chosen so far (``start``
    first: the measured archs) closest to the mean over every row."""
    z = _standardised(features)
    from scipy.spatial.distance import pdist

    squared = pdist(z[rng.choice(len(z), size=min(BANDWIDTH_SAMPLE, len(z)), replace=False)], "sqeuclidean")
    squared = squared[squared > 0]
    bandwidth = np.sqrt(np.median(squared) / 2) if len(squared) else 1.0  # the median heuristic
    weights = rng.normal(size=(z.shape[1], HERDING_FEATURES)) / bandwidth
    phases = rng.uniform(0, 2 * np.pi, HERDING_FEATURES)
    mapped = np.sqrt(2 / HERDING_FEATURES) * np.cos(z @ weights + phases)
    target = mapped.mean(axis=0)
    norms = (mapped ** 2).sum(axis=1)
    chosen = [int(i) for i in start]
    total = mapped[chosen].sum(axis=0) if chosen else np.zeros(HERDING_FEATURES)
    for _ in range(k):
        # |target - (total + x) / n|^2 for every candidate x (n = chosen + 1), expanded so that a step
        # is one matrix-vector product: n^2 times it is |n target - total|^2 - 2 x.(n target - total) + |x|^2
        n = len(chosen) + 1
        gap = norms - 2 * (mapped @ (n * target - total))
        gap[chosen] = np.inf
        best = int(np.argmin(gap))
        chosen.append(best)
        total += mapped[best]
    return chosen[len(start):]


def _principal(features: np.ndarray, components: int) -> np.ndarray:
    """The rows of ``features`` as scores on their top ``components`` principal axes (centred, not
    whitened), scaled to a mean variance of 1 per axis; rows of rank at most ``components`` are
    only centred and scaled."""
    from scipy.sparse.linalg import svds

    centred = features - features.mean(axis=0)
    if min(centred.shape) > components + 1:
        _, _, axes = svds(centred, k=components, random_state=0)
        centred = centred @ axes.T
    return centred / np.sqrt(max(float(centred.var(axis=0).mean()), 1e-12))


def _design(features: np.ndarray, k: int, start: np.ndarray) -> list[int]:
    """Sequential transductive experimental design (Yu, Bi & Tresp, ICML 2006) with a linear kernel
    on the rows of ``features`` (centred): ``k`` row positions, each the row not chosen yet whose
    label most lowers the summed posterior variance, over every row, of a Bayesian linear model on
    the features (weights ~ N(0, I), label noise variance `DESIGN_NOISE`), given the rows chosen so
    far (``start`` first: the measured archs)."""
    z = np.asarray(features, dtype=float)
    n, d = z.shape
    second_moment = z.T @ z / n

    def given(posterior: np.ndarray, row: int) -> np.ndarray:  # Sherman-Morrison: one more labelled row
        spread = posterior @ z[row]
        return posterior - np.outer(spread, spread) / (DESIGN_NOISE + z[row] @ spread)

    posterior = np.eye(d)  # the weights' posterior covariance
    open_ = np.ones(n, dtype=bool)
    for row in start:
        posterior = given(posterior, int(row))
        open_[int(row)] = False
    chosen = []
    for _ in range(k):
        # labelling x lowers sum_i var(z_i . w) by n x'PSPx / (noise + x'Px): P the posterior, S = z'z / n
        gain = np.einsum("ij,jk,ik->i", z, posterior @ second_moment @ posterior, z)
        gain /= DESIGN_NOISE + np.einsum("ij,jk,ik->i", z, posterior, z)
        best = int(np.argmax(np.where(open_, gain, -np.inf)))
        open_[best] = False
        chosen.append(best)
        posterior = given(posterior, best)
    return chosen


def _place_by_herding(predictor, pool: np.ndarray, k: int, start: np.ndarray, rng: np.random.Generator) -> list[int]:
    return _herding(predictor.arch_representation(pool), k, start, rng)


def _place_by_design(predictor, pool: np.ndarray, k: int, start: np.ndarray, rng: np.random.Generator) -> list[int]:
    """`_design` on the measured archs (positions ``start`` in ``pool``) and a random sample of
    `DESIGN_SHORTLIST` of the others: it picks among the sample and sums the variance over it and
    the measured archs (an estimate of the sum over every candidate), in the sample's
    `source_views` on their `DESIGN_COMPONENTS` principal axes."""
    others = np.setdiff1d(np.arange(len(pool)), start)
    rows = np.concatenate([start, np.sort(rng.choice(others, size=min(DESIGN_SHORTLIST, len(others)), replace=False))])
    features = _principal(predictor.source_views(pool[rows]), DESIGN_COMPONENTS[predictor.space])
    return [int(rows[i]) for i in _design(features, k, np.arange(len(start)))]


# the rules that place archs with the pretrained predictor
PLACING_RULES = {"herding": _place_by_herding, "design": _place_by_design}


def _default_predictor(space: str, sources: Sequence[str] | None):
    """The transfer predictor pretrained on ``sources`` (default every HELP device: what `onboard`
    uses, shipped with the repository) with the default seed, so a suggestion never pretrains anew
    because of its own seed."""
    from .data import help
    from .methods.transfer import BenchmarkTransfer

    return BenchmarkTransfer(space, list(sources) if sources is not None else help.devices(space)).fit()


def suggest(space: str, k: int, *, strategy: str | None = None, candidates=None, measured=None,
            measured_ms=None, sources: Sequence[str] | None = None, seed: int = 0, predictor=None,
            ensemble: int = 5) -> list[int]:
    """The next ``k`` arch ids to measure, in the order to measure them.

    ``strategy``: one of `STRATEGIES` (None: the space's `default_strategy`);
    ``candidates``: arch ids the user can measure (default: every arch with a profile);
    ``measured``: arch ids already measured (``measured_ms`` their latencies, needed by
    ``active``); ``sources``: the public devices of the profile; ``predictor``: a fitted
    `methods.transfer.BenchmarkTransfer` (the strategies `uses_predictor` names; default: the one
    pretrained on ``sources`` with the default seed, as `onboard` uses).
    """
    strategy = default_strategy(space) if strategy is None else strategy
    if strategy not in STRATEGIES:
        raise UnknownNameError("selection strategy", strategy, STRATEGIES)
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise MultipredictError(f"k={k!r}: suggest at least one arch (k >= 1)")
    profile = latency_profile(space, sources)
    pool = profile.index.to_numpy(dtype=np.int64)
    if candidates is not None:
        candidates = np.unique(np.asarray(candidates, dtype=np.int64))
        outside = np.setdiff1d(candidates, pool)
        if len(outside):
            raise MultipredictError(f"{len(outside)} candidate archs (e.g. {outside[:5].tolist()}) have no latency on "
                                    f"every public source device, so they have no profile; drop them or pick other "
                                    f"--sources")
        pool = candidates
    measured = np.asarray([] if measured is None else measured, dtype=np.int64)
    outside = np.setdiff1d(measured, pool)
    if len(outside):
        raise MultipredictError(f"{len(outside)} measured archs (e.g. {outside[:5].tolist()}) are not among the "
                                f"candidates; add them to the candidates file or drop them from the measured file")
    free = np.setdiff1d(pool, measured)
    if len(free) == 0:
        raise MultipredictError(f"every one of the {len(pool)} candidate archs is already measured; give more "
                                f"candidates (or none: the whole space)")
    if k > len(free):
        raise MultipredictError(f"k={k} is more than the {len(free)} candidate archs not yet measured; ask for at most "
                                f"{len(free)}, or give more candidates")
    rng = _rng(seed, space, strategy)
    sub = profile.loc[pool]
    first: list[int] = []
    rule = strategy
    if strategy.startswith("reference"):  # HELP's reference archs, then the rule after the "+" (or random)
        from .data import help

        first = [a for a in help.reference_archs(space) if a in set(free.tolist())][:k]
        rule = strategy.partition("+")[2] or "random"
        measured, free, k = np.union1d(measured, first), np.setdiff1d(free, first), k - len(first)
        if k == 0:
            return first
    if rule == "random":
        return first + [int(a) for a in rng.choice(free, size=k, replace=False)]
    if rule == "stratified":
        return first + _stratified(sub.mean(axis=1), k, measured, rng)
    if rule == "kcenter":
        return first + _kcenter(sub, k, measured)
    if rule == "representative":
        return first + _representative(sub, k, measured, rng)
    if rule in PLACING_RULES:
        predictor = predictor if predictor is not None else _default_predictor(space, sources)
        outside = np.setdiff1d(pool, predictor.pool_ids_)
        if len(outside):
            raise MultipredictError(f"{len(outside)} candidate archs (e.g. {outside[:5].tolist()}) have no "
                                    f"{predictor.encoding!r} encoding, so the predictor cannot place them; drop them "
                                    f"or use another strategy")
        start = np.flatnonzero(np.isin(pool, measured))
        rows = PLACING_RULES[rule](predictor, pool, k, start, rng)
        return first + [int(pool[i]) for i in rows]
    return _active(space, k, sub, measured, measured_ms, sources, seed, predictor, ensemble, rng)


def _active(space, k, profile, measured, measured_ms, sources, seed, predictor, ensemble, rng) -> list[int]:
    if len(measured) < 5 or measured_ms is None:
        raise MultipredictError(f"strategy 'active' needs at least 5 measured archs with their latencies (got "
                                f"{len(measured)}); start with 'stratified', measure, then ask again with --measured")
    measured_ms = np.asarray(measured_ms, dtype=float)
    if predictor is None:
        predictor = _default_predictor(space, sources)
    shortlist = np.asarray(_stratified(profile.mean(axis=1), min(len(profile) - len(measured), 20 * k), measured, rng))
    ranks = []
    for member in range(ensemble):
        draw = np.unique(rng.choice(len(measured), size=len(measured), replace=True))  # a bootstrap's distinct archs
        while len(draw) < 3:
            draw = np.unique(rng.choice(len(measured), size=len(measured), replace=True))
        name = f"__active{member}"
        predictor.add_device(name, measured[draw], measured_ms[draw])
        ranks.append(pd.Series(predictor.predict(name, shortlist)).rank(pct=True).to_numpy())
        predictor.targets_.pop(name, None)
    disagreement = np.std(ranks, axis=0)
    order = np.argsort(-disagreement, kind="stable")
    return [int(a) for a in shortlist[order[:k]]]


def read_archs(space: str, path, *, flag: str, with_latency: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """A user's arch list (CSV/parquet with an ``arch`` or ``arch_id`` column; ``latency_ms`` too when
    present): arch ids, and latencies when the file has them (``None`` otherwise). Unknown archs and
    repeated archs are named with their lines."""
    from . import onboard, spaces, usercsv

    frame = usercsv.read_table(path, columns="arch[,latency_ms]", flag=flag)
    column = next((c for c in onboard.ARCH_COLUMNS if c in frame.columns), None)
    if column is None:
        raise MultipredictError(f"{path} line 1: expected a column 'arch' (an arch id or arch string); found "
                                f"{list(frame.columns)}")
    if len(frame) == 0:
        raise MultipredictError(f"{path}: no archs listed; give one arch per line under the 'arch' header")
    ids = np.asarray(onboard._arch_ids(spaces.get(space), space, frame[column], str(path)), dtype=np.int64)
    repeated = pd.Series(ids).duplicated(keep=False).to_numpy()
    if repeated.any():
        lines = [str(i + 2) for i in np.flatnonzero(repeated)]
        raise MultipredictError(f"{path}: the same arch appears more than once (lines {', '.join(lines[:10])}); list "
                                f"each arch once")
    latency = None
    if with_latency and "latency_ms" in frame.columns:
        values, bad = usercsv.bad_numbers(frame["latency_ms"], positive=True)
        if bad:
            raise MultipredictError(f"{path}: latency_ms must be a finite positive number of milliseconds; bad value "
                                    f"at line {bad[0] + 2}: {frame['latency_ms'].iloc[bad[0]] or '(empty)'}")
        latency = values.to_numpy(float)
    return ids, latency


def suggestion_table(space: str, ids: Sequence[int]) -> pd.DataFrame:
    """``order, arch, arch_id``: what `multipredict suggest` writes."""
    from . import spaces

    module = spaces.get(space)
    names = [module.arch_string(int(i)) if space == "nb201" else module.arch_key(int(i)) for i in ids]
    return pd.DataFrame({"order": np.arange(1, len(ids) + 1), "arch": names, "arch_id": np.asarray(ids, dtype=int)})
