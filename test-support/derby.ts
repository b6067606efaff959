// Apache Derby's Network Server (a real DRDA server) for live tests: started
// on 127.0.0.1 in a temporary derby.system.home with statement logging on,
// and its real DRDA clients (ij, and JDBC programs compiled here against
// derbyclient.jar).
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';
import { startProcess, waitFor, type Proc } from './process.js';

const run = promisify(execFile);

/** Where Debian's libderby-java, derby-tools and libderbyclient-java put the jars. */
export const derbyJars = {
  engine: '/usr/share/java/derby.jar',
  net: '/usr/share/java/derbynet.jar',
  tools: '/usr/share/java/derbytools.jar',
  client: '/usr/share/java/derbyclient.jar',
};

/** Why Derby cannot run here (no java/javac, no jars), or undefined. */
export function derbyMissing(): string | undefined {
  for (const tool of ['java', 'javac']) {
    try {
      execFileSync(tool, ['-version'], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed`;
    }
  }
  for (const jar of Object.values(derbyJars)) if (!existsSync(jar)) return `${jar} is missing (libderby-java, derby-tools, libderbyclient-java)`;
  return undefined;
}

/** A running Derby Network Server. */
export interface Derby {
  readonly port: number;
  /** derby.system.home (derby.log, the databases). */
  readonly home: string;
  /** derby.log so far. */
  log(): string;
  /** Runs an ij script as a DRDA client; resolves to what ij printed. */
  ij(script: string): Promise<string>;
  /** Compiles (once) and runs a Java program `className` (source `source`) with derbyclient.jar; resolves to its output. */
  java(className: string, source: string, args?: string[]): Promise<string>;
  /** Shuts the server down and removes its home. */
  stop(): Promise<void>;
}

/** Options of {@link startDerby}. */
export interface DerbyOptions {
  /** Users and passwords of Derby's BUILTIN authentication. */
  readonly users?: Readonly<Record<string, string>>;
  /** Extra derby.properties lines. */
  readonly properties?: readonly string[];
  /** TLS from the first byte (`-ssl basic`), with a throw-away self-signed key made by keytool. */
  readonly tls?: boolean;
}

/**
 * Starts Derby's Network Server on 127.0.0.1 and a free port, with
 * `derby.language.logStatementText=true` (every statement Derby executes is
 * written to derby.log) and errors of every severity logged.
 */
export async function startDerby(opts: DerbyOptions = {}): Promise<Derby> {
  const home = mkdtempSync(join(tmpdir(), 'dbtap-derby-'));
  const classes = join(home, 'classes');
  mkdirSync(classes);
  const users = opts.users ?? {};
  const props = [
    'derby.language.logStatementText=true',
    'derby.stream.error.logSeverityLevel=0',
    ...(Object.keys(users).length > 0 ? ['derby.connection.requireAuthentication=true', 'derby.authentication.provider=BUILTIN'] : []),
    ...Object.entries(users).map(([u, p]) => `derby.user.${u}=${p}`),
    ...(opts.properties ?? []),
  ];
  writeFileSync(join(home, 'derby.properties'), props.join('\n') + '\n');
  const jvm: string[] = [];
  const ssl: string[] = [];
  if (opts.tls === true) {
    const ks = join(home, 'server.jks');
    await run('keytool', ['-genkeypair', '-alias', 'derby', '-keyalg', 'RSA', '-keysize', '2048', '-validity', '2', '-dname', 'CN=localhost', '-keystore', ks, '-storepass', 'dbtap-test', '-keypass', 'dbtap-test'], { timeout: 60_000 });
    jvm.push(`-Djavax.net.ssl.keyStore=${ks}`, '-Djavax.net.ssl.keyStorePassword=dbtap-test');
    ssl.push('-ssl', 'basic');
  }
  const port = await freePort();
  const cp = [derbyJars.engine, derbyJars.net, derbyJars.tools].join(':');
  const server: Proc = startProcess('java', [
    `-Dderby.system.home=${home}`,
    ...jvm,
    '-cp',
    cp,
    'org.apache.derby.drda.NetworkServerControl',
    'start',
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    ...ssl,
  ]);
  let exited = false;
  void server.exited.then(() => (exited = true));
  try {
    await waitFor(() => exited || /started and ready to accept (SSL )?connections/.test(server.out()), 'Derby to start', 60_000, 50);
    if (exited) throw new Error(`Derby did not start: ${server.out()}`);
  } catch (err) {
    server.child.kill('SIGKILL');
    rmSync(home, { recursive: true, force: true });
    throw err;
  }
  const compiled = new Set<string>();
  const clientCp = [derbyJars.client, derbyJars.tools].join(':');
  return {
    port,
    home,
    log: () => readFileSync(join(home, 'derby.log'), 'utf8'),
    // Clients run asynchronously: a live capture in this process needs the event loop to drain libpcap.
    async ij(script: string): Promise<string> {
      const file = join(home, `script-${Date.now()}-${Math.random().toString(36).slice(2)}.sql`);
      writeFileSync(file, script);
      const r = await run('java', ['-Dij.driver=org.apache.derby.jdbc.ClientDriver', '-cp', clientCp, 'org.apache.derby.tools.ij', file], { encoding: 'utf8', timeout: 120_000 });
      return r.stdout;
    },
    async java(className: string, source: string, args: string[] = []): Promise<string> {
      if (!compiled.has(className)) {
        writeFileSync(join(classes, `${className}.java`), source);
        await run('javac', ['-cp', clientCp, '-d', classes, join(classes, `${className}.java`)], { timeout: 120_000 });
        compiled.add(className);
      }
      const r = await run('java', ['-cp', `${clientCp}:${classes}`, className, ...args], { encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20 });
      return r.stdout;
    },
    async stop(): Promise<void> {
      if (!exited) {
        try {
          execFileSync('java', [...jvm, '-cp', cp, 'org.apache.derby.drda.NetworkServerControl', 'shutdown', '-h', '127.0.0.1', '-p', String(port), ...ssl], {
            stdio: 'ignore',
            timeout: 60_000,
          });
        } catch {
          server.child.kill('SIGTERM');
        }
        await Promise.race([server.exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (!exited) server.child.kill('SIGKILL');
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
}
