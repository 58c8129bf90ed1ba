"""Every mistake a user can make gets one line: `error: <what is wrong and how to fix it>`, exit 2.

One row per bad input, across flags, infrastructure, ChestX-ray14 and CheXpert files, trial
configs and the other commands. Each row also checks that nothing was written that could be
taken for a result: no MLflow store, no complete image cache, no Ray experiment.
"""
from __future__ import annotations


import pytest
import ray
from mlflow.tracking import MlflowClient

from search import evaluate, export, report, runner, sync
from spaces.dualchexnet import SPEC
from tests.ports import free_port
from tests.user_errors import user_error
from trainables import train
from trainables.data import synthetic

CSV = "Data_Entry_2017.csv"


def search(*flags):
    return lambda tmp, root: (lambda: runner.main(SPEC, [
        "--data", str(root), "--storage-path", str(tmp / "rr"), "--tracking-uri", f"sqlite:///{tmp / 'mlflow.db'}",
        "--smoke-test", *flags]))


def with_file(edit, *flags):
    """A search on the tiny ChestX-ray14 root after `edit(root)` broke one of its files."""
    def build(tmp, root):
        edit(root)
        return search(*flags)(tmp, root)
    return build


def rewrite(name, change):
    return lambda root: (root / name).write_text(change((root / name).read_text()))


def lines(name, change):
    return rewrite(name, lambda text: "\n".join(change(text.splitlines())) + "\n")


def config(text):
    def build(tmp, root):
        (tmp / "cfg.yaml").write_text(text.replace("ROOT", str(root)))
        return lambda: train.main(["--config", str(tmp / "cfg.yaml"), "--out", str(tmp / "out")])
    return build


def chexpert(edit):
    def build(tmp, root):
        from tests.conftest import write_chexpert

        cx = write_chexpert(tmp / "CheXpert-v1.0-small", [(p, 1, "Frontal", "10u.1" * 2 + "0000") for p in range(1, 9)],
                            [(64541, 1, "Frontal", "1" * 14)])
        edit(cx)
        return search()(tmp, cx)
    return build



def foreign_folder(tmp, root):
    """The synthetic set's generator pointed at a folder that holds the user's own files."""
    (tmp / "mine").mkdir()
    (tmp / "mine" / "notes.txt").write_text("keep me")
    return lambda: synthetic.main(["--out", str(tmp / "mine"), "--patients", "12", "--image-size", "32"])


def other(main, *argv):
    return lambda tmp, root: (lambda: main([str(a).replace("TMP", str(tmp)) for a in argv]))


CASES = [
    # flags
    ("num-samples 0", search("--num-samples", "0"), "argument --num-samples: 0 must be >= 1"),
    ("max-epochs 0", search("--max-epochs", "0"), "argument --max-epochs: 0 must be >= 1"),
    ("grace-period negative", search("--grace-period", "-1"), "argument --grace-period: -1 must be >= 1"),
    ("confirm seeds zero", search("--confirm-seeds", "0"), "argument --confirm-seeds: 0 must be >= 1"),
    ("start-up zero", search("--startup-trials", "0"), "argument --startup-trials: 0 must be >= 1"),
    ("reduction-factor 1", search("--reduction-factor", "1"), "argument --reduction-factor: 1 must be >= 2"),
    ("cpus-per-trial 0", search("--cpus-per-trial", "0"), "argument --cpus-per-trial: 0 must be >= 0.01"),
    ("gpus-per-trial negative", search("--gpus-per-trial", "-1"), "argument --gpus-per-trial: -1 must be >= 0"),
    ("num-samples not a number", search("--num-samples", "ten"), "argument --num-samples: 'ten' is not an integer"),
    ("drain timeout negative", search("--tracking-drain-timeout", "-5"), "--tracking-drain-timeout: -5 must be >= 0"),
    ("grace beyond max epochs", search("--grace-period", "5", "--max-epochs", "2"),
     "--grace-period 5 exceeds the 2 epoch(s) a trial runs"),
    ("seed beyond 32 bits", search("--seed", str(2 ** 32)), f"argument --seed: {2 ** 32} must be <= {2 ** 32 - 1}"),
    ("unknown flag", search("--num-sample", "3"), "unrecognized arguments: --num-sample 3"),
    ("resume of nothing", search("--resume", "--name", "never-ran"), "--resume: no restorable search at"),
    # infrastructure
    ("unreachable tracking server", lambda tmp, root: (lambda: runner.main(SPEC, [
        "--data", str(root), "--smoke-test", "--storage-path", str(tmp / "rr"),
        "--tracking-uri", f"http://127.0.0.1:{free_port()}"])), "did not answer within 2 s"),
    ("tracking folder missing", lambda tmp, root: (lambda: runner.main(SPEC, [
        "--data", str(root), "--smoke-test", "--storage-path", str(tmp / "rr"),
        "--tracking-uri", f"sqlite:///{tmp / 'no' / 'mlflow.db'}"])), "does not exist; create it"),
    ("a GPU on a CPU machine", search("--gpus-per-trial", "1"), "no node can run a trial: each trial asks for 1 CPU, 1 GPU"),
    ("more CPUs than any node", search("--cpus-per-trial", "512"), "asks for 512 CPU"),
    ("more memory than any node", search("--memory-per-trial", "100000"), "lower --memory-per-trial"),
    # ChestX-ray14 files
    ("data root missing", lambda tmp, root: search()(tmp, tmp / "nowhere"), "nowhere does not exist"),
    ("neither dataset", with_file(lambda r: (r / CSV).unlink()), "is neither a ChestX-ray14 root"),
    ("empty label CSV", with_file(lambda r: (r / CSV).write_text("")), f"{CSV} is empty"),
    ("binary label CSV", with_file(lambda r: (r / CSV).write_bytes(b"\x89PNG\x00\xff\xfe" * 50)), "is not a readable CSV"),
    ("truncated label CSV", with_file(lines(CSV, lambda ls: ls[:40] + [ls[40][:12]])), "row(s) with no 'Patient ID'"),
    ("CSV without a column", with_file(rewrite(CSV, lambda t: t.replace("Patient ID", "PatientID"))),
     "lacks column(s) ['Patient ID']"),
    ("duplicated CSV row", with_file(lines(CSV, lambda ls: ls + [ls[5]])), "lists 1 image(s) twice"),
    ("unknown finding", with_file(rewrite(CSV, lambda t: t.replace("Hernia", "Hernia2", 1))), "unknown label(s) Hernia2 in 'Finding Labels'"),
    ("list entry absent from the CSV", with_file(lines("test_list.txt", lambda ls: ls + ["99999999_000.png"])),
     "1 image(s) in the test split list are not in the label CSV: 99999999_000.png"),
    ("list missing", with_file(lambda r: (r / "test_list.txt").unlink()), "test_list.txt not found"),
    ("list names an image twice", with_file(lines("train_val_list.txt", lambda ls: ls + ls[:2])), "more than once"),
    ("lists overlap", with_file(lambda r: (r / "test_list.txt").write_text(
        (r / "test_list.txt").read_text() + (r / "train_val_list.txt").read_text().split()[0] + "\n")), "Split lists overlap"),
    ("image file missing", with_file(lambda r: next((r / "images").glob("*.png")).unlink()), "missing under"),
    ("corrupt image", with_file(lambda r: sorted((r / "images").glob("*.png"))[3].write_bytes(b"\x89PNG\r\n\x1a\n0")),
     "Unreadable image"),
    # CheXpert files
    ("CheXpert valid.csv missing", chexpert(lambda cx: (cx / "valid.csv").unlink()), "is neither a ChestX-ray14"),
    ("CheXpert word for a value", chexpert(rewrite("train.csv", lambda t: t.replace(",1.0,", ",yes,", 1))),
     "observation value(s) other than 1.0, 0.0, -1.0 or blank"),
    ("CheXpert value out of domain", chexpert(rewrite("train.csv", lambda t: t.replace(",1.0,", ",2.0,", 1))),
     "'2.0'"),
    ("CheXpert path without patient", chexpert(rewrite("train.csv", lambda t: t.replace("patient00001", "p1", 1))),
     "name no patientNNNNN folder"),
    ("CheXpert truncated", chexpert(lines("train.csv", lambda ls: ls + [ls[-1].split(",")[0][:-9]])),
     "missing"),
    # trial configs (python -m trainables.train)
    ("config file missing", lambda tmp, root: (lambda: train.main(["--config", str(tmp / "none.yaml")])), "none.yaml not found"),
    ("config not YAML", config("model: [unclosed\n"), "is not valid YAML"),
    ("config a list", config("- 1\n- 2\n"), "holds a list, not a mapping"),
    ("unknown config key", config("train: {epochs: 3}\ndata: {root: ROOT}\n"), "unknown config key(s) ['train.epochs']"),
    ("config value out of range", config("data: {root: ROOT, image_size: 0}\n"), "data.image_size=0 must be a positive integer"),
    ("unknown loss", config("loss: {name: focall}\nmodel: {pretrained: false}\ndata: {root: ROOT}\n"), "loss.name='focall' is unknown"),
    ("config key typo in a loss", config("loss: {name: focal, gama: 2}\nmodel: {pretrained: false}\ndata: {root: ROOT}\n"), "gama"),
    # the other commands
    ("sync of a missing file", other(sync.main, "TMP/mlflow_pending.jsonl"), "mlflow_pending.jsonl not found"),
    ("export of an unknown experiment", other(export.main, "--experiment", "nope", "--tracking-uri",
                                              "sqlite:///TMP/mlflow.db"), "No MLflow experiment 'nope'"),
    ("evaluate --top 0", other(evaluate.main, "--experiment", "x", "--top", "0"), "argument --top: 0 must be >= 1"),
    ("report of an unknown experiment", other(report.main, "--experiment", "nope", "--tracking-uri",
                                              "sqlite:///TMP/mlflow.db"), "--experiment 'nope': no such MLflow experiment"),
    ("report of an empty store", other(report.main, "--tracking-uri", "sqlite:///TMP/mlflow.db"),
     "no cxr-tune search in this tracking store"),
    ("synthetic set into a folder of other files", foreign_folder, "holds files that are not a synthetic set"),
    ("synthetic set of too few patients", other(synthetic.main, "--patients", "3"), "argument --patients: 3 must be >="),
]


@pytest.fixture(scope="module", autouse=True)
def _ray_down_afterwards():
    yield
    ray.shutdown()  # the resource rows start a local Ray in this process


@pytest.mark.parametrize("build, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_input_is_one_line_and_leaves_no_result(build, expected, tiny_nih, tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("CXR_TUNE_CACHE", str(work / "cache"))
    monkeypatch.setattr("search.tracking.check.TIMEOUT_S", 2.0)
    monkeypatch.chdir(work)
    message = user_error(capsys, build(work, tiny_nih))
    assert expected in message, message
    assert not (work / "mlruns").exists()
    if (work / "mlflow.db").exists():  # a command may open the store before it finds the mistake
        assert not MlflowClient(f"sqlite:///{work / 'mlflow.db'}").search_runs(
            [e.experiment_id for e in MlflowClient(f"sqlite:///{work / 'mlflow.db'}").search_experiments()])
    assert not list((work / "cache").rglob("index.json"))  # no cache a trial would read
    assert not list((work / "rr").glob("*/experiment_state*")) if (work / "rr").exists() else True


def test_the_table_is_long_enough():
    assert len(CASES) >= 25 and len({c[0] for c in CASES}) == len(CASES)


def test_debug_mode_shows_the_traceback(tiny_nih, tmp_path, monkeypatch):
    monkeypatch.setenv("CXR_TUNE_DEBUG", "1")
    from trainables.errors import UsageError

    with pytest.raises(UsageError, match="--num-samples"):
        runner.main(SPEC, ["--data", str(tiny_nih), "--num-samples", "0"])
