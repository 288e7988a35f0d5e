"""Writing a scrubbed, executed notebook as HTML and .ipynb that anyone can open.

The HTML is nbconvert's ``lab`` template made to stand alone: tables stay HTML tables
(scrolling inside their cell when wide), plots stay embedded PNGs (no side files to lose),
and nothing is fetched from a CDN. A page read offline cannot load the Jupyter widget
manager, so no widget is left to render as an empty box: an output that carries a static
picture beside its widget (claynb's dashboards do) shows the picture, and a bare control
says it needs JupyterLab. No MathJax either, so a price such as "$1,234" never turns into
a formula. The .ipynb keeps the widgets and their saved state.

Both files end with the same footer (the claynb version, when the notebook ran and how
long it took) so a reader knows what they are looking at, and files are written under a
temporary name and renamed, so a crash never leaves half a report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from claynb._version import __version__

FOOTER_TAG = "claynb-footer"


@dataclass(frozen=True)
class Footer:
    """What the footer says about a run."""

    ran_at: datetime
    duration_s: float
    version: str = __version__
    executed: bool = True

    def markdown(self) -> str:
        when = self.ran_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
        what = (
            f"Executed {when} in {self.duration_s:.1f} s"
            if self.executed
            else f"Exported {when} (not re-executed)"
        )
        return (
            f"---\n<small>{what} · claynb {self.version} · "
            "secrets scrubbed by `claynb share`</small>"
        )

    def metadata(self) -> dict[str, object]:
        return {
            "version": self.version,
            "ran_at": self.ran_at.isoformat(),
            "duration_s": round(self.duration_s, 3),
            "executed": self.executed,
            "scrubbed": True,
        }


def add_footer(nb: NotebookNode, footer: Footer) -> NotebookNode:
    """A copy of ``nb`` ending with the footer cell (an earlier footer is replaced)."""
    out = nbformat.from_dict(nb)
    out.cells = [c for c in out.cells if FOOTER_TAG not in c.metadata.get("tags", [])]
    cell = nbformat.v4.new_markdown_cell(footer.markdown())
    cell.metadata["tags"] = [FOOTER_TAG]
    out.cells.append(cell)
    out.metadata["claynb"] = footer.metadata()
    return out


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
BARE_WIDGET_NOTE = (
    '<p class="claynb-widget-note"><em>A live widget (a control or a progress bar): open '
    "the notebook in JupyterLab to use it.</em></p>"
)
# The lab template without its CDN scripts (require.js, MathJax, Mermaid, the widget
# manager), and wide outputs scrolling inside their cell instead of off the page.
OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}
<style>
.jp-OutputArea-output { overflow-x: auto; max-width: 100%; }
.jp-OutputArea-output table td, .jp-OutputArea-output table th { white-space: normal; }
.jp-OutputArea-output img { max-width: 100%; height: auto; }
</style>
{%- endblock extra_css -%}
"""


def static_outputs(nb: NotebookNode) -> NotebookNode:
    """A copy of ``nb`` whose outputs need no widget manager: a widget view is dropped where
    the output has a static representation beside it, and replaced by a note where not."""
    out = nbformat.from_dict(nb)
    out.metadata.pop("widgets", None)
    for cell in out.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW not in data:
                continue
            del data[WIDGET_VIEW]
            if not ({"text/html", "image/png", "image/svg+xml"} & set(data)):
                data["text/html"] = BARE_WIDGET_NOTE
    return out


def to_html(nb: NotebookNode, title: str) -> str:
    """The notebook as one self-contained HTML page (images embedded, nothing fetched)."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        template_file="claynb_offline.html.j2",
        extra_loaders=[DictLoader({"claynb_offline.html.j2": OFFLINE_TEMPLATE})],
        embed_images=True,
    )
    body, _ = exporter.from_notebook_node(
        static_outputs(nb), resources={"metadata": {"name": title}}
    )
    return str(body)


def template_lines(title: str) -> frozenset[str]:
    """The lines nbconvert writes for any notebook (CSS, scripts): none of them is content."""
    return frozenset(to_html(nbformat.v4.new_notebook(), title).splitlines())


def to_ipynb(nb: NotebookNode) -> str:
    nbformat.validate(nb)
    return str(nbformat.writes(nb))


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
