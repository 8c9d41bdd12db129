#!/bin/sh
# /usr/sbin/fcrdns-policyd: node, then the program. The daemon (no command word) runs with the heap
# flags of the systemd unit (/usr/lib/systemd/system/fcrdns-policyd.service, BENCHMARKS.md): they
# keep its RSS near the live data. The commands (check, config, report, replay, query) are short
# runs an administrator starts by hand, and report/replay may read a whole log: they get node's
# own heap sizing, so a large log cannot abort them at the daemon's cap.
program=/usr/lib/fcrdns-policyd/fcrdns-policyd.js
command=
skip_value=
for argument in "$@"; do
	if [ -n "$skip_value" ]; then skip_value=; continue; fi
	case "$argument" in
	-c | --config | --helo | --since | --until | --top | --tag | --listen | --timeout) skip_value=yes ;;
	-*) ;;
	*) command=$argument; break ;;
	esac
done
if [ -n "$command" ]; then
	exec /usr/bin/node "$program" "$@"
fi
exec /usr/bin/node @NODE_FLAGS@ "$program" "$@"
