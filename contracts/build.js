#!/usr/bin/env node
// Compile gexe's Solidity sources with the pinned solc-js (standard JSON) and write one
// artifact per contract to contracts/artifacts/<Name>.json.
//
// Sources: contracts/src/*.sol (deployed), contracts/examples/*.sol (dApp templates),
// contracts/testing/*.sol (test-only helpers). OpenZeppelin comes from node_modules.
// Output is byte-stable: sorted keys, 2-space indent, trailing newline, source unit names
// relative to contracts/, stale artifacts removed. `make contracts-check` relies on that.
//
// usage: node contracts/build.js [--out DIR]   (from anywhere; DIR defaults to contracts/artifacts)
'use strict';

const fs = require('fs');
const path = require('path');

const HERE = __dirname;
const ROOT = path.dirname(HERE);
const outFlag = process.argv.indexOf('--out');
const OUT = outFlag > 0 ? path.resolve(process.argv[outFlag + 1]) : path.join(HERE, 'artifacts');
const SOURCE_DIRS = ['src', 'examples', 'testing'];

const solc = require(require.resolve('solc', { paths: [ROOT, HERE] }));

const SETTINGS = {
  optimizer: { enabled: true, runs: 10000 },
  evmVersion: 'cancun',
  metadata: { bytecodeHash: 'none' },
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
};

function listSources() {
  const sources = {};
  for (const dir of SOURCE_DIRS) {
    const abs = path.join(HERE, dir);
    if (!fs.existsSync(abs)) continue;
    for (const name of fs.readdirSync(abs).sort()) {
      if (!name.endsWith('.sol')) continue;
      sources[`${dir}/${name}`] = { content: fs.readFileSync(path.join(abs, name), 'utf8') };
    }
  }
  return sources;
}

function findImport(importPath) {
  // Relative imports are resolved by solc itself; only package imports reach here.
  try {
    const resolved = require.resolve(importPath, { paths: [ROOT, HERE] });
    return { contents: fs.readFileSync(resolved, 'utf8') };
  } catch (err) {
    return { error: `not found: ${importPath} (run \`npm install\` in the repo root)` };
  }
}

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    const out = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key]);
    return out;
  }
  return value;
}

function main() {
  const sources = listSources();
  const input = { language: 'Solidity', sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  const errors = output.errors || [];
  for (const e of errors) {
    const file = (e.sourceLocation || {}).file || '';
    if (e.severity === 'error' || !file.startsWith('@')) {
      process.stderr.write(e.formattedMessage + '\n');
    }
  }
  if (errors.some((e) => e.severity === 'error')) process.exit(1);

  const artifacts = {};
  for (const sourceName of Object.keys(sources)) {
    const contracts = (output.contracts || {})[sourceName] || {};
    for (const [name, c] of Object.entries(contracts)) {
      const bytecode = c.evm.bytecode.object;
      // Libraries with internal functions only have nothing to offer at runtime.
      if (c.abi.length === 0) continue;
      if (artifacts[name]) {
        process.stderr.write(`duplicate contract name ${name} in ${sourceName}\n`);
        process.exit(1);
      }
      artifacts[name] = {
        abi: c.abi,
        bytecode: '0x' + bytecode,
        compiler: `solc-js ${solc.version()}`,
        contractName: name,
        deployedBytecode: '0x' + c.evm.deployedBytecode.object,
        settings: { evmVersion: SETTINGS.evmVersion, optimizerRuns: SETTINGS.optimizer.runs },
        sourceName: `contracts/${sourceName}`,
      };
    }
  }

  fs.mkdirSync(OUT, { recursive: true });
  const wanted = new Set(Object.keys(artifacts).map((n) => `${n}.json`));
  for (const f of fs.readdirSync(OUT)) {
    if (f.endsWith('.json') && !wanted.has(f)) fs.unlinkSync(path.join(OUT, f));
  }
  for (const name of Object.keys(artifacts).sort()) {
    const text = JSON.stringify(sortKeys(artifacts[name]), null, 2) + '\n';
    const file = path.join(OUT, `${name}.json`);
    if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== text) fs.writeFileSync(file, text);
  }
  process.stderr.write(`solc ${solc.version()}: ${wanted.size} artifacts in ${path.relative(ROOT, OUT)}/\n`);
}

main();
