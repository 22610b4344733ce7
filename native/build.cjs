#!/usr/bin/env node
// Builds the lightclip native addon; run by `npm install` (scripts.install) and by
// `npm run build:native`. It never fails the install: when neither node-gyp nor a direct g++
// build works, it prints a warning and lightclip falls back to the tfjs `cpu` backend.
//
// 1. node-gyp (npm's bundled copy), against the headers of the running Node when they are
//    installed next to it (so nothing is downloaded);
// 2. otherwise g++ directly, with the same flags as binding.gyp.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { findGloo } = require('./gloo.cjs');

const here = __dirname;
const out = path.join(here, 'build', 'Release', 'lightclip.node');
const quiet = process.argv.includes('--quiet');
const ifMissing = process.argv.includes('--if-missing');
// --direct: skip node-gyp (checks the g++ fallback)
const direct = process.argv.includes('--direct');

function log(msg) {
  if (!quiet) console.log(`[lightclip native] ${msg}`);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: quiet ? 'pipe' : 'inherit', cwd: here, ...opts });
  return r.status === 0;
}

function nodeHeadersDir() {
  // Debian/NodeSource layouts: <prefix>/include/node/node_api.h next to <prefix>/bin/node
  const prefix = path.dirname(path.dirname(process.execPath));
  for (const dir of [prefix, '/usr', '/usr/local']) {
    if (fs.existsSync(path.join(dir, 'include', 'node', 'common.gypi'))) return dir;
  }
  return null;
}

function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  try {
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed as a package: fine
  }
  return candidates.find((c) => c && fs.existsSync(c)) ?? null;
}

function buildWithNodeGyp() {
  const gyp = findNodeGyp();
  if (!gyp) return false;
  const args = [gyp, 'rebuild'];
  const headers = process.env.npm_config_nodedir ? null : nodeHeadersDir();
  if (headers) args.push(`--nodedir=${headers}`);
  log(`node-gyp: ${args.slice(1).join(' ')}`);
  return run(process.execPath, args) && fs.existsSync(out);
}

function buildWithGxx() {
  const headers = nodeHeadersDir();
  if (!headers) return false;
  const cxx = process.env.CXX || 'g++';
  const src = path.join(here, 'src');
  const objDir = path.join(here, 'build', 'direct');
  fs.mkdirSync(objDir, { recursive: true });
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const flags = ['-std=c++17', '-O3', '-fPIC', '-fvisibility=hidden', '-fopenmp-simd', '-fno-math-errno',
    '-fno-trapping-math', '-ffp-contract=fast', '-DNAPI_VERSION=8', '-DBUILDING_NODE_EXTENSION',
    `-I${path.join(headers, 'include', 'node')}`, '-pthread'];
  // Gloo's part (src/gloo*.cc) only when Gloo is installed (native/gloo.cjs).
  const gloo = findGloo();
  const libs = ['-ldl'];
  if (gloo) {
    flags.push('-DLIGHTCLIP_GLOO=1', `-I${gloo.include}`);
    libs.push(`-L${gloo.lib}`, '-lgloo', `-Wl,-rpath,${gloo.lib}`);
  }
  const objs = [];
  for (const f of fs.readdirSync(src).filter((n) => n.endsWith('.cc') && (gloo || !n.startsWith('gloo')))) {
    const obj = path.join(objDir, f.replace(/\.cc$/, '.o'));
    log(`${cxx} ${f}`);
    if (!run(cxx, [...flags, '-c', path.join(src, f), '-o', obj])) return false;
    objs.push(obj);
  }
  return run(cxx, ['-shared', '-pthread', '-o', out, ...objs, ...libs]) && fs.existsSync(out);
}

function main() {
  log(findGloo() ? `Gloo found (${findGloo().include}): building the gloo process group` : 'Gloo not found (apt-get install libgloo-dev, or LIGHTCLIP_GLOO_DIR): DDP will use the zeromq layer');
  if (process.env.LIGHTCLIP_SKIP_NATIVE === '1') {
    log('LIGHTCLIP_SKIP_NATIVE=1: not building the native addon');
    return;
  }
  if (ifMissing && fs.existsSync(out)) return;
  if (!direct && buildWithNodeGyp()) return log(`built ${path.relative(process.cwd(), out)}`);
  log('node-gyp build failed or unavailable; trying g++ directly');
  if (buildWithGxx()) return log(`built ${path.relative(process.cwd(), out)}`);
  console.warn('[lightclip native] WARNING: the native addon could not be built; lightclip will ' +
    'use the (much slower) tfjs cpu backend. Install g++, make and python3, then run ' +
    '`npm run build:native`.');
}

try {
  main();
} catch (err) {
  console.warn(`[lightclip native] WARNING: native build skipped: ${err && err.message}`);
}
process.exitCode = 0;
