"""The on-call activity: who an escalation level means now, from the configuration in force.

The workflow cannot read the database, so when a level falls due it asks here.
The answer (people, how to reach them, what the paging rules say) is recorded
in the workflow's history, so a replay sees the same people even after the
configuration changed again. Read-only, so running it twice is harmless.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from warroom.models import routing
from warroom.models.config_store import CurrentConfig
from warroom.models.ids import RESOLVE_TARGETS_ACTIVITY
from warroom.models.policy import PolicyError
from warroom.models.routing import ResolveTargetsInput, ResolveTargetsResult


class OnCallActivities:
    def __init__(self, config: CurrentConfig) -> None:
        self._config = config

    @activity.defn(name=RESOLVE_TARGETS_ACTIVITY)
    def resolve_targets(self, inp: ResolveTargetsInput) -> ResolveTargetsResult:
        try:
            current = self._config.get()
        except PolicyError as err:  # a stored version that no longer validates: say so, do not retry
            raise ApplicationError(str(err), type="ConfigurationError", non_retryable=True) from None
        if current is None:
            return ResolveTargetsResult(stored=False)
        resolution = routing.resolve_level(
            current.policy,
            inp.escalation,
            inp.level,
            inp.targets,
            inp.severity,
            inp.team,
            inp.at,
            first=inp.first,
            config_version=current.version,
        )
        return ResolveTargetsResult(stored=True, resolution=resolution)

    def all(self) -> list[object]:
        return [self.resolve_targets]
