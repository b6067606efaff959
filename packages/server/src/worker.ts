// The thread side of a WorkerPool (workers.ts): one AuditPipeline per
// source, built from the pool's WorkerSetup with the same composition as
// the server's (createAuditFlow: decode, rules, masking), fed the frames
// the main thread routes here, answering each request with its records.
// The worker runs the per-record rules only; the stateful detectors run in
// the main thread over every worker's records (workers.ts), so it sends,
// beside each masked record, the record as the rules saw it.
import { parentPort, workerData } from 'node:worker_threads';
import { DbtapError, type AuditEvent } from '@dbtap/core';
import { createDefaultRegistry } from '@dbtap/protocols';
import { AuditCatalog } from './catalog.js';
import { createAuditFlow, registryDialects, type RecordMask, type RecordProcessor } from './compose.js';
import { ServerErrorCodes } from './errors.js';
import { RecordMasker } from './masking/masker.js';
import type { AuditPipeline } from './pipeline.js';
import { loadRuleSelection, RuleRouter } from './rules.js';
import { SOURCE, unpackFrames, type FromWorker, type ToWorker, type WorkerSetup } from './workers.js';
import { SqliteStore } from './store/sqlite.js';
import { StoreErrorCodes } from './store/query.js';
import type { FromStoreWriter, StoreWriterSetup, ToStoreWriter } from './store/writer.js';

interface Slot {
  pipeline: AuditPipeline;
  records: AuditEvent[];
  at: number[];
  plain: Array<[number, AuditEvent]>;
  opens: Array<[string, number, true?]>;
  frame: number;
}

function main(setup: WorkerSetup): void {
  const port = parentPort!;
  const registry = createDefaultRegistry();
  const dialectFor = registryDialects(registry);
  const ruleSet = setup.rules !== undefined ? loadRuleSelection(setup.rules) : undefined;
  const catalog = new AuditCatalog({ objects: [...(setup.catalog?.objects ?? [])], ruleGroups: [...(setup.catalog?.ruleGroups ?? [])], ...(ruleSet !== undefined ? { ruleFileGroups: ruleSet.groups.keys() } : {}) });
  const judge: RecordProcessor | undefined = ruleSet !== undefined ? new RuleRouter(ruleSet, catalog, { dialectFor, part: 'per-record' }).process : undefined;
  const mask: RecordMask | undefined = setup.masking !== undefined ? new RecordMasker(setup.masking, { dialectFor }).mask : undefined;
  // the main thread's detectors judge records before masking, as an in-process flow does
  const detectors = ruleSet?.rules.some((r) => r.detector !== undefined) === true;
  const ports = setup.ports !== undefined ? new Map(setup.ports.map((p) => [p, undefined])) : undefined;
  const slots = new Map<string, Slot>();

  const slotFor = (source: string, prefix: string | undefined): Slot => {
    let slot = slots.get(source);
    if (slot === undefined) {
      const s: Slot = { pipeline: undefined as unknown as AuditPipeline, records: [], at: [], plain: [], opens: [], frame: 0 };
      const keep = (r: AuditEvent): void => {
        const m = mask === undefined ? r : mask(r);
        if (detectors && m !== r && r.kind !== 'alert') s.plain.push([s.records.length, r]);
        s.records.push(m);
        s.at.push(s.frame);
      };
      s.pipeline = createAuditFlow({
        registry,
        ...(ports !== undefined ? { ports } : {}),
        ...(setup.session !== undefined ? { session: setup.session } : {}),
        objects: catalog.table,
        ...(prefix !== undefined ? { flowIdPrefix: prefix } : {}),
        judge,
        sink: keep,
        onFlowOpen: (flowId, resumed) => s.opens.push(resumed === true ? [flowId, s.frame, true] : [flowId, s.frame]),
      });
      slots.set(source, (slot = s));
    }
    return slot;
  };
  const take = (slot: Slot): Pick<FromWorker & { t: 'done' }, 'records' | 'at' | 'plain' | 'opens'> => {
    const out = { records: slot.records, at: slot.at, plain: slot.plain, opens: slot.opens };
    slot.records = [];
    slot.at = [];
    slot.plain = [];
    slot.opens = [];
    return out;
  };
  catalog.onChange((change) => {
    if (change === 'objects') for (const s of slots.values()) s.pipeline.setObjects(catalog.table);
  });

  port.postMessage({ t: 'ready' } satisfies FromWorker);
  port.on('message', (m: ToWorker) => {
    if (m.t === 'catalog') {
      catalog.reloadConfig(m.objects, m.ruleGroups);
      return;
    }
    if (m.t === 'resume') {
      // kept sessions of this worker's connections, before the source's first batch
      slotFor(m.source, m.prefix).pipeline.resumeSessions(m.text);
      return;
    }
    try {
      let reply: FromWorker;
      if (m.t === 'batch') {
        const slot = slotFor(m.source, m.prefix);
        const { frames, indexes } = unpackFrames(m.frames);
        for (let i = 0; i < frames.length; i++) {
          slot.frame = indexes[i]!;
          slot.pipeline.push(frames[i]!);
        }
        const states = m.states === true ? slot.pipeline.flowStates().flows : undefined;
        reply = { t: 'done', id: m.id, ...take(slot), stats: slot.pipeline.snapshot(), ...(states !== undefined ? { states } : {}) };
      } else if (m.t === 'tick') {
        const records: AuditEvent[] = [];
        const plain: Array<[number, AuditEvent]> = [];
        for (const [source, slot] of slots) {
          slot.pipeline.tick(m.sources?.get(source) ?? m.ts);
          const out = take(slot);
          for (const [i, r] of out.plain) plain.push([records.length + i, r]);
          for (const r of out.records) records.push(Object.assign(r, { [SOURCE]: source }));
        }
        reply = { t: 'done', id: m.id, records, at: [], plain, opens: [] };
      } else {
        const slot = slots.get(m.source);
        if (slot === undefined) reply = { t: 'done', id: m.id, records: [], at: [], plain: [], opens: [] };
        else {
          const stats = slot.pipeline.finish();
          slots.delete(m.source);
          reply = { t: 'done', id: m.id, ...take(slot), stats };
        }
      }
      port.postMessage(reply);
    } catch (err) {
      const code = err instanceof DbtapError ? err.code : ServerErrorCodes.WORKER_FAILED;
      port.postMessage({ t: 'failed', id: m.id, code, message: (err as Error)?.message ?? String(err) } satisfies FromWorker);
    }
  });
}

/** The store writer thread (store/writer.ts): one SqliteStore on the file, appending what the caller sends. */
function storeWriter(options: StoreWriterSetup['storeWriter']): void {
  const port = parentPort!;
  let store: SqliteStore | undefined;
  let broken: { code: string; message: string } | undefined;
  try {
    store = new SqliteStore(options);
  } catch (err) {
    broken = { code: err instanceof DbtapError ? err.code : StoreErrorCodes.STORE_FAILED, message: (err as Error)?.message ?? String(err) };
  }
  port.on('message', (m: ToStoreWriter) => {
    if (m.t === 'close') {
      // appends sent before are queued in the store: close commits them first; the caller waits for the thread's exit
      void (store?.close() ?? Promise.resolve()).catch(() => undefined).finally(() => port.close());
      return;
    }
    if (store === undefined) {
      port.postMessage({ t: 'failed', id: m.id, ...broken! } satisfies FromStoreWriter);
      return;
    }
    store.append(m.events, m.position !== undefined ? { position: m.position } : undefined).then(
      () => port.postMessage({ t: 'done', id: m.id } satisfies FromStoreWriter),
      (err: unknown) => port.postMessage({ t: 'failed', id: m.id, code: err instanceof DbtapError ? err.code : StoreErrorCodes.STORE_FAILED, message: (err as Error)?.message ?? String(err) } satisfies FromStoreWriter),
    );
  });
}

const data = workerData as WorkerSetup | StoreWriterSetup;
if ('storeWriter' in data) storeWriter(data.storeWriter);
else main(data);
