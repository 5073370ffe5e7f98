"""gradcore.train: fit() around your own training step, and the History it returns."""
from .fit import History, evaluate, evaluation_step, fit, standard_step  # noqa: F401
