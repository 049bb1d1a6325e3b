#!/bin/sh
# A stand-in for an LLM writer: reads the topic on stdin and improves its
# draft once it has been told what was wrong.
topic=$(cat)
if [ -n "$CAUDAL_FEEDBACK" ]; then
  echo "Draft $CAUDAL_ATTEMPT on $topic, revised after review ($CAUDAL_FEEDBACK): with concrete examples"
else
  echo "Draft $CAUDAL_ATTEMPT on $topic"
fi
