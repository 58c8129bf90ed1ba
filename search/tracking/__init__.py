"""MLflow tracking: the store's shared names (store.py), the event outbox (outbox.py), the Tune
callback that fills it (callback.py), the preflight check (check.py) and the sync of what a search
could not deliver (sync.py). Only callback.py needs Ray.
"""
