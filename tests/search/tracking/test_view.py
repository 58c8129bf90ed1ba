"""The search's view of the MLflow UI, as data: what it shows, in the UI's own field names (read
from the installed MLflow's UI bundle), and the experiment description it keeps. What the UI
then renders is checked in a real browser by tests/search/test_dual_weights_e2e.py."""
import re
from pathlib import Path

import mlflow

from search.tracking import view

SEARCHED = ["loss.lam", "heads.fusion", "optim.lr"]


def ui_lists() -> tuple[list[str], list[str]]:
    """The UI state fields a shared view may set, and those it leaves out, from MLflow's bundle."""
    bundle = next((Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js").glob("main.*.js"))
    text = bundle.read_text()
    fields = re.search(r'\["selectedColumns","columnOrder"[^\]]*\]', text).group(0)
    unshared = re.search(r'\["runsExpanded","runsPinned"[^\]]*\]', text).group(0)
    return re.findall(r'"(\w+)"', fields), re.findall(r'"(\w+)"', unshared)


def test_the_view_uses_only_fields_the_ui_takes_from_a_shared_view():
    fields, unshared = ui_lists()
    facets = {"searchFilter", "orderByKey", "orderByAsc", "startTime", "lifecycleFilter", "datasetsFilter",
              "modelVersionFilter"}
    keys = set(view.state(SEARCHED))
    assert keys <= set(fields) | facets, keys - set(fields) - facets
    assert not keys & set(unshared)


def test_table_best_first_grouped_by_search_with_the_searched_values_as_columns():
    s = view.state(SEARCHED)
    assert (s["orderByKey"], s["orderByAsc"]) == ("metrics.`val_auc`", False)
    assert s["selectedColumns"] == ["metrics.`val_auc`", "tags.`cxr.status`", "metrics.`epoch`", "params.`loss.lam`",
                                    "params.`heads.fusion`", "params.`optim.lr`", "attributes.`Dataset`"]
    assert s["columnOrder"] == s["selectedColumns"]
    assert s["groupBy"]["groupByKeys"] == [{"mode": "tag", "groupByData": "cxr.search"}]


def test_charts_learning_curves_and_parallel_coordinates_first_per_label_sections_folded():
    s = view.state(SEARCHED)
    curves, parallel = s["compareRunCharts"]
    assert (curves["type"], curves["metricKey"], curves["xAxisKey"]) == ("LINE", "val_auc", "step")
    assert (parallel["type"], parallel["selectedParams"], parallel["selectedMetrics"]) == \
        ("PARALLEL", SEARCHED, ["val_auc"])
    sections = [(x["name"], x["display"]) for x in s["compareRunSections"]]
    assert sections[0] == ("Search", True) and s["isAccordionReordered"]
    assert ("val_auc", False) in sections and ("best_val_auc", False) in sections
    assert {c["metricSectionId"] for c in s["compareRunCharts"]} == {"cxr-search"}
    keep = re.compile(s["chartsSearchFilter"])  # the same regex in JavaScript: a lookahead
    assert all(keep.search(k) for k in ("val_auc", "val_auc/Effusion", "train_loss", "epoch"))
    assert not any(keep.search(k) for k in ("best_val_auc", "best_val_auc/Effusion", "best_epoch"))


def test_links_and_the_description_keep_what_a_user_wrote():
    assert view.url("http://mlflow:5000", "7") == \
        "http://mlflow:5000/#/experiments/7/runs?viewStateShareKey=cxr-tune&workflowType=machine_learning"
    assert view.ui_base("https://mlflow.lab/") == "https://mlflow.lab" and view.ui_base("sqlite:///m.db") == view.DEFAULT_UI
    assert view.relative_url("7").startswith("#/experiments/7/runs?viewStateShareKey=cxr-tune")
    first = view.note(None, view.description("a", "#x"))
    assert first == view.description("a", "#x")
    mine = "Chest X-ray tuning for the grant report.\n\nDo not delete."
    second = view.note(f"{mine}\n\n{first}", view.description("b", "#x"))
    assert second == f"{mine}\n\n{view.description('b', '#x')}"  # ours replaced, the user's kept
