/**
 * Throw-away certificates for TLS tests, made with openssl in a temporary directory: a CA, a server
 * certificate for localhost and 127.0.0.1 signed by it, a client certificate (mTLS) whose key is
 * encrypted with a passphrase, and a second CA that signed nothing the tests trust.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TlsFixtures {
  readonly dir: string;
  /** Paths of the PEM files. */
  readonly caFile: string;
  readonly otherCaFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly clientCertFile: string;
  /** Encrypted with `clientKeyPassphrase`. */
  readonly clientKeyFile: string;
  /** The same key, unencrypted. */
  readonly clientPlainKeyFile: string;
  readonly clientKeyPassphrase: string;
  readonly read: (path: string) => Buffer;
  remove(): void;
}

const PASSPHRASE = 'fixture-key-passphrase';

export function makeTlsFixtures(): TlsFixtures {
  const dir = mkdtempSync(join(tmpdir(), 'tow-and-go-tls-'));
  const at = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ecKey = (name: string) => openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', at(name));
  const selfSignedCa = (name: string, cn: string) => {
    ecKey(`${name}.key`);
    openssl('req', '-x509', '-new', '-key', at(`${name}.key`), '-subj', `/CN=${cn}`, '-days', '2', '-out', at(`${name}.pem`));
  };
  const signed = (name: string, cn: string, extensions: string) => {
    ecKey(`${name}.key`);
    openssl('req', '-new', '-key', at(`${name}.key`), '-subj', `/CN=${cn}`, '-out', at(`${name}.csr`));
    writeFileSync(at(`${name}.ext`), extensions);
    openssl(
      'x509',
      '-req',
      '-in',
      at(`${name}.csr`),
      '-CA',
      at('ca.pem'),
      '-CAkey',
      at('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      at(`${name}.ext`),
      '-out',
      at(`${name}.pem`),
    );
  };
  selfSignedCa('ca', 'tow-and-go test CA');
  selfSignedCa('other-ca', 'some other CA');
  signed('server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  signed('client', 'tow-and-go-sink', 'extendedKeyUsage=clientAuth\n');
  openssl('pkcs8', '-topk8', '-in', at('client.key'), '-v2', 'aes-256-cbc', '-passout', `pass:${PASSPHRASE}`, '-out', at('client-encrypted.key'));
  return {
    dir,
    caFile: at('ca.pem'),
    otherCaFile: at('other-ca.pem'),
    serverCertFile: at('server.pem'),
    serverKeyFile: at('server.key'),
    clientCertFile: at('client.pem'),
    clientKeyFile: at('client-encrypted.key'),
    clientPlainKeyFile: at('client.key'),
    clientKeyPassphrase: PASSPHRASE,
    read: (path) => readFileSync(path),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
