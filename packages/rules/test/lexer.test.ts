import test from 'ava';
import { TokenFlag, TokenType, tokenize, type Dialect } from '../src/index.js';

const T = TokenType;
function kinds(sql: string, d: Dialect = 'mysql'): string[] {
  const names = Object.fromEntries(Object.entries(TokenType).map(([k, v]) => [v, k]));
  return tokenize(sql, d).map((t) => `${names[t.type]}:${t.text}`);
}

test('MySQL strings: backslash escapes, doubled quotes, double-quoted strings, introducers', (t) => {
  t.deepEqual(kinds(`'it''s' 'a\\'b' "x\\"y" _utf8mb4'z' N'n' X'0aff' b'01' 0x1F`), [
    "String:'it''s'",
    "String:'a\\'b'",
    'String:"x\\"y"',
    "String:_utf8mb4'z'",
    "String:N'n'",
    "String:X'0aff'",
    "String:b'01'",
    'Number:0x1F',
  ]);
  const toks = tokenize(`X'0aff' 0x1F`, 'mysql');
  t.true((toks[0]!.flags & TokenFlag.Binary) !== 0);
  t.true((toks[1]!.flags & TokenFlag.Binary) !== 0);
});

test('MySQL comments: "--" needs a space, "#" comments, executable comments are code', (t) => {
  t.deepEqual(kinds('SELECT 1--1'), ['Word:SELECT', 'Number:1', 'Operator:-', 'Operator:-', 'Number:1']);
  t.deepEqual(kinds('SELECT 1 -- c\n, 2 # d'), ['Word:SELECT', 'Number:1', 'Comment:-- c', 'Comma:,', 'Number:2', 'Comment:# d']);
  const toks = tokenize('SELECT /*!40001 SQL_NO_CACHE */ * FROM t /*M!100108 x */', 'mysql');
  t.deepEqual(
    toks.map((x) => x.text),
    ['SELECT', 'SQL_NO_CACHE', '*', 'FROM', 't', 'x'],
  );
  t.true((toks[1]!.flags & TokenFlag.InExecComment) !== 0);
  t.is(toks[2]!.flags & TokenFlag.InExecComment, 0);
  t.deepEqual(kinds('a /* b */ c'), ['Word:a', 'Comment:/* b */', 'Word:c']);
});

test('PostgreSQL: nested comments, dollar quoting, E strings, $n parameters, :: casts', (t) => {
  t.deepEqual(kinds('SELECT /* a /* b */ c */ 1', 'postgres'), ['Word:SELECT', 'Comment:/* a /* b */ c */', 'Number:1']);
  t.deepEqual(kinds("SELECT $fn$ it's $$ $fn$, $$x$$, E'a\\'b', $1::int", 'postgres'), [
    'Word:SELECT',
    "String:$fn$ it's $$ $fn$",
    'Comma:,',
    'String:$$x$$',
    'Comma:,',
    "String:E'a\\'b'",
    'Comma:,',
    'Param:$1',
    'Operator:::',
    'Word:int',
  ]);
  t.deepEqual(kinds(`SELECT "Quoted ""Name""", 'a\\'`, 'postgres'), ['Word:SELECT', 'QuotedIdent:"Quoted ""Name"""', 'Comma:,', "String:'a\\'"]);
  t.deepEqual(kinds('SELECT 1 --x', 'postgres'), ['Word:SELECT', 'Number:1', 'Comment:--x']);
});

test('T-SQL: brackets, @params, #temp tables, N strings', (t) => {
  t.deepEqual(kinds("SELECT [a]]b] FROM #tmp WHERE x = @p1 AND y = N'z' AND v = @@ROWCOUNT", 'tsql'), [
    'Word:SELECT',
    'QuotedIdent:[a]]b]',
    'Word:FROM',
    'Word:#tmp',
    'Word:WHERE',
    'Word:x',
    'Operator:=',
    'Param:@p1',
    'Word:AND',
    'Word:y',
    'Operator:=',
    "String:N'z'",
    'Word:AND',
    'Word:v',
    'Operator:=',
    'Variable:@@ROWCOUNT',
  ]);
});

test('Oracle and DB2: q-quotes and :binds', (t) => {
  t.deepEqual(kinds("SELECT q'[it's]', :name, :1 FROM dual", 'oracle'), ['Word:SELECT', "String:q'[it's]'", 'Comma:,', 'Param::name', 'Comma:,', 'Param::1', 'Word:FROM', 'Word:dual']);
  t.deepEqual(kinds('SELECT * FROM t WHERE a = :host AND b = ?', 'db2'), ['Word:SELECT', 'Operator:*', 'Word:FROM', 'Word:t', 'Word:WHERE', 'Word:a', 'Operator:=', 'Param::host', 'Word:AND', 'Word:b', 'Operator:=', 'Param:?']);
});

test('numbers, operators and MySQL variables', (t) => {
  t.deepEqual(kinds('1 1.5 .5 1e5 2.5E-3 a<=>b a<>b a!=b a>=b a->>"$.x" @v @@global.x 1abc'), [
    'Number:1',
    'Number:1.5',
    'Number:.5',
    'Number:1e5',
    'Number:2.5E-3',
    'Word:a',
    'Operator:<=>',
    'Word:b',
    'Word:a',
    'Operator:<>',
    'Word:b',
    'Word:a',
    'Operator:!=',
    'Word:b',
    'Word:a',
    'Operator:>=',
    'Word:b',
    'Word:a',
    'Operator:->>',
    'String:"$.x"',
    'Variable:@v',
    'Variable:@@global.x',
    'Word:1abc',
  ]);
  t.deepEqual(kinds("'bob'@'%'"), ["String:'bob'", 'Operator:@', "String:'%'"]);
});

test('unterminated strings and comments run to the end and are flagged', (t) => {
  for (const [sql, type] of [
    ["SELECT 'abc", T.String],
    ['SELECT /* abc', T.Comment],
    ['SELECT `abc', T.QuotedIdent],
  ] as const) {
    const toks = tokenize(sql, 'mysql');
    const last = toks[toks.length - 1]!;
    t.is(last.type, type, sql);
    t.true((last.flags & TokenFlag.Unterminated) !== 0, sql);
    t.is(last.end, sql.length);
  }
});

test('the scanner never throws and covers the text: every character is in a token, whitespace or a skipped exec-comment marker', (t) => {
  const samples = ["'", '"', '`', '[', '/*', '*/', '$', '$$', '$a', ':', '@', '#', '--', '\\', '\u0130\u0130 SELECT', 'é', '\u0000', "q'", 'U&"', "E'"];
  for (const d of ['mysql', 'postgres', 'tsql', 'oracle', 'db2'] as const) {
    for (let i = 0; i < samples.length; i++) {
      for (let j = 0; j < samples.length; j++) {
        const sql = `${samples[i]} x ${samples[j]}`;
        const toks = tokenize(sql, d);
        let pos = 0;
        for (const tok of toks) {
          t.true(tok.start >= pos && tok.end > tok.start && tok.end <= sql.length, `${d}: ${JSON.stringify(sql)}`);
          pos = tok.end;
        }
      }
    }
  }
});
