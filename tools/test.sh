#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing, then
# runs tox (lint, sample config, unit and functional tests).
# Extra arguments go to tox, e.g. tools/test.sh -e py3 -- tests/unit
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
exec "$TOOLS_VENV/bin/tox" "$@"
