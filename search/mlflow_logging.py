"""Where the MLflow callback lived before search/tracking/: a search started then pickled its
callback under this module's name, and `--resume` of it unpickles the class from here."""
from search.tracking.callback import MLflowSearchCallback  # noqa: F401
