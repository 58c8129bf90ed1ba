"""The search's view of the MLflow UI, as data: what it shows, in the UI's own field names (read
from the installed MLflow's UI bundle), the tag it is kept in as each MLflow UI reads it, and the
experiment description it keeps. What the UI then renders is checked in a real browser by
tests/search/test_dual_weights_e2e.py."""
import base64
import json
import re
import time
import zlib
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from search.tracking import view
from search.tracking.outbox import Sender

SEARCHED = ["loss.lam", "heads.fusion", "optim.lr"]
PREFIX = "mlflow.sharedViewState."
BUNDLE = Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js"


def ui_lists() -> tuple[list[str], list[str]]:
    """The UI state fields a shared view may set, and those it leaves out, from MLflow's bundle."""
    bundle = next(BUNDLE.glob("main.*.js"))
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
    # the way in from the experiments list: MLflow 3.17's mode switch, then the menu entry by name
    text = view.description("a", "#x")
    assert "click **Model training**" in text and f"**Views** > **{view.NAME}**" in text
    first = view.note(None, view.description("a", "#x"))
    assert first == view.description("a", "#x")
    mine = "Chest X-ray tuning for the grant report.\n\nDo not delete."
    second = view.note(f"{mine}\n\n{first}", view.description("b", "#x"))
    assert second == f"{mine}\n\n{view.description('b', '#x')}"  # ours replaced, the user's kept


def views_menu(tags: dict) -> list[dict]:
    """What MLflow 3.15+'s Views menu lists, as its bundle's saved-view parser reads the tags: a key
    under the prefix with a non-empty id, a value that is an object with a string `name`, a number
    `createdAt` and a string `state`; anything else left out."""
    listed = []
    for key, value in tags.items():
        if not key.startswith(PREFIX) or not key[len(PREFIX):]:
            continue
        try:
            env = json.loads(value)
        except ValueError:
            continue
        if isinstance(env, dict) and isinstance(env.get("name"), str) and isinstance(env.get("state"), str) \
                and type(env.get("createdAt")) in (int, float):
            listed.append({"id": key[len(PREFIX):], **env})
    return listed


def inflated(state: str) -> dict:
    """The envelope's state as the UI opens it: after "deflate;", base64 of pako.deflate (zlib's format)."""
    assert state.startswith("deflate;"), state[:40]
    return json.loads(zlib.decompress(base64.b64decode(state[len("deflate;"):])))


def old_ui(value: str, fields) -> dict:
    """What UIs before 3.15 take from the same tag: the view's fields at the parsed value's top level."""
    parsed = json.loads(value)
    return {k: parsed[k] for k in fields if k in parsed}


def test_the_installed_ui_reads_saved_views_as_these_tests_do():
    """If MLflow changes its envelope, the helpers above are out of date: this says so."""
    text = "".join(f.read_text() for f in BUNDLE.glob("*.js"))
    assert ("Invalid saved-view envelope: expected an object with a string `name`, number `createdAt`, "
            "and string `state`") in text
    assert '"deflate;"' in text and '"mlflow.sharedViewState."' in text and "No saved views yet" in text


def test_the_views_menu_lists_the_view_by_name_and_it_opens_the_searchs_view():
    value = view.tag_value(SEARCHED, 1_765_000_000_123)
    [entry] = views_menu({view.TAG: value, "mlflow.note.content": "x"})
    assert (entry["id"], entry["name"], entry["createdAt"]) == (view.SHARE_KEY, view.NAME, 1_765_000_000_123)
    assert inflated(entry["state"]) == view.state(SEARCHED)


def test_uis_before_saved_views_open_the_same_view_from_the_same_tag():
    value = view.tag_value(SEARCHED, 1)
    assert old_ui(value, view.state(SEARCHED)) == view.state(SEARCHED)


def test_a_view_too_long_for_older_servers_is_the_envelope_alone():
    many = [f"heads.key_{i:02d}" for i in range(40)]
    value = view.tag_value(many, 1)
    assert len(value) <= view.OLD_SERVER_LIMIT
    [entry] = views_menu({view.TAG: value})
    assert inflated(entry["state"]) == view.state(many)


def test_the_search_writes_the_view_the_menu_lists(tmp_path):
    """Through the outbox, as a search delivers it, into a real store."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sender = Sender(uri, "view-test")
    before = int(time.time() * 1000)
    sender.deliver({"op": "run", "key": "p", "name": "smoke", "tags": {}, "parent": None, "time": before})
    sender.deliver({"op": "view", "key": "p", "search": "smoke", "searched": SEARCHED})
    tags = MlflowClient(uri).get_experiment_by_name("view-test").tags
    [entry] = views_menu(tags)
    assert entry["name"] == view.NAME and before <= entry["createdAt"] <= int(time.time() * 1000)
    assert inflated(entry["state"]) == view.state(SEARCHED)
    assert old_ui(tags[view.TAG], view.state(SEARCHED)) == view.state(SEARCHED)
    assert tags[view.DESCRIPTION_TAG] == view.description("smoke", view.relative_url(sender.experiment_id))
