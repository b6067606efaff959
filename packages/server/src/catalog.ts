// The server's live settings that operators change while it runs: audit
// objects and rule groups. The config file gives the initial lists; a change
// through the API is validated, written to the data directory (atomically,
// so a crash leaves the old or the new file, never half of one) and applied
// at once: listeners swap in the new object table and rule groups. Open
// connections keep the object they started with.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DbtapError, ErrorCodes } from '@dbtap/core';
import { AuditObjectTable, failWith, validateAuditObjects, type AuditObjectDef } from './objects.js';
import { HttpErrorCodes, parseRuleGroups, type ObjectProvider, type RuleGroupDef, type RuleGroupProvider } from './http/providers.js';

/** Options of an {@link AuditCatalog}. */
export interface AuditCatalogOptions {
  /** Where API changes are kept (`objects.json`, `rule-groups.json`); none: changes live in memory only. */
  dataDir?: string;
  /** Audit objects from the config file. */
  objects?: readonly AuditObjectDef[];
  /** Rule groups from the config file. */
  ruleGroups?: readonly RuleGroupDef[];
  /** Names of the groups the loaded rule files define (objects may name these or a `ruleGroups` entry). */
  ruleFileGroups?: Iterable<string>;
}

/** What changed, for listeners. */
export type CatalogChange = 'objects' | 'ruleGroups';

interface StateFile<T> {
  readonly version: 1;
  readonly changed: string;
  readonly items: T[];
}

/**
 * Audit objects and rule groups in force, with their providers for the
 * HTTP API. Once a list has been changed through the API, its file in the
 * data directory is authoritative over the config file (delete the file to
 * return to the config file's list); {@link reloadConfig} applies a config
 * file's lists where no such file exists.
 */
export class AuditCatalog {
  private objectList: AuditObjectDef[] = [];
  private groupList: RuleGroupDef[] = [];
  private objectTable = new AuditObjectTable();
  private readonly fileGroups: Set<string>;
  private readonly listeners: Array<(change: CatalogChange) => void> = [];
  private readonly objectsFile: string | undefined;
  private readonly groupsFile: string | undefined;

  /** @throws DbtapError `DBTAP_E_CONFIG` when a kept state file is corrupt or the lists are inconsistent. */
  constructor(options: AuditCatalogOptions = {}) {
    this.fileGroups = new Set(options.ruleFileGroups ?? []);
    this.objectsFile = options.dataDir !== undefined ? join(options.dataDir, 'objects.json') : undefined;
    this.groupsFile = options.dataDir !== undefined ? join(options.dataDir, 'rule-groups.json') : undefined;
    const fail = failWith(ErrorCodes.CONFIG);
    const keptGroups = this.readState<unknown>(this.groupsFile);
    this.groupList = keptGroups !== undefined ? this.parseGroups(keptGroups, this.groupsFile!) : [...(options.ruleGroups ?? [])];
    const keptObjects = this.readState<unknown>(this.objectsFile);
    const objects = keptObjects !== undefined ? validateAuditObjects(keptObjects, `${this.objectsFile}: objects`, fail) : [...(options.objects ?? [])];
    this.checkGroups(objects, fail, keptObjects !== undefined ? `${this.objectsFile}: objects` : 'objects');
    this.setObjectList(objects);
  }

  /** The object table in force (immutable; a change replaces it). */
  get table(): AuditObjectTable {
    return this.objectTable;
  }

  /** Audit objects in force. */
  objects(): AuditObjectDef[] {
    return structuredClone(this.objectList);
  }

  /** Rule groups defined here (not those of rule files). */
  ruleGroups(): RuleGroupDef[] {
    return structuredClone(this.groupList);
  }

  /** The rule group of an audit object, or undefined for none / unknown object. */
  ruleGroupOf(objectId: string | undefined): string | undefined {
    return objectId === undefined ? undefined : this.objectTable.get(objectId)?.ruleGroup;
  }

  /** Called after every applied change. */
  onChange(listener: (change: CatalogChange) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Replaces the audit objects (validated; rule groups they name must
   * exist), keeps them in the data directory and applies them.
   * @throws DbtapError `DBTAP_E_BAD_REQUEST` naming the bad field.
   */
  replaceObjects(items: readonly unknown[]): AuditObjectDef[] {
    const fail = failWith(HttpErrorCodes.BAD_REQUEST);
    const list = validateAuditObjects(items, 'objects', fail);
    this.checkGroups(list, fail, 'objects');
    this.writeState(this.objectsFile, list);
    this.setObjectList(list);
    this.emit('objects');
    return this.objects();
  }

  /**
   * Replaces the rule groups defined here. A group still named by an audit
   * object cannot disappear.
   * @throws DbtapError `DBTAP_E_BAD_REQUEST`.
   */
  replaceRuleGroups(items: readonly RuleGroupDef[]): RuleGroupDef[] {
    const list = parseRuleGroups({ ruleGroups: items });
    const names = new Set([...this.fileGroups, ...list.map((g) => g.id)]);
    for (const o of this.objectList) {
      if (o.ruleGroup !== undefined && !names.has(o.ruleGroup)) {
        throw new DbtapError(HttpErrorCodes.BAD_REQUEST, `ruleGroups: group '${o.ruleGroup}' is used by audit object '${o.id}'`, { path: 'ruleGroups' });
      }
    }
    this.writeState(this.groupsFile, list);
    this.groupList = list;
    this.emit('ruleGroups');
    return this.ruleGroups();
  }

  /**
   * Applies a re-read config file: each list that has not been taken over
   * by the API (no state file) is replaced by the file's.
   * @returns which lists changed.
   */
  reloadConfig(objects: readonly AuditObjectDef[], ruleGroups: readonly RuleGroupDef[]): CatalogChange[] {
    const changed: CatalogChange[] = [];
    if (this.groupsFile === undefined || !existsSync(this.groupsFile)) {
      if (JSON.stringify(ruleGroups) !== JSON.stringify(this.groupList)) {
        this.groupList = [...ruleGroups];
        changed.push('ruleGroups');
      }
    }
    if (this.objectsFile === undefined || !existsSync(this.objectsFile)) {
      if (JSON.stringify(objects) !== JSON.stringify(this.objectList)) {
        this.checkGroups(objects, failWith(ErrorCodes.CONFIG), 'objects');
        this.setObjectList([...objects]);
        changed.push('objects');
      }
    }
    for (const c of changed) this.emit(c);
    return changed;
  }

  /** The provider behind `/api/objects`. */
  objectProvider(): ObjectProvider {
    return { list: () => this.objects(), replace: (items) => void this.replaceObjects(items) };
  }

  /** The provider behind `/api/rule-groups`. */
  ruleGroupProvider(): RuleGroupProvider {
    return { list: () => this.ruleGroups(), replace: (items) => void this.replaceRuleGroups(items) };
  }

  private setObjectList(list: AuditObjectDef[]): void {
    this.objectList = list;
    this.objectTable = new AuditObjectTable(list);
  }

  private checkGroups(objects: readonly AuditObjectDef[], fail: (path: string, message: string) => never, path: string): void {
    const names = new Set([...this.fileGroups, ...this.groupList.map((g) => g.id)]);
    objects.forEach((o, i) => {
      if (o.ruleGroup !== undefined && !names.has(o.ruleGroup)) {
        fail(`${path}[${i}].ruleGroup`, `no rule group '${o.ruleGroup}' (known: ${[...names].join(', ') || 'none'})`);
      }
    });
  }

  private parseGroups(items: unknown, file: string): RuleGroupDef[] {
    try {
      return parseRuleGroups({ ruleGroups: items });
    } catch (err) {
      throw new DbtapError(ErrorCodes.CONFIG, `${file}: ${(err as Error).message}`, { file });
    }
  }

  private readState<T>(file: string | undefined): T[] | undefined {
    if (file === undefined || !existsSync(file)) return undefined;
    let doc: StateFile<T>;
    try {
      doc = JSON.parse(readFileSync(file, 'utf8')) as StateFile<T>;
    } catch (err) {
      throw new DbtapError(ErrorCodes.CONFIG, `${file}: not valid JSON (${(err as Error).message}); fix or delete it to use the config file's list`, { file });
    }
    if (doc === null || typeof doc !== 'object' || doc.version !== 1 || !Array.isArray(doc.items)) {
      throw new DbtapError(ErrorCodes.CONFIG, `${file}: expected {"version":1,"items":[...]}; fix or delete it to use the config file's list`, { file });
    }
    return doc.items;
  }

  private writeState<T>(file: string | undefined, items: T[]): void {
    if (file === undefined) return;
    const doc: StateFile<T> = { version: 1, changed: new Date().toISOString(), items };
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o640 });
      renameSync(tmp, file);
    } catch (err) {
      throw new DbtapError(ErrorCodes.IO, `cannot keep ${file}: ${(err as Error).message}`, { file });
    }
  }

  private emit(change: CatalogChange): void {
    for (const l of this.listeners) l(change);
  }
}
