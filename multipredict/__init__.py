"""multipredict: few-shot latency and accuracy predictors for hardware-aware NAS.

The engine of the Multi-Predict method (Akhauri & Abdelfattah, AutoML-Conf 2023): benchmark data,
search spaces, search-space independent encodings, predictors, transfer and baselines.
"""

__version__ = "0.1.0"
