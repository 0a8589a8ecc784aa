#!/usr/bin/env -S node --initial-old-space-size=128 --no-memory-reducer --interrupt-budget=8192
// The `cgn` command. This file is committed (not built) so that `npm install` can link and mark it
// executable before `tsc -b` has produced dist/. The V8 flags are explained in src/server-flags.ts.
import '../dist/bin.js';
