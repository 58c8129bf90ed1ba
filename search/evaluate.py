"""`python -m search.evaluate`: a trained config's test AUC beside its paper (search/evaluation/)."""
from search.evaluation.cli import main  # noqa: F401

if __name__ == "__main__":
    main()
