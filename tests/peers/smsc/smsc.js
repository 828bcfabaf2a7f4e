#!/usr/bin/env node
// SMSC simulator for cap-hub's tests and benchmarks, on node-smpp 0.5.1 (a third-party
// SMPP 3.4 implementation): it decodes what our ESME sends with someone else's code.
//
//   node smsc.js [--port N] [switches]          (port 0 or absent = a free port)
//
// Prints `READY <port>` once listening, then one JSON line per event on stdout:
//   {"event":"bind", system_id, password, system_type, status}
//   {"event":"submit", conn, seq, status, destination, dest_ton, dest_npi, source, source_ton,
//    source_npi, data_coding, esm_class, registered_delivery, udh:{ref,total,seq}|null,
//    sar:{ref,total,seq}|null, short_message_hex, text, payload_text, message_id,
//    at (epoch seconds, as the SMSC decoded the submit: for rate windows)}
//   {"event":"drop", conn, after}
// Switches (argv `--name value`, or env SMSC_NAME, e.g. SMSC_THROTTLE_EVERY=10):
//   --throttle-every N     every Nth submit_sm (counted over all binds) → ESME_RTHROTTLED
//   --reject DEST=CODE     submits to DEST get CODE (decimal or 0x..); repeatable, comma list
//   --receipts MODE        none | delivered | failed | mixed (failed for every 2nd)  [none]
//   --receipt-delay MS     wait MS before sending the receipt                        [0]
//   --receipt-form F       tlv | text | both                                         [both]
//   --receipt-id F         same | hex (resp decimal, receipt hex) | dec (resp hex,
//                          receipt decimal) | unknown (an id never issued)           [same]
//   --receipt-early        send the receipt before the submit_sm_resp
//   --receipt-pdu P        deliver_sm | data_sm (§2.11: either carries receipts; data_sm
//                          has no short_message: the text goes in message_payload) [deliver_sm]
//   --drop-after N         close each connection right after its Nth accepted submit
//   --refuse-bind CODE     answer every bind with CODE (e.g. 0x0E ESME_RINVPASWD)
//   --quiet                no per-submit lines (benchmarks)
'use strict';

const smpp = require('smpp');

function option(name, fallback) {
  const flag = '--' + name;
  const values = [];
  for (let i = 2; i < process.argv.length; i++) {
    if (process.argv[i] === flag) {
      const next = process.argv[i + 1];
      values.push(next === undefined || next.startsWith('--') ? 'true' : next);
    }
  }
  if (values.length) return values.join(',');
  const env = process.env['SMSC_' + name.toUpperCase().replace(/-/g, '_')];
  return env !== undefined && env !== '' ? env : fallback;
}

const num = (s) => (String(s).startsWith('0x') ? parseInt(s, 16) : parseInt(s, 10));
const port = num(option('port', '0'));
const throttleEvery = num(option('throttle-every', '0'));
const receipts = option('receipts', 'none');
const receiptDelay = num(option('receipt-delay', '0'));
const receiptForm = option('receipt-form', 'both');
const receiptId = option('receipt-id', 'same');
const receiptEarly = option('receipt-early', 'false') === 'true';
const receiptPdu = option('receipt-pdu', 'deliver_sm');
const dropAfter = num(option('drop-after', '0'));
const refuseBind = num(option('refuse-bind', '0'));
const quiet = option('quiet', 'false') === 'true';
const rejects = {};
for (const item of option('reject', '').split(',').filter(Boolean)) {
  const [dest, code] = item.split('=');
  rejects[dest] = num(code);
}

// Keep the raw short_message next to node-smpp's decoding of it.
const messageFilter = smpp.commands.submit_sm.params.short_message.filter;
const decodeMessage = messageFilter.decode;
messageFilter.decode = function (value, skipUdh) {
  const result = decodeMessage.call(this, value, skipUdh);
  if (result && typeof result === 'object' && Buffer.isBuffer(value)) result.raw = value;
  return result;
};

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
let submits = 0;
let nextId = 4000000000; // above 2^31 so decimal and hex forms differ in length
let connections = 0;

function concatOf(sm) {
  for (const ie of sm && sm.udh ? sm.udh : []) {
    if (ie[0] === 0x00 && ie[1] === 3) return { ref: ie[2], total: ie[3], seq: ie[4] };
    if (ie[0] === 0x08 && ie[1] === 4) return { ref: ie.readUInt16BE(2), total: ie[4], seq: ie[5] };
  }
  return null;
}

function receiptFor(pdu, ids, failed) {
  const stat = failed ? 'UNDELIV' : 'DELIVRD';
  const now = new Date();
  const ts = now.toISOString().replace(/[-:T]/g, '').slice(2, 12);
  const text = pdu.short_message && typeof pdu.short_message.message === 'string'
    ? pdu.short_message.message : '';
  const body = `id:${ids.receipt} sub:001 dlvrd:${failed ? '000' : '001'} submit date:${ts} ` +
    `done date:${ts} stat:${stat} err:${failed ? '001' : '000'} text:${text.slice(0, 20)}`;
  const options = {
    source_addr_ton: pdu.dest_addr_ton, source_addr_npi: pdu.dest_addr_npi,
    source_addr: pdu.destination_addr, destination_addr: pdu.source_addr,
    esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT, data_coding: 0,
  };
  if (receiptForm !== 'tlv') {
    if (receiptPdu === 'data_sm') options.message_payload = Buffer.from(body, 'latin1');
    else options.short_message = Buffer.from(body, 'latin1');
  }
  if (receiptForm !== 'text') {
    options.receipted_message_id = ids.receipt;
    options.message_state = failed ? smpp.MESSAGE_STATE.UNDELIVERABLE : smpp.MESSAGE_STATE.DELIVERED;
  }
  return options;
}

function newIds() {
  const n = nextId++;
  if (receiptId === 'hex') return { resp: String(n), receipt: n.toString(16) };
  if (receiptId === 'dec') return { resp: n.toString(16).toUpperCase(), receipt: String(n) };
  if (receiptId === 'unknown') return { resp: String(n), receipt: 'ffff' + n.toString(16) };
  return { resp: String(n), receipt: String(n) };
}

const server = smpp.createServer((session) => {
  const conn = ++connections;
  let accepted = 0;
  let dropped = false;
  session.on('error', () => {});
  session.on('bind_transceiver', (pdu) => {
    const status = refuseBind || 0;
    out({ event: 'bind', conn, system_id: pdu.system_id, password: pdu.password,
      system_type: pdu.system_type, status });
    session.send(pdu.response({ command_status: status, system_id: 'node-smsc' }));
  });
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => { session.send(pdu.response()); session.close(); });
  session.on('submit_sm', (pdu) => {
    if (dropped) return;
    submits++;
    const sm = pdu.short_message;
    const payload = pdu.message_payload;
    let status = 0;
    if (throttleEvery && submits % throttleEvery === 0) status = smpp.ESME_RTHROTTLED;
    else if (rejects[pdu.destination_addr] !== undefined) status = rejects[pdu.destination_addr];
    const ids = status ? null : newIds();
    if (!quiet) {
      out({
        event: 'submit', conn, seq: pdu.sequence_number, status,
        destination: pdu.destination_addr, dest_ton: pdu.dest_addr_ton, dest_npi: pdu.dest_addr_npi,
        source: pdu.source_addr, source_ton: pdu.source_addr_ton, source_npi: pdu.source_addr_npi,
        data_coding: pdu.data_coding, esm_class: pdu.esm_class,
        registered_delivery: pdu.registered_delivery,
        udh: concatOf(sm),
        sar: pdu.sar_msg_ref_num !== undefined
          ? { ref: pdu.sar_msg_ref_num, total: pdu.sar_total_segments, seq: pdu.sar_segment_seqnum } : null,
        short_message_hex: sm && sm.raw ? sm.raw.toString('hex') : '',
        text: sm && typeof sm.message === 'string' ? sm.message : '',
        payload_text: payload && typeof payload.message === 'string' ? payload.message : null,
        message_id: ids ? ids.resp : null,
        at: (performance.timeOrigin + performance.now()) / 1000,
      });
    }
    if (status) {
      session.send(pdu.response({ command_status: status }));
      return;
    }
    const wanted = pdu.registered_delivery & 0x03;
    let receipt = null;
    if (receipts !== 'none' && wanted) {
      const failed = receipts === 'failed' || (receipts === 'mixed' && submits % 2 === 0);
      receipt = receiptFor(pdu, ids, failed);
    }
    const sendReceipt = () => {
      if (!receipt || session.socket.destroyed) return;
      if (receiptPdu === 'data_sm') session.data_sm(receipt);
      else session.deliver_sm(receipt);
    };
    if (receiptEarly) sendReceipt();
    session.send(pdu.response({ message_id: ids.resp }));
    if (!receiptEarly && receipt) {
      if (receiptDelay > 0) setTimeout(sendReceipt, receiptDelay);
      else sendReceipt();
    }
    accepted++;
    if (dropAfter && accepted >= dropAfter) {
      dropped = true;
      session.pause();
      out({ event: 'drop', conn, after: accepted });
      session.socket.end(() => session.socket.destroy());
    }
  });
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write('READY ' + server.address().port + '\n');
});
process.on('SIGTERM', () => process.exit(0));
