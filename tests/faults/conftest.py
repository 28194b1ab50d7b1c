"""The fault suite reuses the paging stack (API + worker + fake Twilio/SendGrid in this
process) and the process stack of the end-to-end tests."""

from tests.e2e.conftest import make_stack as make_process_stack  # noqa: F401
from tests.e2e.conftest import pytest_runtest_makereport  # noqa: F401
from tests.paging.conftest import fake_sendgrid, fake_twilio, make_stack  # noqa: F401
