// Records the DRDA fixtures under test/fixtures/ from a real Derby Network
// Server (run as root: `npx tsx packages/protocols/test/helpers/drda-record-fixtures.ts`).
// Each fixture is one client connection, captured on lo.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodePcapHeader, encodePcapRecord, type Frame } from '@dbtap/core';
import { startDerby } from '../../../../test-support/derby.js';
import { startLiveCapture } from '../../../../test-support/live-capture.js';
import { fixturesDir } from './drda.js';

function writePcap(file: string, frames: Frame[]): void {
  const parts = [encodePcapHeader({ linkType: frames[0]?.linkType ?? 1 }), ...frames.map((f) => encodePcapRecord(f))];
  writeFileSync(file, Buffer.concat(parts));
}

const derby = await startDerby({ users: { app: 'apppw' } });
try {
  await derby.ij(`connect 'jdbc:derby://127.0.0.1:${derby.port}/fx;create=true;user=app;password=apppw';\nexit;\n`);
  const record = async (name: string, script: string): Promise<void> => {
    const cap = startLiveCapture(`tcp port ${derby.port}`);
    await derby.ij(script);
    writePcap(join(fixturesDir, name), await cap.stop());
  };
  const url = `jdbc:derby://127.0.0.1:${derby.port}/fx;user=app;password=apppw`;
  // Execute immediate, a failing statement, a query, prepared statements with parameters.
  await record(
    'drda-derby-ij.pcap',
    `connect '${url}';
create table fixture (id int primary key, name varchar(20), price decimal(8,2), born date);
insert into fixture values (1, 'alice', 12.50, '2024-01-02'), (2, 'bob', -3.25, null);
select * from nosuch;
prepare ins as 'insert into fixture values (?, ?, ?, ?)';
execute ins using 'values (3, ''carol'', 7.75, ''2023-12-31'')';
select id, name, price from fixture order by id;
drop table fixture;
disconnect;
exit;
`,
  );
  // A refused password.
  await record('drda-derby-badpw.pcap', `connect 'jdbc:derby://127.0.0.1:${derby.port}/fx;user=app;password=wrong';\nexit;\n`);
} finally {
  await derby.stop();
}
