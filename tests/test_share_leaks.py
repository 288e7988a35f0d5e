"""The leak corpus: every shape in which a credential has reached a shared notebook.

Each case is one way a secret gets into a notebook. ``claynb share`` must either write
files in which the secret appears in no form (raw, URL-, HTML-, JSON- or base64-encoded,
or as a fragment of 12 characters and more), or write nothing at all and say where the
possible secret is and of what kind, without the value.

The cases that can be scrubbed in place run as cells of one notebook, executed for real
on the kernel with the secrets in its environment (once per session: a kernel is the slow
part). Each is checked on its own, and each must have produced the ``[REDACTED]`` it is
about, so no case passes because its cell printed nothing. The cases that must stop the
export each get a notebook of their own, mostly shared with ``--no-execute`` (their
outputs built here), one executed (a key in a cell that never ran).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import nbformat
import pytest
from _share_helpers import leaked_forms, once_per_session, python_notebook

from claynb.cli import main


def token(seed: str, n: int = 32, prefix: str = "") -> str:
    """A random-looking, reproducible credential (letters and digits only)."""
    digest = base64.b32encode(hashlib.sha256(seed.encode()).digest()).decode().lower()
    return prefix + (digest * 2)[: n - len(prefix)]


@dataclass(frozen=True)
class Case:
    """A leak shape: the cell that makes it, the environment it needs, the secrets at stake."""

    name: str
    code: str
    secrets: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    kind: str = "code"


LONG_KEY = token("long-key", 64, "clay_live_")
SERVICE_TOKEN = token("service-token", 70, "svc_")
STRIPE_SECRET = token("stripe", 40, "rk_live_")
GITHUB_PAT = token("gh-pat", 40, "ghp_")
OPENAI_APIKEY = token("openai", 48, "sk-proj-")
DB_PASSWORD_IN_URL = token("db-url-pw", 18)
REDIS_PW = token("redis-pw", 20)
PG_PW = token("pg-pw", 22)
BASIC_PW = token("basic-pw", 16)
AUTH_TOKEN = token("auth-token", 40)
CURL_TOKEN = token("curl-bearer", 44)
DIGEST_RESPONSE = hashlib.md5(b"digest").hexdigest()
SIGV4 = hashlib.sha256(b"sigv4").hexdigest()
AMZ_SIGNATURE = hashlib.sha256(b"presigned").hexdigest()
AMZ_SESSION = token("amz-session", 60)
SAS_SIG = base64.b64encode(hashlib.sha256(b"sas").digest()).decode()
ACCESS_TOKEN = token("oauth-access", 36)
GHS_TOKEN = token("ghs-user", 40, "ghs_")
PARAM_APIKEY = token("param-apikey", 30, "pk_")
SHORT_PASSWORD = "h7Qz2k"
KERNEL_SECRET = token("kernel-registered", 28, "krn_")
ANSI_SECRET = token("ansi-split", 30, "ans_")
WIDGET_SECRET = token("widget", 30, "wdg_")
JSON_SECRET = token("json-mime", 30, "jsn_")
SVG_SECRET = token("svg", 30, "svg_")
B64_SECRET = token("b64", 30, "b64_")
QUOTED_SECRET = "Qx+" + token("url-quoted", 20) + "/=&"
ESCAPED_SECRET = "<&" + token("html-escaped", 20) + '">'
JSON_ESCAPED_SECRET = 'j"' + token("json-escaped", 20) + "\\é"
LOG_SECRET = token("stderr-log", 30, "log_")
MARKDOWN_SECRET = token("markdown", 30, "md_")
RAISED_SECRET = token("raised", 30, "err_")

E = "import os\nE = os.environ\n"

SCRUBBED = [
    Case(
        "dataframe-truncated",
        "import pandas as pd\npd.DataFrame({'case': ['dataframe'], 'key': [E['CLAY_API_KEY']]})",
        (LONG_KEY,),
        {"CLAY_API_KEY": LONG_KEY},
    ),
    Case(
        "series-truncated",
        "import pandas as pd\npd.Series([E['SERVICE_TOKEN']] * 2, name='series')",
        (SERVICE_TOKEN,),
        {"SERVICE_TOKEN": SERVICE_TOKEN},
    ),
    Case(
        "masked-prefix",
        "print('masked:', E['STRIPE_SECRET'][:14] + '...')",
        (STRIPE_SECRET,),
        {"STRIPE_SECRET": STRIPE_SECRET},
    ),
    Case(
        "github-pat-env",
        "print('pat', E['GITHUB_PAT'])",
        (GITHUB_PAT,),
        {"GITHUB_PAT": GITHUB_PAT},
    ),
    Case(
        "openai-apikey-env",
        "print({'client': 'openai', 'key': E['OPENAI_APIKEY']})",
        (OPENAI_APIKEY,),
        {"OPENAI_APIKEY": OPENAI_APIKEY},
    ),
    Case(
        "database-url-env",
        "print('connecting to', E['DATABASE_URL'])",
        (DB_PASSWORD_IN_URL,),
        {"DATABASE_URL": f"postgresql://app:{DB_PASSWORD_IN_URL}@db.internal.test/app"},
    ),
    Case(
        "redis-url-password",
        "print('redis://:' + E['CORPUS_REDIS'] + '@cache.internal.test:6379/0')",
        (REDIS_PW,),
        {"CORPUS_REDIS": REDIS_PW},
    ),
    Case(
        "postgres-url-in-html-link",
        "from IPython.display import HTML\n"
        "url = 'postgresql://report:' + E['CORPUS_PG'] + '@db.internal.test/warehouse'\n"
        "HTML(f'<a href=\"{url}\">warehouse</a> {url}')",
        (PG_PW,),
        {"CORPUS_PG": PG_PW},
    ),
    Case(
        "basic-auth-header",
        "import base64\ncred = base64.b64encode(('ada:' + E['CORPUS_BASIC']).encode()).decode()\n"
        "print({'Authorization': 'Basic ' + cred, 'Accept': 'application/json'})",
        (BASIC_PW,),
        {"CORPUS_BASIC": BASIC_PW},
    ),
    Case(
        "token-auth-header",
        "print('Authorization: Token ' + E['CORPUS_AUTH'])",
        (AUTH_TOKEN,),
        {"CORPUS_AUTH": AUTH_TOKEN},
    ),
    Case(
        "bearer-in-curl-line",
        "print('curl -H \"Authorization: Bearer ' + E['CORPUS_CURL'] + '\" https://api.test/v1')",
        (CURL_TOKEN,),
        {"CORPUS_CURL": CURL_TOKEN},
    ),
    Case(
        "digest-auth-header",
        'print(\'Authorization: Digest username="ada", realm="api", nonce="n1", \'\n'
        "      'response=\"' + E['CORPUS_DIGEST'] + '\"')",
        (DIGEST_RESPONSE,),
        {"CORPUS_DIGEST": DIGEST_RESPONSE},
    ),
    Case(
        "aws-sigv4-header",
        "print({'authorization': 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/'\n"
        "       's3/aws4_request, SignedHeaders=host, Signature=' + E['CORPUS_SIGV4']})",
        (SIGV4,),
        {"CORPUS_SIGV4": SIGV4},
    ),
    Case(
        "s3-presigned-url",
        "import html\nfrom IPython.display import HTML, display\n"
        "url = ('https://bucket.s3.amazonaws.com/report.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256'\n"
        "       '&X-Amz-Signature=' + E['CORPUS_AMZSIG'] + '&X-Amz-Security-Token=' + "
        "E['CORPUS_AMZTOK'])\n"
        "print(url)\ndisplay(HTML(f'<a href=\"{html.escape(url)}\">download</a>'))",
        (AMZ_SIGNATURE, AMZ_SESSION),
        {"CORPUS_AMZSIG": AMZ_SIGNATURE, "CORPUS_AMZTOK": AMZ_SESSION},
    ),
    Case(
        "azure-sas-sig",
        "from urllib.parse import quote\n"
        "print('https://acct.blob.core.windows.net/c/b.csv?sv=2022-11-02&sr=b&sig='"
        " + quote(E['CORPUS_SAS'], safe=''))",
        (SAS_SIG,),
        {"CORPUS_SAS": SAS_SIG},
    ),
    Case(
        "oauth-token-in-fragment",
        "print('https://app.test/callback#access_token=' + E['CORPUS_OAUTH'] + '&token_type=bearer')",
        (ACCESS_TOKEN,),
        {"CORPUS_OAUTH": ACCESS_TOKEN},
    ),
    Case(
        "token-as-url-user",
        "print('git clone https://' + E['CORPUS_GHS'] + '@github.test/org/repo.git')",
        (GHS_TOKEN,),
        {"CORPUS_GHS": GHS_TOKEN},
    ),
    Case("apikey-parameter", "print('parameter', apikey)", (PARAM_APIKEY,)),
    Case(
        "short-secret-env",
        "print('password=' + E['SHORT_PASSWORD'] + ';')",
        (SHORT_PASSWORD,),
        {"SHORT_PASSWORD": SHORT_PASSWORD},
    ),
    Case(
        "registered-in-kernel",
        "from claynb._secrets import register_secret\nregister_secret(E['CORPUS_KERNEL'])\n"
        "print('kernel secret', E['CORPUS_KERNEL'])",
        (KERNEL_SECRET,),
        {"CORPUS_KERNEL": KERNEL_SECRET},
    ),
    Case(
        "ansi-split",
        "s = E['ANSI_TOKEN']\nprint('\\x1b[31m' + s[:9] + '\\x1b[1m' + s[9:] + '\\x1b[0m')",
        (ANSI_SECRET,),
        {"ANSI_TOKEN": ANSI_SECRET},
    ),
    Case(
        "widget-state",
        "import ipywidgets as w\nw.Text(value=E['WIDGET_TOKEN'], description='token')",
        (WIDGET_SECRET,),
        {"WIDGET_TOKEN": WIDGET_SECRET},
    ),
    Case(
        "json-mime-output",
        "from IPython.display import JSON\nJSON({'service': 'crm', 'token': E['JSON_TOKEN']})",
        (JSON_SECRET,),
        {"JSON_TOKEN": JSON_SECRET},
    ),
    Case(
        "svg-output",
        "from IPython.display import SVG\n"
        'SVG(\'<svg xmlns="http://www.w3.org/2000/svg" width="300" height="20">\'\n'
        "    '<text y=\"15\">' + E['SVG_TOKEN'] + '</text></svg>')",
        (SVG_SECRET,),
        {"SVG_TOKEN": SVG_SECRET},
    ),
    Case(
        "base64-printed",
        "import base64\ns = E['B64_TOKEN'].encode()\n"
        "print(base64.b64encode(s).decode())\nprint(base64.urlsafe_b64encode(b'k:' + s).decode())",
        (B64_SECRET,),
        {"B64_TOKEN": B64_SECRET},
    ),
    Case(
        "url-quoted-known",
        "from urllib.parse import quote\nprint('next=' + quote(E['QUOTED_SECRET'], safe=''))",
        (QUOTED_SECRET,),
        {"QUOTED_SECRET": QUOTED_SECRET},
    ),
    Case(
        "html-escaped-known",
        "import html\nfrom IPython.display import HTML\n"
        "HTML('<b>escaped</b> ' + html.escape(E['ESCAPED_SECRET']))",
        (ESCAPED_SECRET,),
        {"ESCAPED_SECRET": ESCAPED_SECRET},
    ),
    Case(
        "json-escaped-known",
        "import json\nprint(json.dumps({'v': E['JSON_ESCAPED_SECRET']}))",
        (JSON_ESCAPED_SECRET,),
        {"JSON_ESCAPED_SECRET": JSON_ESCAPED_SECRET},
    ),
    Case(
        "stderr-logging",
        "import logging\nlogging.getLogger('corpus').warning('retrying with %s', E['LOG_TOKEN'])",
        (LOG_SECRET,),
        {"LOG_TOKEN": LOG_SECRET},
    ),
    Case(
        "markdown-cell-known",
        f"Ask for access; our key starts `{MARKDOWN_SECRET}`.",
        (MARKDOWN_SECRET,),
        {"MARKDOWN_TOKEN": MARKDOWN_SECRET},
        kind="markdown",
    ),
    # Last: a failing cell stops the notebook (the export still happens, exit status 1).
    Case(
        "traceback-last-cell",
        "raise ValueError('the server rejected ' + E['RAISED_TOKEN'])",
        (RAISED_SECRET,),
        {"RAISED_TOKEN": RAISED_SECRET},
    ),
]


def _case_cell(case: Case) -> nbformat.NotebookNode:
    if case.kind == "markdown":
        cell = nbformat.v4.new_markdown_cell(case.code)
    else:
        cell = nbformat.v4.new_code_cell(E + case.code)
    cell.metadata["tags"] = [f"case-{case.name}"]
    return cell


def _scrubbed_notebook(path: Path) -> Path:
    nb = python_notebook()
    params = nbformat.v4.new_code_cell("apikey = ''")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(_case_cell(case) for case in SCRUBBED)]
    nbformat.write(nb, str(path))
    return path


def _share_scrubbed(tmp: Path) -> None:
    """Share the corpus with ``python -m claynb share``, as a user would from a shell.

    A process of its own, not ``main()`` here: this test process has registered every
    secret the tests before it used (``another-secret-entirely`` shares the fragment
    ``-secret-en`` with a tag here), and the scrubber rightly scrubs those too.
    """
    source = _scrubbed_notebook(tmp / "corpus.ipynb")
    env = {k: v for k, v in os.environ.items() if k != "CLAYNB_ALLOW_SPEND"}
    for case in SCRUBBED:
        env.update(case.env)
    env["CLAYNB_HOME"] = str(tmp / "home")
    argv = ["share", str(source), "-o", str(tmp / "out"), "-q", "-p", f"apikey={PARAM_APIKEY}"]
    done = subprocess.run(
        [sys.executable, "-m", "claynb", *argv], env=env, capture_output=True, text=True
    )
    (tmp / "rc").write_text(str(done.returncode))
    (tmp / "stderr").write_text(done.stderr)


@dataclass(frozen=True)
class Written:
    rc: int
    files: dict[str, str]

    def cell(self, name: str) -> nbformat.NotebookNode:
        nb = nbformat.reads(self.files["corpus.ipynb"], as_version=4)
        return next(c for c in nb.cells if f"case-{name}" in c.metadata.get("tags", []))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Written:
    tmp = once_per_session(tmp_path_factory, "share-leak-corpus", _share_scrubbed)
    if not (tmp / "out").is_dir():
        pytest.fail("nothing was written:\n" + (tmp / "stderr").read_text()[-3000:])
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted((tmp / "out").iterdir())}
    return Written(int((tmp / "rc").read_text()), files)


def test_the_corpus_notebook_ran_to_its_failing_last_cell(written: Written) -> None:
    assert written.rc == 1  # the last case raises on purpose
    assert set(written.files) == {"corpus.html", "corpus.ipynb"}


@pytest.mark.parametrize("case", SCRUBBED, ids=lambda c: c.name)
def test_a_scrubbable_secret_appears_in_no_written_file(written: Written, case: Case) -> None:
    for secret in case.secrets:
        for name, text in written.files.items():
            assert leaked_forms(secret, text) == [], f"{case.name} leaked into {name}"
    cell = written.cell(case.name)
    said = json.dumps(cell.get("outputs", [])) + cell.source
    if case.name == "widget-state":
        nb = nbformat.reads(written.files["corpus.ipynb"], as_version=4)
        said = json.dumps(nb.metadata["widgets"])
    assert "[REDACTED]" in said, f"{case.name}: nothing was scrubbed, so nothing was tested"


def test_the_scrubbed_report_keeps_its_story(written: Written) -> None:
    """Scrubbing cuts credentials, not the text around them."""
    out = {
        c: json.dumps(written.cell(c).outputs) for c in ("redis-url-password", "token-auth-header")
    }
    assert "redis://:[REDACTED]@cache.internal.test:6379/0" in out["redis-url-password"]
    assert "Authorization: Token [REDACTED]" in out["token-auth-header"]
    table = written.cell("dataframe-truncated").outputs[0]["data"]["text/html"]
    assert "<td>dataframe</td>" in table


# ---------------------------------------------------------------------------------------
# Shapes that cannot be cut out safely: nothing is written, and the report says where.


def _png_with_text(text: str) -> str:
    """A real PNG (drawn by matplotlib) carrying ``text`` in its metadata."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [1, 0])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Comment": text})
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _stream(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def _code(source: str, *outputs: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = list(outputs)
    return cell


@dataclass(frozen=True)
class Stop:
    """A shape that must stop the export: the notebook, and what the report must say."""

    name: str
    cells: list[nbformat.NotebookNode]
    secret: str
    kind: str
    where: str
    env: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, object] = field(default_factory=dict)


AWS_ID = "AKIA" + token("aws-id", 16).upper()
AWS_SECRET = token("aws-secret", 40)
GITHUB_UNKNOWN = token("gh-unknown", 40, "ghp_")
SLACK = "xoxb-" + "-".join(["123456789012", "1234567890123", token("slack", 24)])
STRIPE_LIVE = token("stripe-unrun", 32, "sk_live_")
KEYWORD_PASSWORD = "correct-horse-" + token("kw", 12)
PNG_SECRET = token("png-text", 32, "png_")
ATTACH_SECRET = token("attachment", 32, "att_")
QUOTED_URL_PW = token("quoted-url-pw", 20)
ENTITY_SECRET = token("entity", 30, "ent_")
KEY_SECRET = token("dict-key", 30, "dk_")
JWT = (
    ".".join(
        base64.urlsafe_b64encode(part.encode()).decode().rstrip("=")
        for part in ('{"alg":"HS256","typ":"JWT"}', '{"sub":"' + token("jwt-sub", 10) + '"}')
    )
    + "."
    + token("jwt-sig", 43)
)
PEM_BODY = base64.b64encode(hashlib.sha512(b"pem").digest() * 3).decode()
SLACK_HOOK = (
    "https://hooks.slack.com/services/T"
    + token("t", 8).upper()
    + "/B"
    + token("b", 8).upper()
    + "/"
    + token("hook", 24)
)


def _attachment_cell() -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell("![chart](attachment:chart.png)")
    cell.attachments = {"chart.png": {"image/png": _png_with_text(ATTACH_SECRET)}}
    return cell


def _entity_cell() -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(
        "Our key: " + "".join(f"&#{ord(ch)};" for ch in ENTITY_SECRET)
    )


def _key_in_metadata_cell() -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["cache"] = {KEY_SECRET: "warm"}
    return cell


STOPPED = [
    Stop(
        "github-token-unknown",
        [_code("fetch()", _stream(f"using {GITHUB_UNKNOWN}\n"))],
        GITHUB_UNKNOWN,
        "github-token",
        "cell 1, output 1",
    ),
    Stop(
        "aws-keys-unknown",
        [_code("creds()", _stream(f"aws_access_key_id = {AWS_ID}\n"))],
        AWS_ID,
        "aws-access-key",
        "cell 1, output 1",
    ),
    Stop(
        "private-key",
        [
            _code(
                "print(open('id_rsa').read())",
                _stream(
                    "-----BEGIN RSA PRIVATE KEY-----\n"
                    + PEM_BODY
                    + "\n-----END RSA PRIVATE KEY-----\n"
                ),
            )
        ],
        PEM_BODY[:40],
        "private-key",
        "cell 1, output 1",
    ),
    Stop(
        "jwt-output",
        [
            _code(
                "session",
                nbformat.v4.new_output(
                    "execute_result", execution_count=1, data={"text/plain": f"'{JWT}'"}
                ),
            )
        ],
        JWT,
        "json-web-token",
        "cell 1, output 1, text/plain",
    ),
    Stop(
        "slack-token",
        [_code("bot", _stream(f"bot token {SLACK}\n"))],
        SLACK,
        "slack-token",
        "cell 1, output 1",
    ),
    Stop(
        "slack-webhook-in-notebook-metadata",
        [_code("x = 1")],
        SLACK_HOOK,
        "slack-token",
        "notebook, metadata",
        metadata={"alerts": {"hook": SLACK_HOOK}},
    ),
    Stop(
        "stripe-key-in-unrun-source",
        [_code(f"stripe_key = {STRIPE_LIVE!r}")],
        STRIPE_LIVE,
        "stripe-access-key",
        "cell 1, source",
    ),
    Stop(
        "hard-coded-password-literal",
        [_code(f"password = {KEYWORD_PASSWORD!r}\nconnect(password)")],
        KEYWORD_PASSWORD,
        "secret-keyword",
        "cell 1, source",
    ),
    Stop(
        "known-value-in-png-metadata",
        [
            _code(
                "plot()",
                nbformat.v4.new_output(
                    "display_data", data={"image/png": _png_with_text(PNG_SECRET)}
                ),
            )
        ],
        PNG_SECRET,
        "known-secret",
        "cell 1, output 1, image/png",
        env={"PLOT_TOKEN": PNG_SECRET},
    ),
    Stop(
        "known-value-in-attachment",
        [_attachment_cell()],
        ATTACH_SECRET,
        "known-secret",
        "cell 1, attachments",
        env={"ATTACH_TOKEN": ATTACH_SECRET},
    ),
    Stop(
        "url-quoted-url-password",
        [
            _code(
                "redirect",
                _stream(
                    "next=" + quote(f"https://ops:{QUOTED_URL_PW}@admin.test/", safe="") + "\n"
                ),
            )
        ],
        QUOTED_URL_PW,
        "url-password",
        "cell 1, output 1",
    ),
    Stop(
        "known-value-as-html-entities",
        [_entity_cell()],
        ENTITY_SECRET,
        "known-secret",
        "cell 1, source",
        env={"ENTITY_TOKEN": ENTITY_SECRET},
    ),
    Stop(
        "known-value-as-a-metadata-key",
        [_key_in_metadata_cell()],
        KEY_SECRET,
        "known-secret",
        "cell 1, metadata",
        env={"CACHE_TOKEN": KEY_SECRET},
    ),
]


def _share_stop(
    tmp: Path, name: str, nb: nbformat.NotebookNode, env: dict[str, str], argv: list[str]
) -> tuple[int, str, Path]:
    source = tmp / f"{name}.ipynb"
    nbformat.write(nb, str(source))
    out = tmp / "out"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.delenv("CLAYNB_ALLOW_SPEND", raising=False)
        rc = main(["share", str(source), "-o", str(out), "-q", *argv])
    return rc, str(out), out


def _notebook(stop: Stop) -> nbformat.NotebookNode:
    nb = python_notebook()
    nb.metadata.update(stop.metadata)
    nb.cells = stop.cells
    return nb


def assert_stopped(rc: int, out: Path, err: str, secret: str, kind: str, where: str) -> None:
    assert rc == 2, err[-2000:]
    assert not out.exists() or list(out.iterdir()) == [], "something was written"
    assert "nothing was written" in err
    assert f"[{kind} " in err, err[-2000:]
    assert where in err, err[-2000:]
    assert leaked_forms(secret, err) == [], "the report showed the secret"


@pytest.mark.parametrize("stop", STOPPED, ids=lambda s: s.name)
def test_an_unscrubbable_secret_stops_the_export(
    stop: Stop, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, out = _share_stop(tmp_path, stop.name, _notebook(stop), stop.env, ["--no-execute"])
    assert_stopped(rc, out, capsys.readouterr().err, stop.secret, stop.kind, stop.where)


def test_a_key_in_a_cell_that_never_ran_stops_the_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Executed for real: the first cell fails, so the one holding the key never runs."""
    nb = _notebook(
        Stop(
            "never-ran",
            [
                nbformat.v4.new_code_cell("raise RuntimeError('the CRM export is missing')"),
                nbformat.v4.new_code_cell(f"stripe_key = {STRIPE_LIVE!r}\nprint('charging')"),
            ],
            STRIPE_LIVE,
            "stripe-access-key",
            "cell 2, source",
        )
    )
    rc, _, out = _share_stop(tmp_path, "never-ran", nb, {}, ["--timeout", "120"])
    err = capsys.readouterr().err
    assert_stopped(rc, out, err, STRIPE_LIVE, "stripe-access-key", "cell 2, source")


def test_no_execute_scrubs_a_known_key_in_sources_and_outputs(tmp_path: Path) -> None:
    """``--no-execute`` gets the same scrub and scan as an executed run."""
    key = token("no-execute", 48, "clay_live_")
    nb = _notebook(
        Stop(
            "no-execute",
            [
                _code(
                    f"client = connect(api_key={key!r})",
                    _stream(f"connected with {key[:20]}...\n"),
                    nbformat.v4.new_output(
                        "execute_result",
                        execution_count=1,
                        data={"text/plain": f"Client(key={key!r})", "text/html": f"<i>{key}</i>"},
                    ),
                )
            ],
            key,
            "",
            "",
        )
    )
    rc, _, out = _share_stop(tmp_path, "old", nb, {"CLAY_API_KEY": key}, ["--no-execute"])
    assert rc == 0
    texts = [p.read_text(encoding="utf-8") for p in out.iterdir()]
    assert len(texts) == 2
    for text in texts:
        assert leaked_forms(key, text) == []
        assert "[REDACTED]" in text
