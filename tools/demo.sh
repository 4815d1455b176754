#!/usr/bin/env bash
# The main job on a fresh machine: installs what is missing, then runs
# `nova-hypervisors demo` on the embedded simulators.
# Extra arguments go to the demo, e.g. tools/demo.sh --serve
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
exec "$TOOLS_VENV/bin/tox" -e demo -- "$@"
