#!/bin/sh
# /usr/sbin/fcrdns-policyd: node with the heap flags of the systemd unit (see
# /lib/systemd/system/fcrdns-policyd.service and BENCHMARKS.md), then the program.
exec /usr/bin/node @NODE_FLAGS@ /usr/lib/fcrdns-policyd/fcrdns-policyd.js "$@"
