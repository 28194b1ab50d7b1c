"""Runbook definitions as pure rules: loading, refusing bad files, parameters, safe templating."""

from __future__ import annotations

import shlex
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from warroom.models.runbook import (
    HttpStep,
    ParameterError,
    RetrySpec,
    RunbookError,
    TemplateError,
    check_params,
    parse_runbook,
    render_argv,
    render_body,
    render_headers,
    render_path,
    render_text,
    retry_delay,
    scrub,
    step_key,
    trim,
)
from warroom.runbooks import load_catalogue, load_runbook
from warroom.runbooks.catalogue import DEFAULT_RUNBOOKS_DIR

SHIPPED = {
    "deployment-rollback",
    "service-restart",
    "database-failover",
    "maintenance-mode",
    "scale-up",
    "feature-flag-disable",
    "dns-propagation-issues",
    "email-delivery-failures",
    "payment-processing-outage",
    "certificate-expiry-recovery",
}

GOOD = """
title: Turn a flag off
when_to_use: A flag broke something.
parameters:
  flag: {type: string, required: true}
  replicas: {type: integer, default: 3, minimum: 1, maximum: 20}
steps:
  - name: Flag off
    kind: http
    endpoint: platform
    method: put
    path: /flags/{{ flag }}
    headers: {Authorization: "Bearer {{ secret.token }}"}
    body: {enabled: false, replicas: "{{ replicas }}", note: "run {{ run }} of incident {{ incident }}"}
  - name: Look
    kind: shell
    argv: [echo, "{{ flag }}"]
    env: {TOKEN: "{{ secret.token }}"}
"""


def good() -> dict:
    return yaml.safe_load(GOOD)


def test_every_shipped_runbook_loads_and_covers_the_guide() -> None:
    catalogue = load_catalogue()
    assert set(catalogue.runbooks) == SHIPPED
    for rb in catalogue:
        assert rb.title and rb.when_to_use.strip() and rb.steps
    # The mitigations that change production are the ones that need a confirmation.
    assert {rb.id for rb in catalogue if rb.destructive} >= {
        "deployment-rollback",
        "database-failover",
        "service-restart",
        "maintenance-mode",
    }
    # A failover is too consequential for one person: it starts with an approval.
    assert catalogue.runbooks["database-failover"].steps[0].kind == "approval"


def test_a_good_runbook_parses_with_typed_steps() -> None:
    rb = parse_runbook(good(), "flag-off", "flag-off.yaml")
    assert rb.id == "flag-off"
    step = rb.steps[0]
    assert isinstance(step, HttpStep) and step.method == "PUT"
    assert step.timeout == timedelta(seconds=30) and step.retry.max_attempts == 1


def _with(path: str, value: object) -> dict:
    data = good()
    target = data
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(parts[-1]) if parts[-1].isdigit() else parts[-1]] = value
    return data


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_with("titel", "x"), "titel: unknown key"),
        (_with("steps.0.methd", "GET"), "steps.0.methd: unknown key"),
        (_with("steps.0.kind", "ssh"), "steps.0: unknown step kind"),
        (_with("steps.0.method", "TRACE"), "steps.0.method:"),
        (_with("steps.0.timeout", "soon"), "steps.0.timeout: 'soon' is not a duration"),
        (_with("steps.0.retry", {"max_attempts": 0}), "steps.0.retry.max_attempts:"),
        (_with("steps.0.path", "/flags/{{ flg }}"), "steps.0.path: unknown parameter 'flg'"),
        (_with("steps.0.body", {"token": "{{ secret.token }}"}), "steps.0.body.token: secrets may only be used"),
        (_with("steps.1.argv", ["{{ flag }}", "x"]), "steps.1.argv.0: the program must be written out"),
        (_with("steps.0.endpoint", "http://evil.example"), "steps.0.endpoint:"),
        (_with("parameters.flag", {"type": "string", "required": True, "default": "x"}),
         "parameters.flag: a required parameter cannot have a default"),
        (_with("parameters.replicas", {"type": "integer", "default": "many"}), "parameters.replicas: default:"),
        (_with("parameters.incident", {"type": "string", "default": "x"}), "'incident' cannot be a parameter name"),
        (_with("steps", []), "steps:"),
        (_with("id", "other"), "id: 'other' does not match the file name"),
    ],
)
def test_a_bad_runbook_is_refused_naming_the_file_and_the_key(data: dict, expected: str) -> None:
    with pytest.raises(RunbookError) as err:
        parse_runbook(data, "flag-off", "runbooks/flag-off.yaml")
    message = str(err.value)
    assert message.startswith("runbooks/flag-off.yaml: "), message
    assert expected in message, message


def test_a_bad_file_stops_the_whole_catalogue_with_its_path(tmp_path: Path) -> None:
    (tmp_path / "good-one.yaml").write_text(GOOD)
    bad = tmp_path / "broken.yaml"
    bad.write_text(GOOD.replace("kind: shell", "kind: shell\n    shell: true"))
    with pytest.raises(RunbookError, match=r"broken\.yaml: steps\.1\.shell: unknown key"):
        load_catalogue(tmp_path)
    bad.write_text("title: [unclosed")
    with pytest.raises(RunbookError, match=r"broken\.yaml: not valid YAML"):
        load_runbook(bad)
    bad.unlink()
    assert set(load_catalogue(tmp_path).runbooks) == {"good-one"}


def test_the_shipped_directory_is_the_default() -> None:
    assert load_catalogue().directory == DEFAULT_RUNBOOKS_DIR


# --- parameters ---------------------------------------------------------------------


def test_parameters_get_defaults_and_their_types() -> None:
    rb = parse_runbook(good(), "flag-off", "x")
    assert check_params(rb, {"flag": "new-checkout"}) == {"flag": "new-checkout", "replicas": 3}
    assert check_params(rb, {"flag": "a", "replicas": "7"})["replicas"] == 7


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({}, "flag: required"),
        ({"flag": "x", "replicas": 0}, "replicas: must be at least 1"),
        ({"flag": "x", "replicas": 21}, "replicas: must be at most 20"),
        ({"flag": "x", "replicas": "many"}, "replicas: expected an integer"),
        ({"flag": "x", "replicas": 2.5}, "replicas: expected an integer"),
        ({"flag": "x", "replicas": True}, "replicas: expected an integer"),
        ({"flag": "-rf"}, "flag: use letters"),
        ({"flag": "a b"}, "flag: use letters"),
        ({"flag": "$(reboot)"}, "flag: use letters"),
        ({"flag": "a\x00b"}, "flag: must not contain control characters"),
        ({"flag": "x", "colour": "red"}, "colour: not a parameter of this runbook"),
    ],
)
def test_bad_parameters_are_refused_with_the_reason(given: dict, problem: str) -> None:
    rb = parse_runbook(good(), "flag-off", "x")
    with pytest.raises(ParameterError) as err:
        check_params(rb, given)
    assert problem in str(err.value)


def test_every_parameter_problem_is_reported_at_once() -> None:
    rb = parse_runbook(good(), "flag-off", "x")
    with pytest.raises(ParameterError) as err:
        check_params(rb, {"replicas": 99, "colour": "red"})
    message = str(err.value)
    for problem in ("flag: required", "replicas: must be at most 20", "colour: not a parameter"):
        assert problem in message, message


def test_boolean_and_choice_parameters() -> None:
    data = good()
    data["parameters"] = {
        "enabled": {"type": "boolean", "default": True},
        "region": {"type": "choice", "choices": ["eu", "us"], "default": "eu"},
    }
    data["steps"] = [data["steps"][0] | {"path": "/x", "body": {"on": "{{ enabled }}", "region": "{{ region }}"}}]
    rb = parse_runbook(data, "t", "x")
    assert check_params(rb, {"enabled": "off"}) == {"enabled": False, "region": "eu"}
    with pytest.raises(ParameterError, match="region: must be one of eu, us"):
        check_params(rb, {"region": "asia"})
    with pytest.raises(ParameterError, match="enabled: expected true or false"):
        check_params(rb, {"enabled": "perhaps"})


# --- templating ---------------------------------------------------------------------


def test_a_value_stays_one_argument_whatever_it_contains() -> None:
    hostile = "x; rm -rf / $(reboot) `id` | cat"
    argv = render_argv(["printf", "%s\n", "{{ v }}", "--name={{ v }}"], {"v": hostile})
    assert argv == ["printf", "%s\n", hostile, f"--name={hostile}"]
    assert len(shlex.split(shlex.join(argv))) == 4


def test_a_value_cannot_become_an_option() -> None:
    with pytest.raises(TemplateError, match="would be read as an option"):
        render_argv(["rm", "{{ v }}"], {"v": "-rf"})
    assert render_argv(["tool", "-n", "{{ v }}"], {"v": "a"}) == ["tool", "-n", "a"]


def test_a_value_is_one_encoded_part_of_a_url_path() -> None:
    assert render_path("/flags/{{ v }}", {"v": "a/b?c#d"}) == "/flags/a%2Fb%3Fc%23d"
    assert render_path("/replicas/{{ n }}", {"n": 3}) == "/replicas/3"
    for bad in ("..", ".", ""):
        with pytest.raises(TemplateError):
            render_path("/flags/{{ v }}", {"v": bad})


def test_body_placeholders_keep_their_type_and_stay_inside_strings() -> None:
    body = {"count": "{{ n }}", "on": "{{ b }}", "msg": "set to {{ n }}", "list": ["{{ s }}"]}
    assert render_body(body, {"n": 4, "b": False, "s": 'a"b'}) == {
        "count": 4,
        "on": False,
        "msg": "set to 4",
        "list": ['a"b'],
    }


def test_secrets_only_where_allowed_and_never_in_output() -> None:
    with pytest.raises(TemplateError, match="cannot be used here"):
        render_text("{{ secret.token }}", {})
    assert render_headers({"Authorization": "Bearer {{ secret.token }}"}, {}, {"token": "s3cr3t"}) == {
        "Authorization": "Bearer s3cr3t"
    }
    with pytest.raises(TemplateError, match="secret 'other' is not configured"):
        render_headers({"X": "{{ secret.other }}"}, {}, {"token": "s3cr3t"})
    with pytest.raises(TemplateError, match="line break"):
        render_headers({"X": "{{ v }}"}, {"v": "a\r\nInjected: 1"}, {})
    assert scrub("token=s3cr3t and s3cr3t", {"token": "s3cr3t"}) == "token=*** and ***"


def test_trim_keeps_the_start_and_the_end() -> None:
    text = "START" + "x" * 10_000 + "END"
    out = trim(text, 500)
    assert len(out) <= 500 and out.startswith("START") and out.endswith("END") and "characters cut" in out
    assert trim("short", 500) == "short"


def test_retry_delays_grow_and_are_capped() -> None:
    spec = RetrySpec(max_attempts=5, initial_interval="1s", backoff=2.0, max_interval="3s")
    assert [retry_delay(spec, n).total_seconds() for n in (1, 2, 3, 4)] == [1.0, 2.0, 3.0, 3.0]


def test_idempotency_keys_name_incident_run_step_and_attempt() -> None:
    assert step_key(42, 3, 2, 1) == "incident-42/run-3/step-2/attempt-1"


def test_the_run_workflow_imports_no_io() -> None:
    """Workflow code stays deterministic: no database, HTTP client, settings or activities."""
    import subprocess
    import sys

    code = (
        "import sys, warroom.workflows.runbook; "
        "print(' '.join(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'httpx') "
        "or m in ('warroom.settings', 'warroom.runbooks.steps') or m.startswith('warroom.activities')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
