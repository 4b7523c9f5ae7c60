"""Resources shared by every concern: where the home folder is."""


import dagster as dg
from dagster_dbt import DbtCliResource

from pushgrowth.home import Home
from pushgrowth.transform import DBT_EXECUTABLE, DBT_PROJECT_DIR


class HomeResource(dg.ConfigurableResource):
    """The home folder; empty `root` means `$PUSHGROWTH_HOME`, read when the resource is used."""

    root: str = ""

    @property
    def home(self) -> Home:
        return Home.from_env(self.root or None)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={
        "home": HomeResource(),
        "dbt": DbtCliResource(project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR),
                              dbt_executable=DBT_EXECUTABLE),
    })
