#!/bin/sh
# Tests of lib/report.sh (specs/cli.md, "Output"). Run from the project root.
. ./lib/report.sh

failures=0
check() { # check NAME EXPECTED ACTUAL
	if [ "$2" = "$3" ]; then
		echo "ok - $1"
	else
		printf 'not ok - %s\n  expected: [%s]\n  got:      [%s]\n' "$1" "$2" "$3"
		failures=$((failures + 1))
	fi
}
nl='
'

check 'report_row shows all columns and the name' '       1      22     333 notes.txt' \
	"$(report_row lwc 1 22 333 notes.txt)"
check 'report_row keeps l, w, c order' '       1     333' "$(report_row cl 1 22 333 '')"
check 'report_row without a name' '      22' "$(report_row w 1 22 333 '')"
check 'report_top ranks the words' "top words:${nl}   1. the                   3${nl}   2. dog                   2" \
	"$(printf '3 the\n2 dog\n' | report_top)"
check 'report_top of nothing prints nothing' '' "$(printf '' | report_top)"

[ "$failures" -eq 0 ]
