/** The node flags the shipped launchers use: see test/helpers/shipped.ts. */
export { shippedNodeFlags } from '../../test/helpers/shipped.js';
