/**
 * Local data that survives a restart of `npm start`. The Bigtable emulator keeps everything in
 * memory, so `npm start` writes the table (operations, their indexes, dead letters: every cell with
 * its timestamp) to `<data dir>/bigtable.json` when it stops and every `SAVE_INTERVAL_MS` while it
 * runs, and loads it into the emulator it starts (unless `--fresh`). Cells keep their timestamps,
 * which the store's conditional writes rely on (a running operation's cells carry a fixed future
 * timestamp), so a restored running operation can still end once, and waits on it still end.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Bigtable } from '@google-cloud/bigtable';
import type { Config } from '../shared/service/runtime/config.js';

export const SAVE_INTERVAL_MS = 30_000;

interface SavedCell {
  family: string;
  qualifier: string;
  /** base64 */
  value: string;
  timestampMicros: number;
}

interface SavedTable {
  version: 1;
  instance: string;
  table: string;
  savedAt: string;
  rows: { key: string; cells: SavedCell[] }[];
}

export function dataFilePath(dataDir: string): string {
  return join(dataDir, 'bigtable.json');
}

function openTable(config: Config) {
  const bigtable = new Bigtable({
    projectId: config.projectId,
    metricsEnabled: false,
    ...(config.bigtable.emulatorHost ? { apiEndpoint: config.bigtable.emulatorHost } : {}),
  });
  return {
    bigtable,
    table: bigtable.instance(config.bigtable.instance).table(config.bigtable.table),
  };
}

type CellData = Record<string, Record<string, { value: Buffer; timestamp: string | number }[]>>;

/** Writes every row of the table to the data directory (atomically); returns the row count. */
export async function saveTable(config: Config, dataDir: string): Promise<number> {
  const { bigtable, table } = openTable(config);
  try {
    const [rows] = await table.getRows({ decode: false });
    const saved: SavedTable = {
      version: 1,
      instance: config.bigtable.instance,
      table: config.bigtable.table,
      savedAt: new Date().toISOString(),
      rows: rows.map((row) => {
        const cells: SavedCell[] = [];
        for (const [family, columns] of Object.entries(row.data as CellData)) {
          for (const [qualifier, versions] of Object.entries(columns)) {
            for (const cell of versions) {
              cells.push({
                family,
                qualifier,
                value: Buffer.from(cell.value).toString('base64'),
                timestampMicros: Number(cell.timestamp),
              });
            }
          }
        }
        return { key: Buffer.from(row.id).toString('base64'), cells };
      }),
    };
    mkdirSync(dataDir, { recursive: true });
    const file = dataFilePath(dataDir);
    const temporary = `${file}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify(saved));
    renameSync(temporary, file);
    return saved.rows.length;
  } finally {
    await bigtable.close();
  }
}

/**
 * Loads what `saveTable` wrote into the (provisioned, empty) table; returns the row count, or
 * undefined when there is nothing saved for this instance and table.
 */
export async function loadTable(config: Config, dataDir: string): Promise<number | undefined> {
  const file = dataFilePath(dataDir);
  if (!existsSync(file)) return undefined;
  const saved = JSON.parse(readFileSync(file, 'utf8')) as SavedTable;
  if (
    saved.version !== 1 ||
    saved.instance !== config.bigtable.instance ||
    saved.table !== config.bigtable.table
  ) {
    return undefined;
  }
  const { bigtable, table } = openTable(config);
  try {
    const entries = saved.rows.flatMap((row) =>
      row.cells.map((cell) => ({
        key: Buffer.from(row.key, 'base64'),
        method: 'insert' as const,
        data: {
          [cell.family]: {
            [cell.qualifier]: {
              value: Buffer.from(cell.value, 'base64'),
              timestamp: cell.timestampMicros,
            },
          },
        },
      })),
    );
    for (let i = 0; i < entries.length; i += 500) await table.mutate(entries.slice(i, i + 500));
    return saved.rows.length;
  } finally {
    await bigtable.close();
  }
}

export function removeSavedData(dataDir: string): void {
  rmSync(dataFilePath(dataDir), { force: true });
}
