"""Test-set evaluation beside the papers' tables: candidates.py (what is scored), pipeline.py (weights
-> scores -> files -> MLflow), scoring.py + bootstrap.py (AUCs with patient-level CIs),
comparison.py (against the paper), roc_plot.py, mlflow_run.py and pyfunc_model.py (the logged and
registered model); cli.py is `python -m search.evaluate`."""
