"""Names shared by every process: task queue and workflow ids."""

DEFAULT_TASK_QUEUE = "warroom"
INCIDENT_WORKFLOW_PREFIX = "incident-"


def incident_workflow_id(number: int) -> str:
    return f"{INCIDENT_WORKFLOW_PREFIX}{number}"


def incident_number_from_workflow_id(workflow_id: str) -> int | None:
    if not workflow_id.startswith(INCIDENT_WORKFLOW_PREFIX):
        return None
    tail = workflow_id[len(INCIDENT_WORKFLOW_PREFIX):]
    return int(tail) if tail.isdigit() else None

# Activity names, shared by the workflow (which must not import the activity
# modules: they pull in SQLAlchemy and provider SDKs) and the worker.
PERSIST_INCIDENT_ACTIVITY = "persist_incident"
SEND_NOTIFICATION_ACTIVITY = "send_notification"

# Asked by the send activity just before a page goes out (and by a page the
# per-contact cap held back): is it still wanted? An ack makes the answer no.
PAGE_WANTED_QUERY = "page_wanted"
