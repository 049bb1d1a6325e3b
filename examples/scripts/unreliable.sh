#!/bin/sh
# Always fails, like an upstream that is down.
cat >/dev/null
echo "upstream unavailable" >&2
exit 2
