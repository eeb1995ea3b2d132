#!/bin/sh
# Tests of lib/stats.sh (specs/lib.md, "lib/stats.sh"). Run from the project root.
. ./lib/text.sh
. ./lib/stats.sh

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

check 'stats_lines counts newlines' 2 "$(stats_lines "a${nl}b${nl}")"
check 'stats_lines: a last line without newline is not counted' 1 "$(stats_lines "a${nl}b")"
check 'stats_lines of empty text is 0' 0 "$(stats_lines '')"
check 'stats_words counts blank-separated words' 3 "$(stats_words "  one two${nl}three  ")"
check 'stats_words of empty text is 0' 0 "$(stats_words '')"
check 'stats_chars counts bytes, newlines included' 6 "$(stats_chars "hello${nl}")"
check 'stats_top ranks by count' "3 b${nl}2 a" "$(stats_top 2 'b a b c b a')"
check 'stats_top breaks ties alphabetically' "1 x${nl}1 y" "$(stats_top 2 'z y x')"
check 'stats_top ignores case and punctuation' '3 the' "$(stats_top 1 'The the, THE end')"
check 'stats_top of empty text is empty' '' "$(stats_top 3 '')"

[ "$failures" -eq 0 ]
