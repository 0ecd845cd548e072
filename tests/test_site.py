"""The course's website in a real browser: headless Chromium loads every page of the built site.

`make test-site` executes the notebooks (ci profile), builds the site from the executed copies
into build/ci/site and runs this file; `make book` builds build/site. RESNET_KERAS_SITE names
another site folder. Chromium is Debian's (`make browser`), driven by Playwright, which
downloads no browser of its own; CHROMIUM names another executable. The site is served on
127.0.0.1 and every request elsewhere is refused and reported: the pages must work offline.
"""

import functools
import http.server
import json
import os
import pathlib
import re
import shutil
import threading
import urllib.parse

import pytest

from resnet_keras.course.runner import colab_url

ROOT = pathlib.Path(__file__).resolve().parents[1]
SITE = pathlib.Path(os.environ.get("RESNET_KERAS_SITE", ROOT / "build" / "ci" / "site"))
NOTEBOOKS = sorted(path.stem for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (SITE / "index.html").is_file(),
        reason=f"the site is not built ({SITE}/index.html): `make test-site` builds and tests it",
    ),
]

# After the load: MathJax has typeset, every image has decoded (lazy ones included), then
# what a reader would see is collected.
_INSPECT = """async () => {
  if (window.MathJax && MathJax.startup) { await MathJax.startup.promise; }
  await Promise.all([...document.images].map((image) => {
    image.loading = "eager";
    return image.decode().catch(() => null);
  }));
  await document.fonts.ready;
  const code = "pre, code, script, style, textarea, mjx-container, .highlight";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const text = [];
  while (walker.nextNode()) {
    if (!walker.currentNode.parentElement.closest(code)) text.push(walker.currentNode.data);
  }
  const math = [...document.querySelectorAll("span.math, div.math")];
  return {
    text: document.title + " " + text.join(" "),
    broken_images: [...document.images]
      .filter((image) => !(image.complete && image.naturalWidth > 0))
      .map((image) => image.currentSrc || image.src),
    output_images: document.querySelectorAll(".cell_output img").length,
    math: math.length,
    unrendered_math: math.filter((node) => !node.querySelector("mjx-container"))
      .map((node) => node.textContent.slice(0, 80)),
    links: [...document.querySelectorAll("a[href]")].map((a) => a.href),
    hints: [...document.querySelectorAll("details")].map((d) => ({
      summary: (d.querySelector("summary") || {}).textContent || "", open: d.open,
    })),
    chapters: [...document.querySelectorAll("nav.bd-links a.reference.internal")]
      .map((a) => a.getAttribute("href")),
  };
}"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *arguments):
        pass


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def _chromium():
    named = os.environ.get("CHROMIUM")
    found = [named] if named else []
    found += [shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")]
    found = [path for path in found if path]
    assert found, "no Chromium: `make browser` installs Debian's, or set CHROMIUM=/path/to/it"
    return found[0]


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: `make setup` installs the `book` extra")
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        chromium = playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _new_page(browser, outside):
    """A fresh tab that fetches from 127.0.0.1 only; what else it asks for goes to `outside`."""
    page = browser.new_page()

    def route(route):
        if urllib.parse.urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    return page


def _visit(browser, url):
    """Opens `url` in a fresh tab; returns what _INSPECT saw and what went wrong."""
    errors, outside = [], []
    page = _new_page(browser, outside)
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: errors.append(f"failed: {request.url}"))
    page.on(
        "response",
        lambda response: (
            response.status >= 400 and errors.append(f"HTTP {response.status}: {response.url}")
        ),
    )
    try:
        page.goto(url, wait_until="networkidle")
        seen = page.evaluate(_INSPECT)
        page.wait_for_load_state("networkidle")
    finally:
        page.close()
    seen.update(errors=errors, outside=outside)
    return seen


@pytest.fixture(scope="module")
def pages(server, browser):
    names = sorted(path.name for path in SITE.glob("*.html"))
    return {name: _visit(browser, server + name) for name in names}


def test_every_chapter_is_a_page():
    assert NOTEBOOKS, "no notebooks in notebooks/"
    missing = [name for name in NOTEBOOKS if not (SITE / f"{name}.html").is_file()]
    assert missing == []


def test_every_page_loads_without_errors_and_from_the_site_alone(pages):
    assert {"index.html", "search.html", "genindex.html"} <= set(pages)
    problems = {
        name: {key: seen[key] for key in ("errors", "outside", "broken_images") if seen[key]}
        for name, seen in pages.items()
    }
    assert {name: found for name, found in problems.items() if found} == {}


def test_the_math_is_rendered(pages):
    raw = re.compile(r"\$[^$\s][^$]*\$|\\\(|\\\[")
    problems = {
        name: {"unrendered": seen["unrendered_math"], "raw": raw.findall(seen["text"])[:3]}
        for name, seen in pages.items()
        if seen["unrendered_math"] or raw.search(seen["text"])
    }
    assert problems == {}
    # The notebooks' LaTeX ($y = F(x) + x$ in 02's title) is typeset by MathJax, not left out.
    assert pages["02_residual_connections.html"]["math"] > 0


def test_the_chapters_are_listed_in_course_order(pages):
    listed = [href.split("#")[0].removesuffix(".html") for href in pages["index.html"]["chapters"]]
    chapters = [name for name in listed if name in NOTEBOOKS]
    assert chapters == NOTEBOOKS


def test_every_chapter_opens_in_colab_shows_figures_and_folds_its_hints(pages):
    for name in NOTEBOOKS:
        seen = pages[f"{name}.html"]
        assert colab_url(f"{name}.ipynb") in seen["links"], name
        hints = [hint for hint in seen["hints"] if hint["summary"].strip() == "Hint"]
        assert hints, f"{name}: no folded hint"
        assert not any(hint["open"] for hint in seen["hints"]), f"{name}: a <details> is open"


def test_every_figure_of_the_executed_notebooks_is_on_its_page(pages):
    # The executed copies the site was built from are in its _sources/; their images (the
    # plots) are on the pages, loaded (test_every_page_loads_...).
    counts = {}
    for name in NOTEBOOKS:
        notebook = json.loads((SITE / "_sources" / f"{name}.ipynb").read_text(encoding="utf-8"))
        outputs = [o for c in notebook["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
        figures = sum(any(k.startswith("image/") for k in o.get("data", {})) for o in outputs)
        counts[name] = (figures, pages[f"{name}.html"]["output_images"])
    assert {name: (a, b) for name, (a, b) in counts.items() if a != b} == {}
    assert sum(figures for figures, _ in counts.values()) > 0, "no figure at all"


def test_the_search_finds_a_word(server, browser):
    outside = []
    page = _new_page(browser, outside)
    try:
        page.goto(server + "search.html?q=residual", wait_until="networkidle")
        page.wait_for_selector("#search-results ul.search li", timeout=30_000)
        found = page.eval_on_selector_all(
            "#search-results ul.search li a", "(links) => links.map((a) => a.href)"
        )
    finally:
        page.close()
    assert any("02_residual_connections.html" in href for href in found), found
    assert outside == []
