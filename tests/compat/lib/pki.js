'use strict';
// Server certificates for the TLS tests, issued with the openssl command under the test
// CA that run.sh made (DRIFTD_TEST_PKI; Node trusts it through NODE_EXTRA_CA_CERTS).
//
//   const { cert, key } = issueServerCert(dir, 'driftd-one', 1001);

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

function pkiDir() {
  const dir = process.env.DRIFTD_TEST_PKI;
  if (!dir || !fs.existsSync(path.join(dir, 'ca.key'))) {
    throw new Error('DRIFTD_TEST_PKI does not hold a test CA: run the suite through run.sh');
  }
  return dir;
}

// A scratch directory for one test file's certificate and key.
function scratchDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'driftd-tls-'));
}

const openssl = (args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });

// Issues a certificate for 127.0.0.1 and localhost, common name `name`, serial `serial`,
// into dir/server.pem and dir/server.key. Both are written beside and renamed into place,
// so that a server rereading them never sees half a file.
function issueServerCert(dir, name, serial) {
  const ca = pkiDir();
  const tmp = path.join(dir, `next-${serial}`);
  fs.writeFileSync(`${tmp}.ext`,
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n'
    + 'keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n');
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-subj', `/CN=${name}`, '-keyout', `${tmp}.key`, '-out', `${tmp}.csr`]);
  openssl(['x509', '-req', '-in', `${tmp}.csr`, '-CA', path.join(ca, 'ca.pem'),
    '-CAkey', path.join(ca, 'ca.key'), '-set_serial', String(serial), '-days', '2',
    '-extfile', `${tmp}.ext`, '-out', `${tmp}.pem`]);
  const cert = path.join(dir, 'server.pem');
  const key = path.join(dir, 'server.key');
  fs.renameSync(`${tmp}.key`, key);
  fs.renameSync(`${tmp}.pem`, cert);
  return { cert, key, ca: path.join(ca, 'ca.pem') };
}

module.exports = { issueServerCert, scratchDir };
