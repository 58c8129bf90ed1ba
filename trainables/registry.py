"""Name -> factory registries with config-key checking.

A config section {"name": n, **kwargs} builds REGISTRY[n](**kwargs). Keys the factory does not
take are an error naming the key and the accepted ones (a typo such as `loss.lamda` must not
silently fall back to a default). `context` carries values the trainable supplies (class
counts, number of classes); they go only to factories that declare them.
"""
from __future__ import annotations

import inspect

from trainables.errors import UserError


class ConfigError(UserError, ValueError):
    """A trial config names an unknown component or key, or a value out of range."""


def accepted_keys(factory) -> set[str]:
    params = inspect.signature(factory).parameters
    return {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def build(registry: dict, cfg: dict, section: str, context: dict | None = None):
    cfg = dict(cfg or {})
    name = cfg.pop("name", None)
    if name not in registry:
        raise ConfigError(f"{section}.name={name!r} is unknown; choose one of {sorted(registry)}")
    factory = registry[name]
    accepted = accepted_keys(factory)
    unknown = sorted(set(cfg) - accepted)
    if unknown:
        keys = ", ".join(f"{section}.{k}" for k in unknown)
        raise ConfigError(f"unknown config key(s) {keys} for {section} {name!r}; "
                          f"it takes {sorted(accepted - set(context or {}))}")
    extra = {k: v for k, v in (context or {}).items() if k in accepted and k not in cfg}
    try:
        return factory(**cfg, **extra)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{section} {name!r}: {err}") from err
