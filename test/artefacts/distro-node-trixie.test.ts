/** The shipped-bundle tests on Debian 13's own nodejs build (test/helpers/shipped-on-distro.ts says why and which). */
import { shippedBundleTestsOn } from '../helpers/shipped-on-distro.js';

await shippedBundleTestsOn('trixie');
