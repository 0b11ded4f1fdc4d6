// A certificate authority of the test's own, with a server certificate for 127.0.0.1 and a
// client certificate — what `dockerd --tlsverify` and its clients are given — made with openssl.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestPki {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'ignore' });
}

/** Makes the files in `dir` (a few hundred ms; RSA 2048). */
export function makeTestPki(dir: string, name = 'ca'): TestPki {
  const f = (x: string): string => join(dir, `${name}-${x}`);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=gauntlet test CA', '-keyout', f('ca-key.pem'), '-out', f('ca.pem')], dir);
  writeFileSync(f('server.ext'), 'subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n');
  writeFileSync(f('client.ext'), 'extendedKeyUsage = clientAuth\n');
  for (const who of ['server', 'client']) {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${who === 'server' ? '127.0.0.1' : 'gauntlet'}`, '-keyout', f(`${who}-key.pem`), '-out', f(`${who}.csr`)], dir);
    openssl(['x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca-key.pem'), '-CAcreateserial', '-days', '2', '-extfile', f(`${who}.ext`), '-out', f(`${who}.pem`)], dir);
  }
  return { ca: f('ca.pem'), serverCert: f('server.pem'), serverKey: f('server-key.pem'), clientCert: f('client.pem'), clientKey: f('client-key.pem') };
}
