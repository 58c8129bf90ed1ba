"""The registered model (MLflow "models from code"): rebuilt from its config YAML and state dict.

MLflow runs this file to load the model, so nothing is pickled: the artifacts are
`config` (the trial's nested config, its labels and the checkpoint's epoch) and
`state_dict` (torch state dicts, loaded with weights_only=True). Needs cxr-tune installed.

    model = mlflow.pyfunc.load_model("models:/NAME/1")
    probs = model.predict(rows)  # uint8 (N, S, S) grayscale at the config's data.resize -> DataFrame, one column per label
"""
from __future__ import annotations

import warnings

import mlflow
import pandas as pd
import torch
import yaml
from mlflow.pyfunc import PythonModel

from trainables.predict import final_config, scores, trained_model

# MLflow asks for type hints on predict(); the logged signature already checks the input
warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method", category=UserWarning)


class CxrModel(PythonModel):
    def load_context(self, context):
        with open(context.artifacts["config"]) as f:
            doc = yaml.safe_load(f)
        state = torch.load(context.artifacts["state_dict"], map_location="cpu", weights_only=True)
        self.labels = list(doc["labels"])
        self.cfg = final_config(doc["config"], int(state["epoch"]))
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = trained_model(self.cfg, state, len(self.labels), self.device)

    def predict(self, context, model_input, params=None):
        return pd.DataFrame(scores(self.model, self.cfg, model_input, self.device), columns=self.labels)


mlflow.models.set_model(CxrModel())
