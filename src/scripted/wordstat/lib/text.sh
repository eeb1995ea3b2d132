# lib/text.sh: reading and splitting text (specs/lib.md, "lib/text.sh").
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
