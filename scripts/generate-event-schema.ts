/**
 * Writes schema/event.schema.json from the zod event schema (shared/sdk/events.ts), so that workers
 * in other languages can validate what they publish. Run `npm run schema`; a test fails when the
 * committed file is stale.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { eventSchemaText } from '../shared/sdk/events.js';
import { log } from '../shared/sdk/log.js';

// Compiled to dist/scripts/, two levels below the repository root.
const target = resolve(import.meta.dirname, '../../schema/event.schema.json');
writeFileSync(target, eventSchemaText());
log.info('event schema written', { path: target });
