"""Replicate rungs in the search: which configs get another seed, what the replicate's config is, who
is told of it, the standings, and the state a resume gets back."""
import pickle

from ray.tune.search import Searcher, SearchGenerator

from search.scheduling.replicas import REPLICA, ReplicatingSearch, replica_of
from search.scheduling.trial_state import LimitedSearch


class Listed(Searcher):
    """Suggests λ from a list; records what it is told."""

    def __init__(self, lams):
        super().__init__(metric="val_auc", mode="max")
        self.lams, self.told, self.results = list(lams), [], []

    def suggest(self, trial_id):
        return {"loss": {"lam": self.lams.pop(0)}} if self.lams else None

    def on_trial_result(self, trial_id, result):
        self.results.append(trial_id)

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.told.append(trial_id)

    def save(self, path):
        with open(path, "wb") as f:
            pickle.dump(self.__dict__.copy(), f)

    def restore(self, path):
        with open(path, "rb") as f:
            self.__dict__.update(pickle.load(f))


def end(search, trial_id, auc, epoch=6):
    search.on_trial_result(trial_id, {"val_auc": auc, "epoch": epoch})
    search.on_trial_complete(trial_id, {"val_auc": auc, "epoch": epoch})


def test_a_config_that_ran_every_epoch_is_retrained_with_the_next_seed_before_a_new_proposal():
    inner = Listed([0.5, 1.0, 1.5])
    s = ReplicatingSearch(inner, replicates=2, eta=2, max_t=6, seed=7)
    assert s.suggest("a") == {"loss": {"lam": 0.5}}
    end(s, "a", 0.70)
    replica = s.suggest("b")
    assert replica == {"loss": {"lam": 0.5}, "train": {"seed": 8, REPLICA: 1}} and replica_of(replica) == 1
    assert inner.lams == [1.0, 1.5]                        # Optuna was not asked
    end(s, "b", 0.72)
    assert s.suggest("c")["train"] == {"seed": 9, REPLICA: 2}
    end(s, "c", 0.68)
    assert s.suggest("d") == {"loss": {"lam": 1.0}}         # 3 seeds: no more
    assert inner.told == ["a"] and inner.results == ["a"]  # replicates are not told to the searcher
    assert s.standings() == [("a", 3, (0.70 + 0.72 + 0.68) / 3)]


def test_a_cut_errored_or_unscored_trial_gets_no_replicate():
    s = ReplicatingSearch(Listed([0.5, 1.0, 1.5, 2.0]), replicates=1, eta=2, max_t=6, seed=0)
    for trial_id in "abc":
        s.suggest(trial_id)
    end(s, "a", 0.70, epoch=3)                                   # cut by ASHA at epoch 3
    s.on_trial_complete("b", {"val_auc": 0.75, "epoch": 6}, error=True)
    s.on_trial_complete("c", {"val_auc": float("nan"), "epoch": 6})
    assert s.suggest("d") == {"loss": {"lam": 2.0}} and s.standings() == []


def test_the_hand_built_race_promotes_both_in_turn_and_the_mean_picks_the_good_config():
    """The good config (0.75 with every seed) ends first, the lucky one (0.80, then 0.60) second: each
    beats the cutoff when it gets there; after a second seed the good one leads."""
    s = ReplicatingSearch(Listed([2.0, 0.0]), replicates=1, eta=2, max_t=6, seed=0)
    s.suggest("good"), s.suggest("lucky")
    end(s, "good", 0.75)
    end(s, "lucky", 0.80)
    assert [s.suggest("good+1")["loss"], s.suggest("lucky+1")["loss"]] == [{"lam": 2.0}, {"lam": 0.0}]
    end(s, "good+1", 0.75)
    end(s, "lucky+1", 0.60)
    assert [row[0] for row in s.standings()] == ["good", "lucky"]


def test_below_the_rungs_cutoff_a_config_keeps_its_one_seed():
    s = ReplicatingSearch(Listed([0.0, 0.5, 1.0, 1.5]), replicates=1, eta=2, max_t=6, seed=0)
    for trial_id in "abc":
        s.suggest(trial_id)
    end(s, "a", 0.80)
    s.queue.clear()                                   # a's replicate started elsewhere
    end(s, "b", 0.70)                                 # below the median of {0.80}: stays at one seed
    assert not s.queue
    end(s, "c", 0.90)                                 # above it: goes on
    assert list(s.queue) == [("c", 1)]


def test_the_rungs_and_the_queue_come_back_with_the_search_state(tmp_path):
    s = ReplicatingSearch(Listed([0.5, 1.0]), replicates=2, eta=2, max_t=6, seed=3)
    gen = SearchGenerator(LimitedSearch(s, max_concurrent=2))
    s.suggest("a")
    end(s, "a", 0.7)
    gen.save_to_dir(str(tmp_path), session_str="t")
    fresh = ReplicatingSearch(Listed([9.9]), replicates=2, eta=2, max_t=6, seed=3)
    SearchGenerator(LimitedSearch(fresh, max_concurrent=2)).restore_from_dir(str(tmp_path))
    assert fresh.finals == {"a": {0: 0.7}} and list(fresh.queue) == [("a", 1)]
    assert fresh.suggest("b")["train"] == {"seed": 4, REPLICA: 1}
    assert fresh.searcher.lams == [1.0] and fresh.searcher.told == ["a"]   # the searcher's own save


class Result:
    """What Tune's ResultGrid holds of a trial: its config, last metrics, error."""

    def __init__(self, trial_id, lam, seed, auc, epoch=6, replica=0, error=None):
        self.config = {"loss": {"lam": lam}, "train": {"seed": seed, REPLICA: replica}}
        self.metrics = {"trial_id": trial_id, "val_auc": auc, "epoch": epoch}
        self.error = error


def test_confirmation_candidates_carry_their_replicates_seeds_and_rank_by_seeds_then_mean():
    from search.picking.confirm_runs import candidates, points

    results = [Result("a", 0.5, 0, 0.80), Result("b", 1.0, 0, 0.75), Result("b1", 1.0, 1, 0.77, replica=1),
               Result("c", 1.5, 0, 0.70, epoch=3), Result("d", 2.0, 0, 0.60)]
    got = candidates(results, top=2, max_epochs=6)
    # b has two seeds (0.75, 0.77): ahead of a's one lucky seed; c was cut; top 2
    assert [(c.trial_id, c.values) for c in got] == [("b", {0: 0.75, 1: 0.77}), ("a", {0: 0.80})]
    assert got[0].config["train"] == {"seed": 0, REPLICA: 0}     # the proposal's config names it
    # confirmation with seeds 1 and 2 trains only what is missing: b's seed 2, a's seeds 1 and 2
    todo = points(got, [1, 2])
    assert [(p["loss"]["lam"], p["train"]["seed"]) for p in todo] == [(1.0, 2), (0.5, 1), (0.5, 2)]


def test_asha_never_cuts_a_replicate():
    from types import SimpleNamespace

    from search.scheduling.oom_retry import PackedASHA

    asha = PackedASHA(time_attr="epoch", metric="val_auc", mode="max", max_t=6, grace_period=1, reduction_factor=2)
    trials = [SimpleNamespace(trial_id=str(i), config={"train": {REPLICA: r}}) for i, r in enumerate((0, 0, 1))]
    for t in trials:
        asha.on_trial_add(None, t)
    assert asha.on_trial_result(None, trials[0], {"epoch": 1, "val_auc": 0.9}) == asha.CONTINUE
    assert asha.on_trial_result(None, trials[1], {"epoch": 1, "val_auc": 0.5}) == asha.STOP
    # the replicate is far below both at the rung, and goes on
    assert asha.on_trial_result(None, trials[2], {"epoch": 1, "val_auc": 0.1}) == asha.CONTINUE
    # nor does its last value join the rungs (it would raise the top rung's cutoff for the proposals)
    rungs = [(m, dict(r)) for m, r in asha._brackets[0]._rungs]
    asha.on_trial_complete(None, trials[2], {"epoch": 6, "val_auc": 0.99})
    assert [(m, dict(r)) for m, r in asha._brackets[0]._rungs] == rungs and "2" not in asha._trial_info


def test_replicate_rungs_take_the_place_of_the_default_confirmation_not_of_an_asked_one():
    from types import SimpleNamespace

    from search.runner import fill_defaults
    from spaces import get

    spec = get("dualchexnet")
    for replicates, confirm, expected in ((0, None, 3), (2, None, 0), (2, 3, 3)):
        args = SimpleNamespace(grace_period=None, reduction_factor=None, confirm=confirm, confirm_seeds=None,
                               replicates=replicates, sampler=None, grid=False)
        fill_defaults(spec, {}, args, num_samples=40)     # real data (no profile): 40 trials afford 3 x 2
        assert args.confirm == expected


def test_trials_the_restored_state_does_not_know_are_told_apart_by_their_config():
    """A driver stopped while saving: the experiment has a proposal and a replicate of it that the
    restored search never saw; Tune hands their results with the config flattened."""
    inner = Listed([2.0])
    s = ReplicatingSearch(inner, replicates=2, eta=2, max_t=6, seed=0)
    proposal = {"config/loss/lam": 0.5, "config/train/seed": 0}
    s.on_trial_complete("x", {"val_auc": 0.7, "epoch": 6, **proposal})
    assert inner.told == ["x"] and list(s.queue) == [("x", 1)]
    replica = s.suggest("x1")                                         # built from the result's config
    assert replica == {"loss": {"lam": 0.5}, "train": {"seed": 1, REPLICA: 1}}
    # a replicate of x the restored state lost: matched to x by its config, never told to the searcher
    s.on_trial_complete("lost", {"val_auc": 0.74, "epoch": 6, "config/loss/lam": 0.5, "config/train/seed": 2,
                                 f"config/train/{REPLICA}": 2})
    assert inner.told == ["x"] and s.finals["x"] == {0: 0.7, 2: 0.74}
