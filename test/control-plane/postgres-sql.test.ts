// The PostgreSQL backend's pure parts (issue 20): the SQL translation and the schema twins.
import { describe, expect, it } from 'vitest';
import { translateSql } from '../../src/control-plane/postgres.js';
import { MIGRATIONS } from '../../src/control-plane/schema.js';
import { POSTGRES_BASELINE_VERSION, POSTGRES_MIGRATIONS } from '../../src/control-plane/schema-postgres.js';

describe('translateSql', () => {
  it('numbers placeholders, leaving question marks in string literals alone', () => {
    expect(translateSql("SELECT a FROM t WHERE b = ? AND c = '?' AND d IN (?, ?)")).toBe("SELECT a FROM t WHERE b = $1 AND c = '?' AND d IN ($2, $3)");
  });

  it('turns INSERT OR IGNORE into ON CONFLICT DO NOTHING, before RETURNING', () => {
    expect(translateSql('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)')).toBe('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING');
    expect(translateSql('INSERT OR IGNORE INTO t (a) VALUES (?) RETURNING a')).toBe('INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING RETURNING a');
  });

  it('translates json_each and json_extract', () => {
    expect(translateSql('SELECT x FROM t WHERE id IN (SELECT value FROM json_each(?))')).toBe('SELECT x FROM t WHERE id IN (SELECT value FROM json_array_elements_text($1::json) AS j(value))');
    expect(translateSql("SELECT json_extract(record, '$.group') FROM t")).toBe("SELECT (record::json->>'group') FROM t");
  });

  it('refuses INSERT OR REPLACE, which has no one-to-one PostgreSQL form', () => {
    expect(() => translateSql('INSERT OR REPLACE INTO t (a) VALUES (?)')).toThrow(/not portable to PostgreSQL/);
  });
});

describe('PostgreSQL migrations', () => {
  it('every SQLite migration after the baseline has its PostgreSQL twin', () => {
    expect(POSTGRES_BASELINE_VERSION).toBeLessThanOrEqual(MIGRATIONS.length);
    for (let v = POSTGRES_BASELINE_VERSION + 1; v <= MIGRATIONS.length; v++) expect(POSTGRES_MIGRATIONS[v], `version ${v}`).toBeTypeOf('string');
  });
});
