"""The `pushgrowth` command. Sub-commands live beside the logic they drive and are mounted here."""

from __future__ import annotations

import typer

from pushgrowth.campaigns.cli import app as campaigns_app

app = typer.Typer(help="pushgrowth: a self-learning growth engine for recurring push campaigns.", no_args_is_help=True)
app.add_typer(campaigns_app, name="campaigns", help="Validate and inspect the campaign catalog.")
