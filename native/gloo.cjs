// Finds Gloo (Debian's libgloo-dev) for the native build. The addon's Gloo part
// (src/gloo_pg.cc) is compiled only when both the headers and the library are found;
// otherwise the addon builds without it and DDP falls back to the zeromq layer.
//
// LIGHTCLIP_GLOO_DIR=<prefix> looks only in <prefix>/include and <prefix>/lib (or lib64,
// lib/x86_64-linux-gnu); LIGHTCLIP_GLOO_DIR=none disables Gloo (tests the build without it).
//
// As a script (binding.gyp's command expansions): `node gloo.cjs have|include|lib`.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

function findGloo(env = process.env) {
  const explicit = env.LIGHTCLIP_GLOO_DIR;
  if (explicit === 'none' || explicit === '0') return null;
  const prefixes = explicit ? [explicit] : ['/usr', '/usr/local'];
  for (const prefix of prefixes) {
    const include = path.join(prefix, 'include');
    if (!fs.existsSync(path.join(include, 'gloo', 'allreduce.h'))) continue;
    for (const sub of ['lib', 'lib64', path.join('lib', 'x86_64-linux-gnu'), path.join('lib', 'aarch64-linux-gnu')]) {
      const lib = path.join(prefix, sub);
      if (fs.existsSync(path.join(lib, 'libgloo.so'))) return { include, lib };
    }
  }
  return null;
}

module.exports = { findGloo };

if (require.main === module) {
  const g = findGloo();
  const what = process.argv[2];
  if (what === 'have') process.stdout.write(g ? '1' : '0');
  else if (what === 'include') process.stdout.write(g ? g.include : '');
  else if (what === 'lib') process.stdout.write(g ? g.lib : '');
  else process.stdout.write(JSON.stringify(g));
}
