#!/bin/sh
# The lint gate (orch.yaml, gates.lint): every shell script must parse, and every command
# in bin/ must be an executable POSIX sh script. Run from the project root.
status=0
for f in lib/*.sh bin/* tests/*.sh scripts/*.sh; do
	[ -f "$f" ] || continue
	if ! sh -n "$f"; then
		echo "lint: $f: syntax error" >&2
		status=1
	fi
done
for f in bin/*; do
	[ -f "$f" ] || continue
	if [ ! -x "$f" ]; then
		echo "lint: $f: not executable (chmod +x $f)" >&2
		status=1
	fi
	if [ "$(head -n 1 "$f")" != '#!/bin/sh' ]; then
		echo "lint: $f: must start with #!/bin/sh" >&2
		status=1
	fi
done
[ "$status" -ne 0 ] || echo "lint: ok"
exit "$status"
