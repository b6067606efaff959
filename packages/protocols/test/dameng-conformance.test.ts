import { dameng } from '@dbtap/protocols';
import { conformance } from './conformance/harness.js';
import { clearMessages, conversation, encryptedMessages } from './helpers/dameng-fixtures.js';

// The client side is what the dmdb client sent; the server side is the test
// listener's replies (inferred, there is no DM server here).
conformance([
  { name: 'dameng clear login', decoder: dameng, chunks: conversation(clearMessages.slice(0, 9)), lastSql: 'SELECT id FROM t_orders' },
  { name: 'dameng encryption requested', decoder: dameng, chunks: conversation(encryptedMessages.slice(0, 4)), lastSql: 'SELECT 1 FROM dual' },
]);
