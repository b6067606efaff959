#!/usr/bin/env node
// The `dbtap` and `dbtap-server` executables. This file is committed so that
// npm can link the executables while it installs; the command itself is the
// bundle that the root `prepare` script builds into dist/ afterwards.
import '../dist/cli.js';
