"""mpwidgets: the Multi-Predict workbench, ipywidgets and plotly views over multipredict's public API.

``Dashboard()`` is the whole workbench (served by ``python -m mpwidgets.serve``);
``ExperimentModel`` its state, usable without a browser; ``OnboardingPanel`` / ``OnboardingModel``
onboard your own device from a handful of measurements; ``AccuracyPanel`` / ``AccuracyModel``
transfer few-shot accuracy predictors across NAS tasks (the dashboard's accuracy mode);
``figures`` the plotly figures the notebooks show.
"""

from .model import ExperimentModel, explain_error

__all__ = ["AccuracyModel", "AccuracyPanel", "Dashboard", "ExperimentModel", "OnboardingModel", "OnboardingPanel",
           "explain_error"]


def __getattr__(name: str):
    if name == "Dashboard":  # the views import ipywidgets and plotly: only when asked for
        from .dashboard import Dashboard

        return Dashboard
    if name in ("OnboardingModel", "OnboardingPanel"):
        from . import onboarding

        return getattr(onboarding, name)
    if name in ("AccuracyModel", "AccuracyPanel"):
        from . import accuracy

        return getattr(accuracy, name)
    raise AttributeError(f"module 'mpwidgets' has no attribute {name!r}")
