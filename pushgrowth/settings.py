"""Settings that belong to a home folder rather than to the code: `<home>/settings.json`.

`pushgrowth simulate` records there how the World relates to the catalog (the budget scale of each country), so
every later run on the same home folder — the daemon under `make dev`, a re-run from the UI — paces budgets the
same way. An environment variable overrides the file: `PUSHGROWTH_BUDGET_SCALE` (one number for every country).
"""

from __future__ import annotations

import json
import os

from pydantic import BaseModel, ConfigDict, Field

from pushgrowth.home import Home

BUDGET_SCALE_ENV = "PUSHGROWTH_BUDGET_SCALE"
FILE = "settings.json"


class HomeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    budget_scale: dict[str, float] = Field(
        default_factory=dict,
        description="Per country, the factor applied to every campaign's monthly budget (1 when absent): the "
                    "share of the marketplace's users this installation serves, e.g. a pilot or the World.")

    def scale(self, country: str) -> float:
        env = os.environ.get(BUDGET_SCALE_ENV)
        if env:
            try:
                return float(env)
            except ValueError:
                raise ValueError(f"{BUDGET_SCALE_ENV}={env!r} is not a number") from None
        return float(self.budget_scale.get(country, 1.0))


def load(home: Home) -> HomeSettings:
    path = home.root / FILE
    if not path.exists():
        return HomeSettings()
    try:
        return HomeSettings.model_validate_json(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path}: invalid settings: {exc}") from exc


def save(home: Home, settings: HomeSettings) -> None:
    home.root.mkdir(parents=True, exist_ok=True)
    (home.root / FILE).write_text(json.dumps(settings.model_dump(), indent=2, sort_keys=True))
