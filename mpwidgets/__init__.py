"""mpwidgets: the Multi-Predict workbench, ipywidgets and plotly views over multipredict's public API.

``Dashboard()`` is the whole workbench (served by ``python -m mpwidgets.serve``);
``ExperimentModel`` its state, usable without a browser; ``OnboardingPanel`` / ``OnboardingModel``
onboard your own device from a handful of measurements; ``AccuracyPanel`` / ``AccuracyModel``
transfer few-shot accuracy predictors across NAS tasks (the dashboard's accuracy mode);
``SearchPanel`` / ``SearchModel`` search NB201 under a latency budget (its search mode);
``YourModelsPanel`` / ``YourModelsModel`` predict your device's latency for the models
``multipredict encode`` encoded (its "your own models" mode); ``figures`` the plotly figures the
notebooks show. Each is imported when first asked for.
"""

from .model import ExperimentModel, explain_error

__all__ = ["AccuracyModel", "AccuracyPanel", "Dashboard", "ExperimentModel", "OnboardingModel", "OnboardingPanel",
           "SearchModel", "SearchPanel", "YourModelsModel", "YourModelsPanel", "explain_error"]
LAZY = {"Dashboard": "dashboard", "OnboardingModel": "onboarding", "OnboardingPanel": "onboarding",
        "AccuracyModel": "accuracy", "AccuracyPanel": "accuracy", "SearchModel": "search", "SearchPanel": "search",
        "YourModelsModel": "yourmodels", "YourModelsPanel": "yourmodels"}


def __getattr__(name: str):
    # the views import ipywidgets and plotly (the your-models panel torch too): only when asked for
    if name in LAZY:
        from importlib import import_module

        return getattr(import_module(f".{LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'mpwidgets' has no attribute {name!r}")
