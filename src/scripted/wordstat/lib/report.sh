# lib/report.sh: formatting wordstat's output (specs/cli.md, "Output").
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
