"""The user's command, as a subprocess: search/dual_weights.py --smoke-test --evaluate, then MLflow,
export, train, evaluate, resume."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def sh(args, cwd, timeout=900):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    env.pop("MLFLOW_TRACKING_URI", None)  # the store beside the command, as a user's first run has it
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    work = tmp_path_factory.mktemp("search")
    os.environ["CXR_TUNE_CACHE"] = str(tmp_path_factory.getbasetemp() / "cxr-cache")
    out = sh([str(ROOT / "search" / "dual_weights.py"), "--smoke-test", "--storage-path", str(work / "rr"),
              "--name", "smoke", "--export", str(work / "exports"), "--evaluate"], cwd=work)
    return work, out


def trial_runs(client):
    exp = client.get_experiment_by_name("dual_weights")
    runs = client.search_runs([exp.experiment_id])
    return [r for r in runs if r.data.tags.get("cxr.role") == "trial"], \
        [r for r in runs if r.data.tags.get("cxr.role") == "search"]


def test_mlflow_has_a_parent_and_its_trials(searched):
    work, out = searched
    assert "best val_auc" in out and "mlflow ui --backend-store-uri" in out
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    trials, parents = trial_runs(client)
    assert len(parents) == 1 and len(trials) == 3
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.tags["cxr.dataset"] == "synthetic ChestX-ray14"
    assert "best_val_auc" in parent.data.metrics and parent.data.tags["cxr.trials_total"] == "3"
    for run in trials:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["cxr.status"] in {"completed", "stopped_early"}
        assert run.info.status == "FINISHED"
        assert run.data.params["loss.name"] == "modulated_wce" and "heads.w_d" in run.data.params
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_auc")]
        expected = 2 if run.data.tags["cxr.status"] == "completed" else int(run.data.tags["cxr.stopped_at_epoch"])
        assert steps == list(range(1, expected + 1))
        # what the trial used and cost, per epoch, and where it ran (a CPU trial: no GPU figures)
        cpu = client.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")
        assert [m.step for m in cpu] == steps and all(0 <= m.value <= 100 for m in cpu)
        assert run.data.metrics["trial_epochs"] == expected and run.data.metrics["gpu_hours"] == 0
        assert run.data.tags["cxr.gpu_share"] == "no GPU" and run.data.tags["cxr.node"]
    assert parent.data.metrics["search_trial_epochs"] == sum(
        len(client.get_metric_history(r.info.run_id, "val_auc")) for r in trials)
    assert parent.data.metrics["search_gpu_hours"] == 0
    # warm start: the paper's best config is proposed first (two proposals wait to start together, so
    # either may start first) and tagged as such
    (warm,) = [r for r in trials if r.data.tags.get("cxr.warm_start") == "paper"]
    assert warm.data.params["loss.lam"] == "0.5" and warm.data.params["heads.fusion"] == "concat"
    assert warm in sorted(trials, key=lambda r: r.info.start_time)[:2]
    assert not any("Patient" in k for r in trials for k in r.data.params)


SEARCHED = ["loss.lam", "heads.fusion", "heads.w_d", "heads.w_r", "optim.lr", "train.iterative"]


def test_the_parent_run_reports_what_the_search_learned(searched):
    work, out = searched
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    trials, (parent,) = trial_runs(client)
    figures = {"learning_curves.png", "param_importance.png", "per_label_top.png",
               *(f"val_auc_vs_{k.replace('.', '_')}.png" for k in SEARCHED)}
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} == \
        {"best_config.yaml", "search_space.json", "report.html", "param_importance.csv", *figures}
    p = parent.data.params
    assert p["space.loss.lam"] == "uniform(0, 2)" and p["space.optim.lr"] == "loguniform(0.0001, 0.01)"
    assert p["space.heads.fusion"] == "choice(concat, avg, max)" and p["asha.max_t"] == "2"
    best = client.get_run(parent.data.tags["cxr.best_run_id"])
    assert p["best.loss.lam"] == best.data.params["loss.lam"] and p["best.run_name"] == best.info.run_name
    note = parent.data.tags["mlflow.note.content"]
    assert "on **synthetic ChestX-ray14**" in note and "3 trials:" in note
    assert all(f"| {t.info.run_name}" in note for t in trials) and "report.html" in note
    # names carry the searched values; the paper's config is the warm start and says so
    (warm,) = [r for r in trials if r.data.tags.get("cxr.warm_start") == "paper"]
    assert warm.info.run_name == "λ0.50 concat wD.30 wR.30 lr1e-3"
    assert all(r.info.run_name.startswith("λ") and " lr" in r.info.run_name for r in trials)
    # the terminal: top trials, importance, the link to the search's view, no third-party progress bar
    assert "top 3 of 3 trials" in out and "importance not estimated: no epoch was reached by 5 trials" in out
    assert "#/experiments/" in out and "runs?viewStateShareKey=cxr-tune&workflowType=machine_learning" in out
    assert "Downloading artifacts" not in out and "it/s]" not in out
    # the console: the live view, one line per trial event named as in MLflow, within 100 columns
    # (search/console.py); Tune's tables and Ray's unactionable warnings only with --verbose
    # (the search's lines: those up to the link, before --export's and --evaluate's; the default run
    # prints the same, without a first run's data generation)
    lines = out.splitlines()
    search_lines = lines[:next(i for i, line in enumerate(lines) if "viewStateShareKey=" in line) + 1]
    assert all(len(line) <= 100 or len(line.split()) == 1 for line in lines), out   # only a long path is wider
    assert len(search_lines) <= 45, out
    started = [line.split("started", 1)[1].replace("the paper's config", "").strip()
               for line in lines if " started " in line]
    assert sorted(started) == sorted(t.info.run_name for t in trials)
    ended = [line for line in lines if re.match(r" +\d+:\d\d  (finished|cut) ", line)]
    assert len(ended) == 3 and "search done:" in out, out
    assert "Trial status" not in out and "snapshotting" not in out and "Token authentication" not in out
    # the page is self-contained: every figure inside it, no file beside it needed
    page = (work / "rr" / "smoke" / "report" / "report.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == len(figures)
    assert "src=\"http" not in page and best.info.run_name in page
    assert "importance not estimated" in (work / "rr" / "smoke" / "report" / "param_importance.csv").read_text()


def test_exported_yaml_trains(searched):
    work, _ = searched
    files = sorted((work / "exports").glob("*.yaml"))
    assert len(files) == 3
    doc = yaml.safe_load(files[0].read_text())
    assert doc["config"]["loss"]["name"] == "modulated_wce" and doc["mlflow_run_id"] and doc["space"] == "dualchexnet"
    assert doc["checkpoint"] and Path(doc["checkpoint"]).exists()
    out = sh(["-m", "trainables.train", "--config", str(files[0]), "--out", str(work / "final"),
              "--max-epochs", "1"], cwd=ROOT)
    assert "done: val_auc" in out and (work / "final" / "best" / "state.pt").is_file()


def evaluations(client):
    exp = client.get_experiment_by_name("dual_weights")
    return [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("cxr.role") == "evaluation"]


def test_evaluate_flag_scores_the_best_trial_under_the_parent_run(searched):
    work, out = searched
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    _, (parent,) = trial_runs(client)
    (ev,) = evaluations(client)
    assert ev.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert ev.data.tags["cxr.source_run_id"] == parent.data.tags["cxr.best_run_id"]
    assert ev.data.tags["cxr.synthetic"] == "true" and ev.data.tags["cxr.space"] == "dualchexnet"
    assert {a.path for a in client.list_artifacts(ev.info.run_id)} == {"comparison.md", "roc.png", "test_auc.csv", "weights"}
    folder = work / "rr" / "smoke" / "evaluation" / f"run-{parent.data.tags['cxr.best_run_id'][:8]}"
    table = pd.read_csv(folder / "test_auc.csv", index_col="label")
    assert ev.data.metrics["test_auc"] == pytest.approx(table.loc["mean", "auc"])
    assert f"test AUC {table.loc['mean', 'auc']:.4f}" in out and "| **mean** |" in out
    assert "**Embedded synthetic dataset.**" in (folder / "comparison.md").read_text()
    assert ev.data.tags["cxr.search"] == parent.data.tags["cxr.search"] == "smoke"
    assert [(d.dataset.name, d.tags[0].value) for d in client.get_run(ev.info.run_id).inputs.dataset_inputs] == \
        [("synthetic ChestX-ray14 test", "test")]


def test_every_trial_says_which_data_it_trained_and_validated_on(searched):
    work, _ = searched
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    trials, _ = trial_runs(client)
    seen = {r.info.run_id: sorted((d.tags[0].value, d.dataset.name, d.dataset.digest)
                                  for d in client.get_run(r.info.run_id).inputs.dataset_inputs) for r in trials}
    first = next(iter(seen.values()))
    assert [(c, n) for c, n, _ in first] == [("train", "synthetic ChestX-ray14 train"),
                                             ("val", "synthetic ChestX-ray14 val")]
    assert all(v == first for v in seen.values())  # one split for the whole search


def test_evaluate_command_registers_a_model_that_gives_the_same_test_scores(searched):
    work, _ = searched
    uri = f"sqlite:///{work / 'mlflow.db'}"
    out = sh(["-m", "search.evaluate", "--experiment", "dual_weights", "--top", "1", "--register", "cxr-smoke",
              "--tracking-uri", uri, "--out", str(work / "evaluations")], cwd=work)
    assert "evaluated 1 trial(s)" in out
    client = MlflowClient(uri)
    runs = evaluations(client)  # --evaluate's and this one: the same best trial, the same numbers
    assert len(runs) == 2 and len({r.data.tags["cxr.source_run_id"] for r in runs}) == 1
    assert len({r.data.metrics["test_auc"] for r in runs}) == 1
    (folder,) = (work / "evaluations").iterdir()
    table = pd.read_csv(folder / "test_auc.csv", index_col="label")

    import mlflow

    from search.evaluation.pipeline import rows_of_test_split
    from search.tracking.store import using_tracking_uri
    from trainables import metrics as M
    from trainables.config import resolve
    from trainables.data.sources import load_splits

    with using_tracking_uri(uri):  # not left set for the tests after this one
        model = mlflow.pyfunc.load_model("models:/cxr-smoke@champion")  # as README shows
    cfg = resolve({"data": {"root": None, "image_size": 32, "resize": 36}})  # the smoke profile's sizes
    splits = load_splits(cfg["data"])
    got = model.predict(np.asarray(rows_of_test_split(splits, cfg["data"])))
    assert list(got.columns) == list(splits.labels)
    aucs = M.per_label_auc(splits.test.labels, got.to_numpy(), splits.labels, splits.test.mask)
    for label, auc in aucs.items():
        assert auc == table.loc[label, "auc"], label  # identical, not approximately equal


def test_the_printed_link_opens_the_searchs_view_in_a_real_browser(searched):
    """`mlflow ui` on the search's store, the link the search printed, headless Chromium: the table
    and the chart view as a user first sees them."""
    from tests import browser

    work, out = searched
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    trials, _ = trial_runs(client)
    best_first = [r.info.run_name for r in sorted(trials, key=lambda r: -r.data.metrics["val_auc"])]
    printed = next(line.strip() for line in out.splitlines() if "viewStateShareKey=" in line)
    with browser.mlflow_ui(work / "mlflow.db", work, printed) as link:
        base = link.split("/#/")[0]
        with browser.page() as page:
            page.goto(link)
            page.get_by_text("Group: smoke").wait_for(timeout=60_000)
            header = page.locator(".ag-header").inner_text()
            for column in ("val_auc", "cxr.status", "epoch", *SEARCHED, "Dataset"):
                assert column in header, (column, header)
            table = page.locator(".ag-root").inner_text()
            at = [table.index(name) for name in best_first]
            assert at == sorted(at), table  # best val_auc first
            assert "synthetic ChestX-ray14 train" in table and "completed" in table
            assert "Latest search: smoke" in page.inner_text("body")  # the experiment's description

            page.goto(f"{link}&compareRunsMode=CHART")
            page.get_by_text("Parallel Coordinates").wait_for(timeout=60_000)
            sections = page.locator("[data-testid=experiment-view-compare-runs-section-header]").all_inner_texts()
            assert sections[0].startswith("Search"), sections
            cards = page.locator("[data-testid=experiment-view-compare-runs-card]")
            curves, parallel = cards.nth(0), cards.nth(1)
            curves.get_by_text("(val_auc)").first.wait_for(timeout=60_000)  # its legend: the lines are drawn
            assert curves.inner_text().startswith("val_auc") and curves.locator("svg").count() > 0
            legend = curves.inner_text()
            assert sum(f"{name} (val_auc)" in legend for name in best_first) >= 2, legend  # a line per trial
            for key in SEARCHED:  # plotly draws the axes after the card appears
                parallel.get_by_text(key).first.wait_for(timeout=60_000)
            assert parallel.inner_text().startswith("Parallel Coordinates") and parallel.locator("svg").count() > 0
            assert all(k in parallel.inner_text() for k in SEARCHED)  # an axis per searched value
            assert "best_epoch" not in page.inner_text("body")  # the parent's one-value charts filtered out
            page.screenshot(path=str(work / "mlflow-ui-charts.png"))

            # the experiment's own page (where the UI opens without the link) links the view
            exp_id = client.get_experiment_by_name("dual_weights").experiment_id
            page.goto(f"{base}/#/experiments/{exp_id}")
            href = page.get_by_role("link", name="Open its runs and charts").get_attribute("href")
            page.goto(f"{base}/{href}")  # a new tab, as the link's target="_blank" opens it
            page.get_by_text("Group: smoke").wait_for(timeout=60_000)


def test_from_the_experiments_list_the_views_menu_opens_the_searchs_view(searched):
    """A user who starts `mlflow ui` and clicks the experiment instead of the printed link: MLflow
    3.17 opens its GenAI pages; the description's one click (Model training) gets the runs page,
    whose Views menu lists the search's view by name and opens it."""
    import mlflow
    from packaging.version import Version

    from search.tracking import view
    from tests import browser

    if Version(mlflow.__version__) < Version("3.15"):
        pytest.skip("the runs page's Views menu came with MLflow 3.15")
    work, _ = searched
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    trials, [parent] = trial_runs(client)
    best_first = [r.info.run_name for r in sorted(trials, key=lambda r: -r.data.metrics["val_auc"])]
    with browser.mlflow_ui(work / "mlflow.db", work) as base, browser.page() as page:
        got_it = page.get_by_role("button", name="Got it")  # 3.17's one-time tips cover the page until dismissed
        page.add_locator_handler(got_it, lambda: got_it.click())
        page.goto(base)  # 3.17's home page
        page.get_by_role("link", name="Experiments", exact=True).click()
        page.get_by_role("link", name="dual_weights", exact=True).click()
        page.get_by_text("Latest search: smoke").wait_for(timeout=60_000)  # the description, on any page
        assert "workflowType=genai" in page.url  # where a fresh browser lands: why the description says the click
        page.get_by_role("button", name="Model training").click()
        views = page.get_by_test_id("saved-views-trigger")
        # the runs page as the UI opens it: the parent alone, its trials folded under it
        page.locator(".ag-root").get_by_text(parent.info.run_name, exact=True).wait_for(timeout=60_000)

        page.set_viewport_size({"width": 1200, "height": 700})  # the docs' picture of the menu
        assistant = page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
        if assistant.is_visible():  # its chat panel, open by default, would take a third of the picture
            assistant.click()
        views.click()
        entry = page.get_by_role("menuitem", name=view.NAME)
        entry.wait_for(timeout=60_000)
        page.screenshot(path=str(work / "mlflow-ui-views.png"))
        page.set_viewport_size({"width": 2400, "height": 1300})  # the grid draws only the columns in sight

        entry.click()
        page.get_by_text("Group: smoke").wait_for(timeout=60_000)
        assert views.inner_text() == view.NAME  # the menu marks it as the view open
        table = page.locator(".ag-root").inner_text()
        at = [table.index(name) for name in best_first]
        assert at == sorted(at), table  # every trial, best val_auc first
        assert parent.info.run_name in table and "completed" in table
        header = page.locator(".ag-header").inner_text()
        assert all(column in header for column in ("val_auc", "cxr.status", *SEARCHED)), header


def test_resume_of_a_finished_search_reruns_nothing(searched):
    work, _ = searched
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    before = {r.info.run_id: len(client.get_metric_history(r.info.run_id, "val_auc")) for r in trial_runs(client)[0]}
    sh([str(ROOT / "search" / "dual_weights.py"), "--smoke-test", "--storage-path", str(work / "rr"),
        "--name", "smoke", "--resume"], cwd=work)
    after = {r.info.run_id: len(client.get_metric_history(r.info.run_id, "val_auc")) for r in trial_runs(client)[0]}
    assert after == before
