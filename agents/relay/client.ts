// Client side of the tx_tlsrelay line protocol (see relay.ts), for peer agents that fall back to a relay.
//
// A server calls openRelayListener: it opens a TLS control connection to the relay (the relay's
// certificate is verified against `ca`), proves the run's credential (`auth SECRET`, NMX_RELAY_SECRET),
// learns its allocation's reverse_token, its public_listener (give it to clients) and its
// reverse_listener, and then, for every `new_connection` line, dials the reverse listener, sends
// `reverse_token TOKEN` as its first line and hands the TLS socket to onConnection: that socket carries
// one client's bytes. A client calls dialRelay with the server's public listener (no credential: the
// public listener is public). Lines end in "\r\n"; endpoints are IPv4 "a.b.c.d:port".
//
// Only node built-ins are imported: agents are bundled by esbuild.
import tls from 'node:tls';
import { type Endpoint, formatEndpoint, parseEndpoint, quote } from '../sdk/index.ts';

export type { Endpoint };

export interface RelayListener {
  /** where clients connect (dialRelay) */
  publicListener: Endpoint;
  /** where this listener connects back to for each client */
  reverse: Endpoint;
  /** close the control connection: the relay releases the pair (live sessions carry on); resolves once
   * it is closed (ended by both sides, or destroyed after 1 s) */
  close(): Promise<void>;
}

export interface RelayListenerOptions {
  /** the relay's control port */
  relay: Endpoint;
  /** PEM of the certificate(s) the relay's certificate must chain to */
  ca: string | Buffer;
  /** the run's relay credential (NMX_RELAY_SECRET), sent as the control connection's first line */
  secret: string;
  /** one TLS socket per client, already connected to the reverse listener */
  onConnection: (sock: tls.TLSSocket) => void;
  log?: (line: string) => void;
  /** called once when the control connection ends after the listener was opened (not after close()) */
  onClose?: (reason: string) => void;
  /** give up opening the listener after this long (default 10 s) */
  timeoutMs?: number;
}

/** Control input buffered without a line end; more and the control connection is dropped. */
const MAX_CONTROL_BUFFER = 4096;
const DEFAULT_TIMEOUT_MS = 10_000;

function errText(e: Error): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code && !e.message.includes(code) ? `${e.message} (${code})` : e.message;
}

/** Open a TLS connection to `ep`, verifying its certificate; resolve on secureConnect. */
function connectTls(ep: Endpoint, ca: string | Buffer, what: string, timeoutMs: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    // host is an IP: Node sends no SNI and checks the certificate's IP SANs against it
    const sock = tls.connect({ host: ep.address, port: ep.port, ca, rejectUnauthorized: true });
    const timer = setTimeout(() => fail(new Error(`no TLS connection within ${timeoutMs} ms`)), timeoutMs);
    const fail = (e: Error) => {
      clearTimeout(timer);
      sock.destroy();
      reject(new Error(`${what} ${formatEndpoint(ep)}: ${errText(e)}`, { cause: e }));
    };
    const early = () => fail(new Error('connection closed during the TLS handshake'));
    sock.once('error', fail);
    sock.once('close', early);
    sock.once('secureConnect', () => {
      clearTimeout(timer);
      sock.removeListener('error', fail);
      sock.removeListener('close', early);
      resolve(sock);
    });
  });
}

/** Register as a server with the relay; resolves once both listener lines have arrived. */
export function openRelayListener(o: RelayListenerOptions): Promise<RelayListener> {
  const log = o.log ?? (() => {});
  const relayText = formatEndpoint(o.relay);
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!/^\S+$/.test(o.secret)) return Promise.reject(new Error(`relay ${relayText}: the relay credential is empty or holds whitespace`));
  return new Promise((resolve, reject) => {
    // the same options as connectTls, inline: the control socket must be read from the first byte
    const sock = tls.connect({ host: o.relay.address, port: o.relay.port, ca: o.ca, rejectUnauthorized: true });
    sock.write(`auth ${o.secret}\r\n`); // sent once the handshake is done
    let publicListener: Endpoint | null = null;
    let reverse: Endpoint | null = null;
    let token: string | null = null;
    let opened = false;
    let closing = false;
    const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
    let buffered = '';
    const timer = setTimeout(() => fail(new Error(`no reverse_token and listener lines within ${timeoutMs} ms`)), timeoutMs);

    const fail = (e: Error) => {
      clearTimeout(timer);
      sock.destroy();
      if (!opened) reject(new Error(`relay ${relayText}: ${errText(e)}`, { cause: e }));
    };

    const listener: RelayListener = {
      get publicListener() {
        return publicListener!;
      },
      get reverse() {
        return reverse!;
      },
      close() {
        if (closing) return closed;
        closing = true;
        sock.end();
        const late = setTimeout(() => sock.destroy(), 1000);
        void closed.then(() => clearTimeout(late));
        return closed;
      },
    };

    const dialReverse = () => {
      const ep = reverse!;
      log(`new_connection: dialing reverse listener ${formatEndpoint(ep)}`);
      connectTls(ep, o.ca, 'reverse listener', timeoutMs).then(
        (s) => {
          log(`reverse connection ${formatEndpoint(ep)} established`);
          s.write(`reverse_token ${token!}\r\n`); // binds the connection to this allocation
          o.onConnection(s);
        },
        (e: Error) => log(`reverse connection failed: ${e.message}`),
      );
    };

    /** Opened once the allocation's three lines (reverse_token, public_listener, reverse_listener) are in. */
    const maybeOpen = () => {
      if (opened || !publicListener || !reverse || token === null) return;
      opened = true;
      clearTimeout(timer);
      resolve(listener);
    };

    const onLine = (line: string) => {
      const [word, arg, ...rest] = line.split(' ');
      if (word === 'new_connection' && arg === undefined) {
        if (opened) dialReverse();
        else log('new_connection before the listener lines: ignored');
        return;
      }
      if (word === 'no_available_listeners') {
        fail(new Error('no_available_listeners (every port pair of the relay is in use)'));
        return;
      }
      if (word === 'auth_failed') {
        fail(new Error('auth_failed (the relay refused the credential: NMX_RELAY_SECRET is not this run\'s)'));
        return;
      }
      if (word === 'too_many_listeners') {
        fail(new Error('too_many_listeners (this address already holds as many port pairs as the relay gives one client)'));
        return;
      }
      if (word === 'reverse_token' && arg !== undefined && rest.length === 0 && !opened) {
        token = arg;
        log('reverse_token received');
        maybeOpen();
        return;
      }
      if ((word === 'public_listener' || word === 'reverse_listener') && arg !== undefined && rest.length === 0 && !opened) {
        let ep: Endpoint;
        try {
          ep = parseEndpoint(arg);
        } catch (e) {
          fail(new Error(`bad ${word} line: ${(e as Error).message}`));
          return;
        }
        if (word === 'public_listener') publicListener = ep;
        else reverse = ep;
        log(`${word} ${formatEndpoint(ep)}`);
        maybeOpen();
        return;
      }
      log(`unexpected control line from relay ignored: ${quote(line)}`);
    };

    sock.setEncoding('latin1');
    sock.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0 && !sock.destroyed) {
        const line = buffered.slice(0, nl).replace(/\r$/, '');
        buffered = buffered.slice(nl + 1);
        onLine(line);
      }
      if (buffered.length > MAX_CONTROL_BUFFER) fail(new Error(`relay sent more than ${MAX_CONTROL_BUFFER} bytes without a line end`));
    });
    sock.on('error', (e) => {
      if (opened) log(`control connection to ${relayText}: ${errText(e)}`);
      fail(e);
    });
    sock.once('close', () => {
      clearTimeout(timer);
      if (!opened) {
        fail(new Error('control connection closed before the reverse_token, public_listener and reverse_listener lines'));
        return;
      }
      const reason = closing ? 'closed' : 'control connection closed by the relay';
      log(`control connection to ${relayText} ${reason}`);
      if (!closing) o.onClose?.(reason);
    });
  });
}

/** Connect as a client to a server's public listener; resolves once the TLS handshake with the relay is done. */
export function dialRelay(publicListener: Endpoint, ca: string | Buffer, opts: { timeoutMs?: number } = {}): Promise<tls.TLSSocket> {
  return connectTls(publicListener, ca, 'relay public listener', opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
}
