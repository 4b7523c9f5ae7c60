"""The home folder: every piece of state lives under `$PUSHGROWTH_HOME` (default `.pushgrowth/`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "PUSHGROWTH_HOME"
DEFAULT = ".pushgrowth"


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def from_env(cls, root: str | os.PathLike | None = None) -> Home:
        return cls(Path(root or os.environ.get(ENV_VAR) or DEFAULT).expanduser().resolve())

    @property
    def landing(self) -> Path:
        """Raw extracts as delivered (never modified by pushgrowth)."""
        return self.root / "landing"

    @property
    def lake(self) -> Path:
        """Parquet outputs of assets, one folder per partition."""
        return self.root / "lake"

    @property
    def warehouse(self) -> Path:
        """The DuckDB file that dbt builds."""
        return self.root / "warehouse.duckdb"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def mlflow(self) -> Path:
        return self.root / "mlflow"

    @property
    def dagster(self) -> Path:
        """DAGSTER_HOME for `make dev` and `pushgrowth simulate`."""
        return self.root / "dagster"

    @property
    def dbt(self) -> Path:
        """dbt's artifacts and logs for this home's warehouse (`target/`, `logs/`): the last build's compiled SQL,
        run results and the partial-parse state."""
        return self.root / "dbt"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def world(self) -> Path:
        """Saved state of the simulated World."""
        return self.root / "world"
