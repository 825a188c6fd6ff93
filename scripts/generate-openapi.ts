/**
 * Writes docs/openapi.yaml from the API's routing table (scripts/openapi.ts). Run
 * `npm run openapi` after adding or changing a route; a test fails when the file is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { log } from '../shared/sdk/log.js';
import { openApiText } from './openapi.js';
import { answerHelp } from './usage.js';

answerHelp(`Usage: npm run openapi
  Builds, then writes docs/openapi.yaml from the API's routing table and its zod schemas.
  Commit the file: a test fails when it is stale.`);

// Compiled to dist/scripts/, two levels below the repository root.
const root = resolve(import.meta.dirname, '../..');
const { version } = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as {
  version: string;
};
const target = resolve(root, 'docs/openapi.yaml');
writeFileSync(target, openApiText(version));
log.info('OpenAPI description written', { path: target });
