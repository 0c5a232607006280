// A rendezvous with an attacker beside it: it introduces peers genuinely (it knows the shared secret),
// and for every introduction an on-path attacker, who does not know the secret but sees the wire, sends
// the peer datagrams that claim to come from the rendezvous's own address:
//   - a forged introduction "connect to 203.0.113.99:9" signed with a wrong key (seed 003's DDoS risk:
//     a peer that obeyed would punch at whatever the attacker names),
//   - the same forgery unsigned, and truncated,
//   - the genuine introduction captured and replayed, and one captured from another session.
// Peers must drop all of them and still punch. 203.0.113.99 is assigned to nothing, inside the lab.
import { createHmac } from 'node:crypto';
import { main } from './rendezvous-server.ts';

const VICTIM = '203.0.113.99:9';
let captured: Buffer | null = null;

main({
  onIntroduce: ({ session, to, wire, sock, log }) => {
    const json = JSON.stringify({ t: 'peer', s: session, r: 'rdv', ts: Date.now(), n: 1_000_000, ep: VICTIM });
    const wrongKey = createHmac('sha256', 'not-the-secret').update(json).digest('hex');
    const send = (what: string, datagram: Buffer) => {
      sock.send(datagram, to.port, to.address);
      log(`attacker: sent ${what} introduction to ${to.address}:${to.port}`);
    };
    // ahead of the genuine introduction: a peer that takes the first "peer" message it gets is fooled
    send(`forged (wrong key, ep ${VICTIM})`, Buffer.from(`${wrongKey}.${json}`));
    send('unsigned', Buffer.from(json));
    send('truncated', Buffer.from(`${wrongKey.slice(0, 20)}.${json}`));
    if (captured) send('replayed from another session', captured);
    // after it: the genuine datagram, captured and sent again
    const copy = Buffer.from(wire);
    setTimeout(() => send('replayed', copy), 5);
    captured = copy;
  },
});
