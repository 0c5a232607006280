// Runtime fixes for three bugs of werift 0.24.4 that this lab runs into. They patch werift's classes
// in this process only (node_modules stays as npm installed it). WEBRTC_FIXES picks them: "all" (the
// default), "none" (werift as shipped), or a comma list of the names below. Each fix logs to stderr
// whenever it changes what werift would have done, and peer.mjs reports the count in its verdict
// ("fixesFired"), so a run shows whether a fix mattered at all.
//
// dtls-hvr   A DTLS client that retransmits its ClientHello (after 500 ms without an answer, which a
//            server starved of CPU easily takes) gets two HelloVerifyRequests. werift's Flight3 throws
//            on the second (`if (this.dtls.flight === 3) throw new Error()`), the handshake fails and
//            the peer connection goes to "failed" although ICE is connected. RFC 6347 §4.2.1 expects a
//            client to cope with a repeated HelloVerifyRequest; the fix drops one that arrives once
//            the client has already answered a first one. Seen in ~10 % of tries at load average 20.
// turn-nonce werift demands MESSAGE-INTEGRITY on every answer to an authenticated TURN request, also on
//            401/438 error responses, which carry none (RFC 5389 §10.2.3–10.2.4: the server cannot
//            sign with a nonce the client lacks). A 438 Stale Nonce is dropped, the request is
//            retransmitted with the old nonce until it times out, and is never retried with the new
//            one. The fix hands an unsigned 401/438 to its transaction.
// turn-resign werift's retry after a 401/438 re-signs the same request object, which still carries the
//            old MESSAGE-INTEGRITY and FINGERPRINT: the new HMAC covers them and the server rejects it.
//            The fix drops both attributes before the request is signed again.
export const FIXES = ['dtls-hvr', 'turn-nonce', 'turn-resign'];

export function applyWeriftFixes(werift, wanted, log) {
  const on = new Set(wanted === 'all' || wanted === undefined || wanted === '' ? FIXES : wanted === 'none' ? [] : wanted.split(',').map((s) => s.trim()));
  for (const name of on) if (!FIXES.includes(name)) throw new Error(`unknown fix ${name} (known: ${FIXES.join(', ')}, all, none)`);
  const fired = Object.fromEntries([...on].map((n) => [n, 0]));
  const { DtlsSocket, DtlsClient, TurnProtocol, parseMessage } = werift;

  if (on.has('dtls-hvr')) {
    if (!DtlsSocket?.prototype?.handleFragmentHandshake || !DtlsClient) throw new Error('werift DtlsSocket.handleFragmentHandshake not found');
    const assemble = DtlsSocket.prototype.handleFragmentHandshake;
    DtlsSocket.prototype.handleFragmentHandshake = function (messages) {
      const handshakes = assemble.call(this, messages);
      if (!(this instanceof DtlsClient) || !(this.dtls?.flight >= 3)) return handshakes;
      const kept = handshakes.filter((h) => h.msg_type !== 3 /* hello_verify_request */);
      if (kept.length !== handshakes.length) {
        fired['dtls-hvr']++;
        log('DTLS: dropped a repeated HelloVerifyRequest (fix dtls-hvr)');
      }
      return kept;
    };
  }

  if (on.has('turn-nonce')) {
    if (!TurnProtocol?.prototype?.handleSTUNMessage || !parseMessage) throw new Error('werift TurnProtocol.handleSTUNMessage not found');
    const handle = TurnProtocol.prototype.handleSTUNMessage;
    TurnProtocol.prototype.handleSTUNMessage = function (data, addr) {
      const m = parseMessage(data);
      if (m && m.messageClass === 0x0110 /* error response */) {
        const tx = this.transactions[m.transactionIdHex];
        const [code, why] = m.getAttributeValue('ERROR-CODE') ?? [];
        if (tx?.integrityKey && (code === 401 || code === 438) && !m.attributesKeys.includes('MESSAGE-INTEGRITY')) {
          fired['turn-nonce']++;
          log(`TURN: unsigned ${code} ${why ?? ''} (new nonce) passed to its transaction (fix turn-nonce)`);
          const key = tx.integrityKey;
          tx.integrityKey = undefined;
          try {
            tx.responseReceived(m, addr);
          } finally {
            tx.integrityKey = key;
          }
          return;
        }
      }
      return handle.call(this, data, addr);
    };
  }

  if (on.has('turn-resign')) {
    if (!TurnProtocol?.prototype?.request) throw new Error('werift TurnProtocol.request not found');
    const request = TurnProtocol.prototype.request;
    TurnProtocol.prototype.request = function (req, ...rest) {
      if (this.integrityKey && Array.isArray(req?.attributes)) {
        const before = req.attributes.length;
        for (let i = req.attributes.length - 1; i >= 0; i--) {
          if (req.attributes[i][0] === 'MESSAGE-INTEGRITY' || req.attributes[i][0] === 'FINGERPRINT') req.attributes.splice(i, 1);
        }
        if (req.attributes.length !== before) fired['turn-resign']++;
      }
      return request.call(this, req, ...rest);
    };
  }
  return fired;
}
