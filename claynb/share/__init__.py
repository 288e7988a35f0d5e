"""Sharing executed notebooks: plots and tables kept, secrets never.

``claynb share NOTEBOOK`` and ``claynb demo`` both go through :func:`share_notebook`:
execute on this interpreter's kernel (``_execute``), scrub every secret (``_scrub``),
export HTML and .ipynb with a footer (``_export``).
"""

from claynb.share._pipeline import Shared, share_notebook
from claynb.share._scrub import LeakError, scrub_notebook, scrub_text

__all__ = ["LeakError", "Shared", "scrub_notebook", "scrub_text", "share_notebook"]
