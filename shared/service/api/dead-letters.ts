/**
 * The API's dead-letter routes (docs/contracts.md, contract 6), entries of api.ts's routing table:
 *
 *   GET    /v1/deadLetters                 {deadLetters, nextPageToken}, newest first
 *   GET    /v1/deadLetters/{id}            DeadLetter
 *   POST   /v1/deadLetters/{id}:replay     {}: published to the events topic again, then removed
 *   DELETE /v1/deadLetters/{id}            {}
 */
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import {
  DeadLetterIdSchema,
  DeadLetterSchema,
  ListDeadLettersResponseSchema,
} from '../../sdk/dead-letters.js';
import { Code, LroError } from '../../sdk/errors.js';
import type { Logger } from '../../sdk/log.js';
import type { Messaging } from '../../sdk/messaging.js';
import { ListDeadLettersRequestSchema, toDeadLetter } from '../dead-letters/record.js';
import { publishReplay } from '../dead-letters/replay.js';
import { sendJson } from '../http/io.js';
import type { Config } from '../runtime/config.js';
import type { DeadLetterStore } from '../store/bigtable/dead-letters.js';
import type { ApiRoute } from './services.js';

/** What the dead-letter handlers use of a request's context. */
interface DeadLetterContext<Q = unknown> {
  res: ServerResponse;
  query: Q;
  params: Record<string, string>;
  services: { config: Config; messaging?: Messaging; deadLetters?: DeadLetterStore };
  log: Logger;
}

const EmptySchema = z.strictObject({});
const params = { deadLetterId: DeadLetterIdSchema };

export const deadLetterRoutes = [
  {
    method: 'GET',
    path: '/v1/deadLetters',
    operationId: 'ListDeadLetters',
    summary: 'Lists kept dead letters, newest first, one page at a time.',
    query: ListDeadLettersRequestSchema,
    queryName: 'list request',
    response: ListDeadLettersResponseSchema,
    handler: list,
  },
  {
    method: 'GET',
    path: '/v1/deadLetters/{deadLetterId}',
    params,
    operationId: 'GetDeadLetter',
    summary: 'A dead letter: its reason, operation, original data and attributes.',
    response: DeadLetterSchema,
    handler: get,
  },
  {
    method: 'DELETE',
    path: '/v1/deadLetters/{deadLetterId}',
    params,
    operationId: 'DiscardDeadLetter',
    summary: 'Removes a dead letter without replaying it.',
    response: EmptySchema,
    handler: discard,
  },
  {
    method: 'POST',
    path: '/v1/deadLetters/{deadLetterId}:replay',
    params,
    operationId: 'ReplayDeadLetter',
    summary:
      'Publishes the original data and attributes to the events topic again, then removes the entry.',
    body: EmptySchema,
    bodyName: 'replay request',
    response: EmptySchema,
    handler: replay,
  },
] as unknown as ApiRoute[];

function storeOf(ctx: DeadLetterContext): DeadLetterStore {
  const store = ctx.services.deadLetters;
  if (!store) throw new LroError(Code.UNIMPLEMENTED, 'dead letters are not kept by this API');
  return store;
}

function idOf(ctx: DeadLetterContext): string {
  return ctx.params.deadLetterId ?? '';
}

async function list(
  ctx: DeadLetterContext<z.output<typeof ListDeadLettersRequestSchema>>,
): Promise<void> {
  const page = await storeOf(ctx).list(ctx.query);
  sendJson(ctx.res, 200, {
    deadLetters: page.entries.map(toDeadLetter),
    nextPageToken: page.nextPageToken,
  });
}

async function get(ctx: DeadLetterContext): Promise<void> {
  sendJson(ctx.res, 200, toDeadLetter(await storeOf(ctx).get(idOf(ctx))));
}

async function discard(ctx: DeadLetterContext): Promise<void> {
  const id = idOf(ctx);
  await storeOf(ctx).discard(id);
  ctx.log.info('dead letter discarded', { deadLetter: `deadLetters/${id}` });
  sendJson(ctx.res, 200, {});
}

async function replay(ctx: DeadLetterContext): Promise<void> {
  const id = idOf(ctx);
  const { messaging, config } = ctx.services;
  if (!messaging) throw new LroError(Code.UNIMPLEMENTED, 'this API cannot publish events');
  await storeOf(ctx).replay(id, (entry) => publishReplay(messaging, config.topics.events, entry));
  ctx.log.info('dead letter replayed', { deadLetter: `deadLetters/${id}` });
  sendJson(ctx.res, 200, {});
}
