#!/bin/sh
# The fuzzers, run long: every test marked `fuzz` (the compiler's properties in
# tests/test_properties.py, the formatter's mutation fuzzer in tests/test_fmt_fuzz.py and
# reused programs against cold builds in tests/test_keep.py)
# under the `fuzz` hypothesis profile, randomised, FUZZ_MAX_EXAMPLES examples per property
# (20000 by default). CI runs the same tests in its short derandomised `ci` profile.
#   tests/fuzz.sh                                  # everything, long
#   FUZZ_MAX_EXAMPLES=2000 tests/fuzz.sh -k fmt    # pytest options pass through
HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-fuzz}" exec "${PYTHON:-python}" -m pytest -q -m fuzz \
  --hypothesis-show-statistics "$@"
