//! The wordstat project's implementation files, as the scripted workers write them: POSIX sh
//! only, so that the demo's gates pass on a machine with nothing but `sh` and the POSIX
//! utilities. Each was checked with dash and `bash --posix`.

/// The implementation content of a wordstat path, if it is one.
pub fn file(path: &str) -> Option<&'static str> {
    match path {
        "lib/text.sh" => Some(TEXT_SH),
        "lib/stats.sh" => Some(STATS_SH),
        "lib/report.sh" => Some(REPORT_SH),
        "bin/wordstat" => Some(WORDSTAT),
        _ => super::wordstat_tests::file(path),
    }
}

/// Reading and splitting text.
pub const TEXT_SH: &str = r##"# lib/text.sh: reading and splitting text (specs/lib.md, "lib/text.sh").
# Source it: it only defines functions, all named text_*.

# text_read FILE: prints the content of FILE, or standard input when FILE is "-".
text_read() {
	if [ "$1" = "-" ]; then
		cat
	else
		cat -- "$1"
	fi
}

# text_words: prints the words of standard input, one per line. Words are separated by
# blanks and newlines, as wc -w counts them.
text_words() {
	awk '{ for (i = 1; i <= NF; i++) print $i }'
}

# text_normalize: lowercases the words of standard input (one per line) and strips the
# punctuation around them, so that "The" and "the," are the same word; "don't" keeps its
# apostrophe. Words left empty are dropped.
text_normalize() {
	tr '[:upper:]' '[:lower:]' |
		sed -e 's/^[[:punct:]]*//' -e 's/[[:punct:]]*$//' -e '/^$/d'
}
"##;

/// Counting lines, words, characters and frequent words.
pub const STATS_SH: &str = r##"# lib/stats.sh: counting (specs/lib.md, "lib/stats.sh").
# Source lib/text.sh first: the word functions use text_words and text_normalize.
# Every function takes the text as its last argument and prints a number or a list.

# stats_lines TEXT: the number of newline characters in TEXT, as wc -l counts them.
stats_lines() {
	printf '%s' "$1" | wc -l | awk '{ print $1 }'
}

# stats_words TEXT: the number of words in TEXT (see text_words).
stats_words() {
	printf '%s' "$1" | text_words | wc -l | awk '{ print $1 }'
}

# stats_chars TEXT: the number of characters in TEXT, counted in bytes as wc -c does.
stats_chars() {
	printf '%s' "$1" | wc -c | awk '{ print $1 }'
}

# stats_top N TEXT: the N most frequent words of TEXT after text_normalize, one
# "COUNT WORD" per line, most frequent first; ties in alphabetical order.
stats_top() {
	printf '%s' "$2" | text_words | text_normalize | LC_ALL=C sort | uniq -c |
		LC_ALL=C sort -k1,1nr -k2,2 | head -n "$1" | awk '{ print $1, $2 }'
}
"##;

/// Formatting rows and the top-words list.
pub const REPORT_SH: &str = r##"# lib/report.sh: formatting wordstat's output (specs/cli.md, "Output").
# Source it: it only defines functions, all named report_*.

# report_row COLUMNS LINES WORDS CHARS NAME: prints one row of counts. COLUMNS holds the
# letters of the counts to show (l, w, c); they always come in that order, each
# right-aligned in 8 characters as wc does, then NAME unless it is empty.
report_row() {
	report_row_text=''
	case $1 in *l*) report_row_text="$report_row_text$(printf '%8d' "$2")" ;; esac
	case $1 in *w*) report_row_text="$report_row_text$(printf '%8d' "$3")" ;; esac
	case $1 in *c*) report_row_text="$report_row_text$(printf '%8d' "$4")" ;; esac
	if [ -n "$5" ]; then
		report_row_text="$report_row_text $5"
	fi
	printf '%s\n' "$report_row_text"
}

# report_top: reads "COUNT WORD" lines (as stats_top prints them) and prints them as a
# ranked list under a heading; prints nothing for empty input.
report_top() {
	awk 'NR == 1 { print "top words:" } { printf "%4d. %-16s %6d\n", NR, $2, $1 }'
}
"##;

/// The command: options, files or stdin, totals.
pub const WORDSTAT: &str = r##"#!/bin/sh
# wordstat: reports the line, word and character counts of text files (specs/cli.md).

usage() {
	cat <<'USAGE'
usage: wordstat [-lwc] [-t N] [FILE...]
Counts the lines, words and characters of each FILE, or of standard input when no FILE
is given or FILE is -. With several files, a last row gives the totals.
  -l        show line counts
  -w        show word counts
  -c        show character counts (bytes)
  -t N      then list the N most frequent words (case and punctuation ignored)
  -h        show this help
Without -l, -w or -c, all three counts are shown.
USAGE
}

fail_usage() {
	echo "wordstat: $1" >&2
	usage >&2
	exit 2
}

lib=${WORDSTAT_LIB:-$(dirname "$0")/../lib}
. "$lib/text.sh"
. "$lib/stats.sh"
. "$lib/report.sh"

columns=''
top=0
while [ $# -gt 0 ]; do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	-t | --top)
		[ $# -ge 2 ] || fail_usage "$1 needs a number"
		top=$2
		shift
		;;
	--)
		shift
		break
		;;
	-) break ;;
	-*)
		case ${1#-} in
		*[!lwc]*) fail_usage "unknown option $1" ;;
		esac
		columns="$columns${1#-}"
		;;
	*) break ;;
	esac
	shift
done
case $top in
'' | *[!0-9]*) fail_usage "-t needs a number, not '$top'" ;;
esac
[ -n "$columns" ] || columns=lwc
[ $# -gt 0 ] || set -- -

status=0
files=0
total_lines=0
total_words=0
total_chars=0
all=''
for file in "$@"; do
	if [ "$file" != - ] && { [ ! -f "$file" ] || [ ! -r "$file" ]; }; then
		echo "wordstat: cannot read $file" >&2
		status=1
		continue
	fi
	# The x keeps the text's last newlines, which $(...) would otherwise strip.
	text=$(text_read "$file" && echo x)
	text=${text%x}
	lines=$(stats_lines "$text")
	words=$(stats_words "$text")
	chars=$(stats_chars "$text")
	name=$file
	[ "$name" != - ] || name=''
	report_row "$columns" "$lines" "$words" "$chars" "$name"
	files=$((files + 1))
	total_lines=$((total_lines + lines))
	total_words=$((total_words + words))
	total_chars=$((total_chars + chars))
	all="$all$text
"
done
if [ "$files" -gt 1 ]; then
	report_row "$columns" "$total_lines" "$total_words" "$total_chars" total
fi
if [ "$top" -gt 0 ]; then
	stats_top "$top" "$all" | report_top
fi
exit "$status"
"##;
