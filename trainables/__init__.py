"""cxr-tune trainables: everything one Ray Tune trial runs (data, models, losses, metrics, train loop)."""
