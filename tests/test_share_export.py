"""``claynb share`` end to end on small notebooks built here: real kernel, real nbconvert.

The notebooks read a fake key from the environment, register a secret inside the kernel
(as an emulator does with its generated key), print both, put them in a DataFrame and a
widget, and draw a plot. The shared files must keep the plot, the table and the widget
state, carry the footer, and contain neither secret in any form.
"""

from __future__ import annotations

import html
import json
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import psutil
import pytest
from _share_helpers import once_per_session

from claynb import __version__
from claynb.cli import main

FAKE_KEY = "clay_fake_0d1e2a3d4b5e6e7f"
FAKE_TOKEN = "tok_fake_99aa88bb77cc"
KERNEL_SECRET = "kernel-only-secret-5c4b3a2918"
PARAM_SECRET = "param-secret-a1b2c3d4e5f6"

CELLS = [
    ("markdown", "# A report\nIt uses a key."),
    ("parameters", "rows = 3\ntitle = 'default title'"),
    (
        "code",
        "import os\nkey = os.environ['CLAY_API_KEY']\nprint('using', key)\n"
        "print('GET https://api.test/v0/me?token=' + os.environ['SERVICE_TOKEN'])",
    ),
    (
        "code",
        "from claynb._secrets import register_secret\n"
        f"register_secret({KERNEL_SECRET!r})\nprint('kernel secret', {KERNEL_SECRET!r})",
    ),
    ("code", "import pandas as pd\npd.DataFrame({'n': range(rows), 'key': [key] * rows})"),
    (
        "code",
        "%matplotlib inline\nimport matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots()\nax.plot([0, 1, 4, 9])\nax.set_title(title)\nplt.show()",
    ),
    ("code", "import ipywidgets as w\nw.IntSlider(value=rows, description='rows')"),
]


def build_notebook(path: Path, extra: list[tuple[str, str]] | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for kind, source in CELLS + (extra or []):
        cell = (
            nbformat.v4.new_markdown_cell(source)
            if kind == "markdown"
            else nbformat.v4.new_code_cell(source)
        )
        if kind == "parameters":
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nbformat.write(nb, str(path))
    return path


@dataclass
class Run:
    rc: int
    out: str
    err: str
    html: str
    ipynb: str
    out_dir: Path


def share(
    tmp: Path,
    name: str,
    argv: list[str],
    extra: list[tuple[str, str]] | None = None,
    capsys: pytest.CaptureFixture[str] | None = None,
) -> Run:
    source = build_notebook(tmp / f"{name}.ipynb", extra)
    out_dir = tmp / "reports"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLAY_API_KEY", FAKE_KEY)
        mp.setenv("SERVICE_TOKEN", FAKE_TOKEN)
        mp.delenv("CLAYNB_ALLOW_SPEND", raising=False)
        rc = main(["share", str(source), "-o", str(out_dir), "-q", *argv])
    out, err = capsys.readouterr() if capsys else ("", "")
    return load(out_dir, name, rc, out, err)


def load(out_dir: Path, name: str, rc: int, out: str = "", err: str = "") -> Run:
    html_path, ipynb_path = out_dir / f"{name}.html", out_dir / f"{name}.ipynb"
    return Run(rc, out, err, html_path.read_text(), ipynb_path.read_text(), out_dir)


def _share_report(tmp: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLAYNB_HOME", str(tmp / "home"))
        run = share(
            tmp,
            "report",
            ["-p", "rows=4", "-p", "title=from the command line", "-p", f"api_key={PARAM_SECRET}"],
        )
    (tmp / "rc").write_text(str(run.rc))


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Run:
    tmp = once_per_session(tmp_path_factory, "share-export", _share_report)
    return load(tmp / "reports", "report", int((tmp / "rc").read_text()))


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (FAKE_KEY, FAKE_TOKEN, KERNEL_SECRET, PARAM_SECRET):
            assert secret not in text
            assert html.escape(secret) not in text


def test_share_succeeds_and_finds_no_secret_anywhere(shared: Run) -> None:
    assert shared.rc == 0
    assert_no_secret(shared.html, shared.ipynb)
    assert shared.ipynb.count("[REDACTED]") >= 4


def test_secrets_registered_inside_the_kernel_are_scrubbed(shared: Run) -> None:
    nb = nbformat.reads(shared.ipynb, as_version=4)
    printed = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "kernel secret [REDACTED]" in printed
    assert "token=[REDACTED]" in printed


def test_parameters_reach_the_notebook(shared: Run) -> None:
    nb = nbformat.reads(shared.ipynb, as_version=4)
    assert nb.metadata["papermill"]["parameters"] == {
        "rows": 4,
        "title": "from the command line",
        "api_key": "[REDACTED]",
    }
    table = next(
        o["data"]["text/html"]
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "text/html" in o.get("data", {})
    )
    assert "<th>3</th>" in table and "<th>4</th>" not in table  # rows 0..3


def test_html_stands_alone_and_the_ipynb_keeps_the_widget_state(shared: Run) -> None:
    assert re.search(r'<img [^>]*src="data:image/png;base64,', shared.html)
    assert 'class="dataframe"' in shared.html
    # Offline, a widget manager cannot load: no CDN script, and the bare slider says so.
    assert not re.search(r"<script[^>]+src=", shared.html)
    assert "open the notebook in JupyterLab to use it" in shared.html
    nb = nbformat.reads(shared.ipynb, as_version=4)
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert any(m["state"].get("value") == 4 for m in state.values())


def test_both_files_carry_the_footer(shared: Run) -> None:
    nb = nbformat.reads(shared.ipynb, as_version=4)
    footer = nb.cells[-1]
    assert footer.metadata["tags"] == ["claynb-footer"]
    assert f"claynb {__version__}" in footer.source and "Executed" in footer.source
    assert nb.metadata["claynb"]["version"] == __version__
    assert f"claynb {__version__}" in shared.html


def test_a_failing_notebook_is_still_written_and_its_error_scrubbed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = share(
        tmp_path,
        "broken",
        [],
        extra=[
            ("code", "raise RuntimeError('rejected key ' + key)"),
            ("code", "print('never runs')"),
        ],
        capsys=capsys,
    )
    assert run.rc == 1
    assert "RuntimeError" in run.err and "stopped" in run.err
    assert_no_secret(run.html, run.ipynb, run.out, run.err)
    nb = nbformat.reads(run.ipynb, as_version=4)
    assert nb.cells[-2].outputs == []  # the cell after the failure did not run
    assert any(o.output_type == "error" for o in nb.cells[-3].outputs)
    assert run.out.strip() == str((run.out_dir / "broken.html").resolve())


def test_no_execute_exports_existing_outputs_scrubbed(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("call()")
    cell.outputs = [
        nbformat.v4.new_output(
            "stream", name="stdout", text="sent Authorization: Bearer live_abcdef123456\n"
        )
    ]
    nb.cells = [cell]
    source = tmp_path / "old.ipynb"
    nbformat.write(nb, str(source))
    rc = main(["share", str(source), "-o", str(tmp_path / "out"), "--no-execute", "-q"])
    assert rc == 0
    text = (tmp_path / "out" / "old.ipynb").read_text()
    assert "live_abcdef123456" not in text and "[REDACTED]" in text
    assert "not re-executed" in "".join(json.loads(text)["cells"][-1]["source"])


def test_refuses_to_overwrite_the_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = build_notebook(tmp_path / "nb.ipynb")
    before = source.read_text()
    assert main(["share", str(source), "-o", str(tmp_path), "--no-execute"]) == 2
    assert "overwrite" in capsys.readouterr().err
    assert source.read_text() == before


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["share", str(tmp_path / "missing.ipynb")]) == 2
    assert "no such notebook" in capsys.readouterr().err
    source = build_notebook(tmp_path / "nb.ipynb")
    assert main(["share", str(source), "-p", "oops"]) == 2
    assert "name=value" in capsys.readouterr().err
    nb = nbformat.read(str(source), as_version=4)
    nb.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    nbformat.write(nb, str(source))
    assert main(["share", str(source), "-o", str(tmp_path / "out")]) == 2
    assert "runs R" in capsys.readouterr().err


def test_a_kernel_that_dies_publishes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its secrets can no longer be asked for, so nothing is written (fail closed)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import os\nprint('about to die')\nos._exit(3)"),
        nbformat.v4.new_code_cell("print('never')"),
    ]
    source = tmp_path / "dies.ipynb"
    nbformat.write(nb, str(source))
    rc = main(["share", str(source), "-o", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "kernel died" in err and "nothing was written" in err
    assert not (tmp_path / "out" / "dies.html").exists()
    assert not (tmp_path / "out" / "dies.ipynb").exists()


def test_sigterm_stops_the_run_cleanly(tmp_path: Path) -> None:
    """SIGTERM mid-notebook: a one-line reason, no files, and no kernel left running."""
    marker = tmp_path / "kernel.pid"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            f"import os, time\nopen({str(marker)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)"
        )
    ]
    source = tmp_path / "slow.ipynb"
    nbformat.write(nb, str(source))
    proc = subprocess.Popen(
        [sys.executable, "-m", "claynb", "share", str(source), "-o", str(tmp_path / "out"), "-q"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.1)
    kernel_pid = int(marker.read_text())
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "interrupted" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    while time.monotonic() < deadline and psutil.pid_exists(kernel_pid):
        time.sleep(0.1)
    assert not psutil.pid_exists(kernel_pid), "the kernel outlived claynb share"
