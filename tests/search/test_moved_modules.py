"""Modules that moved into search.scheduling and search.picking still load under their old names,
as a search pickled before the move needs on --resume (search/__init__.py)."""
import importlib
import pickle

import pytest

import search
from search.scheduling.stopping import PatienceStopper


@pytest.mark.parametrize("old", sorted(search.MOVED))
def test_an_old_name_is_the_moved_module_itself(old):
    module = importlib.import_module(old)
    assert module is importlib.import_module(search.MOVED[old])
    # and the module keeps its own name and spec, which importlib.reload and `python -m` use
    assert module.__name__ == module.__spec__.name == search.MOVED[old] and "_cxr_own" not in vars(module)


def test_state_pickled_under_an_old_name_loads():
    stopper = PatienceStopper(3, 0.01, 4)
    stopper.best, stopper.since = 0.71, 2
    data = pickle.dumps(stopper, protocol=2)   # names its class as `module\nClass\n`, as a pickle from before
    old = data.replace(b"search.scheduling.stopping\n", b"search.stopping\n")
    assert old != data
    back = pickle.loads(old)
    assert isinstance(back, PatienceStopper) and (back.patience, back.best, back.since) == (3, 0.71, 2)
