// The kit's conformance suite on MySQL: conversations recorded from MariaDB
// (mysql-fixtures.ts: the compressed protocol, LOAD DATA LOCAL INFILE, an
// auth switch to ed25519, mysql2 with prepared statements and
// COM_CHANGE_USER, long data, cursors and the other commands,
// CLIENT_DEPRECATE_EOF) and the conversations built after the documentation
// for what MariaDB cannot produce (mysql-scripts.ts: every message kind, the
// same compressed, caching_sha2_password, query attributes), each split,
// cut, dropped and prefixed with garbage. The 16 MiB conversations stay in
// mysql-split.test.ts, which cuts them at their packet headers.
import { mysql } from '@dbtap/protocols';
import { conformance, type Conversation } from './conformance/harness.js';
import { recordedScript } from './helpers/mysql.js';
import * as recorded from './helpers/mysql-fixtures.js';
import { cachingSha2Script, compressedScript, plainScript, queryAttributesScript, type Script } from './helpers/mysql-scripts.js';

const conversation = (name: string, chunks: Script): Conversation => ({ name: `mysql ${name}`, decoder: mysql, chunks, lastSql: "SELECT 'last'" });

conformance([
  conversation('every message kind', plainScript()),
  conversation('every message kind compressed', compressedScript()),
  conversation('caching_sha2_password', cachingSha2Script()),
  conversation('query attributes', queryAttributesScript()),
  conversation('recorded compressed', recordedScript(recorded.compressedSession)),
  conversation('recorded LOAD DATA LOCAL INFILE', recordedScript(recorded.localInfileSession)),
  conversation('recorded ed25519', recordedScript(recorded.ed25519Session)),
  conversation('recorded mysql2 with prepared statements and COM_CHANGE_USER', recordedScript(recorded.mysql2Session)),
  conversation('recorded long data, cursor and other commands', recordedScript(recorded.rawCommandsSession)),
  conversation('recorded CLIENT_DEPRECATE_EOF', recordedScript(recorded.deprecateEofSession)),
]);
