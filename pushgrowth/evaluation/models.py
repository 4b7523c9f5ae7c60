"""What the model registry says about a country, for the report: the serving champion and its gate evidence."""

from __future__ import annotations

from pushgrowth.bandit import registry
from pushgrowth.home import Home


def model_summary(home: Home, country: str) -> dict:
    """Serving model, how many versions were promoted or rejected, and the champion's off-policy evidence."""
    if not (home.mlflow / "mlflow.db").exists():
        return {"serving_model": "cold start (no champion yet)", "promotions": 0, "rejections": 0}
    c = registry.client(home)
    name = registry.model_name(country)
    try:
        versions = c.search_model_versions(f"name = '{name}'")
    except Exception:  # noqa: BLE001 - no registered model yet
        versions = []
    outcome = [v.tags.get("promotion") for v in versions]
    champion = registry.alias_ref(home, country, registry.CHAMPION)
    out = {"serving_model": f"{champion.name} v{champion.version}" if champion else "cold start (no champion yet)",
           "versions": len(versions), "promotions": outcome.count("promoted"), "rejections": outcome.count("rejected")}
    if champion is not None:
        metrics = c.get_run(champion.run_id).data.metrics
        for key in ("ope_challenger_dr", "ope_challenger_dr_ci_low", "ope_champion_dr", "ope_bau_dr",
                    "bau_on_policy", "ope_difference", "ope_difference_ci_low", "ope_rows"):
            if key in metrics:
                out[key.replace("challenger", "serving")] = metrics[key]
    return out
