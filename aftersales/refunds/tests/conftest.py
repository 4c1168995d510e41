import pytest

from aftersales.refunds.gateways import sandbox


@pytest.fixture(autouse=True)
def _sandbox_script():
    # The sandbox's scripted outcomes are per process: never let one test's leftovers reach the next.
    sandbox.script()
    yield
    sandbox.script()


@pytest.fixture
def deferred(settings):
    """Pay the sandbox the way a deployment with a broker does: after the commit, through the tasks,
    so a test can hold each step (submission, callbacks) and look between them."""
    settings.AFTERSALES_REFUNDS_INLINE_SANDBOX = False
    return settings
