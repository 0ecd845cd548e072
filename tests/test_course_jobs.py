"""`python -m resnet_keras.course --jobs 2`: notebooks run side by side, each in its own kernel,
and the kernels' stderr goes to build/logs/ (make test-notebooks runs the course this way)."""

import nbformat

from resnet_keras.course import runner as course


def test_two_jobs_run_every_notebook_and_keep_the_kernels_stderr(tmp_path, capsys):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    quiet = "import os\nprint(os.environ['RESNET_KERAS_PROFILE'])"
    noisy = "import os\nos.write(2, b'a C++ log line\\n')\nprint(os.getpid())"
    for name, source in [("01_quiet", quiet), ("02_noisy", noisy), ("03_bad", "1 / 0")]:
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
        nbformat.write(notebook, folder / f"{name}.ipynb")
    build = tmp_path / "build"
    arguments = ["--notebooks", str(folder), "--build", str(build), "--profile", "ci"]
    assert course.main([*arguments, "--jobs", "2"]) == 1  # 03 fails, the others run
    out = capsys.readouterr().out
    table = [line.split()[:2] for line in out.splitlines() if line.startswith("0")]
    assert table == [["01_quiet.ipynb", "ok"], ["02_noisy.ipynb", "ok"], ["03_bad.ipynb", "failed"]]
    executed = nbformat.read(build / "notebooks" / "01_quiet.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == "ci"
    assert "a C++ log line" not in out
    logs = sorted(path.name for path in (build / "logs").iterdir())
    assert logs == ["02_noisy.stderr.txt"]  # the empty ones are removed
    assert "a C++ log line" in (build / "logs" / "02_noisy.stderr.txt").read_text()
