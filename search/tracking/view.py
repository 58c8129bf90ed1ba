"""The MLflow UI's first screen for a search: a shared view of the runs page, kept in an experiment
tag, and the experiment's description that links to it.

MLflow's UI keeps shareable views of its runs page in experiment tags
`mlflow.sharedViewState.<key>` (JSON) and opens one with
`viewStateShareKey=<key>` in the URL, as its own Share button does. The fields are the UI's:
search facets (sort, filters) and UI state (columns, grouping, charts). Checked against MLflow
3.17's UI in a real browser by tests/search/test_dual_weights_e2e.py.

The view: trials grouped under their search (tag `cxr.search`), best val_auc first, with val_auc,
cxr.status, epoch and the searched values as columns; charts of val_auc per epoch of every
trial and the searched values against val_auc in parallel coordinates, first; per-label
sections folded; the parent runs' one-value `best_*` charts filtered out (the UI leaves run
visibility out of shared views, so the parents cannot be hidden from the charts themselves).
"""
from __future__ import annotations

SHARE_KEY = "cxr-tune"
TAG = f"mlflow.sharedViewState.{SHARE_KEY}"
DESCRIPTION_TAG = "mlflow.note.content"  # the experiment page shows it as its description
SEARCH_TAG = "cxr.search"                # on the parent, its trials and evaluations: the search's name
DEFAULT_UI = "http://127.0.0.1:5000"     # where `mlflow ui` serves by default
CHARTS_FILTER = "^(?!best_)"             # the UI's chart search box: every chart but the parents' best_*
MARK = "Written by cxr-tune."            # ends our paragraph of the experiment's description


def is_server(tracking_uri: str) -> bool:
    return tracking_uri.startswith(("http://", "https://"))


def ui_base(tracking_uri: str) -> str:
    """The UI of a tracking server is the server; a local store's is what `mlflow ui` serves."""
    return tracking_uri.rstrip("/") if is_server(tracking_uri) else DEFAULT_UI


def url(ui: str, experiment_id: str) -> str:
    # workflowType: MLflow 3.17's UI otherwise opens on its GenAI pages when the user last used them
    return f"{ui}/#/experiments/{experiment_id}/runs?viewStateShareKey={SHARE_KEY}&workflowType=machine_learning"


def _col(kind: str, key: str) -> str:
    return f"{kind}.`{key}`"  # the UI's canonical column key


def _section(uuid: str, name: str, display: bool, **layout) -> dict:
    return {"uuid": uuid, "name": name, "display": display, "isReordered": False, **layout}


def _charts(searched: list[str]) -> list[dict]:
    common = {"metricSectionId": "cxr-search", "deleted": False, "isGenerated": False, "runsCountToCompare": 100}
    curves = {**common, "uuid": "cxr-curves", "type": "LINE", "metricKey": "val_auc", "selectedMetricKeys": ["val_auc"],
              "xAxisKey": "step", "selectedXAxisMetricKey": "", "xAxisScaleType": "linear", "scaleType": "linear",
              "lineSmoothness": 0, "useGlobalXaxisKey": False, "useGlobalLineSmoothing": False}
    parallel = {**common, "uuid": "cxr-parallel", "type": "PARALLEL", "selectedParams": list(searched),
                "selectedMetrics": ["val_auc"], "showAllRuns": True}
    return [curves, parallel]


def state(searched: list[str]) -> dict:
    """The view for a search space whose searched keys are `searched`."""
    columns = [_col("metrics", "val_auc"), _col("tags", "cxr.status"), _col("metrics", "epoch"),
               *(_col("params", k) for k in searched), _col("attributes", "Dataset")]
    return {
        # search facets
        "searchFilter": "", "orderByKey": _col("metrics", "val_auc"), "orderByAsc": False, "startTime": "ALL",
        "lifecycleFilter": "Active", "datasetsFilter": [], "modelVersionFilter": "All Runs",
        # the runs table
        "selectedColumns": columns, "columnOrder": columns, "columnWidths": {},
        "groupBy": {"aggregateFunction": "max", "groupByKeys": [{"mode": "tag", "groupByData": SEARCH_TAG}]},
        "groupsExpanded": {}, "runsHiddenMode": "SHOW_ALL", "viewMaximized": False, "runListHidden": False,
        # the charts
        "compareRunCharts": _charts(searched),
        # two charts a row, not the UI's three: a parallel-coordinates axis per searched value needs the width
        "compareRunSections": [_section("cxr-search", "Search", True, columns=2),
                               _section("cxr-model", "Model metrics", True),
                               _section("cxr-val-labels", "val_auc", False),
                               _section("cxr-best", "best_val_auc", False),
                               _section("cxr-system", "System metrics", False)],
        "isAccordionReordered": True,  # keep the sections in this order, not alphabetical
        "useGroupedValuesInCharts": False, "hideEmptyCharts": True,
        "globalLineChartConfig": {"xAxisKey": "step", "lineSmoothness": 0, "selectedXAxisMetricKey": ""},
        "chartsSearchFilter": CHARTS_FILTER,
    }


def description(search: str, link: str) -> str:
    return (f"Latest search: **{search}**. [Open its runs and charts]({link}): trials grouped by search, "
            f"best val_auc first, learning curves and searched values against val_auc. {MARK}")


def note(old: str | None, ours: str) -> str:
    """The experiment's description with our paragraph replaced (or added after what a user wrote)."""
    kept = [p for p in (old or "").split("\n\n") if p.strip() and not p.rstrip().endswith(MARK)]
    return "\n\n".join([*kept, ours])


def relative_url(experiment_id: str) -> str:
    """The view's link inside the UI itself: right whatever host, port or prefix the UI is served at."""
    return url("", experiment_id).lstrip("/")
