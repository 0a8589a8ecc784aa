/**
 * The network's certificates for the central <-> node link: a local CA, central's certificate
 * (CN `central`) and each node's (CN `node:<id>`, with its host names as SANs). Keys are ECDSA
 * P-256. node:crypto makes keys but cannot sign X.509 certificates, so this shells out to the
 * `openssl` command (no shell, fixed arguments); production networks should issue these from
 * their own CA the same way (same names, same extended key usages).
 *
 * Layout of a PKI directory: `ca.crt`, `ca.key`, `central.crt`, `central.key`,
 * `node-<id>.crt`, `node-<id>.key`. Private keys are written 0600.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CENTRAL_CERT_NAME, nodeCertName } from '@cgn/protocol';

export interface KeyPair {
  /** PEM */
  cert: string;
  key: string;
}

export interface PkiFiles {
  dir: string;
  ca: KeyPair;
  central: KeyPair;
}

export interface PkiOptions {
  /** Days a leaf certificate is valid. Default 397. */
  days?: number;
  /** Days the CA is valid. Default 3650. */
  caDays?: number;
  /** The openssl binary. Default `openssl` on PATH. */
  openssl?: string;
}

function openssl(bin: string, args: string[], cwd: string): void {
  try {
    execFileSync(bin, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string; code?: string };
    if (e.code === 'ENOENT') throw new Error(`cannot make certificates: "${bin}" is not installed (apt-get install openssl)`);
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString().trim() || e.message}`);
  }
}

const writeKey = (path: string, pem: string) => {
  writeFileSync(path, pem, { mode: 0o600 });
  chmodSync(path, 0o600);
};

/** Creates a CA in `dir` unless one is there. */
export function ensureCa(dir: string, options: PkiOptions = {}): KeyPair {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const crt = join(dir, 'ca.crt');
  const key = join(dir, 'ca.key');
  if (!existsSync(crt) || !existsSync(key)) {
    openssl(options.openssl ?? 'openssl', [
      'req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-sha256',
      '-keyout', key, '-out', crt, '-days', String(options.caDays ?? 3650), '-subj', `/O=CGN/CN=CGN network CA ${randomBytes(3).toString('hex')}`,
      '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ], dir);
    chmodSync(key, 0o600);
  }
  return { cert: readFileSync(crt, 'utf8'), key: readFileSync(key, 'utf8') };
}

/**
 * Issues (or reuses, if present and still valid for a day) `<name>.crt/.key` signed by the CA in
 * `dir`, with common name `cn` and subject alternative names `hosts` (DNS names or IPs).
 */
export function issueCert(dir: string, name: string, cn: string, hosts: readonly string[], options: PkiOptions = {}): KeyPair {
  if (!/^[A-Za-z0-9._-]{1,80}$/.test(name)) throw new Error(`bad certificate file name "${name}"`);
  if (!/^[A-Za-z0-9:._-]{1,64}$/.test(cn)) throw new Error(`bad common name "${cn}"`);
  const crt = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  ensureCa(dir, options);
  if (existsSync(crt) && existsSync(keyPath)) {
    const x = new X509Certificate(readFileSync(crt));
    const ca = new X509Certificate(readFileSync(join(dir, 'ca.crt')));
    const wanted = hosts.every((h) => (isIP(h) ? x.checkIP(h) !== undefined : x.checkHost(h) !== undefined));
    if (x.verify(ca.publicKey) && Date.parse(x.validTo) > Date.now() + 86_400_000 && x.subject.includes(`CN=${cn}`) && wanted) {
      return { cert: readFileSync(crt, 'utf8'), key: readFileSync(keyPath, 'utf8') };
    }
  }
  for (const h of hosts) if (!isIP(h) && !/^[A-Za-z0-9.*-]{1,253}$/.test(h)) throw new Error(`bad host name "${h}"`);
  const work = mkdtempSync(join(tmpdir(), 'cgn-pki-'));
  try {
    const csr = join(work, 'req.csr');
    const ext = join(work, 'ext.cnf');
    const san = hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
    writeFileSync(ext, [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      ...(san ? [`subjectAltName=${san}`] : []),
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
    ].join('\n') + '\n');
    const bin = options.openssl ?? 'openssl';
    openssl(bin, ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-sha256', '-keyout', join(work, 'leaf.key'), '-out', csr, '-subj', `/O=CGN/CN=${cn}`], work);
    openssl(bin, [
      'x509', '-req', '-in', csr, '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'), '-set_serial', `0x${randomBytes(16).toString('hex')}`,
      '-days', String(options.days ?? 397), '-sha256', '-extfile', ext, '-out', crt,
    ], work);
    writeKey(keyPath, readFileSync(join(work, 'leaf.key'), 'utf8'));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return { cert: readFileSync(crt, 'utf8'), key: readFileSync(keyPath, 'utf8') };
}

/** The CA and central's certificate (for dialling nodes). */
export function ensureCentralPki(dir: string, options: PkiOptions = {}): PkiFiles {
  const ca = ensureCa(dir, options);
  const central = issueCert(dir, 'central', CENTRAL_CERT_NAME, [], options);
  return { dir, ca, central };
}

/** A node's certificate and the CA certificate, for its central endpoint. */
export function ensureNodePki(dir: string, nodeId: string, hosts: readonly string[] = ['localhost', '127.0.0.1', '::1'], options: PkiOptions = {}): { ca: string; cert: string; key: string } {
  const ca = ensureCa(dir, options);
  const leaf = issueCert(dir, `node-${nodeId}`, nodeCertName(nodeId), hosts, options);
  return { ca: ca.cert, ...leaf };
}

/** Everything `cgn dev` needs: CA, central, and the given nodes on this machine. */
export function ensureDevPki(dir: string, nodeIds: readonly string[], options: PkiOptions = {}) {
  const central = ensureCentralPki(dir, options);
  const nodes = Object.fromEntries(nodeIds.map((id) => [id, ensureNodePki(dir, id, ['localhost', '127.0.0.1', '::1'], options)]));
  return { dir, ca: central.ca.cert, central: central.central, nodes };
}
