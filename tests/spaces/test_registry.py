"""spaces/ is the one registry of papers: a sixth paper added as ARCHITECTURE.md's steps say (a module
with a SPEC) is found by the runner, the export and the evaluation with no other edit."""
import sys
import textwrap

import pytest
from mlflow.tracking import MlflowClient

import spaces
from search import runner
from search.evaluation import candidates, cli
from trainables.errors import UsageError

TOY = '''
from ray import tune

from spaces import SMOKE, SearchSpec, profile
from spaces.paper_numbers import PaperRow

SPEC = SearchSpec(
    name="toy", script="toy_search", description="a toy paper",
    base={"model": {"name": "toy_net"}, "loss": {"name": "focal", "gamma": 2.0}, "train": {"max_epochs": 3}},
    space={"loss": {"gamma": tune.uniform(0.0, 3.0)}}, best={"loss": {"gamma": 1.0}},
    grid={"loss": {"gamma": tune.grid_search([0.0, 2.0])}}, columns=["loss/gamma"],
    smoke=profile(SMOKE, 2), paper={"chestxray14": PaperRow("Toy", "chestxray14", "official")})
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    (tmp_path / "toy.py").write_text(textwrap.dedent(TOY))
    monkeypatch.setattr(spaces, "__path__", [*spaces.__path__, str(tmp_path)])
    yield spaces.get("toy")
    sys.modules.pop("spaces.toy", None)


def test_the_five_papers_are_the_registry():
    assert spaces.names() == ["am_densenet", "cb_focal", "dualchexnet", "mlrfnet", "msml"]
    assert {m: spaces.for_model(m) for m in ("dualchexnet", "fmsml", "am_densenet", "mlrfnet", "timm_classifier")} \
        == {"dualchexnet": "dualchexnet", "fmsml": "msml", "am_densenet": "am_densenet", "mlrfnet": "mlrfnet",
            "timm_classifier": None}  # a plain timm classifier is no paper's own model
    with pytest.raises(UsageError, match=r"no search space 'nope'; there are \['am_densenet'"):
        spaces.get("nope")


def test_a_sixth_paper_is_found_by_the_evaluation_and_the_runner(toy, tmp_path):
    assert "toy" in spaces.names() and toy.name == "toy" and spaces.for_model("toy_net") == "toy"
    assert cli.parse_args(["x.yaml", "--space", "toy"]).space == "toy"
    (tmp_path / "cfg.yaml").write_text("model: {name: toy_net}\nloss: {name: focal}\n")
    args = cli.parse_args([str(tmp_path / "cfg.yaml"), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    [found] = candidates.candidates(args, MlflowClient(args.tracking_uri))
    assert found.space == "toy"  # compared with the toy paper's row, by its model

    space, warm = runner.build_param_space(toy, runner.parse_args(toy, ["--smoke-test"]), toy.smoke)
    assert space["model"]["name"] == "toy_net" and warm == [{"loss/gamma": 1.0}]
    grid, none = runner.build_param_space(toy, runner.parse_args(toy, ["--grid"]), {})
    assert grid["loss"]["gamma"] == {"grid_search": [0.0, 2.0]} and none == []
