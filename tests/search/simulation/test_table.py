"""The recorded-table format (docs/recorded_tables.md): what a config is, the pick pool and held-out
scoring, the nearest config in each param's own scaling, and a one-line error naming the line."""
import pytest

from search.simulation.table import Table, TableError
from tests.tables import write_dual

BETA = """# table: cb
# metric: val_auc max
# param: loss.one_minus_beta float 1e-6 1e-2 log
# param: loss.gamma float 0 3
# pool: 0 1
seed,loss.one_minus_beta,loss.gamma,epoch,val_auc,seconds
"""


def write(tmp_path, text: str):
    path = tmp_path / "t.csv"
    path.write_text(text)
    return path


def test_a_config_is_one_combination_of_the_param_columns_and_an_empty_cell_does_not_apply(tmp_path):
    t = Table.read(write_dual(tmp_path / "t.csv", lambda c, s, e: 0.5 + 0.01 * e, seeds=(0, 1, 2, 3), pool="0 1 2"))
    assert len(t.configs) == 35 and t.max_t == 6 and t.all_seeds == [0, 1, 2, 3]
    assert t.pool_seeds == [0, 1, 2] and t.held_out == [3]
    assert t.warm == {"loss.lam": 0.5, "heads.fusion": "concat", "heads.w_d": 0.3, "heads.w_r": 0.3}
    avg = t.nearest({"loss.lam": 1.3, "heads.fusion": "avg", "heads.w_d": 0.49, "heads.w_r": 0.0})
    assert t.config_of(avg) == {"loss.lam": 1.5, "heads.fusion": "avg"}   # its weights do not apply
    # Concat's recorded weights tie w_D = w_R: the nearest is the grid weight nearest their mean
    concat = t.nearest({"loss.lam": 0.26, "heads.fusion": "concat", "heads.w_d": 0.0, "heads.w_r": 0.12})
    assert t.config_of(concat) == {"loss.lam": 0.5, "heads.fusion": "concat", "heads.w_d": 0.1, "heads.w_r": 0.1}
    assert t.seeds(avg) == [0, 1, 2] and t.seeds(avg, pool=False) == [0, 1, 2, 3]


def test_a_log_param_is_near_in_its_log_scale(tmp_path):
    rows = [f"0,{b},1.0,1,0.6,2" for b in ("1e-5", "1e-3")]
    t = Table.read(write(tmp_path, BETA + "\n".join(rows) + "\n"))
    # 2e-4 is 8e-4 from 1e-3 and 1.9e-4 from 1e-5 on a line, but a decade nearer 1e-3 on a log scale
    assert t.config_of(t.nearest({"loss.one_minus_beta": 2e-4, "loss.gamma": 1.0}))["loss.one_minus_beta"] == 1e-3
    assert t.max_t == 1   # one epoch: a single-fidelity table


def test_the_pick_is_scored_on_the_held_out_seeds_where_pool_and_held_out_disagree(tmp_path):
    # A is best on the pool seeds 0-1, B on the held-out seeds 2-3
    finals = {("1e-5", 0): 0.80, ("1e-5", 1): 0.78, ("1e-5", 2): 0.60, ("1e-5", 3): 0.62,
              ("1e-3", 0): 0.70, ("1e-3", 1): 0.70, ("1e-3", 2): 0.72, ("1e-3", 3): 0.74}
    rows = [f"{s},{b},1.0,1,{v},2" for (b, s), v in finals.items()]
    t = Table.read(write(tmp_path, BETA + "\n".join(rows) + "\n"))
    a, b = (t.nearest({"loss.one_minus_beta": x, "loss.gamma": 1.0}) for x in (1e-5, 1e-3))
    assert t.held_out == [2, 3]
    assert t.mean(a) == pytest.approx(0.61) and t.mean(b) == pytest.approx(0.73)
    assert t.best_mean() == pytest.approx(0.73) and t.regret(b) == 0
    assert t.regret(a) == pytest.approx(0.12)                       # what the pool's favourite is worth
    assert t.regret(b, seeds=t.pool_seeds) == pytest.approx(0.09)   # the flattering score it replaces


def test_a_minimised_metric_has_positive_regret_too(tmp_path):
    text = BETA.replace("max", "min").replace("# pool: 0 1\n", "").replace("val_auc", "loss")
    t = Table.read(write(tmp_path, text + "0,1e-5,1,1,0.30,2\n0,1e-3,1,1,0.25,2\n"))
    worse = t.nearest({"loss.one_minus_beta": 1e-5, "loss.gamma": 1})
    assert t.best_mean() == 0.25 and t.regret(worse) == pytest.approx(0.05)


@pytest.mark.parametrize("change, line, what", [
    (("# metric: val_auc max", "# metric: val_auc highest"), 2, "should be '# metric: NAME max|min'"),
    (("float 1e-6 1e-2 log", "float 1e-6 1e-2 ln"), 3, "should be"),
    (("float 0 3", "float 3 0"), 4, "need LOW <= HIGH"),
    (("# pool: 0 1", "# pool: 7 8"), 5, "no recorded seed is in the pool [7, 8]"),
    (("seed,loss.one_minus_beta,loss.gamma", "seed,loss.gamma,loss.one_minus_beta"), 6, "the columns are"),
    (("0,1e-3,1.0,1,0.7,2", "0,1e-3,1.0,1,0.7"), 8, "5 cells, expected 6"),
    (("0,1e-3,1.0,1,0.7,2", "0,1e-3,4.0,1,0.7,2"), 8, "loss.gamma=4.0 is outside its range [0, 3]"),
    (("0,1e-3,1.0,1,0.7,2", "0,1e-3,1.0,1,high,2"), 8, "could not convert string to float"),
    (("0,1e-3,1.0,1,0.7,2", "0,1e-5,1.0,1,0.7,2"), 8, "seed 0, epoch 1 of this config appears twice"),
    (("# table: cb\n", ""), 1, "no '# table:' line"),
])
def test_a_malformed_table_is_one_error_naming_its_line(tmp_path, change, line, what):
    text = BETA + "0,1e-5,1.0,1,0.6,2\n0,1e-3,1.0,1,0.7,2\n"
    assert change[0] in text
    path = write(tmp_path, text.replace(*change))
    with pytest.raises(TableError) as err:
        Table.read(path)
    message = str(err.value)
    assert f"{path}, line {line}: " in message and what in message and "\n" not in message


def test_a_config_with_a_gap_in_its_epochs_is_named(tmp_path):
    path = write(tmp_path, BETA + "0,1e-5,1.0,1,0.6,2\n0,1e-5,1.0,3,0.7,2\n")
    gap = r"config loss.one_minus_beta=1e-05 loss.gamma=1.0, seed 0 has epochs \[1, 3\]"
    with pytest.raises(TableError, match=gap):
        Table.read(path)
