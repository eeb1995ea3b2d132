# lib/stats.sh: counting (specs/lib.md, "lib/stats.sh").
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
