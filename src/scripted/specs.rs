//! The specs the scripted planner writes before it plans: precise enough that each task can
//! be done from them alone, as orch's planner prompt asks of a real planner.

use std::fmt::Write as _;

/// The spec files, in the order they are written, with the plan's description of each.
pub const SPECS: [(&str, &str); 3] = [
    (
        "specs/architecture.md",
        "the request, the layout, the modules and their dependencies, conventions",
    ),
    (
        "specs/lib.md",
        "lib/text.sh, lib/stats.sh and lib/report.sh: the contract of every function",
    ),
    (
        "specs/cli.md",
        "bin/wordstat: usage, options, output and exit codes",
    ),
];

/// The content of a spec file: ours, or a short generic one for a path orch asked for.
pub fn content(path: &str, request: &str) -> String {
    match path {
        "specs/architecture.md" => architecture(request),
        "specs/lib.md" => LIB_MD.to_string(),
        "specs/cli.md" => CLI_MD.to_string(),
        other => generic(other, request),
    }
}

fn architecture(request: &str) -> String {
    let mut s = String::from("# wordstat: architecture\n\n## The request\n\n");
    push_fenced(&mut s, request);
    s.push_str(ARCHITECTURE_BODY);
    s
}

fn generic(path: &str, request: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    let title = name.split('.').next().unwrap_or(name);
    let mut s = format!(
        "# {title}\n\nPart of wordstat; start with specs/architecture.md, which this spec \
         follows.\n\n## The request\n\n"
    );
    push_fenced(&mut s, request);
    s
}

/// The request verbatim, in a fence longer than any backtick run inside it.
fn push_fenced(s: &mut String, text: &str) {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let _ = writeln!(s, "{fence}text\n{text}\n{fence}");
}

const ARCHITECTURE_BODY: &str = r#"
## What is built

`wordstat`, a command-line tool that reports the line, word and character counts of text
files (like `wc`), with a total row for several files and, on request, the most frequent
words. It is written in POSIX `sh` and uses only POSIX utilities (`cat`, `awk`, `sed`, `tr`,
`sort`, `uniq`, `head`, `wc`), so it runs wherever `sh` does.

## Layout

| Path                      | What                                           | Spec             |
|---------------------------|------------------------------------------------|------------------|
| `lib/text.sh`             | reading and splitting text                     | specs/lib.md     |
| `lib/stats.sh`            | counting lines, words, characters, top words   | specs/lib.md     |
| `lib/report.sh`           | formatting rows and the top-words list         | specs/lib.md     |
| `bin/wordstat`            | the command: options, files, totals            | specs/cli.md     |
| `tests/*_test.sh`         | one test file per module                       |                  |
| `tests/fixtures/poem.txt` | the sample text the command tests count        |                  |
| `scripts/lint.sh`         | the lint gate (exists before the run)          |                  |
| `scripts/test.sh`         | the test gate (exists before the run)          |                  |

## Modules and dependencies

```text
bin/wordstat ──> lib/stats.sh ──> lib/text.sh
      │      └─────────────────> lib/text.sh
      └────────> lib/report.sh
```

- `lib/*.sh` files are libraries: sourcing one only defines functions, each named after its
  module (`text_*`, `stats_*`, `report_*`). A library never sources another one: whoever
  sources `lib/stats.sh` sources `lib/text.sh` first.
- `bin/wordstat` finds the libraries in `$(dirname "$0")/../lib`, or in `$WORDSTAT_LIB` when
  set, and sources all three.

## Conventions

- `#!/bin/sh` and POSIX only: no `local`, no arrays, no `[[ ]]`, no `echo -e`. Functions
  keep their temporaries in variables prefixed with the function's name.
- Sorting runs with `LC_ALL=C` so that the output is the same in every locale.
- Text is passed to the `stats_*` functions as an argument, so that one read of a file or of
  standard input can be counted several ways.
- Errors go to stderr, prefixed with `wordstat: `.

## Tests first

Every module has its test file, written before the module and failing until it exists:
`tests/text_test.sh`, `tests/stats_test.sh`, `tests/report_test.sh`, `tests/wordstat_test.sh`.
A test file runs from the project root with `sh tests/NAME_test.sh`, prints `ok - ...` or
`not ok - ...` per check, and exits non-zero when any check fails.

## Gates

- lint: `sh scripts/lint.sh`: every script parses (`sh -n`); `bin/*` is executable and starts
  with `#!/bin/sh`.
- test: `sh scripts/test.sh`: runs every `tests/*_test.sh`; all must pass.
"#;

const LIB_MD: &str = r#"# wordstat: the libraries

Each library is sourced (`. lib/NAME.sh`) and only defines functions. "Text" is any string
of bytes without NUL. Numbers are printed in decimal, without padding, one per line.

## lib/text.sh

### `text_read FILE`

Prints the content of `FILE` unchanged, or standard input when `FILE` is `-`. Fails (non-zero)
when the file cannot be read.

### `text_words`

Reads standard input and prints its words, one per line, in order. Words are separated by
runs of blanks (spaces, tabs) and newlines, exactly as `wc -w` counts them; punctuation stays
part of the word (`stop.` is a word). Empty input prints nothing.

### `text_normalize`

Reads words (one per line) and prints each lowercased, with the punctuation at its start and
end removed: `"The,"` becomes `the`, `(don't)` becomes `don't`. A word that is only
punctuation (`--`) is dropped.

## lib/stats.sh

Needs `lib/text.sh` sourced first.

### `stats_lines TEXT`

The number of newline characters in `TEXT`, as `wc -l` counts them: `"a\nb\n"` → 2,
`"a\nb"` → 1, `""` → 0.

### `stats_words TEXT`

The number of words of `TEXT` as `text_words` splits them: `"  one two\nthree  "` → 3.

### `stats_chars TEXT`

The number of bytes of `TEXT`, newlines included, as `wc -c` counts them: `"hello\n"` → 6.

### `stats_top N TEXT`

The `N` most frequent words of `TEXT` after `text_normalize`, one `COUNT WORD` line each,
most frequent first; equal counts in alphabetical (byte) order. `stats_top 2 'b a b c b a'`
prints `3 b` then `2 a`. Empty text prints nothing.

## lib/report.sh

See specs/cli.md, "Output", for the formats.

### `report_row COLUMNS LINES WORDS CHARS NAME`

Prints one row. `COLUMNS` holds the letters of the counts to show, among `l`, `w`, `c`, in
any order; the counts always come in the order lines, words, characters, each right-aligned
in 8 characters (`printf '%8d'`), then a space and `NAME` unless `NAME` is empty.

### `report_top`

Reads `COUNT WORD` lines (as `stats_top` prints them) and prints the heading `top words:`
then one line per word: `printf '%4d. %-16s %6d\n' RANK WORD COUNT`. Prints nothing at all
for empty input.
"#;

const CLI_MD: &str = r#"# wordstat: the command

## Usage

```text
wordstat [-lwc] [-t N] [FILE...]
```

Counts the lines, words and characters of each `FILE`, or of standard input when no `FILE` is
given or a `FILE` is `-`.

| Option         | Meaning                                                        |
|----------------|----------------------------------------------------------------|
| `-l`           | show line counts                                               |
| `-w`           | show word counts                                               |
| `-c`           | show character counts (bytes)                                  |
| `-t N`, `--top N` | then list the `N` most frequent words                       |
| `-h`, `--help` | print the usage on stdout and exit 0                           |
| `--`           | end of options                                                 |

Letters combine (`-lw`). Without any of `-l`, `-w`, `-c`, all three counts are shown.

## Output

One row per readable file (`report_row`): the selected counts, right-aligned in 8 characters
each, then a space and the file's name; standard input has no name. With two or more files
counted, a last row named `total` sums them. With `-t N` (N > 0), the top-words list
(`report_top`) follows, computed over all the files together.

```text
$ wordstat tests/fixtures/poem.txt
       3      12      61 tests/fixtures/poem.txt
$ wordstat -w -t 2 tests/fixtures/poem.txt
      12 tests/fixtures/poem.txt
top words:
   1. the                   3
   2. dog                   2
```

## Errors and exit codes

- 0: every file was counted.
- 1: a file could not be read (not found, a directory, unreadable): `wordstat: cannot read
  FILE` on stderr; the other files are still counted.
- 2: bad usage (unknown option, `-t` without a number): the message, then the usage, on
  stderr.
"#;
