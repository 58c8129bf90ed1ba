"""The MLflow UI's first screen for a search: a saved view of the runs page, kept in an experiment
tag, and the experiment's description that links to it.

MLflow's UI keeps views of its runs page in experiment tags `mlflow.sharedViewState.<key>` and opens
one with `viewStateShareKey=<key>` in the URL. The fields are the UI's: search facets (sort,
filters) and UI state (columns, grouping, charts). The tag's value suits two readers, both read
from the UIs' own code:
- MLflow 3.15 and later (3.17's bundle, the saved-views code beside "No saved views yet") list in
  the runs page's Views menu each such tag whose value is a JSON envelope `{name: string,
  createdAt: number (ms), updatedAt?: number, state: string}`, the key's suffix as its id, newest
  createdAt first; any other value is left out without a word (the raw JSON cxr-tune used to write:
  "No saved views yet"). Opening a key, by link or from the menu (which navigates to the same
  `?viewStateShareKey=<id>`), reads the envelope and inflates `state` when it starts with
  "deflate;" (pako's zlib deflate, then base64: Python's zlib.compress); a value that is no
  envelope is still read as the view itself.
- Older UIs (useSharedExperimentViewState.ts before 3.15) JSON.parse the value and pick the view's
  fields from its top level: the envelope alone would open their default view, silently.
So the value is the envelope with the view's fields also at its top level: each UI reads its own
part, and one key keeps the printed link, the menu's entry and its "active view" mark the same
view. Older servers refuse an experiment tag's value over 5000 characters (3.17 takes 20000): a view
that large (some 25 searched values) is written as the envelope alone, lost to the old UIs only.

No tag opens the experiment on its training runs: 3.17 takes the GenAI / Model training mode from
the URL's `workflowType` or from the browser (local storage `mlflow.workflowType`, GenAI until the
user switches), not from the experiment's `mlflow.experimentKind` (set by search/tracking/store.py
for the UIs that read it; 3.17 ignores it while a hard-wired feature flag is on), and no saved view
can be made the runs page's default (its "Default view" item is the traces page's). So the link
says `workflowType`, and the description says the one click that gets there from the experiments
list. Checked against MLflow 3.17's UI in a real browser by tests/search/test_dual_weights_e2e.py.

The view: trials grouped under their search (tag `cxr.search`), best val_auc first, with val_auc,
cxr.status, epoch and the searched values as columns; charts of val_auc per epoch of every
trial and the searched values against val_auc in parallel coordinates, first; per-label
sections folded; the parent runs' one-value `best_*` charts filtered out (the UI leaves run
visibility out of shared views, so the parents cannot be hidden from the charts themselves).
"""
from __future__ import annotations

import base64
import json
import zlib

SHARE_KEY = "cxr-tune"
TAG = f"mlflow.sharedViewState.{SHARE_KEY}"
NAME = "cxr-tune: trials by search, best val_auc first"  # as the Views menu lists it
DEFLATE = "deflate;"                     # the UI's mark of a compressed state
OLD_SERVER_LIMIT = 5000                  # characters in an experiment tag's value, older servers
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


def _deflate(text: str) -> str:
    return DEFLATE + base64.b64encode(zlib.compress(text.encode())).decode("ascii")


def tag_value(searched: list[str], now_ms: int) -> str:
    """The view tag's value: the saved-view envelope, the view's own fields beside it for old UIs."""
    view = state(searched)
    envelope = {"name": NAME, "createdAt": now_ms, "updatedAt": now_ms, "state": _deflate(json.dumps(view))}
    both = json.dumps({**view, **envelope})
    return both if len(both) <= OLD_SERVER_LIMIT else json.dumps(envelope)


def description(search: str, link: str) -> str:
    return (f"Latest search: **{search}**. [Open its runs and charts]({link}): trials grouped by search, "
            f"best val_auc first, learning curves and searched values against val_auc. From the experiments "
            f"list, MLflow 3.17 opens its GenAI pages: click **Model training** at the top of the sidebar, "
            f"then **Views** > **{NAME}** for the same view. {MARK}")


def note(old: str | None, ours: str) -> str:
    """The experiment's description with our paragraph replaced (or added after what a user wrote)."""
    kept = [p for p in (old or "").split("\n\n") if p.strip() and not p.rstrip().endswith(MARK)]
    return "\n\n".join([*kept, ours])


def relative_url(experiment_id: str) -> str:
    """The view's link inside the UI itself: right whatever host, port or prefix the UI is served at."""
    return url("", experiment_id).lstrip("/")
