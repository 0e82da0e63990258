// SPDX-License-Identifier: MIT
// Certificates made at test time with openssl, in a directory of the
// test's own: CAs, and keys with certificates signed by one of them (or
// self-signed), for the TLS tests (Redis over TLS, OTLP over HTTPS).
'use strict';

const assert = require('node:assert');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function certs(dir) {
  const f = (name) => path.join(dir, name);
  function openssl(...args) {
    const r = spawnSync('openssl', args, { encoding: 'utf8', cwd: dir });
    assert.strictEqual(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
  }
  // A key and a certificate signed by `ca` (the name of an earlier cert())
  // for `san`, valid between `start` and `end` (openssl ca's YYMMDDHHMMSSZ),
  // or self-signed without `ca`. Files: f(`${name}.key`), f(`${name}.crt`).
  function cert(name, cn, { ca, san, start, end } = {}) {
    openssl('genrsa', '-out', f(`${name}.key`), '2048');
    if (!ca) {
      openssl('req', '-x509', '-new', '-key', f(`${name}.key`), '-out', f(`${name}.crt`), '-days', '2', '-subj',
        `/CN=${cn}`, ...(san ? ['-addext', `subjectAltName=${san}`] : []));
      return;
    }
    openssl('req', '-new', '-key', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`);
    // openssl ca is the tool that takes explicit validity dates (an expired certificate)
    const cadir = f(`ca-${name}`);
    fs.mkdirSync(cadir, { recursive: true });
    fs.writeFileSync(path.join(cadir, 'index.txt'), '');
    fs.writeFileSync(path.join(cadir, 'serial'), '1000\n');
    fs.writeFileSync(path.join(cadir, 'ca.cnf'), [
      '[ca]', 'default_ca = d', '[d]', `dir = ${cadir}`, 'database = $dir/index.txt', 'serial = $dir/serial',
      'new_certs_dir = $dir', 'default_md = sha256', 'policy = p', 'copy_extensions = none', 'unique_subject = no',
      '[p]', 'commonName = supplied', '[ext]', 'basicConstraints = CA:FALSE',
      ...(san ? [`subjectAltName = ${san}`] : []), '',
    ].join('\n'));
    openssl('ca', '-batch', '-config', path.join(cadir, 'ca.cnf'), '-extensions', 'ext', '-cert', f(`${ca}.crt`),
      '-keyfile', f(`${ca}.key`), '-in', f(`${name}.csr`), '-out', f(`${name}.crt`), '-notext',
      '-startdate', start || '200101000000Z', '-enddate', end || '20991231000000Z');
  }
  return { f, openssl, cert };
}

module.exports = { certs };
