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

    OWN = ("__name__", "__spec__", "__loader__", "__package__", "__file__", "__cached__")

    def create_module(self, spec):
        module = importlib.import_module(MOVED[spec.name])
        # the import system sets the old name's spec on what this returns: keep the module's own
        module.__dict__.setdefault("_cxr_own", {k: module.__dict__[k] for k in self.OWN if k in module.__dict__})
        return module

    def exec_module(self, module):
        module.__dict__.update(module.__dict__.pop("_cxr_own", {}))   # already executed: only restore


if not any(isinstance(f, _Alias) for f in sys.meta_path):
    sys.meta_path.append(_Alias())
