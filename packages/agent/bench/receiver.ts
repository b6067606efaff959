// Receiving end for the agent benchmark, in its own process so its CPU is not
// counted as the agent's. Reports frames/bytes received when asked over IPC.
import { TransportServer } from '@dbtap/agent';

let frames = 0;
let bytes = 0;
const server = new TransportServer({
  onBatch: (_a, f) => {
    frames += f.length;
    for (const x of f) bytes += x.data.length;
  },
});
const [addr] = await server.listen({ host: '127.0.0.1', port: 0 });
process.send!({ port: addr!.port });
process.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'count') process.send!({ frames, bytes });
  if (m.cmd === 'exit') void server.close().then(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
