"""The MLflow pyfunc of a country's bandit, logged as "models from code" (MLflow loads this file, not a pickle).

`predict` takes rows with the user's context (the `user_features` columns plus the campaign's
`value_proposition`) and a plan (`coupon_kind`, `coupon_value`, `coupon_cap`, `tone`, `send_hour`,
`send_weekday`, `frequency`) and returns every head's prediction. Assignments unwrap the model to score whole
action spaces at once (`pushgrowth.bandit.registry.load_policy_model`).
"""

from pathlib import Path

import mlflow
import pandas as pd

from pushgrowth.bandit.model import RewardModel


class BanditPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        self.model = RewardModel.load(Path(context.artifacts["reward_model"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return self.model.predict(model_input, model_input)


mlflow.models.set_model(BanditPyfunc())
