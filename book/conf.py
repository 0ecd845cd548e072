"""Sphinx configuration of the course's website (`make book`, `make test-site`).

The pages are the executed notebooks (`python -m resnet_keras.course` runs them; Sphinx does
not run them again: `nb_execution_mode = "off"`), staged with index.md into one source folder
by the Makefile. Everything a page loads is served by the site itself, so that it works
offline and from a file server: MathJax comes from the django-static-mathjax wheel (its files
only; no Django), the theme ships its fonts and icons.
"""

import pathlib
import re
import shutil
from importlib.util import find_spec

from docutils import nodes

from resnet_keras.course.runner import REPOSITORY

project = "ResNets with Keras 3"
author = "resnet-keras-course"
copyright = "resnet-keras-course contributors"

extensions = ["myst_nb"]
nb_execution_mode = "off"
# $...$ and $$...$$ as in Jupyter. The exercises' `<details><summary>Hint</summary>` blocks are
# HTML, which MyST passes through: the browser folds them.
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

html_theme = "sphinx_book_theme"
html_title = project
# Without it the theme's script logs "Got invalid theme mode" (an error) on every page.
html_context = {"default_mode": "auto"}
html_theme_options = {
    "repository_url": REPOSITORY,
    "repository_branch": "main",
    # The pages are the notebooks of notebooks/: the launch button opens that file on Colab.
    "path_to_docs": "notebooks",
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "use_repository_button": True,
    "use_download_button": True,
    "home_page_in_toc": True,
    "show_toc_level": 2,
}

# MathJax 3 from the site's own _static/mathjax/ (copied after the build, below).
mathjax_path = "mathjax/tex-mml-chtml.js"

_COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
# What MathJax's tex-mml-chtml.js loads: its CHTML fonts, the TeX extensions it autoloads,
# the menu and the accessibility components the menu can switch on. The other bundles and
# the SVG output are left out (16 MB of its 24).
_MATHJAX_PARTS = ("tex-mml-chtml.js", "input", "output/chtml", "ui", "a11y", "sre", "adaptors")


def _badge_to_text(app, doctree):
    """The notebooks' "Open in Colab" badge is an image on colab.research.google.com, which an
    offline reader cannot load: the link stays, its text replaces the image."""
    for image in list(doctree.findall(nodes.image)):
        if image.get("uri") == _COLAB_BADGE:
            image.replace_self(nodes.Text(image.get("alt") or "Open in Colab"))


def _plain_title(app, pagename, templatename, context, doctree):
    """The browser's tab shows <title> as text, where MathJax does not reach: 02's title
    reads "y = F(x) + x" there, not "\\(y = F(x) + x\\)"."""
    if context.get("title"):
        context["title"] = re.sub(r"\\\((.*?)\\\)", r"\1", context["title"])


def _copy_mathjax(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    spec = find_spec("mathjax")
    if spec is None:
        raise RuntimeError("no MathJax: `make setup` installs the `book` extra")
    es5 = pathlib.Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5"
    target = pathlib.Path(app.outdir) / "_static" / "mathjax"
    for part in _MATHJAX_PARTS:
        source = es5 / part
        if source.is_dir():
            shutil.copytree(source, target / part, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / part)


def setup(app):
    # MathJax on every page: the navigation shows 02's title, $y = F(x) + x$, on pages that
    # hold no math of their own (search, index).
    app.set_html_assets_policy("always")
    app.connect("doctree-read", _badge_to_text)
    app.connect("html-page-context", _plain_title)
    app.connect("build-finished", _copy_mathjax)
