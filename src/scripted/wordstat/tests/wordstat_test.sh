#!/bin/sh
# Tests of bin/wordstat (specs/cli.md). Run from the project root.
poem=tests/fixtures/poem.txt

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
wordstat() {
	sh bin/wordstat "$@"
}

check 'counts lines, words and characters of a file' \
	"       3      12      61 $poem" "$(wordstat "$poem")"
check '-w shows only words' "      12 $poem" "$(wordstat -w "$poem")"
check '-lc shows lines and characters' "       3      61 $poem" "$(wordstat -lc "$poem")"
check 'reads standard input without a file' '       2       3       6' \
	"$(printf 'a b\nc\n' | wordstat)"
check 'several files get a total row' "      24 total" "$(wordstat -w "$poem" "$poem" | tail -n 1)"
check '-t lists the most frequent words' "top words:${nl}   1. the                   3${nl}   2. dog                   2" \
	"$(wordstat -t 2 "$poem" | tail -n 3)"

wordstat tests/fixtures/missing.txt >/dev/null 2>&1
check 'a missing file exits 1' 1 "$?"
check 'a missing file is reported on stderr' 'wordstat: cannot read tests/fixtures/missing.txt' \
	"$(wordstat tests/fixtures/missing.txt 2>&1 >/dev/null)"
wordstat -x "$poem" >/dev/null 2>&1
check 'an unknown option exits 2' 2 "$?"
check '-h shows the usage' 'usage: wordstat [-lwc] [-t N] [FILE...]' "$(wordstat -h | head -n 1)"

[ "$failures" -eq 0 ]
