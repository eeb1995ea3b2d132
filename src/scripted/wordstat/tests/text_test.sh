#!/bin/sh
# Tests of lib/text.sh (specs/lib.md, "lib/text.sh"). Run from the project root.
. ./lib/text.sh

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

check 'text_words splits on blanks and newlines' "one${nl}two${nl}three${nl}four" \
	"$(printf 'one  two\tthree\n\n  four\n' | text_words)"
check 'text_words keeps punctuation in words' "don't${nl}stop." \
	"$(printf "don't stop.\n" | text_words)"
check 'text_words of empty input is empty' '' "$(printf '' | text_words)"
check 'text_normalize lowercases' "the${nl}end" "$(printf 'The\nEND\n' | text_normalize)"
check 'text_normalize strips surrounding punctuation' "end${nl}don't" \
	"$(printf '%s\n' '"end."' "(don't)" | text_normalize)"
check 'text_normalize drops punctuation-only words' 'a' \
	"$(printf '%s\n' '--' a '...' | text_normalize)"
check 'text_read - reads standard input' 'hello' "$(echo hello | text_read -)"
check 'text_read FILE reads the file' '#!/bin/sh' "$(text_read tests/text_test.sh | head -n 1)"

[ "$failures" -eq 0 ]
