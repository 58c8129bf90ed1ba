"""`python -m search.sync PATH`: deliver a search's undelivered tracking events (search/tracking/sync.py)."""
from search.tracking.sync import main, sync  # noqa: F401

if __name__ == "__main__":
    main()
