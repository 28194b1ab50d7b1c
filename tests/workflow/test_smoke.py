import asyncio
import uuid

from warroom.models.incident import AckInput, IncidentInput
from warroom.models.severity import Severity
from warroom.workflows import IncidentWorkflow
from tests.conftest import fast_policy


async def test_smoke(harness):
    n = 1000 + int(uuid.uuid4().int % 100000)
    h = await harness.client.start_workflow(
        IncidentWorkflow.run,
        IncidentInput(number=n, title="DNS slow", severity=Severity.SEV2, policy=fast_policy()),
        id=f"incident-{n}-{uuid.uuid4().hex[:6]}",
        task_queue=harness.task_queue,
    )
    await asyncio.sleep(2.5)
    await h.execute_update(IncidentWorkflow.acknowledge, AckInput(person="bob"))
    await asyncio.sleep(4)
    view = await h.query(IncidentWorkflow.view)
    for e in view.state.timeline:
        print(e.at.time(), e.kind, e.text)
    print([ (r.kind, r.person_id, r.status) for r in harness.notifications(n)])
