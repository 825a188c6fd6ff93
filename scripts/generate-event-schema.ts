/**
 * Writes schema/event.schema.json from the zod event schema (shared/sdk/events.ts), so that workers
 * in other languages can validate what they publish. Run `npm run schema`; a test fails when the
 * committed file is stale.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { eventSchemaText } from '../shared/sdk/events.js';
import { log } from '../shared/sdk/log.js';
import { answerHelp } from './usage.js';

answerHelp(`Usage: npm run schema
  Builds, then writes schema/event.schema.json from the zod event schemas (shared/sdk/events.ts).
  Commit the file: a test fails when it is stale.`);

// Compiled to dist/scripts/, two levels below the repository root.
const target = resolve(import.meta.dirname, '../../schema/event.schema.json');
writeFileSync(target, eventSchemaText());
log.info('event schema written', { path: target });
