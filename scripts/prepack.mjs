// Run by npm in a package directory before it packs the package: every
// tarball carries the repository's LICENSE (the package's own README is
// already there).
import { copyFileSync } from 'node:fs';

copyFileSync(new URL('../LICENSE', import.meta.url), 'LICENSE');
