// The built-in policy library: rule files shipped inside the package (as
// text, so bundlers need no file access), enabled by name. Each file also
// defines a group named after the policy. Users extend them with their own
// files: `lists: { sensitive_tables: { append: true, items: [...] } }`, or
// `rules: [{ id: dangerous.alter-table, override: true, enabled: false }]`.

/** One shipped policy. */
export interface BuiltinPolicy {
  /** Name to enable it by. */
  readonly name: string;
  /** What it watches for. */
  readonly description: string;
  /** Part of the default library (`defaultRuleSet`). */
  readonly defaultEnabled: boolean;
  /** The rule file (YAML). */
  readonly text: string;
}

const DANGEROUS = `# Dangerous operations: objects dropped, tables truncated or altered, and
# UPDATE / DELETE statements without a WHERE clause.
lists:
  destructive_verbs:
    - DROP TABLE
    - DROP DATABASE
    - DROP SCHEMA
    - DROP VIEW
    - DROP MATERIALIZED VIEW
    - DROP INDEX
    - DROP PROCEDURE
    - DROP FUNCTION
    - DROP TRIGGER
    - DROP SEQUENCE
    - DROP EVENT
    - DROP TABLESPACE
    - DROP PACKAGE
    - DROP PACKAGE BODY
    - DROP SYNONYM
    - TRUNCATE TABLE
  structure_change_verbs: [ALTER TABLE, RENAME TABLE, ALTER VIEW, ALTER DATABASE, ALTER SCHEMA]
rules:
  - id: dangerous.drop-or-truncate
    name: Object dropped or table truncated
    description: A DROP of a table, database, schema or other object, or a TRUNCATE.
    risk: high
    action: alert
    tags: [dangerous, ddl]
    condition: kind = statement and sql.verbs in (destructive_verbs)
  - id: dangerous.alter-structure
    name: Table or schema altered
    description: ALTER TABLE, RENAME TABLE and other structure changes.
    risk: medium
    tags: [dangerous, ddl]
    condition: kind = statement and sql.verbs in (structure_change_verbs)
  - id: dangerous.write-without-where
    name: UPDATE or DELETE without WHERE
    description: An UPDATE or DELETE statement with no WHERE clause changes every row of its table.
    risk: high
    action: alert
    tags: [dangerous, dml]
    condition: kind = statement and sql.unfilteredWrite
groups:
  dangerous-operations: [dangerous.*]
`;

const PRIVILEGES = `# Privilege and account changes.
lists:
  privilege_verbs: [GRANT, REVOKE, DENY]
  account_verbs:
    - CREATE USER
    - ALTER USER
    - DROP USER
    - RENAME USER
    - SET PASSWORD
    - CREATE ROLE
    - ALTER ROLE
    - DROP ROLE
    - CREATE LOGIN
    - ALTER LOGIN
    - DROP LOGIN
  account_tables: [mysql.user, mysql.db, mysql.global_priv, mysql.tables_priv, mysql.columns_priv, mysql.proxies_priv, mysql.roles_mapping, pg_catalog.pg_authid, pg_authid, sys.user$]
  write_ops: [insert, update, delete, merge, create, drop, alter, truncate, rename]
rules:
  - id: privilege.grant-revoke
    name: Privileges granted or revoked
    description: GRANT, REVOKE or DENY.
    risk: high
    action: alert
    tags: [privilege, dcl]
    condition: kind = statement and sql.verbs in (privilege_verbs)
  - id: privilege.account-change
    name: Account created, changed or dropped
    description: CREATE / ALTER / DROP / RENAME USER or ROLE or LOGIN, SET PASSWORD.
    risk: high
    action: alert
    tags: [privilege, account]
    condition: kind = statement and sql.verbs in (account_verbs)
  - id: privilege.grant-tables-write
    name: Grant tables written directly
    description: A statement writes to the server's account or privilege tables instead of using GRANT.
    risk: high
    action: alert
    tags: [privilege]
    condition: kind = statement and objects.qualified iin (account_tables) and objects.op in (write_ops)
groups:
  privilege-changes: [privilege.*]
`;

const DUMP = `# Backup and dump tools.
lists:
  dump_programs: [mysqldump, mysqlpump, mariadb-dump, mydumper, mysqlbackup, xtrabackup, mariabackup, pg_dump, pg_dumpall, pg_basebackup, expdp, exp, db2move, db2look, bcp, sqlpackage]
macros:
  dump_program: clientProgram iin (dump_programs)
rules:
  - id: dump.tool-login
    name: Dump tool connected
    description: A backup or dump program logged in.
    risk: medium
    action: alert
    tags: [dump, exfiltration]
    condition: kind = login and dump_program
  - id: dump.tool-statement
    name: Statement from a dump tool
    risk: medium
    tags: [dump, exfiltration]
    condition: kind = statement and dump_program
  - id: dump.query-shape
    name: Dump-shaped query
    description: The query shapes mysqldump and pg_dump send, whatever the client calls itself.
    risk: medium
    tags: [dump, exfiltration]
    condition: kind = statement and (sql icontains "SQL_NO_CACHE */ * FROM" or (verb = COPY and sql imatches "\\\\bto\\\\s+stdout"))
  - id: dump.into-outfile
    name: Query result written to a server file
    description: SELECT ... INTO OUTFILE / DUMPFILE writes data where the database server can reach it.
    risk: high
    action: alert
    tags: [dump, exfiltration]
    condition: statementType = select and sql imatches "\\\\binto\\\\s+(outfile|dumpfile)\\\\b"
groups:
  dump-tools: [dump.*]
`;

const SQLI = `# SQL injection, detected on whole statements (docs/sqli.md).
rules:
  - id: sqli.detected
    name: SQL injection
    description: The statement carries the marks of injected input (tautologies, UNION extraction, stacked queries, comment truncation, time delays, error-based or out-of-band functions).
    risk: high
    action: alert
    tags: [sqli, attack]
    condition: kind = statement and sql.injection
groups:
  sql-injection: [sqli.*]
`;

const BRUTE = `# Brute-force logins.
rules:
  - id: bruteforce.failed-login
    name: Failed login
    risk: low
    tags: [authentication]
    condition: kind = login and status = error
  - id: bruteforce.per-client
    name: Repeated failed logins from one client
    risk: high
    tags: [authentication, attack]
    condition: kind = login and status = error
    detector:
      groupBy: [client.ip]
      window: 60s
      threshold: 5
  - id: bruteforce.per-user
    name: Repeated failed logins for one user
    risk: high
    tags: [authentication, attack]
    condition: kind = login and status = error and user exists
    detector:
      groupBy: [user]
      window: 10m
      threshold: 10
groups:
  brute-force: [bruteforce.*]
`;

const SHARING = `# Account sharing: one database user logging in from many addresses.
rules:
  - id: sharing.user-many-addresses
    name: One user from many addresses
    description: The same database user logged in from several client addresses within a short time.
    risk: medium
    tags: [authentication, account]
    condition: kind = login and status = ok and user exists
    detector:
      groupBy: [user]
      distinct: client.ip
      window: 10m
      threshold: 3
groups:
  account-sharing: [sharing.*]
`;

const OFFHOURS = `# Access outside business hours (times in the engine's time zone).
lists:
  business_hours: ["07:00-20:00"]
  weekend_days: [sat, sun]
rules:
  - id: offhours.access
    name: Access outside business hours
    risk: low
    tags: [time]
    condition: kind in (login, statement) and (time.weekday in (weekend_days) or not time within (business_hours))
groups:
  off-hours: [offhours.*]
`;

const BULK = `# Bulk export: many rows leaving the database.
rules:
  - id: bulk.large-result
    name: Large result set
    risk: medium
    tags: [exfiltration]
    condition: kind = statement and rowsReturned >= 100000
  - id: bulk.user-volume
    name: Many rows read by one user
    description: Rows returned to one user add up past the threshold within the window.
    risk: high
    tags: [exfiltration]
    condition: kind = statement and rowsReturned > 0
    detector:
      groupBy: [user]
      sum: rowsReturned
      window: 10m
      threshold: 1000000
groups:
  bulk-export: [bulk.*]
`;

const SLOW = `# Slow SQL.
rules:
  - id: slow.statement
    name: Slow statement
    risk: low
    tags: [performance]
    condition: kind = statement and durationUs >= 5000000
  - id: slow.repeated-fingerprint
    name: The same slow statement again and again
    risk: medium
    tags: [performance]
    condition: kind = statement and durationUs >= 1000000 and fingerprint exists
    detector:
      groupBy: [fingerprint]
      window: 10m
      threshold: 10
groups:
  slow-sql: [slow.*]
`;

const SENSITIVE = `# Access to sensitive tables. Fill the list in your own rule file:
#   lists:
#     sensitive_tables: { append: true, items: [customers, hr.salaries] }
# Items match a table name or schema.table, case-insensitively.
lists:
  sensitive_tables: []
  change_types: [insert, update, delete, merge, ddl]
macros:
  touches_sensitive: objects.name iin (sensitive_tables) or objects.qualified iin (sensitive_tables)
rules:
  - id: sensitive.read
    name: Sensitive table read
    risk: medium
    tags: [sensitive]
    condition: statementType = select and touches_sensitive
  - id: sensitive.change
    name: Sensitive table changed
    risk: high
    action: alert
    tags: [sensitive]
    condition: statementType in (change_types) and touches_sensitive
groups:
  sensitive-tables: [sensitive.*]
`;

const UNKNOWN_CLIENTS = `# Client programs nobody listed. Extend the list with yours:
#   lists:
#     known_client_programs: { append: true, items: [billing-service] }
lists:
  known_client_programs: [mysql, mariadb, mysqlsh, MySQL Workbench, psql, pgAdmin 4, pgadmin, DBeaver, DataGrip, HeidiSQL, Navicat, TablePlus, sqlcmd, SQL Server Management Studio, sqlplus, SQL Developer, db2, PostgreSQL JDBC Driver, mysql-connector-java, libmysql, mysqlnd, node-postgres, pgx, psycopg]
rules:
  - id: clients.unknown-program
    name: Unknown client program
    risk: low
    tags: [clients]
    condition: kind = login and clientProgram exists and not clientProgram iin (known_client_programs)
groups:
  unknown-clients: [clients.*]
`;

const CONNECTIONS = `# Connections to audited servers that dbtap could not decode: an unknown
# protocol on a database port, outdated TLS, clients outside the allowed
# networks. Fill the network list in your own rule file:
#   lists:
#     allowed_client_networks: { append: true, items: [10.0.0.0/8] }
lists:
  outdated_tls_versions: [SSL 3.0, TLS 1.0, TLS 1.1]
  allowed_client_networks: [127.0.0.0/8, "::1/128"]
rules:
  - id: connections.unknown-protocol
    name: Unknown protocol on a database port
    description: A connection to an audited server spoke nothing dbtap decodes (and was not TLS).
    risk: medium
    tags: [connections]
    condition: kind = connection and undecoded = unknown-protocol
  - id: connections.outdated-tls
    name: Outdated TLS version
    description: The server accepted SSL 3.0, TLS 1.0 or TLS 1.1.
    risk: medium
    tags: [connections, tls]
    condition: kind = connection and tls.version in (outdated_tls_versions)
  - id: connections.outside-allowed-networks
    name: Connection from outside the allowed networks
    description: A client address outside allowed_client_networks. Off until you list your networks and enable it.
    risk: high
    action: alert
    enabled: false
    tags: [connections]
    condition: kind in (connection, login) and not client.ip in_cidr (allowed_client_networks)
groups:
  connections: [connections.*]
`;

/** Every shipped policy, in load order. */
export const BUILTIN_POLICIES: readonly BuiltinPolicy[] = [
  { name: 'dangerous-operations', description: 'DROP / TRUNCATE / ALTER, UPDATE or DELETE without WHERE', defaultEnabled: true, text: DANGEROUS },
  { name: 'privilege-changes', description: 'GRANT / REVOKE, account creation and changes, direct writes to grant tables', defaultEnabled: true, text: PRIVILEGES },
  { name: 'dump-tools', description: 'mysqldump, pg_dump, expdp and other dump tools; INTO OUTFILE', defaultEnabled: true, text: DUMP },
  { name: 'sql-injection', description: 'SQL injection in whole statements', defaultEnabled: true, text: SQLI },
  { name: 'brute-force', description: 'repeated failed logins per client and per user', defaultEnabled: true, text: BRUTE },
  { name: 'account-sharing', description: 'one user logging in from many addresses', defaultEnabled: true, text: SHARING },
  { name: 'off-hours', description: 'access outside business hours and on weekends', defaultEnabled: true, text: OFFHOURS },
  { name: 'bulk-export', description: 'large result sets and many rows per user per window', defaultEnabled: true, text: BULK },
  { name: 'slow-sql', description: 'slow statements and repeatedly slow fingerprints', defaultEnabled: true, text: SLOW },
  { name: 'sensitive-tables', description: 'reads and changes of tables you list', defaultEnabled: true, text: SENSITIVE },
  { name: 'unknown-clients', description: 'logins from client programs not on the known list', defaultEnabled: true, text: UNKNOWN_CLIENTS },
  { name: 'connections', description: 'undecoded connections: unknown protocols, outdated TLS, clients outside the allowed networks', defaultEnabled: true, text: CONNECTIONS },
];
