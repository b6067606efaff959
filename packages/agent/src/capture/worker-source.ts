// Source of the capture process that LiveCaptureSource runs with `node -e`.
//
// Why a separate process: the `cap` binding aborts the whole process when the
// device disappears while capturing (an assert on the poll status), and a Cap
// object whose open() failed aborts when it is garbage collected. Both would
// kill the agent together with its queue; in a child only the capture dies
// and the parent reports a coded error.
//
// It is plain JavaScript in a string (not a TypeScript function turned into
// text) so no transpiler helper can leak into it.
//
// Output on fd 3, one message each:
//   +---------------+---------+---------------------------------------------+
//   | length u32 BE | kind u8 | payload                                     |
//   +---------------+---------+---------------------------------------------+
//   kind 1 ready  JSON { linkType, linkName }
//   kind 2 error  JSON { stage: 'open' | 'filter', message }
//   kind 3 frames records, the batch record layout of the transport
//                 (ts f64 LE, origLen u32 LE, capLen u32 LE, linkType u16 LE, interfaceId u16 LE, data)
//   kind 4 stats  JSON { seen, drops, truncated, kernel }
//                 kernel: { ps_recv, ps_drop, ps_ifdrop } from pcap_stats, or
//                 absent when the capture runs through `cap` (no pcap_stats)
// Closing stdin (or writing to it) stops the capture.
//
// Two capture paths. With the native binding (native/dbtap_pcap.c) a timer
// drains the kernel ring in batches straight into the output block, and
// while the parent does not read (more than maxPendingBytes queued on fd 3)
// the ring is left alone, so the kernel drops and counts. With `cap` alone,
// one callback per packet copies it into the block, and a packet that finds
// the output full is dropped here and counted as a source drop.

/** @internal */
export const CAPTURE_WORKER_SOURCE = String.raw`
'use strict';
const opts = JSON.parse(process.argv[1]);
const net = require('net');
const { performance } = require('perf_hooks');
const out = new net.Socket({ fd: 3, readable: false, writable: true });
out.on('error', () => process.exit(4));
const keep = []; // Cap objects whose open failed: kept reachable so their destructor never runs
function msg(kind, payload) {
  const h = Buffer.allocUnsafe(5);
  h.writeUInt32BE(payload.length + 1, 0);
  h[4] = kind;
  out.write(h);
  out.write(payload);
}
function json(kind, obj) { msg(kind, Buffer.from(JSON.stringify(obj))); }
// The block being filled: a kind 3 message whose 5-byte header is written on flush.
let BLOCK = opts.blockBytes;
let block;
let used = 5;
function flush() {
  if (used === 5) return;
  block.writeUInt32BE(used - 4, 0);
  block[4] = 3;
  if (used * 4 < block.length) {
    out.write(Buffer.from(block.subarray(0, used))); // small: copy, keep the block
  } else {
    out.write(block.subarray(0, used));
    block = Buffer.allocUnsafe(BLOCK);
  }
  used = 5;
}
// Sends the counters every statsMs. Closing or writing stdin stops: after
// drainMs, finish() delivers what is left and the last counters, then exit.
function serve(stats, drainMs, finish) {
  const timer = setInterval(() => json(4, stats()), opts.statsMs);
  let stopping = false;
  function stop() {
    if (stopping) return;
    stopping = true;
    clearInterval(timer);
    setTimeout(() => {
      finish();
      out.end(() => process.exit(0));
    }, drainMs);
  }
  process.stdin.on('data', stop);
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
}
function mainCap() {
  const cap = require(opts.capPath);
  const LINK = { NULL: 0, ETHERNET: 1, RAW: 101, LINKTYPE_LINUX_SLL: 113, IEEE802_11_RADIO: 127 };
  const buf = Buffer.alloc(opts.snapLen);
  const c = new cap.Cap();
  let linkName;
  try {
    linkName = c.open(opts.device, opts.filter, opts.bufferSize, buf);
  } catch (err) {
    keep.push(c);
    let stage = 'open';
    if (opts.filter) {
      // Tell a bad filter from a bad device/permission: does the device open without it?
      const probe = new cap.Cap();
      try { probe.open(opts.device, '', 1 << 16, Buffer.alloc(64)); probe.close(); stage = 'filter'; } catch (e) { keep.push(probe); }
    }
    json(2, { stage, message: String((err && err.message) || err) });
    out.end(() => process.exit(3));
    return;
  }
  if (typeof c.setMinBytes === 'function') c.setMinBytes(0);
  let linkType = LINK[linkName];
  if (linkType === undefined) { const m = /(\d+)/.exec(String(linkName)); linkType = m ? Number(m[1]) : 1; }
  json(1, { linkType, linkName });

  // Length on the wire from the IP header, since the binding reports only the captured length.
  let l3 = -1;
  if (linkType === 0) l3 = 4; else if (linkType === 101) l3 = 0; else if (linkType === 113) l3 = 16;
  function wireLen(n) {
    let off = l3;
    if (linkType === 1) {
      if (n < 14) return n;
      let et = buf.readUInt16BE(12);
      off = 14;
      while ((et === 0x8100 || et === 0x88a8) && n >= off + 4) { et = buf.readUInt16BE(off + 2); off += 4; }
      if (et !== 0x0800 && et !== 0x86dd) return n;
    } else if (off < 0) return n;
    if (n < off + 6) return n;
    const v = buf[off] >> 4;
    let len = n;
    if (v === 4) len = off + buf.readUInt16BE(off + 2);
    else if (v === 6) len = off + 40 + buf.readUInt16BE(off + 4);
    return len > n ? len : n;
  }

  let scheduled = false;
  let seen = 0, drops = 0, truncated = 0;
  const origin = performance.timeOrigin;
  block = Buffer.allocUnsafe(BLOCK);
  c.on('packet', (nbytes, trunc) => {
    seen++;
    if (out.writableLength > opts.maxPendingBytes) { drops++; return; }
    const need = 20 + nbytes;
    if (used + need > block.length) {
      flush();
      if (used + need > block.length) block = Buffer.allocUnsafe(used + need);
    }
    const orig = wireLen(nbytes);
    if (trunc || orig > nbytes) truncated++;
    const o = used;
    block.writeDoubleLE(Math.round((origin + performance.now()) * 1000), o);
    block.writeUInt32LE(orig, o + 8);
    block.writeUInt32LE(nbytes, o + 12);
    block.writeUInt16LE(linkType, o + 16);
    block.writeUInt16LE(0, o + 18);
    buf.copy(block, o + 20, 0, nbytes);
    used = o + need;
    // Flushing on a short timer rather than per event-loop turn sends one
    // pipe write per few ms instead of one per packet (libpcap runs in
    // immediate mode, so every packet is its own turn).
    if (!scheduled) { scheduled = true; setTimeout(() => { scheduled = false; flush(); }, opts.flushMs); }
  });
  // cap has no pcap_stats: the kernel's counters stay unknown.
  const stats = () => ({ seen, drops, truncated });
  // Let packets already in the ring arrive before closing.
  serve(stats, opts.drainMs, () => {
    c.close();
    flush();
    json(4, stats());
  });
}
function mainNative() {
  const pcap = require(opts.addonPath);
  let c;
  try {
    c = pcap.open(opts.device, opts.filter, opts.snapLen, opts.bufferSize, opts.pollMs);
  } catch (err) {
    json(2, { stage: err.code === 'filter' ? 'filter' : 'open', message: String(err.message) });
    out.end(() => process.exit(3));
    return;
  }
  json(1, { linkType: c.linkType, linkName: c.linkName, kernelStats: true });
  // Room for a few packets of the snap length, so a dispatch never stops short.
  BLOCK = Math.max(opts.blockBytes, 4 * (20 + opts.snapLen));
  block = Buffer.allocUnsafe(BLOCK);
  // Reads what the ring holds, one block at a time, unless the parent lags.
  function drain(force) {
    while (force || out.writableLength <= opts.maxPendingBytes) {
      const before = used;
      used = pcap.dispatch(c.handle, block, used);
      if (used === before) break;
      if (block.length - used < 20 + opts.snapLen) flush();
    }
    flush();
  }
  let seen = 0;
  function stats() {
    const k = pcap.stats(c.handle);
    seen = k.delivered;
    return { seen, drops: 0, truncated: 0, kernel: { ps_recv: k.received, ps_drop: k.dropped, ps_ifdrop: k.ifDropped } };
  }
  const poller = setInterval(() => drain(false), opts.pollMs);
  // Blocks of the ring are handed to user space when full or when the block
  // timeout (pollMs) passes: wait for that, then read everything.
  serve(stats, Math.max(opts.drainMs, 2 * opts.pollMs), () => {
    clearInterval(poller);
    drain(true);
    json(4, stats());
    pcap.close(c.handle);
  });
}
if (opts.addonPath) mainNative(); else mainCap();
`;
