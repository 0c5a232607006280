// A throwaway self-signed certificate for the TLS relay (agents/relay): an EC P-256 key and a cert
// valid for two days whose subjectAltName lists the relay's IP addresses (clients dial the relay by IP
// and Node checks IP SANs against the address). The certificate is its own CA: hand relay.crt to the
// peers as `ca`. Made with the system's openssl, argv only.
import { chmod, mkdir, open } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { systemTool } from './host.ts';
import { runProc } from './proc.ts';

export class RelayCertError extends Error {
  override name = 'RelayCertError';
}

/** Write relay.crt and relay.key (mode 0600) into `dir`; returns their paths. */
export async function makeRelayCert(dir: string, ips: string[]): Promise<{ cert: string; key: string }> {
  if (ips.length === 0) throw new RelayCertError('makeRelayCert needs at least one IP address for the subjectAltName');
  const bad = ips.filter((ip) => net.isIP(ip) === 0);
  if (bad.length > 0) throw new RelayCertError(`makeRelayCert: not IP addresses: ${bad.map((b) => JSON.stringify(b)).join(', ')}`);

  let openssl: string;
  try {
    openssl = systemTool('openssl');
  } catch (cause) {
    throw new RelayCertError('openssl not found in the system directories: install openssl (apt-get install openssl) or run npm run setup', { cause });
  }

  const cert = join(dir, 'relay.crt');
  const key = join(dir, 'relay.key');
  try {
    await mkdir(dir, { recursive: true });
    // create the key file 0600 first: openssl truncates and writes it, keeping the mode, so the
    // private key is never readable by others, not even for a moment
    const fh = await open(key, 'w', 0o600);
    await fh.close();
    await chmod(key, 0o600);
  } catch (cause) {
    throw new RelayCertError(`cannot prepare ${key}: ${(cause as Error).message} (is ${dir} a writable directory?)`, { cause });
  }

  const san = ips.map((ip) => `IP:${ip}`).join(',');
  try {
    await runProc(openssl, [
      'req', '-x509',
      '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
      '-nodes', '-keyout', key, '-out', cert,
      '-days', '2',
      '-subj', '/CN=natmatrix-relay',
      '-addext', `subjectAltName=${san}`,
    ]);
    await chmod(key, 0o600);
  } catch (cause) {
    throw new RelayCertError(
      `openssl could not make the relay certificate in ${dir}: ${(cause as Error).message} (openssl 1.1.1 or later is needed for -addext: install openssl (apt-get install openssl) or run npm run setup)`,
      { cause },
    );
  }
  return { cert, key };
}
