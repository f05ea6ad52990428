"""The trial protocol and the methods behind one typed contract.

`protocol`: device latencies looked up from the benchmark tables, protocol splits, the few-shot
draw, rank correlations (the layer that reads data for the estimators). `transfer`: Multi-Predict's
few-shot transfer on the public tables (`BenchmarkTransfer`, `fit_and_score`). The baselines (HELP,
BRP-NAS, FLOPs) are in `multipredict.baselines` and follow the same contract::

    fit_and_score(*, space, train_devices, test_devices, samples, seed, protocol="paper", **options)
        -> list[dict]   # one row per test device

Each method declares its options once, in an `multipredict.options.Options` model.
"""
