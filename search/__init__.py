"""cxr-tune searches: one entry script per paper's search space, the shared runner, export.

Modules that moved into packages keep their old names for what was pickled under them: a search
started before the move saved its searcher, scheduler and callbacks as `search.trial_state.X` and
so on, and `--resume` unpickles them (Ray workers too, which import this package first).
"""
import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {f"search.{old}": f"search.{new}.{old}" for new, olds in {
    "scheduling": ("proposals", "trial_state", "oom_retry", "packing", "resources", "stopping", "replicas"),
    "picking": ("ranking", "confirmation", "confirm_runs")}.items() for old in olds}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old name as the module it moved to (the same module object, not a copy)."""

    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module):
        pass   # the new module is already executed


if not any(isinstance(f, _Alias) for f in sys.meta_path):
    sys.meta_path.append(_Alias())
