"""``warroom``: incidents from a terminal or a script, through the API.

The CLI is one more composition root: it reads the settings (``WARROOM_API_URL``,
``WARROOM_API_TOKEN``), which flags override, and talks to the API over HTTP.
Only ``warroom db`` touches the database itself.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
import yaml
from pydantic import ValidationError

from warroom.auth.cli import app as admin_app
from warroom import cli_oncall
from warroom.models.action_items import end_of_day
from warroom.models.incident import PublicPhase
from warroom.models.policy import PolicyError
from warroom.models.routing import OnCallReport
from warroom.settings import Settings

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_UNREACHABLE = 4
EXIT_FORBIDDEN = 5
EXIT_ERROR = 6

EXIT_CODES_HELP = """Exit codes: 0 done; 1 refused by the incident's lifecycle (already
acknowledged, already resolved...); 2 bad usage or input the API rejected; 3 no
such incident; 4 the API, or the Temporal cluster or database behind it, cannot
be reached; 5 the API refused the token; 6 any other error."""

app = typer.Typer(
    name="warroom",
    help="Declare and run incidents from the command line, through the warroom API. "
    "Connection: --api-url / WARROOM_API_URL (default http://127.0.0.1:8000) and "
    "--token / WARROOM_API_TOKEN. Every command takes --help; --json prints the API's answer as JSON.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(
    help="The read model's database: apply migrations, show the schema revision.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")

# --- options every API command takes -----------------------------------------------------

ApiUrl = Annotated[
    str | None,
    typer.Option("--api-url", metavar="URL", help="Base URL of the warroom API. [default: WARROOM_API_URL or http://127.0.0.1:8000]",
                 show_default=False),
]
Token = Annotated[
    str | None,
    typer.Option("--token", metavar="TOKEN", help="Bearer token for the API. [default: WARROOM_API_TOKEN]",
                 show_default=False),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the API's answer as JSON (for scripts).")]
IncidentId = Annotated[
    int, typer.Argument(metavar="ID", help="The incident number, e.g. 42 for #42.", min=1, show_default=False)
]
Actor = Annotated[str | None, typer.Option(
    "--as", metavar="PERSON",
    help="Who is doing this; default: the token's own user (the API refuses anyone else).", show_default=False,
)]


def fail(code: int, message: str) -> NoReturn:
    typer.echo(f"warroom: {message}", err=True)
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as err:
        problems = "; ".join(f"WARROOM_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in err.errors())
        fail(EXIT_USAGE, f"bad setting in the environment: {problems}")


class Api:
    """A thin HTTP client that turns every API answer into output or an exit code."""

    STATUS_EXIT = {400: EXIT_USAGE, 401: EXIT_FORBIDDEN, 403: EXIT_FORBIDDEN, 404: EXIT_NOT_FOUND,
                   409: EXIT_REFUSED, 422: EXIT_USAGE, 502: EXIT_UNREACHABLE, 503: EXIT_UNREACHABLE,
                   504: EXIT_UNREACHABLE}

    def __init__(self, api_url: str | None, token: str | None, timeout: float = 30.0) -> None:
        settings = _settings()
        self.base = (api_url or settings.api_base_url).rstrip("/")
        secret = token if token is not None else (settings.api_token.get_secret_value() if settings.api_token else None)
        self.headers = {"Accept": "application/json", "User-Agent": "warroom-cli"}
        if secret:
            self.headers["Authorization"] = f"Bearer {secret}"
        self.timeout = timeout

    def call(self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> Any:
        try:
            with httpx.Client(base_url=self.base, headers=self.headers, timeout=self.timeout) as http:
                if isinstance(body, dict):
                    # An actor left out is the token's own user: the API names it.
                    body = {k: v for k, v in body.items() if v is not None}
                resp = http.request(method, path, json=body, params=params, headers=headers)
        except httpx.InvalidURL as err:
            fail(EXIT_USAGE, f"bad API URL {self.base!r}: {err}")
        except httpx.TransportError as err:
            fail(EXIT_UNREACHABLE, f"cannot reach the warroom API at {self.base} ({type(err).__name__}: {err})")
        if resp.is_success:
            try:
                return resp.json()
            except ValueError:
                fail(EXIT_ERROR, f"the API at {self.base} answered {method} {path} with something that is not JSON")
        hint = ""
        if resp.status_code == 401 and "Authorization" not in self.headers:
            hint = "; no token was given: set WARROOM_API_TOKEN or pass --token"
        fail(self.STATUS_EXIT.get(resp.status_code, EXIT_ERROR), f"{_detail(resp)} (HTTP {resp.status_code}){hint}")


def _detail(resp: httpx.Response) -> str:
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, str) and detail:
        return detail
    if detail:
        return json.dumps(detail)
    return resp.reason_phrase or "error"


# --- output ---------------------------------------------------------------------------------


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def when(value: str | None) -> str:
    """An API timestamp as UTC to the second, or '-'."""
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    except ValueError:
        return value


def clip(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def command_done(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
    else:
        typer.echo(f"#{result['incident_id']} ({result['status']}): {result['message']}")


def render_incident(inc: dict[str, Any]) -> str:
    out = [f"#{inc['id']}  {inc['severity']}  {inc['status']}  {inc['title']}"]
    if inc.get("summary"):
        out.append(f"  {clip(inc['summary'], 300)}")
    facts = [
        ("declared", f"{when(inc['declared_at'])} by {inc['declared_by']} via {inc['source']}"),
        ("impact since", when(inc.get("impact_started_at"))),
        ("acknowledged", f"{when(inc['acknowledged_at'])} by {inc['acknowledged_by']}" if inc.get("acknowledged_by")
         else "-"),
        ("resolved", when(inc.get("resolved_at"))),
        ("components", ", ".join(inc.get("components") or []) or "-"),
    ]
    if inc.get("public_phase") and not inc.get("resolved_at"):
        facts.append(("public phase", inc["public_phase"]))
    if inc.get("resolution_summary"):
        facts.append(("resolution", clip(inc["resolution_summary"], 300)))
    for role, person in (inc.get("roles") or {}).items():
        facts.append((role.replace("_", " "), person))
    for name, at in sorted((inc.get("deadlines") or {}).items(), key=lambda kv: kv[1]):
        facts.append((f"due: {name.replace('_', ' ')}", when(at)))
    postmortem = inc.get("postmortem") or {}
    if postmortem.get("required"):
        state = f"submitted {when(postmortem.get('submitted_at'))}" if postmortem.get("submitted_at") else "pending"
        facts.append(("postmortem", f"{state}, due {when(postmortem.get('deadline'))}"))
    width = max(len(k) for k, _ in facts)
    out += [f"  {k.ljust(width)}  {v}" for k, v in facts]
    updates = inc.get("status_updates") or []
    if updates:
        out.append("")
        out.append("Status updates:")
        out += [f"  {when(u['at'])}  {u['author']}{' (' + u['phase'] + ')' if u.get('phase') else ''}: "
                f"{clip(u['message'], 200)}" for u in updates]
    timeline = inc.get("timeline") or []
    if timeline:
        out.append("")
        out.append("Timeline:")
        rows = [[when(e["at"]), e["kind"], clip(e["text"], 100)] for e in timeline]
        out += [f"  {line}" for line in table(["AT", "KIND", "WHAT"], rows).splitlines()]
    return "\n".join(out)


# --- incident commands --------------------------------------------------------------------


@app.command()
def declare(
    title: Annotated[str, typer.Argument(metavar="TITLE", help="What is wrong, in one line.", show_default=False)],
    severity: Annotated[str, typer.Option("--severity", "-s", metavar="SEV", help="SEV-1 (critical) to SEV-4 (low).",
                                          show_default=False)],
    summary: Annotated[str, typer.Option(metavar="TEXT", help="More detail: what users see.")] = "",
    component: Annotated[list[str] | None, typer.Option("--component", "-c", metavar="NAME",
                                                        help="An affected component; repeat for several.")] = None,
    impact_started_at: Annotated[str | None, typer.Option(
        metavar="TIME", help="When users were first hurt (ISO 8601 with a zone).", show_default=False)] = None,
    actor: Actor = None,
    idempotency_key: Annotated[str | None, typer.Option(
        metavar="KEY", help="Run the command again with the same key and get the same incident, not a second one.",
        show_default=False)] = None,
    as_json: JsonOut = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Declare an incident: its workflow starts paging at once."""
    body: dict[str, Any] = {"title": title, "severity": severity, "summary": summary,
                            "components": component or [], "declared_by": actor}
    if impact_started_at:
        body["impact_started_at"] = impact_started_at
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    inc = Api(api_url, token).call("POST", "/api/incidents", body=body, headers=headers)
    if as_json:
        print_json(inc)
        return
    typer.echo(f"Declared #{inc['id']} ({inc['severity']}, {inc['status']}): {inc['title']}")
    for name, at in sorted((inc.get("deadlines") or {}).items(), key=lambda kv: kv[1]):
        typer.echo(f"  due: {name.replace('_', ' ')} by {when(at)}")


@app.command("list")
def list_incidents(
    status: Annotated[str | None, typer.Option(
        metavar="STATUS", help="open (triggered or acknowledged), triggered, acknowledged, resolved or closed.",
        show_default=False)] = None,
    severity: Annotated[str | None, typer.Option("--severity", "-s", metavar="SEV", help="SEV-1 to SEV-4.",
                                                 show_default=False)] = None,
    limit: Annotated[int, typer.Option(metavar="N", help="At most this many, newest first.", min=1, max=500)] = 50,
    as_json: JsonOut = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """List incidents, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if status:
        params["status"] = status
    if severity:
        params["severity"] = severity
    rows = Api(api_url, token).call("GET", "/api/incidents", params=params)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("No incidents.")
        return
    typer.echo(table(
        ["ID", "SEV", "STATUS", "DECLARED", "ACK BY", "TITLE"],
        [[f"#{r['id']}", r["severity"], r["status"], when(r["declared_at"]), r.get("acknowledged_by") or "-",
          clip(r["title"], 60)] for r in rows],
    ))


@app.command()
def show(incident: IncidentId, as_json: JsonOut = False, api_url: ApiUrl = None, token: Token = None) -> None:
    """Show one incident: state, roles, deadlines ahead, status updates and timeline."""
    inc = Api(api_url, token).call("GET", f"/api/incidents/{incident}")
    if as_json:
        print_json(inc)
    else:
        typer.echo(render_incident(inc))


@app.command()
def ack(
    incident: IncidentId,
    actor: Actor = None,
    as_json: JsonOut = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Acknowledge an incident: paging stops."""
    result = Api(api_url, token).call("POST", f"/api/incidents/{incident}/acknowledge", body={"person": actor})
    command_done(result, as_json)


@app.command()
def update(
    incident: IncidentId,
    message: Annotated[str, typer.Argument(metavar="MESSAGE", help="The public status update.", show_default=False)],
    phase: Annotated[PublicPhase | None, typer.Option(
        case_sensitive=False, show_default=False,
        help="Where the incident stands for the public: identified = cause found, monitoring = fix applied and "
             "being watched. Leave it out to keep the current phase; going back is allowed.")] = None,
    actor: Actor = None,
    as_json: JsonOut = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Post a public status update, optionally moving the incident to another phase."""
    body: dict[str, Any] = {"message": message, "author": actor}
    if phase is not None:
        body["phase"] = phase.value
    command_done(Api(api_url, token).call("POST", f"/api/incidents/{incident}/status-updates", body=body), as_json)


@app.command()
def severity(
    incident: IncidentId,
    level: Annotated[str, typer.Argument(metavar="SEV", help="The new severity, SEV-1 to SEV-4.", show_default=False)],
    reason: Annotated[str, typer.Option(metavar="TEXT", help="Why it changes.")] = "",
    actor: Actor = None,
    as_json: JsonOut = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Raise or lower the severity (every cadence follows the new one)."""
    body = {"severity": level, "reason": reason, "by": actor}
    command_done(Api(api_url, token).call("POST", f"/api/incidents/{incident}/severity", body=body), as_json)


@app.command()
def role(
    incident: IncidentId,
    name: Annotated[str, typer.Argument(
        metavar="ROLE", help="incident_commander (ic), technical_lead (tl), communications_lead (comms) or scribe.",
        show_default=False)],
    person: Annotated[str, typer.Argument(metavar="PERSON", help="Who takes the role (a person id of the policy).",
                                          show_default=False)],
    actor: Actor = None,
    as_json: JsonOut = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Assign a role; one person may hold several."""
    body = {"role": name, "person": person, "by": actor}
    command_done(Api(api_url, token).call("POST", f"/api/incidents/{incident}/roles", body=body), as_json)


@app.command()
def resolve(
    incident: IncidentId,
    summary: Annotated[str, typer.Option(metavar="TEXT", help="What happened and what restored service.",
                                         show_default=False)],
    impact: Annotated[str, typer.Option(metavar="TEXT", help="Who was affected, and how.")] = "",
    actor: Actor = None,
    as_json: JsonOut = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Resolve an incident: the resolution notice is published."""
    body = {"summary": summary, "impact": impact, "by": actor}
    command_done(Api(api_url, token).call("POST", f"/api/incidents/{incident}/resolve", body=body), as_json)


@app.command()
def oncall(
    at: Annotated[str | None, typer.Option(
        metavar="TIME", help="An instant with a zone offset, e.g. 2026-12-09T03:00:00Z. [default: now]",
        show_default=False)] = None,
    policy: Annotated[Path | None, typer.Option(
        metavar="FILE", help="Work it out from this policy file alone, without the API.", show_default=False)] = None,
    as_json: JsonOut = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Who is on call now (or at --at) and who is next, per schedule; each team's business hours."""
    instant = cli_oncall.parse_at(at)
    if policy is not None:
        try:
            report = cli_oncall.report_from_file(policy, instant)
        except PolicyError as err:
            fail(EXIT_USAGE, str(err))
        data = report.model_dump(mode="json")
    else:
        params = {"at": instant.isoformat()} if at is not None else None  # else the API's own clock
        data = Api(api_url, token).call("GET", "/api/oncall", params=params)
        try:
            report = OnCallReport.model_validate(data)
        except ValidationError as err:
            fail(EXIT_ERROR, f"the API's on-call report is not in the shape this warroom knows: {err}")
    if as_json:
        print_json(data)
    else:
        typer.echo(cli_oncall.render(report))


POSTMORTEM_KEYS = ("summary", "timeline", "root_cause", "impact", "what_went_well", "what_could_improve",
                   "action_items")


def _plain(value: Any) -> Any:
    """YAML dates and times as ISO strings, for the JSON body."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def read_document(path: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as err:
        fail(EXIT_USAGE, f"cannot read {path}: {err.strerror}")
    except UnicodeDecodeError:
        fail(EXIT_USAGE, f"{path} is not UTF-8 text")
    try:
        data = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as err:
        fail(EXIT_USAGE, f"{path} is neither YAML nor JSON: {err}")
    if not isinstance(data, dict):
        fail(EXIT_USAGE, f"{path} must hold a mapping with the keys {', '.join(POSTMORTEM_KEYS)}")
    return _plain(data)


@app.command()
def postmortem(
    incident: IncidentId,
    document: Annotated[str, typer.Argument(
        metavar="FILE", help="A YAML or JSON file ('-' for standard input) with summary, timeline, root_cause, impact, "
        "what_went_well, what_could_improve and action_items (each with title, owner and due, "
        "a time with a zone).", show_default=False)],
    actor: Annotated[str | None, typer.Option(
        "--as", metavar="PERSON", help="Who submits it. [default: the file's 'by', else cli]",
        show_default=False)] = None,
    as_json: JsonOut = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Submit the postmortem of a resolved incident; the API names any missing section."""
    body = read_document(document)
    if actor or body.get("by"):
        body["by"] = actor or body["by"]
    command_done(Api(api_url, token).call("POST", f"/api/incidents/{incident}/postmortem", body=body), as_json)


# --- action items ---------------------------------------------------------------------------

items_app = typer.Typer(
    help="The action items of postmortems: list them, mark them done, hand them over, move them, add one.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(items_app, name="action-items")

ItemNumber = Annotated[
    int, typer.Argument(metavar="ITEM", help="The item's number within the incident, from 1.", min=1,
                        show_default=False)
]
Due = Annotated[str | None, typer.Option(
    metavar="WHEN", help="A date (YYYY-MM-DD: the end of that day, UTC) or a time with a zone.", show_default=False)]
Priority = Annotated[str | None, typer.Option(metavar="P", help="high, medium or low.", show_default=False)]


def _due(value: str | None) -> str | None:
    """A bare date means the end of that day in UTC; anything else goes to the API as written."""
    if value is None:
        return None
    try:
        return end_of_day(value).isoformat()
    except ValueError:
        return value


def _item_done(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
    else:
        typer.echo(result["message"])


@items_app.command("list")
def items_list(
    incident: Annotated[int | None, typer.Option("--incident", metavar="ID", help="Only this incident's.", min=1,
                                                 show_default=False)] = None,
    status: Annotated[str | None, typer.Option(
        metavar="STATE", help="open (which includes overdue), overdue or done.", show_default=False)] = None,
    owner: Annotated[str | None, typer.Option(metavar="PERSON", help="Only this person's.", show_default=False)] = None,
    as_json: JsonOut = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Action items, soonest due first, with how long is left or how late they are."""
    params = {k: v for k, v in (("incident_id", incident), ("status", status), ("owner", owner)) if v is not None}
    rows = Api(api_url, token).call("GET", "/api/action-items", params=params)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("No action items.")
        return
    def state(r: dict[str, Any]) -> str:
        if r["state"] == "done":
            return f"done by {r['done_by']}"
        return f"{r['text']} {'late' if r['state'] == 'overdue' else 'left'}"

    typer.echo(table(
        ["INCIDENT", "ITEM", "PRIORITY", "OWNER", "DUE", "STATE", "TITLE"],
        [[f"#{r['incident_id']}", str(r["index"]), r["priority"], r["owner"], when(r["due"]), state(r),
          clip(r["title"], 60)] for r in rows],
    ))


@items_app.command("done")
def items_done(incident: IncidentId, item: ItemNumber, as_json: JsonOut = False, api_url: ApiUrl = None,
               token: Token = None) -> None:
    """Mark an action item done (as the token's user)."""
    _item_done(Api(api_url, token).call("POST", f"/api/incidents/{incident}/action-items/{item}/complete", body={}),
               as_json)


@items_app.command("change")
def items_change(
    incident: IncidentId,
    item: ItemNumber,
    owner: Annotated[str | None, typer.Option(metavar="PERSON", help="Hand it to this person (they are told).",
                                              show_default=False)] = None,
    due: Due = None,
    priority: Priority = None,
    title: Annotated[str | None, typer.Option(metavar="TEXT", help="Reword it.", show_default=False)] = None,
    as_json: JsonOut = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Change an open action item; what you leave out stays. A new date restarts its reminders."""
    body = {k: v for k, v in (("owner", owner), ("due", _due(due)), ("priority", priority), ("title", title))
            if v is not None}
    if not body:
        fail(EXIT_USAGE, "nothing to change: give --owner, --due, --priority or --title")
    _item_done(Api(api_url, token).call("PATCH", f"/api/incidents/{incident}/action-items/{item}", body=body),
               as_json)


@items_app.command("add")
def items_add(
    incident: IncidentId,
    title: Annotated[str, typer.Argument(metavar="TITLE", help="What is to be done.", show_default=False)],
    owner: Annotated[str, typer.Option(metavar="PERSON", help="Who does it (a person of the policy).",
                                       show_default=False)],
    due: Annotated[str, typer.Option(metavar="WHEN", help="A date (YYYY-MM-DD: the end of that day, UTC) or a "
                                     "time with a zone.", show_default=False)],
    priority: Annotated[str, typer.Option(metavar="P", help="high, medium or low.")] = "medium",
    idempotency_key: Annotated[str | None, typer.Option(
        metavar="KEY", help="Run the command again with the same key and the item is added once.",
        show_default=False)] = None,
    as_json: JsonOut = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Add an action item to a closed incident (one found after its postmortem)."""
    body = {"title": title, "owner": owner, "due": _due(due), "priority": priority}
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    _item_done(Api(api_url, token).call("POST", f"/api/incidents/{incident}/action-items", body=body,
                                        headers=headers), as_json)


# --- customer reports -------------------------------------------------------------------------

reports_app = typer.Typer(
    help="Problems customers reported on the status page: list them, attach one to an incident, declare one "
    "from it, or dismiss it.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(reports_app, name="reports")

ReportId = Annotated[int, typer.Argument(metavar="REPORT", help="The report's id (from `warroom reports list`).",
                                         min=1, max=2**31 - 1, show_default=False)]


def _report_done(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(report)
    elif report["status"] == "dismissed":
        typer.echo(f"Report #{report['id']} dismissed by {report['handled_by']}.")
    else:
        typer.echo(f"Report #{report['id']} {report['status']}: incident #{report['incident_id']}.")


@reports_app.command("list")
def reports_list(
    status: Annotated[str, typer.Option(
        metavar="STATE", help="new (waiting for triage), attached, declared or dismissed.")] = "new",
    limit: Annotated[int, typer.Option(metavar="N", help="At most this many, newest first.", min=1, max=500)] = 50,
    as_json: JsonOut = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Customer reports, newest first: by default the ones waiting for triage."""
    rows = Api(api_url, token).call("GET", "/api/reports", params={"status": status, "limit": limit})
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo(f"No {status} reports.")
        return
    typer.echo(table(
        ["REPORT", "RECEIVED", "COMPONENT", "STATE", "CONTACT", "TEXT"],
        [[f"#{r['id']}", when(r["received_at"]), r["component"] or "-",
          r["status"] + (f" #{r['incident_id']}" if r["incident_id"] else ""), clip(r["contact"] or "-", 30),
          clip(" ".join(r["text"].split()), 60)] for r in rows],
    ))


@reports_app.command("attach")
def reports_attach(report: ReportId, incident: IncidentId, as_json: JsonOut = False, api_url: ApiUrl = None,
                   token: Token = None) -> None:
    """Attach a report to an open incident: it joins the incident's alerts and timeline."""
    _report_done(Api(api_url, token).call("POST", f"/api/reports/{report}/attach", body={"incident_id": incident}),
                 as_json)


@reports_app.command("declare")
def reports_declare(
    report: ReportId,
    severity: Annotated[str, typer.Option("--severity", "-s", metavar="SEV", help="SEV-1 to SEV-4.")] = "SEV-3",
    title: Annotated[str | None, typer.Option(metavar="TEXT", help="The incident's title (public on the status "
                                              "page). [default: the report's first line, contacts masked]",
                                              show_default=False)] = None,
    as_json: JsonOut = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Declare an incident from a report (or join the open one for its component)."""
    body = {"severity": severity, **({"title": title} if title is not None else {})}
    _report_done(Api(api_url, token).call("POST", f"/api/reports/{report}/declare", body=body), as_json)


@reports_app.command("dismiss")
def reports_dismiss(
    report: ReportId,
    reason: Annotated[str, typer.Option(metavar="TEXT", help="Why, for the audit log.")] = "",
    as_json: JsonOut = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Take a report off the triage list without an incident (spam, a question, already known)."""
    _report_done(Api(api_url, token).call("POST", f"/api/reports/{report}/dismiss", body={"reason": reason}),
                 as_json)


# --- database -------------------------------------------------------------------------------

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", metavar="URL",
                 help="SQLAlchemy URL of the read model. [default: WARROOM_DATABASE_URL, "
                 "else SQLite under WARROOM_DATA_DIR]", show_default=False),
]


def _read_model_settings(database_url: str | None) -> Settings:
    settings = _settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    return settings


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None, as_json: JsonOut = False) -> None:
    """Apply every pending migration (waits for the database; safe while warroom runs)."""
    from warroom import migrations
    from warroom.models.tables import make_engine
    from warroom.startup import DependencyUnavailable, safe_url, wait_for_database

    settings = _read_model_settings(database_url)
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.read_model_url)
    try:
        wait_for_database(engine, settings.startup_timeout_seconds)
        before = migrations.current(engine)
        migrations.upgrade(engine)
        after = migrations.current(engine)
    except DependencyUnavailable as err:
        fail(EXIT_UNREACHABLE, str(err))
    except Exception as err:  # noqa: BLE001 - a failed migration is reported, not a traceback
        fail(EXIT_ERROR, f"migration failed: {type(err).__name__}: {err}")
    finally:
        engine.dispose()
    where = safe_url(settings.read_model_url)
    if as_json:
        print_json({"database": where, "before": before, "after": after})
    elif before == after:
        typer.echo(f"{where}: already at revision {after}")
    else:
        typer.echo(f"{where}: migrated from {before or 'an empty database'} to {after}")


@db_app.command("current")
def db_current(database_url: DatabaseUrl = None, as_json: JsonOut = False) -> None:
    """Show the database's schema revision and the newest this warroom knows (exit 1 if behind)."""
    from warroom import migrations
    from warroom.models.tables import make_engine
    from warroom.startup import safe_url

    settings = _read_model_settings(database_url)
    engine = make_engine(settings.read_model_url)
    try:
        at = migrations.current(engine)
    except Exception as err:  # noqa: BLE001 - any failure to read it means unreachable here
        fail(EXIT_UNREACHABLE, f"cannot read the schema revision: {type(err).__name__}: {err}")
    finally:
        engine.dispose()
    head = migrations.head()
    if as_json:
        print_json({"database": safe_url(settings.read_model_url), "current": at, "head": head})
    else:
        typer.echo(f"current: {at or '(empty database)'}\nhead:    {head}")
    if at != head:
        raise typer.Exit(EXIT_REFUSED)


@db_app.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("--message", "-m", metavar="TEXT", help="What the change is, in a few words.",
                                         show_default=False)],
    database_url: DatabaseUrl = None,
) -> None:
    """For developers: write a migration from the changes in warroom/models/tables.py.

    Run it against a scratch database that `warroom db upgrade` brought to head,
    then read and edit the generated file before committing it."""
    from warroom import migrations
    from warroom.models.tables import make_engine

    settings = _read_model_settings(database_url)
    engine = make_engine(settings.read_model_url)
    try:
        migrations.require_current(engine)
        path = migrations.new_revision(engine, message)
    except migrations.SchemaNotCurrent as err:
        fail(EXIT_REFUSED, str(err))
    finally:
        engine.dispose()
    typer.echo(f"wrote {path}")



# --- runbooks ---------------------------------------------------------------------------

runbooks_app = typer.Typer(
    help="Runbooks: list them, run one on an incident, follow its runs and answer the steps that wait for a "
    "person, export them for an outage.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(runbooks_app, name="runbooks")

RunNumber = Annotated[
    int, typer.Argument(metavar="RUN", help="The run's number within the incident, from 1.", min=1, show_default=False)
]
StepNumber = Annotated[
    int, typer.Argument(metavar="STEP", help="The step's number within the run, from 1.", min=1, show_default=False)
]
Note = Annotated[str, typer.Option(metavar="TEXT", help="A note for the timeline.")]


@runbooks_app.command("list")
def runbooks_list(as_json: JsonOut = False, api_url: ApiUrl = None, token: Token = None) -> None:
    """The runbooks the API knows, with their parameters and whether they have destructive steps."""
    books = Api(api_url, token).call("GET", "/api/runbooks")
    if as_json:
        print_json(books)
        return
    for book in books:
        mark = "  (destructive)" if book.get("destructive") else ""
        typer.echo(f"{book['id']:<32} {book['title']}{mark}")


@runbooks_app.command("run")
def runbooks_run(
    incident: IncidentId,
    runbook: Annotated[str, typer.Argument(help="The runbook's id, e.g. deployment-rollback.", show_default=False)],
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", metavar="NAME=VALUE", help="A parameter of the runbook (repeatable).")] = None,
    confirm: Annotated[bool, typer.Option(
        "--confirm-destructive", help="Confirm that its destructive steps may run.")] = False,
    reason: Annotated[str, typer.Option(help="Why, for the timeline.")] = "",
    as_json: JsonOut = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Run a runbook on an incident; follow it with 'warroom runbooks show'."""
    params: dict[str, str] = {}
    for item in param or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            fail(EXIT_USAGE, f"--param takes NAME=VALUE, got {item!r}")
        params[name.strip()] = value
    body = {"runbook": runbook, "params": params, "confirm_destructive": confirm, "reason": reason}
    result = Api(api_url, token).call("POST", f"/api/incidents/{incident}/runbook-runs", body=body)
    if as_json:
        print_json(result)
    else:
        typer.echo(result.get("message") or f"run #{result.get('run')} started on #{incident}")


def run_done(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
    else:
        typer.echo(f"#{result['incident_id']} run #{result['run']} ({result['status']}): {result['message']}")


def _runs_path(incident: int, run: int | None = None) -> str:
    return f"/api/incidents/{incident}/runbook-runs" + (f"/{run}" if run is not None else "")


def render_run(run: dict[str, Any]) -> str:
    out = [f"#{run['incident_id']} run #{run['run']}  {run['runbook_id']}  {run['status']}  {run['title']}"]
    facts = [("started", f"{when(run['started_at'])} by {run['started_by']}")]
    if run.get("reason"):
        facts.append(("reason", clip(run["reason"], 200)))
    if run.get("params"):
        facts.append(("parameters", ", ".join(f"{k}={v}" for k, v in run["params"].items())))
    if run.get("finished_at"):
        facts.append(("finished", when(run["finished_at"])))
    if run.get("aborted_by"):
        facts.append(("aborted by", run["aborted_by"]))
    if run.get("result"):
        facts.append(("result", clip(run["result"], 300)))
    width = max(len(k) for k, _ in facts)
    out += [f"  {k.ljust(width)}  {v}" for k, v in facts]
    out.append("")
    rows = [[str(st["index"]), st["status"], st["kind"] + (", destructive" if st["destructive"] else ""),
             clip(st["name"], 50), clip(st["result"], 70) or "-"] for st in run["steps"]]
    out += table(["STEP", "STATUS", "KIND", "NAME", "RESULT"], rows).splitlines()
    for st in run["steps"]:
        if st["status"] != "waiting":
            continue
        ids = f"{run['incident_id']} {run['run']} {st['index']}"
        out.append("")
        if st["kind"] == "approval":
            out.append(f"Step {st['index']} waits for an operator other than {run['started_by']}: "
                       f"warroom runbooks approve {ids} (or --refuse)")
        else:
            out.append(f"Step {st['index']} waits for a person: warroom runbooks confirm {ids} once it is done")
    return "\n".join(out)


@runbooks_app.command("runs")
def runbooks_runs(incident: IncidentId, as_json: JsonOut = False, api_url: ApiUrl = None, token: Token = None) -> None:
    """The runbook runs of an incident, oldest first."""
    runs = Api(api_url, token).call("GET", _runs_path(incident))
    if as_json:
        print_json(runs)
        return
    if not runs:
        typer.echo(f"No runbook runs on #{incident}.")
        return
    typer.echo(table(
        ["RUN", "RUNBOOK", "STATUS", "STARTED", "BY", "AT STEP"],
        [[f"#{r['run']}", r["runbook_id"], r["status"], when(r["started_at"]), r["started_by"],
          str(r["current_step"]) if r.get("current_step") else "-"] for r in runs],
    ))


@runbooks_app.command("show")
def runbooks_show(
    incident: IncidentId, run: RunNumber, as_json: JsonOut = False, api_url: ApiUrl = None, token: Token = None
) -> None:
    """One run: its steps, each with its state and result."""
    found = Api(api_url, token).call("GET", _runs_path(incident, run))
    if as_json:
        print_json(found)
    else:
        typer.echo(render_run(found))


@runbooks_app.command("confirm")
def runbooks_confirm(
    incident: IncidentId,
    run: RunNumber,
    step: StepNumber,
    note: Note = "",
    as_json: JsonOut = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Confirm that a manual step is done (responders); the run goes on."""
    path = f"{_runs_path(incident, run)}/steps/{step}/confirm"
    run_done(Api(api_url, token).call("POST", path, body={"note": note}), as_json)


@runbooks_app.command("approve")
def runbooks_approve(
    incident: IncidentId,
    run: RunNumber,
    step: StepNumber,
    refuse: Annotated[bool, typer.Option("--refuse", help="Refuse instead: the step fails and the run stops.")]
    = False,
    note: Note = "",
    as_json: JsonOut = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Approve (or --refuse) an approval step: operators, and not the one who started the run."""
    path = f"{_runs_path(incident, run)}/steps/{step}/approve"
    run_done(Api(api_url, token).call("POST", path, body={"approve": not refuse, "note": note}), as_json)


@runbooks_app.command("abort")
def runbooks_abort(
    incident: IncidentId,
    run: RunNumber,
    reason: Annotated[str, typer.Option(metavar="TEXT", help="Why, for the timeline.")] = "",
    as_json: JsonOut = False,
    api_url: ApiUrl = None,
    token: Token = None,
) -> None:
    """Stop a run (responders): the step under way is stopped and no later step starts."""
    run_done(Api(api_url, token).call("POST", f"{_runs_path(incident, run)}/abort", body={"reason": reason}), as_json)


@runbooks_app.command("export")
def runbooks_export(
    out: Annotated[Path, typer.Argument(help="Folder to write HTML and Markdown into.", show_default=False)],
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Runbook folder. [default: WARROOM_RUNBOOKS_DIR, else the shipped runbooks]")] = None,
) -> None:
    """Write every runbook as static HTML and Markdown, to host somewhere the outage cannot reach."""
    from warroom.runbooks.catalogue import load_catalogue
    from warroom.runbooks.export import export_runbooks

    try:
        catalogue = load_catalogue(directory or Settings().runbooks_dir)
    except Exception as err:  # noqa: BLE001 - a bad file: its message names the file and key
        fail(EXIT_USAGE, str(err))
    written = export_runbooks(catalogue, out)
    typer.echo(f"wrote {len(written)} files to {out}")


# --- status page -------------------------------------------------------------------------

statuspage_app = typer.Typer(help="The public status page: export it as static files.", no_args_is_help=True,
                             rich_markup_mode=None)
app.add_typer(statuspage_app, name="statuspage")


@statuspage_app.command("export")
def statuspage_export(
    out: Annotated[Path, typer.Argument(metavar="DIR", help="Folder to write into (created if missing).",
                                        show_default=False)],
    watch: Annotated[bool, typer.Option("--watch", help="Keep exporting until interrupted (Ctrl-C).")] = False,
    interval: Annotated[float, typer.Option(metavar="SECONDS",
                                            help="With --watch: seconds between exports while incidents are open.")]
    = 30.0,
    idle_interval: Annotated[float, typer.Option(metavar="SECONDS", help="With --watch: seconds between exports "
                                                 "while none is.")] = 300.0,
    database_url: DatabaseUrl = None,
) -> None:
    """Write the status page, its v2 JSON and its Atom feed as static files, from the read model.

    Serve the folder from a host outside the platform, so customers can read the page
    when the platform that runs warroom is what is down."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from warroom.logs import configure_logging
    from warroom.models.components import CatalogError
    from warroom.startup import safe_url
    from warroom.statuspage.export import export

    if interval <= 0 or idle_interval <= 0:
        fail(EXIT_USAGE, "--interval and --idle-interval must be more than 0 seconds")
    settings = _read_model_settings(database_url)
    url = make_url(settings.read_model_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        # Opening it would leave an empty file behind, which then reads as "not migrated".
        fail(EXIT_NOT_FOUND, f"there is no read model at {url.database}: give --database-url, or set "
             "WARROOM_DATA_DIR to the data directory of the warroom to export")
    if watch:
        configure_logging(settings.log_level)  # a line per export
    try:
        result = export(settings, out, watch=watch, interval=interval, idle_interval=idle_interval)
    except CatalogError as err:
        fail(EXIT_USAGE, str(err))
    except OSError as err:  # the folder cannot be made or written
        fail(EXIT_USAGE, f"cannot write the export to {err.filename or out}: {err.strerror or err}")
    except SQLAlchemyError as err:
        first = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        fail(EXIT_ERROR, f"cannot read the read model at {safe_url(settings.read_model_url)} "
             f"({type(err).__name__}: {first}); is it migrated ('warroom db upgrade')?")
    except KeyboardInterrupt:
        return
    typer.echo(f"exported {len(result.files)} files to {out}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
