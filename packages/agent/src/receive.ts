// The receiving end on its own, writing what arrives to a pcap file: for
// checking a deployment before the audit server exists.
import { closeSync, openSync, writeSync } from 'node:fs';
import { DbtapError, ErrorCodes, encodePcapHeader, encodePcapRecord, type Frame } from '@dbtap/core';
import { TransportServer, formatHostPort, type ListenOptions, type TransportServerOptions } from './transport/server.js';
import type { AgentLogger } from './log.js';

/** Options of {@link startPcapReceiver}. */
export interface PcapReceiverOptions extends Omit<TransportServerOptions, 'onBatch'> {
  /** Where to listen. */
  listen: ListenOptions | ListenOptions[];
  /** The pcap file to create. */
  path: string;
  /** Log of connects, disconnects and refusals. */
  logger?: AgentLogger;
}

/** A running pcap receiver. */
export interface PcapReceiver {
  /** The transport server. */
  readonly server: TransportServer;
  /** Frames written so far. */
  readonly frames: number;
  /** Frames skipped because their link type differs from the file's (a pcap file holds one). */
  readonly skipped: number;
  /** Stops listening and closes the file. */
  close(): Promise<void>;
}

/**
 * Listens for agents and appends every frame they deliver to one pcap file
 * (its link type is the first frame's). A batch is acknowledged only after
 * its frames were written to the file.
 */
export async function startPcapReceiver(options: PcapReceiverOptions): Promise<PcapReceiver> {
  const { listen, path, logger, ...serverOptions } = options;
  // Records of a batch are written with one write() before the batch is
  // acknowledged, so a receiver killed at any moment has on disk every frame
  // its agents consider delivered.
  let fd: number;
  try {
    fd = openSync(path, 'w');
  } catch (err) {
    throw new DbtapError(ErrorCodes.IO, `cannot create pcap file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { path }, { cause: err });
  }
  let linkType: number | undefined;
  let frames = 0;
  let skipped = 0;
  const put = (bytes: Uint8Array) => {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
  };
  const write = (batch: Frame[]) => {
    const parts: Uint8Array[] = [];
    if (linkType === undefined && batch.length > 0) {
      linkType = batch[0]!.linkType;
      parts.push(encodePcapHeader({ linkType, snapLen: 262144 }));
    }
    let n = 0;
    for (const f of batch) {
      if (f.linkType !== linkType) {
        skipped++;
        continue;
      }
      parts.push(encodePcapRecord(f));
      n++;
    }
    put(Buffer.concat(parts));
    frames += n;
  };
  const server = new TransportServer({ ...serverOptions, onBatch: (_a, frames) => write(frames) });
  server.on('connect', (a) => logger?.info(`agent ${a.id} (${a.hostname}, instance ${a.instance}) connected from ${formatHostPort(a.remoteAddress, a.remotePort)}${a.tls ? ' over TLS' : ''}`));
  server.on('disconnect', (a, reason) => logger?.info(`agent ${a.id} disconnected: ${reason}`));
  server.on('clientError', (e, remote) => logger?.warn(`refused ${remote}: ${e.code}: ${e.message}`));
  server.on('batchError', (e, a) => logger?.error(`writing a batch of ${a.id} failed: ${(e as Error).message}`));
  try {
    const addrs = await server.listen(listen);
    for (const a of addrs) logger?.info(`listening on ${formatHostPort(a.address, a.port)}, writing ${path}`);
  } catch (err) {
    if (err instanceof DbtapError) throw err;
    throw new DbtapError(ErrorCodes.IO, String(err));
  }
  return {
    server,
    get frames() {
      return frames;
    },
    get skipped() {
      return skipped;
    },
    async close() {
      await server.close();
      // An empty file still gets a header, so tools can open it.
      if (linkType === undefined) put(encodePcapHeader({ linkType: 1, snapLen: 262144 }));
      closeSync(fd);
    },
  };
}
