#!/usr/bin/env node
// The `dbtap-agent` executable. This file is committed so that npm can link
// the executable while it installs; the command itself is the bundle that the
// root `prepare` script builds into dist/ afterwards.
import '../dist/cli.js';
