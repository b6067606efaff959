// Starting the server's worker threads (pipeline workers, the store writer),
// which all run worker.ts. From the TypeScript sources (tests, benchmarks run
// with tsx) the thread needs tsx registered in itself; built code starts
// worker.js beside the bundle.
import { Worker } from 'node:worker_threads';

/** @internal A thread running worker.ts with `data` as its workerData. */
export function startWorker(data: unknown): Worker {
  const fromSources = import.meta.url.endsWith('.ts');
  const url = new URL(fromSources ? './worker.ts' : './worker.js', import.meta.url);
  if (!fromSources) return new Worker(url, { workerData: data });
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true, workerData: data });
}
