/**
 * A full garbage collection on demand, for tests that check what is (not) kept alive. The flag is
 * set at run time (tap starts test files without it), and `gc` is read from a new context: the
 * current one was created before the flag existed.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
export const collectGarbage = runInNewContext('gc') as () => void;
