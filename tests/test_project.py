"""Project hygiene: environment.yml in step with pyproject, clean notebooks, CI wiring."""

import json
import pathlib
import re
import subprocess

import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_environment_yml_installs_the_package_extras_that_exist():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    environment = (ROOT / "environment.yml").read_text()
    extras = set(pyproject["project"]["optional-dependencies"])
    match = re.search(r"-e \.\[([a-z,]+)\]", environment)
    assert match, "environment.yml must pip-install the package with `-e .[...]`"
    assert {"dev"} <= set(match.group(1).split(",")) <= extras
    python = re.search(r"python=(\d+)\.(\d+)", environment)
    minimum = re.search(r">=(\d+)\.(\d+)", pyproject["project"]["requires-python"])
    assert tuple(map(int, python.groups())) >= tuple(map(int, minimum.groups()))
    # The CPU pin of torch comes before the torch extra, as in the Makefile.
    assert environment.index("torch==") < environment.index("-e .[")
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"torch==([\d.]+)", makefile).group(1) == re.search(
        r"torch==([\d.]+)", environment
    ).group(1)


def test_notebooks_are_stored_without_outputs():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        ids = [cell.get("id") for cell in notebook["cells"]]
        # nbformat 4.5 gives every cell an id; a cell without one makes Jupyter warn and rewrite.
        assert all(ids) and len(set(ids)) == len(ids), f"{path.name}: cells without unique ids"
        for index, cell in enumerate(notebook["cells"]):
            if cell["cell_type"] == "code":
                assert not cell.get("outputs"), f"{path.name} cell {index} holds outputs"
                assert cell.get("execution_count") is None, f"{path.name} cell {index} was run"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make course" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_nothing_points_outside_the_repository():
    # Learners get the repository alone: figures are cited from the papers, not from notes
    # that live next to it on a developer's machine.
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    # "the course's anchors" was such a pointer too: the word names the developers' notes.
    pattern = re.compile(r"ANCHORS\.md|\banchors\b|/work/shared|\.\./shared|shared/seed", re.I)
    offenders = [
        name
        for name in tracked
        if name.endswith((".py", ".ipynb", ".md", ".toml", ".yml", ".txt"))
        and name != "tests/test_project.py"
        and (ROOT / name).exists()
        and pattern.search((ROOT / name).read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_machine_figures_live_in_results_md_only():
    # A speed measured on one machine goes stale in a docstring or a notebook; RESULTS.md
    # names its machine, and the rest of the tree links to it.
    pattern = re.compile(r"\d[\d,.]* (?:images|steps)/s\b|\d\.\d+x (?:faster|as fast|slower)")
    places = [
        ROOT / "README.md",
        *ROOT.glob("resnet_keras/**/*.py"),
        *ROOT.glob("notebooks/*.ipynb"),
    ]
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in places
        for match in pattern.finditer(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders
