// No flow of the corpus (real traffic of other databases and look-alike
// protocols) may be given to the Dameng or Caché/IRIS decoder: the header
// check and the handshake shape must not fire on MySQL, PostgreSQL, TDS, TNS,
// DRDA, MongoDB, Redis or the negative samples. (The corpus holds no Dameng
// or IRIS capture: none exists publicly.)
import { auditCaptureFile } from '@dbtap/server';
import { builtinDecoders, ProtocolRegistry, type ProtocolDecoder } from '@dbtap/protocols';
import { corpusFiles, corpusTest } from '../../../test-support/corpus.js';

corpusTest('dameng/cache: no flow of the corpus is given to the Dameng or Caché/IRIS decoder', async (t) => {
  const files = corpusFiles();
  t.true(files.length > 100);
  let current = '';
  const hits: string[] = [];
  const registry = new ProtocolRegistry();
  for (const d of builtinDecoders) {
    const watched: ProtocolDecoder =
      d.name === 'dameng' || d.name === 'cache'
        ? {
            ...d,
            createSession: (ctx) => {
              hits.push(`${current}: ${d.name} ${ctx.server.ip}:${ctx.server.port}`);
              return d.createSession(ctx);
            },
          }
        : d;
    registry.register(watched);
  }
  let events = 0;
  for (const f of files) {
    current = f.split('/').slice(-2).join('/');
    events += (await auditCaptureFile(f, { registry })).events.length;
  }
  t.true(events > 1000, 'the other decoders did decode the corpus');
  t.deepEqual(hits.slice(0, 20), []);
});
