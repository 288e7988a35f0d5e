"""Table files in and out of frames: CSV, TSV, Parquet or Excel, chosen by the extension.

``claynb enrich FILE`` and ``claynb search -o FILE`` read and write what an analyst has
at hand: a CRM export as CSV, a warehouse extract as Parquet, a workbook. The format is
the file's extension, never a guess from its content, so the same command always does the
same thing. Text files are read as text, every cell as it is written (a blank is an empty
string, ``00123`` stays ``00123``), so the enriched file carries the input columns
unchanged. Parquet needs pyarrow and Excel needs openpyxl (``pip install claynb[files]``);
without them the error says so.
"""

from __future__ import annotations

import enum
import json
import os
from pathlib import Path

import pandas as pd


class TableFormat(enum.StrEnum):
    """The file formats claynb reads and writes, by extension."""

    CSV = "csv"
    TSV = "tsv"
    PARQUET = "parquet"
    EXCEL = "excel"


#: Extension (lower case, with the dot) -> format.
EXTENSIONS: dict[str, TableFormat] = {
    ".csv": TableFormat.CSV,
    ".tsv": TableFormat.TSV,
    ".parquet": TableFormat.PARQUET,
    ".pq": TableFormat.PARQUET,
    ".xlsx": TableFormat.EXCEL,
}
#: The package each format needs beyond pandas, and the extra that installs it.
NEEDS = {TableFormat.PARQUET: "pyarrow", TableFormat.EXCEL: "openpyxl"}
#: What goes between the input's name and its extension in the default output's name.
ENRICHED_SUFFIX = ".enriched"


class TableFileError(ValueError):
    """A table file that cannot be read or written as asked: one line that says why."""


def format_of(path: Path) -> TableFormat:
    """The format a path's extension names; a TableFileError listing the known ones."""
    try:
        return EXTENSIONS[path.suffix.lower()]
    except KeyError:
        known = ", ".join(EXTENSIONS)
        raise TableFileError(
            f"{path}: cannot tell the format from {path.suffix or 'no extension'!r}; "
            f"use one of {known}"
        ) from None


def check_writable(path: Path) -> TableFormat:
    """The format ``path`` will be written in, once it is known that it can be: its
    extension, the package the format needs, and a place to write it (the nearest existing
    folder on its way is a writable folder). Checked before any credit is spent on what
    would go into it, so an answer paid for is never lost to a typo in ``-o``."""
    fmt = format_of(path)
    _require(fmt)
    _check_place(path)
    return fmt


def _check_place(path: Path) -> None:
    if path.is_dir():
        raise TableFileError(f"cannot write {path}: it is a folder; name a file")
    folder = path.parent
    while not folder.exists():  # the folders missing on the way are made when writing
        folder = folder.parent
    if not folder.is_dir():
        raise TableFileError(f"cannot write {path}: {folder} is a file, not a folder")
    target = path if path.exists() else folder
    if not os.access(target, os.W_OK):
        raise TableFileError(f"cannot write {path}: {target} is not writable")


def _require(fmt: TableFormat) -> None:
    package = NEEDS.get(fmt)
    if package is None:
        return
    try:
        __import__(package)
    except ImportError:
        raise TableFileError(
            f"{fmt.value} files need {package}: pip install 'claynb[files]'"
        ) from None


def read_frame(path: Path) -> pd.DataFrame:
    """The table in ``path``; text formats as text (blanks are empty strings)."""
    fmt = format_of(path)
    if not path.is_file():
        raise TableFileError(f"no such file: {path}")
    _require(fmt)
    try:
        if fmt is TableFormat.CSV or fmt is TableFormat.TSV:
            sep = "\t" if fmt is TableFormat.TSV else ","
            return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
        if fmt is TableFormat.PARQUET:
            return pd.read_parquet(path)
        return pd.read_excel(path, sheet_name=0)
    except (OSError, ValueError, ImportError) as exc:
        raise TableFileError(f"cannot read {path} as {fmt.value}: {_first_line(exc)}") from exc


def write_frame(df: pd.DataFrame, path: Path) -> Path:
    """Write ``df`` to ``path`` in the format its extension names, without the index."""
    fmt = check_writable(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt is TableFormat.PARQUET:
            df.to_parquet(path, index=False)
        elif fmt is TableFormat.EXCEL:
            nested_as_json(df).to_excel(path, index=False)
        else:
            sep = "\t" if fmt is TableFormat.TSV else ","
            nested_as_json(df).to_csv(path, sep=sep, index=False)
    except (OSError, ValueError, ImportError) as exc:
        raise TableFileError(f"cannot write {path} as {fmt.value}: {_first_line(exc)}") from exc
    return path


def nested_as_json(df: pd.DataFrame) -> pd.DataFrame:
    """Lists and objects in cells (a person's ``matched_experiences``) as JSON text, which
    a spreadsheet shows and a program reads back; Parquet keeps them nested instead."""
    nested = [
        column
        for column in df.columns
        if df[column].dtype == object and df[column].map(_is_nested).any()
    ]
    if not nested:
        return df
    return df.assign(**{str(c): df[c].map(_json_cell) for c in nested})


def _is_nested(value: object) -> bool:
    return isinstance(value, list | dict | tuple)


def _json_cell(value: object) -> object:
    return json.dumps(value, default=str, ensure_ascii=False) if _is_nested(value) else value


def enriched_path(source: Path) -> Path:
    """Where ``claynb enrich`` writes by default: beside the input, ``leads.enriched.csv``."""
    return source.with_name(f"{source.stem}{ENRICHED_SUFFIX}{source.suffix}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
