/**
 * Opaque page tokens (AIP-158): the position to resume from, bound to the request that made it
 * (its scope: the filter or the parent), signed with HMAC so that a forged or altered token is
 * rejected, and dated so that a stale one is too. Every failure is INVALID_ARGUMENT.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { invalidArgument } from '../../sdk/errors.js';

/** Tokens older than this are refused. */
export const PAGE_TOKEN_TTL_MS = 24 * 3600 * 1000;

interface Payload {
  /** Version of the token format. */
  v: 1;
  /** The last row key position returned (relative to the scanned prefix). */
  k: string;
  /** Hash of the request scope. */
  s: string;
  /** Issue time, ms since the epoch. */
  t: number;
}

export class PageTokens {
  constructor(private readonly key: string) {}

  encode(position: string, scope: string, now = Date.now()): string {
    const payload: Payload = { v: 1, k: position, s: scopeHash(scope), t: now };
    const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
    return `${body}.${this.sign(body)}`;
  }

  /** The position in a token made for the same scope; INVALID_ARGUMENT otherwise. */
  decode(token: string, scope: string, now = Date.now()): string {
    const dot = token.indexOf('.');
    const body = dot > 0 ? token.slice(0, dot) : '';
    const signature = dot > 0 ? token.slice(dot + 1) : '';
    const expected = this.sign(body);
    if (
      !body ||
      signature.length !== expected.length ||
      !timingSafeEqual(Buffer.from(signature), Buffer.from(expected))
    ) {
      throw invalidArgument('invalid page token');
    }
    let payload: Payload;
    try {
      payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Payload;
    } catch {
      throw invalidArgument('invalid page token');
    }
    if (payload.v !== 1 || typeof payload.k !== 'string' || typeof payload.t !== 'number') {
      throw invalidArgument('invalid page token');
    }
    if (payload.s !== scopeHash(scope)) {
      throw invalidArgument('page token was issued for a different request (filter or parent)');
    }
    if (now - payload.t > PAGE_TOKEN_TTL_MS) throw invalidArgument('page token has expired');
    return payload.k;
  }

  private sign(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url').slice(0, 22);
  }
}

function scopeHash(scope: string): string {
  return createHash('sha256').update(scope).digest('base64url').slice(0, 16);
}
