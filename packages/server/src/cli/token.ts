// `dbtap token`: a new API token and the hash to configure.
import { hashToken, newToken } from '../http/access.js';
import type { Command } from './common.js';

export const tokenCommand: Command = {
  name: 'token',
  usage: `  token
      Print a new API token and the tokenSha256 to put in api.users.
`,
  run: async () => {
    const token = newToken();
    process.stdout.write(`token: ${token}\ntokenSha256: ${hashToken(token)}\n`);
    return 0;
  },
};
