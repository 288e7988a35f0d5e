"""Sharing executed notebooks: plots and tables kept, secrets never.

``claynb share NOTEBOOK`` and ``claynb demo`` both go through :func:`share_notebook`:
execute on this interpreter's kernel (``_execute``), scrub what can be cut out safely
(``_scrub``), scan what would be written for anything else (``_scan``; a finding stops
the export unless ``_allow`` lets it through), export HTML and .ipynb with a footer
(``_export``).
"""

from claynb.share._allow import Allowlist
from claynb.share._pipeline import Shared, share_notebook
from claynb.share._scan import Finding, LeakError
from claynb.share._scrub import scrub_notebook, scrub_text

__all__ = [
    "Allowlist",
    "Finding",
    "LeakError",
    "Shared",
    "scrub_notebook",
    "scrub_text",
    "share_notebook",
]
