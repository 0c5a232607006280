// Endpoints, "ip:port": IPv4 only (the lab is IPv4, and the shipped agents use udp4 sockets).
import { quote } from './log.ts';

/** An IPv4 endpoint. Field names match dgram's `rinfo`, so an rinfo is an Endpoint. */
export interface Endpoint {
  address: string;
  port: number;
}

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);

export function isIPv4Address(s: string): boolean {
  return IPV4.test(s);
}

/** Parse "a.b.c.d:port". Port 0 is rejected unless allowPortZero (listen addresses). Throws. */
export function parseEndpoint(s: string, opts: { allowPortZero?: boolean } = {}): Endpoint {
  const colon = s.lastIndexOf(':');
  if (colon < 0) throw new Error(`${quote(s)} is not ip:port (no ":")`);
  const address = s.slice(0, colon);
  const portText = s.slice(colon + 1);
  if (!isIPv4Address(address)) throw new Error(`${quote(s)} is not ip:port (${quote(address)} is not an IPv4 address)`);
  if (!/^\d{1,5}$/.test(portText)) throw new Error(`${quote(s)} is not ip:port (bad port ${quote(portText)})`);
  const port = Number(portText);
  const min = opts.allowPortZero ? 0 : 1;
  if (port < min || port > 65535) throw new Error(`${quote(s)} is not ip:port (port ${port} out of range ${min}..65535)`);
  return { address, port };
}

export function tryParseEndpoint(s: string, opts: { allowPortZero?: boolean } = {}): Endpoint | null {
  try {
    return parseEndpoint(s, opts);
  } catch {
    return null;
  }
}

export function formatEndpoint(ep: Endpoint): string {
  return `${ep.address}:${ep.port}`;
}

export function sameEndpoint(x: Endpoint | null | undefined, y: Endpoint | null | undefined): boolean {
  return !!x && !!y && x.address === y.address && x.port === y.port;
}
