"""A finished search's report, from MLflow alone (no Ray): data.py reads the runs back, plots.py
draws the figures, pages.py writes the texts, build.py logs them on the parent run; cli.py is
`python -m search.report`."""
from search.report.build import Report, build  # noqa: F401
from search.report.cli import main  # noqa: F401
