/**
 * Baseline (a): a null policy server. It parses requests properly (the daemon's own codec) and
 * answers action=DUNNO at once: no DNS, no logging. The floor for the protocol on this machine.
 * Usage: null-server.ts PORT
 */
import { listenForPolicy } from './lib/policy-listener.js';

listenForPolicy(Number(process.argv[2]), (_clientAddress, reply) => reply());
