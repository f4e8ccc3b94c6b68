#!/usr/bin/env node
// Runs the TypeScript CLI through tsx so `npx rsmoe` works right after `npm install`, with no build step.
require('tsx/cjs');
require('../apps/cli/src/main.ts');
