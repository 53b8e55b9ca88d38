#!/usr/bin/env node
// tuf-js driver for tufpi's clients interop tests (tests/clients_interop).
//
//   node driver.js --metadata-url URL --target-base-url URL --metadata-dir DIR \
//       --target-dir DIR [--no-hash-prefix] NAME...
//
// DIR (--metadata-dir) holds the trusted root as root.json; tuf-js keeps its metadata there.
// Refreshes, then downloads and verifies every NAME into --target-dir under its
// percent-encoded name (encodeURIComponent), printing "downloaded: NAME (N bytes)" for each.
// A target that fails (not in the signed metadata, fetch failed, wrong length or hashes) gets
// one line on stderr, "error: NAME: <error class>: <message>", and nothing in --target-dir
// (tuf-js verifies before it copies); the driver goes on with the other NAMEs, so one run (one
// refresh) can check good and tampered targets together. Exit 0 when every target was
// downloaded and verified, else 1. A failed refresh (or bad usage) ends the run at once, exit 1
// with one line: "error: refresh: ..." ("error: usage: ...").
//
// tuf-js is pinned at 6.0.2 (package.json), which declares node ^22.22.2 || ^24.15 || >=26
// but runs on Node 20 (npm ci only warns, EBADENGINE): it needs nothing newer than the global
// fetch and util.parseArgs, and the whole suite passes on Node v20.20.2.
'use strict';

const path = require('path');
const { parseArgs } = require('util');
const { Updater } = require('tuf-js');

function oneLine(err) {
  const cls = (err && err.constructor && err.constructor.name) || 'Error';
  const msg = err && err.message !== undefined ? err.message : String(err);
  return `${cls}: ${msg}`.replace(/\s+/g, ' ').trim();
}

function fail(where, what) {
  process.stderr.write(`error: ${where}: ${what}\n`);
  process.exit(1);
}

async function main() {
  let args;
  try {
    args = parseArgs({
      allowPositionals: true,
      options: {
        'metadata-url': { type: 'string' },
        'target-base-url': { type: 'string' },
        'metadata-dir': { type: 'string' },
        'target-dir': { type: 'string' },
        'no-hash-prefix': { type: 'boolean', default: false },
      },
    });
  } catch (err) {
    fail('usage', oneLine(err));
  }
  const o = args.values;
  for (const k of ['metadata-url', 'target-base-url', 'metadata-dir', 'target-dir']) {
    if (!o[k]) fail('usage', `--${k} is required`);
  }
  if (args.positionals.length === 0) fail('usage', 'give at least one target name');

  const updater = new Updater({
    metadataBaseUrl: o['metadata-url'],
    targetBaseUrl: o['target-base-url'],
    metadataDir: o['metadata-dir'],
    targetDir: o['target-dir'],
    config: { prefixTargetsWithHash: !o['no-hash-prefix'] },
  });
  try {
    await updater.refresh();
  } catch (err) {
    fail('refresh', oneLine(err));
  }
  let failed = 0;
  const targetFailed = (name, what) => {
    process.stderr.write(`error: ${name}: ${what}\n`);
    failed += 1;
  };
  for (const name of args.positionals) {
    let info;
    try {
      info = await updater.getTargetInfo(name);
    } catch (err) {
      targetFailed(name, oneLine(err));
      continue;
    }
    if (!info) {
      targetFailed(name, 'not found in signed metadata');
      continue;
    }
    try {
      const file = path.join(o['target-dir'], encodeURIComponent(name));
      await updater.downloadTarget(info, file);
    } catch (err) {
      targetFailed(name, oneLine(err));
      continue;
    }
    process.stdout.write(`downloaded: ${name} (${info.length} bytes)\n`);
  }
  if (failed > 0) process.exitCode = 1;
}

main().catch((err) => fail('driver', oneLine(err)));
