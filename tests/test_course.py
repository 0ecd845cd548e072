"""The course runner and the notebooks' common frame (badge, bootstrap, objectives, exercises)."""

import json
import pathlib

import nbformat
import pytest

from resnet_keras.course import runner as course

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_frame(path):
    cells = json.loads(path.read_text())["cells"]
    first = "".join(cells[0]["source"])
    assert course.colab_url(path.name) in first, "the Colab badge must point at this notebook"
    assert "Learning objectives" in first and "ci" in first and "gpu" in first
    bootstrap = "".join(cells[1]["source"])
    assert "google.colab" in bootstrap and course.REPOSITORY.split("//")[1] in bootstrap
    text = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")
    assert "## Summary" in text and "## Exercises" in text
    code = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
    assert "assert " in code, "every notebook checks its claims"
    assert code.count("check_") >= 2, "every notebook ends with at least two checked exercises"


def test_course_runner_executes_and_renders(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    good = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import os\nprint(os.environ['RESNET_KERAS_PROFILE'])")]
    )
    bad = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("assert 1 == 2, 'lesson broke'")]
    )
    nbformat.write(good, folder / "01_good.ipynb")
    nbformat.write(bad, folder / "02_bad.ipynb")
    build = tmp_path / "build"
    status = course.main(["--notebooks", str(folder), "--build", str(build), "--profile", "ci"])
    assert status == 1  # one notebook failed
    executed = nbformat.read(build / "notebooks" / "01_good.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == "ci"
    assert (build / "html" / "01_good.html").exists() and (build / "html" / "index.html").exists()
    assert course.main(["--notebooks", str(folder), "--build", str(build), "--only", "01"]) == 0


def test_course_runner_without_notebooks(tmp_path, capsys):
    assert course.main(["--notebooks", str(tmp_path)]) == 2
    assert "no notebooks" in capsys.readouterr().err
