#!/bin/sh
# Stands in for a pager: reads a ticket id on stdin and says who was paged.
id=$(cat)
echo "paged on-call for #$id ($CAUDAL_STEP)"
