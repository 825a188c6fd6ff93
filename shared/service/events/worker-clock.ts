/**
 * Worker clocks (docs/contracts.md, contract 5): `emitTime` orders metadata ("newest wins"), but
 * it counts no later than the message's Pub/Sub `publishTime` plus `defaults.emitTimeSkewMaxMs`
 * (60 s), so that one worker whose clock runs in the future cannot freeze an operation's progress.
 *
 * An emitTime beyond that allowance is known to come from a wrong clock, so it is not trusted at
 * all: the event counts at its publishTime, the time Pub/Sub (whose clock is right) accepted it.
 * Events of a correct clock, published after it, then order after it, at once rather than only
 * once the allowance has passed. Within the allowance emitTime counts as given, so a worker's
 * events published out of order still apply newest-last. Without a publishTime (a message that
 * did not come through Pub/Sub) emitTime counts as given.
 */
import { defaults } from '../../sdk/defaults.js';

/** The time an event's metadata counts at. */
export function countedEmitTime(emitTime: string, publishTime?: string): Date {
  const emitted = Date.parse(emitTime);
  const published = publishTime === undefined ? Number.NaN : Date.parse(publishTime);
  if (Number.isNaN(published)) return new Date(emitted);
  return emitted > published + defaults.emitTimeSkewMaxMs ? new Date(published) : new Date(emitted);
}
