"""Writing a scrubbed, executed notebook as HTML and .ipynb that anyone can open.

The HTML is nbconvert's ``lab`` template: tables stay HTML tables, plots stay embedded
PNGs (no side files to lose), and the widget state the executor saved goes along, so
widgets render where the page can load the Jupyter widget manager from its CDN; offline,
the static outputs printed beside them still carry the story.

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


def to_html(nb: NotebookNode, title: str) -> str:
    """The notebook as one self-contained HTML page (images embedded)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", embed_images=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
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
