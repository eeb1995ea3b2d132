#!/bin/sh
# The test gate (orch.yaml, gates.test): runs every tests/*_test.sh from the project root
# and fails if any of them fails.
status=0
count=0
for t in tests/*_test.sh; do
	[ -f "$t" ] || continue
	count=$((count + 1))
	echo "== $t"
	if sh "$t"; then
		echo "PASS $t"
	else
		echo "FAIL $t"
		status=1
	fi
done
echo "$count test file(s) run"
exit "$status"
