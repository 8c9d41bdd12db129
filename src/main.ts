#!/usr/bin/env node
/** The bundle's entry point: run the CLI and exit with its status. */
import { main } from './cli/cli.js';

main(process.argv.slice(2)).then(
  (status) => {
    // Exit explicitly: a one-shot command must not linger on a resolver's idle handles.
    process.exitCode = status;
    setImmediate(() => process.exit(status));
  },
  (error: unknown) => {
    process.stderr.write(`fcrdns-policyd: internal error: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(70);
  },
);
