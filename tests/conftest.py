"""Shared test configuration: hypothesis profiles and the `--update-goldens` flag."""

from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import HealthCheck, settings

from cfglang import worker

# CI must not flake: derandomised, no deadline, bounded examples. `fuzz` is for long runs
# of the tests marked `fuzz` (tests/fuzz.sh; FUZZ_MAX_EXAMPLES sets examples per property).
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=100)
settings.register_profile(
    "fuzz",
    deadline=None,
    max_examples=int(os.environ.get("FUZZ_MAX_EXAMPLES", "20000")),
    suppress_health_check=list(HealthCheck),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The compile worker pool sets the recursion limit and gc threshold once per process, when it
# is first used (docs/architecture.md). Start it before any test, so a hypothesis test that
# happens to make the first compile does not see the limit change under it (hypothesis
# reports that as an error), whatever order the tests run in.
worker.run(lambda: None)

# Tests never read or write the user's cache: one fresh cache directory per test run
# (inherited by the cflc subprocesses the CLI tests start).
os.environ["CFLC_CACHE_DIR"] = tempfile.mkdtemp(prefix="cflc-test-cache-")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite expected outputs of golden cases from the current behaviour",
    )


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))
