"""Names shared by every process: task queue and workflow ids."""

import re

DEFAULT_TASK_QUEUE = "warroom"
INCIDENT_WORKFLOW_PREFIX = "incident-"


def incident_workflow_id(number: int) -> str:
    return f"{INCIDENT_WORKFLOW_PREFIX}{number}"


def incident_number_from_workflow_id(workflow_id: str) -> int | None:
    """The incident a workflow belongs to, for log lines; None for any other workflow.

    Knows every id warroom gives a workflow of an incident: the incident's own,
    its runbook runs, its action-items tracker and the status-page fan-outs of
    its public events (``_INCIDENT_WORKFLOW_IDS``). Heartbeats, uptime checks,
    subscription confirmations and ids from elsewhere give None, even when they
    contain ``incident-<n>`` somewhere.
    """
    for pattern in _INCIDENT_WORKFLOW_IDS:
        match = pattern.fullmatch(workflow_id)
        if match:
            return int(match.group("number"))
    return None

INVALID_COMMAND = "invalid-input"
"""The detail of a workflow's refusal that is about the command's input, not the incident's
state (e.g. a role for someone nobody configured): the API answers it 422, not 409."""

# Activity names, shared by the workflow (which must not import the activity
# modules: they pull in SQLAlchemy and provider SDKs) and the worker.
PERSIST_INCIDENT_ACTIVITY = "persist_incident"
SEND_NOTIFICATION_ACTIVITY = "send_notification"

# Runbooks: one workflow per run, started by the incident's workflow.
RUNBOOK_HTTP_ACTIVITY = "runbook_http_step"
RUNBOOK_SHELL_ACTIVITY = "runbook_shell_step"
RUNBOOK_WAIT_ACTIVITY = "runbook_wait_until_healthy_step"
PERSIST_RUNBOOK_RUN_ACTIVITY = "persist_runbook_run"
RUNBOOK_EVENT_SIGNAL = "runbook_event"
"""Signal a run sends to its incident (a name, because the two workflows would
otherwise import each other)."""


def runbook_run_workflow_id(number: int, run: int) -> str:
    return f"{incident_workflow_id(number)}-runbook-{run}"
# The status page's subscriber fan-out (workflows.fanout, activities.statuspage).
LIST_SUBSCRIBERS_ACTIVITY = "list_subscribers"
DELIVER_TO_SUBSCRIBERS_ACTIVITY = "deliver_to_subscribers"
RECORD_DELIVERY_OUTCOME_ACTIVITY = "record_delivery_outcome"
FANOUT_WORKFLOW_PREFIX = "statuspage-fanout-"
FANOUT_WORKFLOW_NAME = "SubscriberFanoutWorkflow"
START_FANOUT_ACTIVITY = "start_subscriber_fanout"
"""Started from an activity, not as a child: a child's completion event would race
the incident workflow's continue-as-new, and the fan-out must outlive it anyway."""


def fanout_workflow_id(event_key: str) -> str:
    """One fan-out per public event, ever: the event key is unique."""
    return f"{FANOUT_WORKFLOW_PREFIX}{event_key.replace('/', '-')}"


def incident_event_key(number: int, slot: str) -> str:
    """The key of an incident's public event (``declared``, ``update-<seq>``)."""
    return f"{incident_workflow_id(number)}/{slot}"


# Asked by the send activity just before a page goes out (and by a page the
# per-contact cap held back): is it still wanted? An ack makes the answer no.
PAGE_WANTED_QUERY = "page_wanted"
# On-call: an escalation level's targets resolved against the configuration in force.
RESOLVE_TARGETS_ACTIVITY = "resolve_targets"
# Action items of a submitted postmortem: one tracker workflow per incident.
PERSIST_ACTION_ITEMS_ACTIVITY = "persist_action_items"


def action_items_workflow_id(number: int) -> str:
    return f"{incident_workflow_id(number)}-action-items"
# The incident channel (workflows.relay, activities.chat).
RELAY_SLACK_ACTIVITY = "relay_to_slack"
RELAY_WEBHOOKS_ACTIVITY = "relay_to_webhooks"
# Detection: every alert source reaches incidents through the same update-with-start.
INCIDENT_WORKFLOW_NAME = "IncidentWorkflow"
RECEIVE_ALERTS_UPDATE = "receive_alerts"
RAISE_ALERT_ACTIVITY = "raise_alert"
"""Alerts of the sources that run in the worker (heartbeats, uptime checks, customer reports)."""
HEARTBEAT_WORKFLOW_PREFIX = "heartbeat-"


def heartbeat_workflow_id(name: str) -> str:
    return f"{HEARTBEAT_WORKFLOW_PREFIX}{name}"
PROBE_ACTIVITY = "probe_uptime_check"
RECORD_CHECK_ACTIVITY = "record_uptime_check"




_SEQ = r"[1-9][0-9]{0,9}"
_INCIDENT = rf"{re.escape(INCIDENT_WORKFLOW_PREFIX)}(?P<number>{_SEQ})"
_INCIDENT_WORKFLOW_IDS = tuple(
    re.compile(pattern, re.ASCII)
    for pattern in (
        _INCIDENT,  # incident_workflow_id
        rf"{_INCIDENT}-runbook-{_SEQ}",  # runbook_run_workflow_id
        rf"{_INCIDENT}-action-items",  # action_items_workflow_id
        # fanout_workflow_id(incident_event_key(...)): the slot is "declared", "update-3", ...
        # (a subscription's confirmation fans out as "statuspage-fanout-subscriber-...": no incident)
        rf"{re.escape(FANOUT_WORKFLOW_PREFIX)}{_INCIDENT}-[a-z][a-z0-9]*(?:-[a-z0-9]+)*",
    )
)
