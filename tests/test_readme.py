from pathlib import Path

from pushgrowth.landing.contract import TABLES

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_documents_every_landing_table_and_column():
    for table in TABLES.values():
        assert f"`{table.file_name}`" in README, table.name
        for column in table.columns:
            assert f"| `{column.name}` |" in README, f"{table.name}.{column.name}"


def test_readme_gives_the_two_commands():
    assert "make demo" in README and "make test" in README and "PUSHGROWTH_HOME" in README
