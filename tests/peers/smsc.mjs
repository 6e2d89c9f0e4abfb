// An SMS centre for OneKey's tests, built on node-smpp's SMPP 3.4 server (not on OneKey's code):
// it accepts bind_transceiver, answers submit_sm with a message id, joins concatenated segments,
// sends delivery receipts (deliver_sm, esm_class 0x04) when asked for one, and sends a handset's
// reply (an MO deliver_sm) when the test asks it to. A small HTTP API lets the test read and steer
// it:
//   GET  /messages                  every message received, segments joined
//   POST /mo      {from, text}      send a reply to every bound session
//   POST /config  {receipt: "delivered" | "undeliverable" | "none", delay_ms, numbers: {n: mode}}
//   GET  /stats                     binds, submits, enquire_links
// Usage: node smsc.mjs --port 2775 --control 8775 [--system-id onekey --password secret]
// Prints one JSON line {"smpp": port, "control": port} when listening.

import http from 'node:http';
import smpp from 'smpp';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith('--') ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
const systemId = args['system-id'] ?? 'onekey';
const password = args.password ?? 'secret';
let config = { receipt: 'delivered', delay_ms: 50, numbers: {} };
const messages = [];
const parts = new Map(); // concatenation reference → segments
const stats = { binds: 0, submits: 0, enquire_links: 0, refused_binds: 0 };
const sessions = new Set();
let nextId = 1;

function text(pdu) {
  const sm = pdu.short_message;
  if (sm == null) return '';
  if (typeof sm === 'string') return sm;
  if (Buffer.isBuffer(sm)) return sm.toString('latin1');
  return typeof sm.message === 'string' ? sm.message : Buffer.from(sm.message ?? []).toString('latin1');
}

function concatenation(pdu) {
  const udh = pdu.short_message?.udh ?? [];
  for (const ie of udh) {
    const b = Buffer.from(ie);
    if (b[0] === 0x00 && b.length >= 5) return { ref: b[2], total: b[3], seq: b[4] };
  }
  return null;
}

function receipt(session, pdu, id) {
  const mode = config.numbers[pdu.destination_addr] ?? config.receipt;
  if (mode === 'none' || !(pdu.registered_delivery & 1)) return;
  const delivered = mode === 'delivered';
  const stat = delivered ? 'DELIVRD' : 'UNDELIV';
  setTimeout(() => {
    session.deliver_sm({
      source_addr: pdu.destination_addr,
      destination_addr: pdu.source_addr,
      esm_class: 0x04,
      short_message: `id:${id} sub:001 dlvrd:${delivered ? '001' : '000'} submit date:2612010000 done date:2612010000 stat:${stat} err:000 text:`,
      receipted_message_id: id,
      message_state: delivered ? 2 : 5,
    });
  }, config.delay_ms ?? 50);
}

const server = smpp.createServer({}, (session) => {
  let bound = false;
  session.on('error', () => {});
  session.on('close', () => sessions.delete(session));
  session.on('bind_transceiver', (pdu) => {
    if (pdu.system_id !== systemId || pdu.password !== password) {
      stats.refused_binds += 1;
      session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
      session.close();
      return;
    }
    stats.binds += 1;
    bound = true;
    sessions.add(session);
    session.send(pdu.response({ system_id: 'test-smsc' }));
  });
  session.on('submit_sm', (pdu) => {
    if (!bound) {
      session.send(pdu.response({ command_status: smpp.ESME_RINVBNDSTS }));
      return;
    }
    stats.submits += 1;
    const id = `m${nextId++}`;
    session.send(pdu.response({ message_id: id }));
    const seg = concatenation(pdu);
    const body = text(pdu);
    const at = Date.now();
    if (!seg || seg.total === 1) {
      messages.push({ id, to: pdu.destination_addr, from: pdu.source_addr, text: body, segments: 1, data_coding: pdu.data_coding, at });
    } else {
      const key = `${pdu.destination_addr}/${seg.ref}`;
      const got = parts.get(key) ?? [];
      got[seg.seq - 1] = body;
      parts.set(key, got);
      if (got.filter((x) => x !== undefined).length === seg.total) {
        parts.delete(key);
        messages.push({ id, to: pdu.destination_addr, from: pdu.source_addr, text: got.join(''), segments: seg.total, data_coding: pdu.data_coding, at });
      }
    }
    receipt(session, pdu, id);
  });
  session.on('enquire_link', (pdu) => {
    stats.enquire_links += 1;
    session.send(pdu.response());
  });
  session.on('unbind', (pdu) => {
    session.send(pdu.response());
    session.close();
  });
});

server.listen(Number(args.port ?? 2775), '127.0.0.1', () => {
  const control = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const reply = (code, value) => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      try {
        if (req.method === 'GET' && req.url === '/messages') return reply(200, messages);
        if (req.method === 'GET' && req.url === '/stats') return reply(200, { ...stats, sessions: sessions.size });
        if (req.method === 'POST' && req.url === '/config') {
          config = { ...config, ...JSON.parse(body || '{}') };
          return reply(200, config);
        }
        if (req.method === 'POST' && req.url === '/mo') {
          const mo = JSON.parse(body || '{}');
          for (const s of sessions) {
            s.deliver_sm({ source_addr: String(mo.from), destination_addr: String(mo.to ?? '12349'), esm_class: 0, short_message: String(mo.text) });
          }
          return reply(200, { sent_to: sessions.size });
        }
        return reply(404, { error: 'no such route' });
      } catch (e) {
        return reply(400, { error: String(e) });
      }
    });
  });
  control.listen(Number(args.control ?? 0), '127.0.0.1', () => {
    console.log(JSON.stringify({ smpp: server.address().port, control: control.address().port }));
  });
});
