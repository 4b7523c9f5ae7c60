"""Resources shared by every concern: where the home folder is."""

from __future__ import annotations

import dagster as dg

from pushgrowth.home import Home


class HomeResource(dg.ConfigurableResource):
    """The home folder; empty `root` means `$PUSHGROWTH_HOME`, read when the resource is used."""

    root: str = ""

    @property
    def home(self) -> Home:
        return Home.from_env(self.root or None)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"home": HomeResource()})
