"""A reviewed false positive goes through with --allow KIND or an allowlist file; nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from claynb.cli import main
from claynb.share._allow import Allowlist, allow_kinds, parse_allowlist
from claynb.share._scan import KNOWN_SECRET, Finding

# Look like GitHub tokens to the scanner; the notebook's author says they are test fixtures.
# (Random-looking: the process's registry may hold test secrets such as "0123456789abcdef",
# and a long enough run shared with one would be scrubbed as a fragment of it.)
FIXTURE = "ghp_" + "Vq7mZr2KxT9bWc4NpL6sHd8JfY3gRa5UeQ1z"
OTHER = "ghp_" + "Nw4tBx8PzC2kGv6MhS9rJd3LqF7yTe5AoU1i"


def _notebook(tmp_path: Path, *values: str) -> Path:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("fixtures()")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="".join(f"{v}\n" for v in values))
    ]
    nb.cells = [cell]
    path = tmp_path / "fixtures.ipynb"
    nbformat.write(nb, str(path))
    return path


def _share(source: Path, *argv: str) -> int:
    return main(
        ["share", str(source), "-o", str(source.parent / "out"), "-q", "--no-execute", *argv]
    )


def _fingerprints(report: str) -> list[str]:
    return re.findall(r"\[github-token ([0-9a-f]{12})\]", report)


def test_a_finding_stops_until_its_kind_is_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _notebook(tmp_path, FIXTURE)
    assert _share(source) == 2
    assert "cell 1, output 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

    assert _share(source, "--allow", "github-token") == 0
    err = capsys.readouterr().err
    assert "let through as reviewed: cell 1, output 1" in err and FIXTURE not in err
    assert FIXTURE in (tmp_path / "out" / "fixtures.ipynb").read_text()


def test_an_allowlist_fingerprint_lets_one_value_through_and_no_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _notebook(tmp_path, FIXTURE)
    assert _share(source) == 2
    (fingerprint,) = _fingerprints(capsys.readouterr().err)
    allowlist = tmp_path / "share-allow.txt"
    allowlist.write_text(f"# reviewed: a test fixture\ngithub-token {fingerprint}  # fixture\n")
    assert _share(source, "--allowlist", str(allowlist)) == 0
    capsys.readouterr()

    both = _notebook(tmp_path, FIXTURE, OTHER)
    assert _share(both, "--allowlist", str(allowlist)) == 2
    err = capsys.readouterr().err
    assert len(_fingerprints(err)) == 1 and fingerprint not in err


def test_a_known_secret_is_never_let_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _share(_notebook(tmp_path, "x"), "--allow", KNOWN_SECRET) == 2
    assert "cannot be allowed" in capsys.readouterr().err
    finding = Finding("cell 1", KNOWN_SECRET, "known", "0123456789ab")
    assert not Allowlist(frozenset({KNOWN_SECRET}), frozenset()).permits(finding)


def test_unknown_kinds_and_malformed_lines_are_refused_with_their_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="unknown kind 'github'.*github-token"):
        allow_kinds(["github"])
    with pytest.raises(ValueError, match=r"allow\.txt, line 3: expected KIND"):
        parse_allowlist("# ok\nsecret-keyword\ngithub-token not-a-fingerprint\n", "allow.txt")
    source = _notebook(tmp_path, "x")
    assert _share(source, "--allowlist", str(tmp_path / "missing.txt")) == 2
    assert "cannot read the allowlist" in capsys.readouterr().err


def test_an_allowlist_file_reads_kinds_and_fingerprints() -> None:
    allowed = parse_allowlist(
        "hex-high-entropy-string\n\n  github-token 0123456789ab # reviewed\n# comment only\n"
    )
    assert allowed.kinds == {"hex-high-entropy-string"}
    assert allowed.values == {("github-token", "0123456789ab")}
    assert allowed.permits(Finding("x", "hex-high-entropy-string", "hex", "ffffffffffff"))
    assert allowed.permits(Finding("x", "github-token", "gh", "0123456789ab"))
    assert not allowed.permits(Finding("x", "github-token", "gh", "ffffffffffff"))
