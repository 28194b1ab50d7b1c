"""Runbooks as static files, readable when warroom itself is down.

``export_runbooks(catalogue, out_dir)`` writes, for every runbook, an HTML page
(self-contained: inline style, no script, no external asset) and a Markdown
file, plus an index of each. The files can be put on any static host, a wiki,
or a laptop, away from the infrastructure that might be having the incident.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape

from warroom.models.durations import format_duration
from warroom.models.runbook import ApprovalStep, HttpStep, ManualStep, Runbook, ShellStep, WaitStep
from warroom.runbooks.catalogue import Catalogue

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem}code,pre{font:14px ui-monospace,monospace;background:#f3f3f3}
pre{padding:.6rem;overflow-x:auto}ol>li{margin-bottom:1rem}.tag{font-size:.8rem;padding:0 .4rem;border-radius:.3rem;
background:#eee;margin-left:.4rem}.destructive{background:#b00020;color:#fff}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}
footer{margin-top:3rem;color:#666;font-size:.85rem}
"""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{ rb.title }} · runbook</title><style>{{ style }}</style></head>
<body>
<p><a href="index.html">All runbooks</a></p>
<h1>{{ rb.title }}{% if rb.destructive %}<span class="tag destructive">destructive</span>{% endif %}</h1>
<h2>When to use it</h2>
<p>{{ rb.when_to_use }}</p>
{% if rb.parameters %}
<h2>Parameters</h2>
<table><tr><th>name</th><th>type</th><th>required / default</th><th>meaning</th></tr>
{% for name, p in rb.parameters.items() %}
<tr><td><code>{{ name }}</code></td><td>{{ p.describe_type() }}</td>
<td>{% if p.required %}required{% else %}<code>{{ p.default }}</code>{% endif %}</td><td>{{ p.description }}</td></tr>
{% endfor %}</table>
{% endif %}
<h2>Steps</h2>
<ol>
{% for s in steps %}
<li><strong>{{ s.name }}</strong><span class="tag">{{ s.kind }}</span>
{% if s.destructive %}<span class="tag destructive">destructive</span>{% endif %}
{% if s.description %}<p>{{ s.description }}</p>{% endif %}
{% for line in s.lines %}<p>{{ line }}</p>{% endfor %}
{% if s.code %}<pre>{{ s.code }}</pre>{% endif %}
<p><small>{{ s.limits }}</small></p>
</li>
{% endfor %}
</ol>
<h2>Running it by hand</h2>
<p>If warroom is unavailable, carry out the steps above in order yourself and note in the incident
channel who did what, and when. Placeholders such as <code>{{ '{{ name }}' }}</code> stand for the
parameters; <code>{{ '{{ secret.NAME }}' }}</code> for a credential kept in the operations vault.</p>
<footer>Runbook <code>{{ rb.id }}</code>, exported {{ exported }} by warroom.</footer>
</body></html>
"""

_INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Runbooks</title><style>{{ style }}</style></head>
<body><h1>Runbooks</h1>
<p>Step-by-step procedures for common incidents. Mitigate first: restore service, then investigate.</p>
<table><tr><th>runbook</th><th>when to use it</th></tr>
{% for rb in runbooks %}
<tr><td><a href="{{ rb.id }}.html">{{ rb.title }}</a>
{% if rb.destructive %}<span class="tag destructive">destructive</span>{% endif %}</td>
<td>{{ rb.when_to_use }}</td></tr>
{% endfor %}</table>
<footer>Exported {{ exported }} by warroom. Markdown versions: <a href="index.md">index.md</a>.</footer>
</body></html>
"""


def _limits(step: Any) -> str:
    parts = [f"timeout {format_duration(step.timeout)}"]
    if step.retry.max_attempts > 1:
        parts.append(f"up to {step.retry.max_attempts} attempts")
    if getattr(step, "idempotent", False):
        parts.append("safe to repeat")
    return ", ".join(parts)


def describe_step(step: Any) -> dict[str, Any]:
    """The human-readable parts of a step: sentences and, where useful, a command."""
    lines: list[str] = []
    code = ""
    if isinstance(step, HttpStep):
        expect = ", ".join(str(s) for s in step.expect_status) or "any 2xx"
        lines.append(f"Call the {step.endpoint} operations API (success: HTTP {expect}):")
        query = "&".join(f"{k}={v}" for k, v in step.query.items())
        code = f"{step.method} {step.path}{'?' + query if query else ''}"
        for key, value in step.headers.items():
            code += f"\n{key}: {value}"
        if step.body is not None:
            code += "\n\n" + json.dumps(step.body, indent=2)
    elif isinstance(step, ShellStep):
        lines.append("Run this command (each item is one argument; no shell):")
        code = " ".join(_quote(a) for a in step.argv)
        if step.env:
            code = " ".join(f"{k}={_quote(v)}" for k, v in step.env.items()) + " " + code
        codes = ", ".join(str(c) for c in step.ok_exit_codes)
        lines.append(f"Success is exit code {codes}.")
    elif isinstance(step, WaitStep):
        want = ", ".join(f"{k} = {v!r}" for k, v in step.expect_json.items())
        lines.append(
            f"Poll GET {step.path} on the {step.endpoint} API every {format_duration(step.interval)} until it "
            f"answers HTTP {', '.join(str(s) for s in step.expect_status)}" + (f" with {want}" if want else "") + "."
        )
    elif isinstance(step, ManualStep):
        lines.append(step.instruction.strip())
        lines.append("Confirm in warroom when done.")
    elif isinstance(step, ApprovalStep):
        lines.append(step.instruction.strip())
        lines.append("A second operator, not the one running the runbook, approves in warroom.")
    return {
        "name": step.name,
        "kind": step.kind,
        "destructive": step.destructive,
        "description": step.description.strip(),
        "lines": lines,
        "code": code,
        "limits": _limits(step),
    }


def _quote(arg: str) -> str:
    if arg and all(c.isalnum() or c in "-_./:@+=,{}" for c in arg.replace("{{ ", "{{").replace(" }}", "}}")):
        return arg
    return "'" + arg.replace("'", "'\\''") + "'"


def runbook_markdown(rb: Runbook) -> str:
    out = [f"# {rb.title}" + (" (destructive)" if rb.destructive else ""), "", "## When to use it", "",
           rb.when_to_use.strip(), ""]
    if rb.parameters:
        out += ["## Parameters", "", "| name | type | required / default | meaning |", "|---|---|---|---|"]
        for name, p in rb.parameters.items():
            need = "required" if p.required else f"`{p.default}`"
            out.append(f"| `{name}` | {p.describe_type()} | {need} | {p.description.replace('|', '/')} |")
        out.append("")
    out += ["## Steps", ""]
    for i, step in enumerate(rb.steps, start=1):
        d = describe_step(step)
        tags = f"`{d['kind']}`" + (", **destructive**" if d["destructive"] else "")
        out.append(f"{i}. **{d['name']}** ({tags})")
        out.append("")
        for line in ([d["description"]] if d["description"] else []) + d["lines"]:
            out.append(f"   {line}")
            out.append("")
        if d["code"]:
            out.append("   ```")
            out += [f"   {line}" for line in d["code"].splitlines()]
            out.append("   ```")
            out.append("")
        out.append(f"   _{d['limits']}_")
        out.append("")
    out += ["## Running it by hand", "",
            "If warroom is unavailable, carry out the steps above in order yourself and note in the incident "
            "channel who did what, and when.", ""]
    return "\n".join(out)


def export_runbooks(catalogue: Catalogue, out_dir: str | Path, now: datetime | None = None) -> list[Path]:
    """Write ``index.html``, ``index.md`` and ``<id>.html`` / ``<id>.md`` per runbook."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    exported = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    page, index = env.from_string(_PAGE), env.from_string(_INDEX)
    written: list[Path] = []

    def write(name: str, text: str) -> None:
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)

    runbooks = list(catalogue)
    for rb in runbooks:
        steps = [describe_step(s) for s in rb.steps]
        write(f"{rb.id}.html", page.render(rb=rb, steps=steps, style=_STYLE, exported=exported))
        write(f"{rb.id}.md", runbook_markdown(rb))
    write("index.html", index.render(runbooks=runbooks, style=_STYLE, exported=exported))
    lines = ["# Runbooks", "", "Mitigate first: restore service, then investigate.", ""]
    lines += [f"- [{rb.title}]({rb.id}.md): {rb.when_to_use.strip()}" for rb in runbooks]
    write("index.md", "\n".join(lines) + "\n")
    return written
