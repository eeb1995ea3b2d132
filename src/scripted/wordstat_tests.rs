//! The wordstat project's tests, as the scripted workers write them (before the code they
//! test). Each test file is plain `sh`, self-contained (a task owns its files alone, so there
//! is no shared helper), prints one `ok`/`not ok` line per check, and fails if any check does.

/// The content of a wordstat test file or fixture, if the path is one.
pub fn file(path: &str) -> Option<&'static str> {
    match path {
        "tests/text_test.sh" => Some(TEXT_TEST),
        "tests/stats_test.sh" => Some(STATS_TEST),
        "tests/report_test.sh" => Some(REPORT_TEST),
        "tests/wordstat_test.sh" => Some(WORDSTAT_TEST),
        "tests/fixtures/poem.txt" => Some(POEM),
        _ => None,
    }
}

/// Tests of lib/text.sh.
pub const TEXT_TEST: &str = r##"#!/bin/sh
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
"##;

/// Tests of lib/stats.sh.
pub const STATS_TEST: &str = r##"#!/bin/sh
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
"##;

/// Tests of lib/report.sh.
pub const REPORT_TEST: &str = r##"#!/bin/sh
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
"##;

/// Tests of bin/wordstat.
pub const WORDSTAT_TEST: &str = r##"#!/bin/sh
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
"##;

/// The fixture the command tests count: 3 lines, 12 words, 61 bytes.
pub const POEM: &str = r##"The quick brown fox
jumps over the lazy dog.
The dog sleeps.
"##;
