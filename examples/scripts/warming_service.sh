#!/bin/sh
# Fails on its first two attempts ("warming up"), then answers.
question=$(cat)
if [ "${CAUDAL_ATTEMPT:-1}" -lt 3 ]; then
  echo "warming up (attempt $CAUDAL_ATTEMPT)" >&2
  exit 75
fi
echo "  ready: '$question' answered on attempt $CAUDAL_ATTEMPT"
